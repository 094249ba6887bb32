"""Issue 15, the first hour on your own photos: weak classes visible, class weights that reach the head,
no silent overwrite, and a CLI that uses what training wrote (split.json, true labels)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cvkit.classifiers._heads import class_weights, default_estimator, fit_head
from cvkit.cli._main import main
from cvkit.data import check_class_balance, default_run_dir
from cvkit.data._runs import run_name
from cvkit.models._folder import check_overwrite


def _tree(sample_dir: Path, dest: Path, per_class: dict[str, int]) -> Path:
    for name, n in per_class.items():
        (dest / name).mkdir(parents=True)
        for p in sorted((sample_dir / name).glob("*.jpg"))[:n]:
            shutil.copy2(p, dest / name / p.name)
    return dest


def _fake_model(folder: Path, classes: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(json.dumps({"format": "cvkit-model", "classes": classes}))
    return folder


# ---------------------------------------------------------------------- library: balance, run folders
def test_class_balance_warns_about_ratio_and_small_classes_and_says_what_to_do():
    assert check_class_balance({"a": 30, "b": 12, "c": 10}) == []
    ratio, few = check_class_balance({"stop": 60, "yield": 30, "merge": 9})
    assert ratio.startswith("classes differ in size by 6.7x (stop 60, merge 9)")
    assert "class_weight='balanced'" in ratio and "--class-weight balanced" in ratio and "recall" in ratio
    assert few.startswith("1 class has fewer than 10 training images (merge 9)") and "Add photos" in few
    assert check_class_balance({"a": 40, "b": 14}, max_ratio=2.5)[0].startswith("classes differ in size by 2.9x")
    assert check_class_balance({"a": 5}) == []
    with pytest.raises(TypeError):
        check_class_balance([1, 2])


def test_class_balance_of_a_dataset(sample_split):
    train, _ = sample_split
    assert check_class_balance(train) == []
    bird = [i for i, lab in enumerate(train.image_labels) if lab != "vegetable" or i % 4 == 0]
    assert any("vegetable" in w for w in check_class_balance(train.subset(bird)))


def test_default_run_folder_comes_from_the_data_folder_name(tmp_path):
    assert default_run_dir("sample_data").as_posix() == "runs/sample"
    assert default_run_dir(tmp_path / "My photos" / "").name == "My_photos"
    assert run_name("sample_data/tags.tsv") == "sample" and run_name("/x/road_signs.csv") == "road_signs"
    assert run_name("/x/data") == "data" and default_run_dir("/x/birds", root="out").as_posix() == "out/birds"


# ---------------------------------------------------------------------- library: overwrite rule
def test_an_existing_model_folder_is_never_replaced_silently(tmp_path):
    model = _fake_model(tmp_path / "model", ["bird", "fruit"])
    check_overwrite(tmp_path / "nothing-here", ["a", "b"])
    with pytest.raises(FileExistsError, match="never replaced silently.*overwrite=True") as info:
        check_overwrite(model, ["bird", "fruit"])
    assert str(model) in str(info.value)
    check_overwrite(model, ["bird", "fruit"], overwrite="same_classes")  # re-training on the same classes
    with pytest.raises(FileExistsError, match=r"other classes \(bird, fruit; this one has cat, dog\)"):
        check_overwrite(model, ["cat", "dog"], overwrite="same_classes")
    check_overwrite(model, ["cat", "dog"], overwrite=True)  # explicit
    photos = tmp_path / "photos"
    photos.mkdir()
    for mode in (False, True, "same_classes"):
        with pytest.raises(FileExistsError, match="not a cvkit model folder"):
            check_overwrite(photos, ["a", "b"], overwrite=mode)
    with pytest.raises(ValueError, match="overwrite must be"):
        check_overwrite(model, ["bird", "fruit"], overwrite="yes")


def test_save_model_refuses_other_classes_unless_told(fitted, tmp_path):
    other = _fake_model(tmp_path / "other", ["cat", "dog"])
    with pytest.raises(FileExistsError, match="other classes"):
        fitted.save(other, overwrite="same_classes")
    assert json.loads((other / "metadata.json").read_text())["classes"] == ["cat", "dog"]
    fitted.save(other, overwrite=True)
    fitted.save(other, overwrite="same_classes")  # now the same classes: replaced
    assert json.loads((other / "metadata.json").read_text())["classes"] == list(fitted.classes_)


# ---------------------------------------------------------------------- library: class weights
def _imbalanced_features(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    big = rng.normal(0.0, 1.0, size=(60, 5))
    small = rng.normal(0.9, 1.0, size=(8, 5))
    return np.vstack([big, small]), np.array([0] * 60 + [1] * 8)


def test_balanced_weights_reach_the_cross_validation_that_picks_C():
    X, y = _imbalanced_features()
    weights = class_weights("balanced", y, ["big", "small"])
    assert weights[1] / weights[0] == pytest.approx(60 / 8)
    plain = fit_head(default_estimator(8, cv=4), X, y, None)
    weighted = fit_head(default_estimator(8, cv=4), X, y, weights)
    # the per-fold log-losses that choose C are computed with the weights, not only the final fit
    assert not np.allclose(plain.scores_, weighted.scores_)
    assert weighted.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
    assert (weighted.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


def test_weights_reach_a_head_of_your_own_through_its_class_weight():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from cvkit.classifiers._heads import with_probabilities
    X, y = _imbalanced_features()
    weights = class_weights({"small": 5.0}, y, ["big", "small"])
    assert weights == {0: 1.0, 1: 5.0}
    assert fit_head(LogisticRegression(), X, y, weights).class_weight == weights
    pipe = fit_head(make_pipeline(StandardScaler(), LogisticRegression()), X, y, weights)
    assert pipe.get_params()["logisticregression__class_weight"] == weights
    calibrated = fit_head(with_probabilities(LinearSVC(), 8), X, y, weights)
    assert calibrated.estimator.class_weight == weights
    with pytest.raises(ValueError, match="one place only"):
        fit_head(LogisticRegression(class_weight="balanced"), X, y, weights)
    with pytest.raises(ValueError, match="unknown class"):
        class_weights({"cat": 2.0}, y, ["big", "small"])


@pytest.mark.slow
def test_feature_classifier_class_weight_reaches_fit_and_cross_validation(sample_split, monkeypatch):
    import cvkit
    from cvkit.classifiers._model_selection import make_classifier

    train, _ = sample_split
    keep = [i for i, lab in enumerate(train.image_labels) if lab != "vegetable" or i % 3 == 0]
    small = train.subset(keep)
    plain = cvkit.FeatureClassifier(head="logistic", class_weight=None, verbose=False).fit(small)  # not "auto"
    weighted = make_classifier("features", head="logistic", class_weight="balanced", verbose=False).fit(small)
    assert weighted.get_params()["class_weight"] == "balanced" and "class_weights" not in plain.metrics_
    counts = small.counts()
    assert weighted.metrics_["class_weights"]["vegetable"] == pytest.approx(
        len(small) / (4 * counts["vegetable"]), abs=1e-3)
    assert not np.allclose(plain.estimator_.coef_, weighted.estimator_.coef_)
    with pytest.raises(ValueError, match="class_weight"):
        cvkit.FeatureClassifier(class_weight="heavy").fit(small)

    seen = []
    original = cvkit.FeatureClassifier.fit_calibrated_head

    def spy(self, F, targets, classes, calibrate=True):
        seen.append(self.class_weight)
        return original(self, F, targets, classes, calibrate)

    monkeypatch.setattr(cvkit.FeatureClassifier, "fit_calibrated_head", spy)
    cvkit.cross_validate(cvkit.FeatureClassifier(class_weight="balanced", verbose=False), small, cv=3)
    assert seen == ["balanced"] * 3


# ---------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def trained(sample_dir, tmp_path_factory):
    """`cvkit train DATA --class-weight balanced` on an imbalanced copy, from its parent folder."""
    work = tmp_path_factory.mktemp("first-hour")
    data = _tree(sample_dir, work / "signs_data", {"bird": 24, "flower": 9, "vegetable": 6})
    return work, data


@pytest.mark.slow
def test_train_prints_per_class_scores_warns_and_writes_under_runs(trained, capsys, monkeypatch):
    work, data = trained
    monkeypatch.chdir(work)
    assert main(["train", "signs_data", "--class-weight", "balanced", "--quiet"]) == 0
    out, err = capsys.readouterr()
    model = work / "runs" / "signs" / "model"
    assert f"model saved to {Path('runs/signs/model')}" in out and (model / "split.json").is_file()
    assert "test accuracy:" in out and "balanced accuracy:" in out
    assert "precision  recall  recall_low  recall_high  support" in out and "vegetable" in out
    assert "cvkit train: warning: classes differ in size by" in err and "fewer than 10 training images" in err
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["params"]["class_weight"] == "balanced" and "test_balanced_accuracy" in meta["metrics"]

    # the same command again: the model folder is not replaced silently, and nothing is trained
    assert main(["train", "signs_data", "--quiet"]) == 2
    assert "never replaced silently" in capsys.readouterr().err
    other = _tree(data, work / "other", {"bird": 5, "flower": 5})
    assert main(["train", str(other), "-o", "runs/signs/model", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "runs/signs/model: holds a model trained on other classes" in err and "--overwrite" in err
    assert json.loads((model / "metadata.json").read_text())["classes"] == ["bird", "flower", "vegetable"]


@pytest.mark.slow
def test_evaluate_uses_the_model_split_and_warns_about_training_images(trained, capsys, monkeypatch):
    work, _ = trained
    monkeypatch.chdir(work)
    model = work / "runs" / "signs" / "model"
    if not model.exists():
        assert main(["train", "signs_data", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model)]) == 0
    out, err = capsys.readouterr()
    assert f"evaluating the test images of {model / 'split.json'}" in out and "balanced_accuracy" in out
    assert "report written" not in out and "warning" not in err and not list(work.glob("*.json"))
    assert main(["evaluate", str(model), "signs_data", "-o", "report.json"]) == 0
    out, err = capsys.readouterr()
    n_train = len(json.loads((model / "split.json").read_text())["train"])
    assert f"warning: {n_train} of the 39 images evaluated were used to train this model" in err
    assert (work / "report.json").is_file()


@pytest.mark.slow
def test_evaluate_without_split_or_data_says_what_to_give(fitted, tmp_path, capsys):
    folder = fitted.save(tmp_path / "model")
    assert main(["evaluate", folder]) == 2
    assert "has no split.json" in capsys.readouterr().err


@pytest.mark.slow
def test_score_a_folder_of_class_folders_gives_true_labels_and_accuracy(trained, capsys, monkeypatch):
    work, data = trained
    monkeypatch.chdir(work)
    model = work / "runs" / "signs" / "model"
    if not model.exists():
        assert main(["train", "signs_data", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["score", str(model), "signs_data", "-o", "preds.csv", "--no-progress"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(open(work / "preds.csv", encoding="utf-8")))
    assert len(rows) == 39 and {r["true_label"] for r in rows} == {"bird", "flower", "vegetable"}
    right = sum(r["true_label"] == r["label"] for r in rows)
    assert f"accuracy: {right / 39:.3f} ({right} of 39 images with a true label)" in out
    # a folder sorted by something other than the model's classes gets no made-up labels
    dated = _tree(data, work / "dated", {"bird": 2})
    (dated / "bird").rename(dated / "2024")
    assert main(["score", str(model), str(dated), "-o", "dated.csv", "--no-progress"]) == 0
    assert "accuracy" not in capsys.readouterr().out
    assert "true_label" not in (work / "dated.csv").read_text().splitlines()[0]


@pytest.mark.slow
def test_no_stratify_is_offered_where_a_class_has_one_image(sample_dir, tmp_path, capsys, monkeypatch):
    data = _tree(sample_dir, tmp_path / "tiny", {"bird": 8, "flower": 8, "fruit": 1})
    monkeypatch.chdir(tmp_path)
    assert main(["train", "tiny", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "stratify=False" in err and "--no-stratify" in err and not (tmp_path / "runs").exists()
    assert main(["train", str(data), "--no-stratify", "--quiet"]) == 0
    assert (tmp_path / "runs" / "tiny" / "model" / "metadata.json").is_file()
