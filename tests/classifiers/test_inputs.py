"""Classifiers and evaluation take any input ImageSource resolves, and declare every parameter's constraints."""
from __future__ import annotations

import inspect
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import cvkit
from cvkit._validation import DEPRECATED, InvalidParameterError, renamed_keyword
from cvkit.classifiers import FeatureClassifier, FineTuneClassifier, cross_validate
from cvkit.data import ImageDataset, list_images, save_split

pytestmark = pytest.mark.slow

CLASSIFIERS = (FeatureClassifier, FineTuneClassifier)

#: One bad value per parameter; a parameter added without one fails the test below.
BAD_VALUES = {
    FeatureClassifier: {
        "backbone": 3, "head": "forest", "cache": "yes", "cache_dir": 5, "batch_size": 0, "verbose": "loud",
        "cv": 1, "random_state": -1, "class_weight": "heavy", "runtime": "tpu", "estimator": "forest",
        "progress": "loud", "calibration": "platt", "novelty_method": "lof",
    },
    FineTuneClassifier: {
        "backbone": None, "epochs": -1, "head": "svm", "head_epochs": 2.5, "batch_size": 0, "learning_rate": 0,
        "fine_tune_learning_rate": -1e-4, "unfreeze": 0, "augment": 3, "dropout": 1.0,
        "validation_fraction": 1.5, "early_stopping": "no", "patience": -2, "class_weight": "heavy",
        "callbacks": "tensorboard", "tensorboard_dir": 3, "verbose": 5, "cache": "yes", "cache_dir": 5,
        "random_state": "seed", "calibration": "isotonic",
    },
}


# ---------------------------------------------------------------------- declared constraints
@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_every_init_parameter_has_declared_constraints(cls):
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert params == set(cls._parameter_constraints), params ^ set(cls._parameter_constraints)
    assert set(BAD_VALUES[cls]) == params, "give every parameter a bad value in BAD_VALUES"
    cls()._validate_params()  # the defaults satisfy them


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_a_bad_value_of_each_parameter_raises_naming_it(cls, sample_split):
    train, _ = sample_split
    for name, value in BAD_VALUES[cls].items():
        clf = cls(**{name: value})
        with pytest.raises(InvalidParameterError, match=rf"^{name} must be .*, got {re.escape(repr(value))}$"):
            clf.fit(train)
        assert getattr(clf, name) is value and not hasattr(clf, "classes_")  # fit changed nothing


def test_runtime_is_checked_through_the_run_options(sample_split, monkeypatch):
    import cvkit.options

    train, _ = sample_split
    with pytest.raises(InvalidParameterError, match="runtime must be one of 'auto', 'litert', 'keras', got 'gpu'"):
        FeatureClassifier(runtime="gpu").fit(train)
    monkeypatch.setattr(cvkit.options, "litert_available", lambda: False)
    with pytest.raises(ImportError, match="pip install ai-edge-litert"):
        FeatureClassifier(runtime="litert", verbose=False).fit(train)


def test_renamed_keyword_warns_once_and_refuses_both_names():
    with pytest.warns(FutureWarning, match="f: the parameter 'progress' was renamed 'verbose'"):
        assert renamed_keyword("f", "progress", False, "verbose", True, default=True) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert renamed_keyword("f", "progress", DEPRECATED, "verbose", 2, default=True) == 2
    with pytest.raises(ValueError, match="give verbose= only"):
        renamed_keyword("f", "progress", False, "verbose", False, default=True)


# ---------------------------------------------------------------------- one input source
def test_fit_on_a_folder_a_table_and_a_manifest_equals_fit_on_the_dataset(fitted, sample_dir, sample_split,
                                                                          sample_dataset, tmp_path):
    train, test = sample_split
    by_folder = FeatureClassifier(verbose=False).fit(str(sample_dir))
    by_dataset = FeatureClassifier(verbose=False).fit(sample_dataset)
    by_table = FeatureClassifier(verbose=False).fit(sample_dir / "tags.tsv")
    assert by_folder.classes_ == by_dataset.classes_ == by_table.classes_
    np.testing.assert_allclose(by_folder.predict_proba(test), by_dataset.predict_proba(test), atol=1e-6)
    np.testing.assert_allclose(by_table.predict_proba(test), by_dataset.predict_proba(test), atol=1e-6)
    manifest = save_split(tmp_path / "split.json", train, test)
    by_manifest = FeatureClassifier(verbose=False).fit(manifest)  # a manifest's train side
    assert by_manifest.metrics_["n_train"] == len(train) == 68
    np.testing.assert_array_equal(by_manifest.predict(test), fitted.predict(test))
    np.testing.assert_allclose(by_manifest.predict_proba(test), fitted.predict_proba(test), atol=1e-6)


def test_predict_score_and_transform_take_a_folder_a_glob_or_one_image(fitted, sample_dir, sample_split, tmp_path):
    _, test = sample_split
    folder = str(sample_dir / "bird")
    paths = list_images(folder)
    assert len(paths) == 35
    np.testing.assert_array_equal(fitted.predict(folder), fitted.predict(paths))
    np.testing.assert_array_equal(fitted.predict(folder + "/*.jpg"), fitted.predict(sorted(paths)))
    np.testing.assert_allclose(fitted.transform(folder), fitted.transform(paths), atol=1e-6)
    assert fitted.predict(paths[0]).tolist() == fitted.predict(paths[:1]).tolist()  # one image file
    by_table = fitted.score(sample_dir / "tags.tsv")
    assert by_table == pytest.approx(fitted.score(ImageDataset.from_table(sample_dir / "tags.tsv")))
    assert fitted.score(sample_dir) == pytest.approx(by_table)
    manifest = save_split(tmp_path / "split.json", *sample_split)
    assert fitted.score(manifest) == pytest.approx(fitted.score(test))  # a manifest's test side


def test_evaluate_a_table_and_a_manifest_gives_the_answers_of_the_dataset(fitted, sample_dir, sample_split,
                                                                          tmp_path):
    from cvkit import evaluate
    train, test = sample_split
    table = sample_dir / "tags.tsv"
    by_table = evaluate(fitted, str(table))
    by_dataset = evaluate(fitted, ImageDataset.from_table(table))
    assert by_table.accuracy == by_dataset.accuracy and len(by_table) == 104
    assert by_table.paths == by_dataset.paths
    np.testing.assert_allclose(by_table.proba, by_dataset.proba, atol=1e-6)
    manifest = save_split(tmp_path / "split.json", train, test)
    by_manifest, direct = evaluate(fitted, manifest), evaluate(fitted, test)
    assert by_manifest.accuracy == direct.accuracy and len(by_manifest) == 36
    np.testing.assert_array_equal(by_manifest.y_pred, direct.y_pred)
    with pytest.raises(ValueError, match="needs a labelled dataset"):
        evaluate(fitted, sample_dir / "bird")  # photos without class folders


def test_cross_validate_and_audits_take_paths(sample_dir, sample_dataset):
    from cvkit import find_duplicates, find_label_issues

    with pytest.warns(FutureWarning, match="cvkit.cross_validate"):  # the deprecated dict-returning one
        by_folder = cross_validate(FeatureClassifier(verbose=False), str(sample_dir), cv=3)
    with pytest.warns(FutureWarning, match="cvkit.cross_validate"):
        assert by_folder == cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=3)
    new_by_folder = cvkit.cross_validate(FeatureClassifier(verbose=False), str(sample_dir), cv=3)
    new_by_table = cvkit.cross_validate(FeatureClassifier(verbose=False), sample_dir / "tags.tsv", cv=3)
    assert new_by_folder.n_images == new_by_table.n_images == 104
    np.testing.assert_allclose(new_by_folder.proba, new_by_table.proba)
    issues = find_label_issues(sample_dir / "tags.tsv", cv=3)
    assert issues.equals(find_label_issues(sample_dataset, cv=3))
    assert len(find_duplicates(str(sample_dir / "bird"))) == 0
    with pytest.raises(ValueError, match="unlabelled"):
        find_label_issues(str(sample_dir / "bird"))


def test_fine_tune_reads_its_pixels_through_the_image_source(sample_split, tmp_path):
    from cvkit.classifiers._training import read_pixels
    from cvkit.data import ImageSource

    train, _ = sample_split
    source = ImageSource.resolve(train.paths[:3] + [str(tmp_path / "gone.jpg")])
    quiet, ok, skipped = read_pixels(source, (40, 30))
    shown, ok2, skipped2 = read_pixels(source, (40, 30), verbose=True)  # the progress-bar path: same pixels
    assert quiet.shape == (4, 30, 40, 3) and ok.tolist() == [True, True, True, False]
    np.testing.assert_array_equal(quiet, shown)
    assert ok2.tolist() == ok.tolist() and skipped == skipped2 == [(str(tmp_path / "gone.jpg"), "file not found")]


def test_finetune_fit_on_a_table_equals_fit_on_the_dataset(sample_split, tmp_path):
    train, test = sample_split
    idx = [i for c in range(4) for i in np.flatnonzero(train.targets == c)[:4]]
    small = train.subset(sorted(idx))
    table = tmp_path / "small.tsv"
    table.write_text("".join(f"{os.path.abspath(p)}\t{label}\n" for p, label in zip(small.paths, small.image_labels)))
    params = {"epochs": 0, "validation_fraction": 0, "verbose": 0}
    by_table = FineTuneClassifier(**params).fit(str(table))
    by_dataset = FineTuneClassifier(**params).fit(small)
    assert by_table.metrics_["n_train"] == 16 and by_table.classes_ == by_dataset.classes_
    np.testing.assert_allclose(by_table.predict_proba(test.paths[:6]), by_dataset.predict_proba(test.paths[:6]),
                               atol=1e-5)
    np.testing.assert_array_equal(by_table.predict(str(Path(test.paths[0]).parent)),
                                  by_dataset.predict(list_images(Path(test.paths[0]).parent)))


# ---------------------------------------------------------------------- one decode loop, one writer
def test_no_decode_pool_of_its_own_in_classifiers_or_evaluation():
    root = Path(__file__).resolve().parents[2] / "cvkit"
    for package in ("classifiers", "evaluation"):
        for path in (root / package).glob("*.py"):
            text = path.read_text()
            assert "ThreadPoolExecutor" not in text and "load_pixels" not in text, path


def test_report_json_is_written_atomically_without_a_fixed_temporary_name(tmp_path):
    from cvkit.evaluation import EvaluationReport

    report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
    out = tmp_path / "reports" / "eval.json"
    out.parent.mkdir()
    (out.parent / ".eval.json.tmp").mkdir()  # the old fixed temporary name, taken: no longer in the way
    text = report.to_json(out)
    assert out.read_text() == text + "\n" and json.loads(text)["metrics"]["n_images"] == 3
    assert sorted(p.name for p in out.parent.iterdir()) == [".eval.json.tmp", "eval.json"]
    assert EvaluationReport.from_json(out).accuracy == pytest.approx(report.accuracy)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not an evaluation report"):
        EvaluationReport.from_json(tmp_path / "bad.json")
