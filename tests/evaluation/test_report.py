"""EvaluationReport: every metric against scikit-learn's own functions on the same arrays.

Arrays come from hand-made examples (values worked out by hand), random probabilities, and a real
classifier (scikit-learn's logistic regression on its bundled digits images). Edge cases: a class
that is never predicted, a class absent from the test set, unreadable images (NaN rows), bad input.
"""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from cvkit.evaluation import EvaluationReport, EvaluationWarning

CLASSES4 = ["bird", "flower", "fruit", "vegetable"]


def random_case(seed: int, n: int = 80, k: int = 4, skill: float = 1.5):
    """Random labels and softmax probabilities that are better than chance (no ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)  # every class present
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += skill
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def digits_case():
    """Real predictions: logistic regression on scikit-learn's bundled 8x8 digit images."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    model = LogisticRegression(C=0.05, max_iter=2000).fit(Xtr, ytr)
    return yte, model.predict_proba(Xte), [str(c) for c in model.classes_]


def compare_with_sklearn(report: EvaluationReport, y: np.ndarray, p: np.ndarray) -> None:
    """Check every number in ``report`` against scikit-learn on (y, p)."""
    k = p.shape[1]
    labels = np.arange(k)
    y_pred = p.argmax(axis=1)
    onehot = np.eye(k, dtype=int)[y]
    present = np.bincount(y, minlength=k) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's own warnings for undefined values
        assert report.accuracy == pytest.approx(skm.accuracy_score(y, y_pred))
        assert report.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, y_pred))
        rel = 1e-9 if p.dtype == np.float64 else 1e-5  # float32 sums differ in the last bits
        assert report.log_loss == pytest.approx(skm.log_loss(y, p, labels=labels), rel=rel)
        scores = p[:, 1] if k == 2 else p  # scikit-learn takes the positive column for 2 classes
        for top in range(1, k):
            assert report.top_k_accuracy(top) == pytest.approx(
                skm.top_k_accuracy_score(y, scores, k=top, labels=labels)), top
        np.testing.assert_array_equal(report.confusion_matrix, skm.confusion_matrix(y, y_pred, labels=labels))
        np.testing.assert_allclose(report.confusion_matrix_normalized,
                                   skm.confusion_matrix(y, y_pred, labels=labels, normalize="true"))
        prec, rec, f1, sup = skm.precision_recall_fscore_support(y, y_pred, labels=labels,
                                                                 zero_division=np.nan)
        np.testing.assert_allclose(report.precision, prec, equal_nan=True)
        np.testing.assert_allclose(report.recall, rec, equal_nan=True)
        np.testing.assert_allclose(report.f1, f1, equal_nan=True)
        np.testing.assert_array_equal(report.support, sup)
        summary = report.summary()
        for name, avg in (("precision_macro", skm.precision_score), ("recall_macro", skm.recall_score),
                          ("f1_macro", skm.f1_score)):
            assert summary[name] == pytest.approx(
                avg(y, y_pred, labels=labels, average="macro", zero_division=np.nan)), name
        for c, name in enumerate(report.classes):
            mask = y == c
            expected = skm.log_loss(y[mask], p[mask], labels=labels) if mask.any() else math.nan
            assert report.per_class_log_loss[name] == pytest.approx(expected, rel=rel, nan_ok=True), name
        auc, ap = report.auc, report.average_precision
        rocs, prs = report.roc_curves(), report.pr_curves()
        for c, name in enumerate(report.classes):
            if not present[c]:
                assert math.isnan(auc[name]) and math.isnan(ap[name])
                continue
            assert auc[name] == pytest.approx(skm.roc_auc_score(onehot[:, c], p[:, c])), name
            fpr, tpr, _ = skm.roc_curve(onehot[:, c], p[:, c])
            np.testing.assert_allclose(rocs[name][0], fpr)
            np.testing.assert_allclose(rocs[name][1], tpr)
            assert ap[name] == pytest.approx(skm.average_precision_score(onehot[:, c], p[:, c])), name
            pr, rc, _ = skm.precision_recall_curve(onehot[:, c], p[:, c])
            np.testing.assert_allclose(prs[name][0], pr)
            np.testing.assert_allclose(prs[name][1], rc)
        assert auc["micro"] == pytest.approx(skm.roc_auc_score(onehot, p, average="micro"))
        assert ap["micro"] == pytest.approx(skm.average_precision_score(onehot, p, average="micro"))
        cols = np.flatnonzero(present)
        assert auc["macro"] == pytest.approx(skm.roc_auc_score(onehot[:, cols], p[:, cols], average="macro"))
        assert ap["macro"] == pytest.approx(
            skm.average_precision_score(onehot[:, cols], p[:, cols], average="macro"))
        if present.all() and k > 2:  # scikit-learn's multi-class one-vs-rest form agrees too
            assert auc["macro"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", labels=labels))
        assert summary["auc_macro"] == auc["macro"] and summary["average_precision_micro"] == ap["micro"]


# ------------------------------------------------------------------ hand-made
def test_hand_made_example_values_worked_out_by_hand():
    y = ["a", "a", "b", "b", "c", "c"]
    p = np.array([[0.7, 0.2, 0.1],   # a -> a
                  [0.3, 0.6, 0.1],   # a -> b
                  [0.1, 0.8, 0.1],   # b -> b
                  [0.2, 0.5, 0.3],   # b -> b
                  [0.1, 0.1, 0.8],   # c -> c
                  [0.5, 0.1, 0.4]])  # c -> a
    r = EvaluationReport(y, p, ["a", "b", "c"])
    assert r.confusion_matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.balanced_accuracy == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    losses = -np.log([0.7, 0.3, 0.8, 0.5, 0.8, 0.4])
    np.testing.assert_allclose(r.losses, losses)
    assert r.log_loss == pytest.approx(losses.mean())
    assert r.per_class_log_loss["a"] == pytest.approx(losses[:2].mean())
    np.testing.assert_allclose(r.precision, [1 / 2, 2 / 3, 1 / 1])
    np.testing.assert_allclose(r.recall, [1 / 2, 2 / 2, 1 / 2])
    assert r.top_k_accuracy(2) == pytest.approx(6 / 6)
    assert r.top_k_accuracy(1) == pytest.approx(r.accuracy)
    mc = r.most_confused()
    assert [tuple(row) for row in mc.itertuples(index=False)] == [("a", "b", 1), ("c", "a", 1)]
    tl = r.top_losses(2)
    assert list(tl.index) == [1, 5] and list(tl["true"]) == ["a", "c"] and list(tl["predicted"]) == ["b", "a"]
    np.testing.assert_allclose(tl["loss"], -np.log([0.3, 0.4]))
    compare_with_sklearn(r, np.array([0, 0, 1, 1, 2, 2]), p)


def test_names_and_indices_give_the_same_report():
    y, p = random_case(3)
    by_index = EvaluationReport(y, p, CLASSES4)
    by_name = EvaluationReport([CLASSES4[i] for i in y], p, CLASSES4)
    np.testing.assert_array_equal(by_index.y_true, by_name.y_true)
    assert by_index.summary() == by_name.summary()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_probabilities_agree_with_sklearn(seed):
    y, p = random_case(seed)
    compare_with_sklearn(EvaluationReport(y, p, CLASSES4), y, p)


def test_float32_probabilities_agree_with_sklearn_clipping():
    y, p = random_case(7, skill=6.0)
    p32 = p.astype(np.float32)
    p32[0] = 0.0
    p32[0, (y[0] + 1) % 4] = 1.0  # a certain, wrong answer: clipped at float32 eps like scikit-learn
    r = EvaluationReport(y, p32, CLASSES4)
    assert r.log_loss == pytest.approx(skm.log_loss(y, p32, labels=np.arange(4)), rel=1e-5)
    assert r.losses[0] == pytest.approx(-np.log(np.finfo(np.float32).eps), rel=1e-5)


def test_two_classes():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=50)
    p1 = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.25, size=50), 0.01, 0.99)
    p = np.column_stack([1 - p1, p1])
    r = EvaluationReport(y, p, ["no", "yes"])
    compare_with_sklearn(r, y, p)
    assert r.auc["yes"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert "top_2_accuracy" not in r.summary()  # k must be below the number of classes


def test_real_classifier_arrays_agree_with_sklearn(digits_case):
    y, p, classes = digits_case
    r = EvaluationReport(y, p, classes)
    assert len(r) == len(y) and r.n_classes == 10
    assert r.accuracy > 0.9  # a real, decent classifier
    compare_with_sklearn(r, y, p)


# ------------------------------------------------------------------ undefined metrics
def test_class_never_predicted_gives_nan_precision_and_a_warning():
    y, p = random_case(11)
    p[:, 2] *= 0.01  # "fruit" never wins the arg-max
    p /= p.sum(axis=1, keepdims=True)
    assert not (p.argmax(axis=1) == 2).any()
    with pytest.warns(EvaluationWarning, match=r"'fruit' were never predicted"):
        r = EvaluationReport(y, p, CLASSES4)
    assert math.isnan(r.precision[2]) and r.recall[2] == 0.0 and r.f1[2] == 0.0
    compare_with_sklearn(r, y, p)
    with pytest.warns(EvaluationWarning):
        zero = EvaluationReport(y, p, CLASSES4, zero_division=0.0)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, p.argmax(1), labels=np.arange(4), zero_division=0)
    np.testing.assert_allclose(zero.precision, prec)
    assert zero.summary()["precision_macro"] == pytest.approx(
        skm.precision_score(y, p.argmax(1), labels=np.arange(4), average="macro", zero_division=0))


def test_class_absent_from_test_set_warns_and_does_not_crash():
    y, p = random_case(12, n=60)
    keep = y != 3  # no "vegetable" image at all, but the model may still predict it
    y, p = y[keep], p[keep]
    with pytest.warns(EvaluationWarning, match=r"'vegetable' have no images in the evaluation set"):
        r = EvaluationReport(y, p, CLASSES4)
    assert r.support[3] == 0
    assert math.isnan(r.recall[3]) and math.isnan(r.auc["vegetable"])
    assert math.isnan(r.per_class_log_loss["vegetable"]) and math.isnan(r.average_precision["vegetable"])
    assert r.precision[3] == 0.0  # predicted sometimes, never right
    assert not math.isnan(r.auc["macro"]) and not math.isnan(r.balanced_accuracy)
    compare_with_sklearn(r, y, p)
    table = r.per_class()
    assert table.loc["vegetable", "support"] == 0 and math.isnan(table.loc["vegetable", "auc"])
    # plots and exports work too
    r.plot_summary()
    doc = json.loads(r.to_json())
    assert doc["auc"]["vegetable"] is None and doc["per_class"]["vegetable"]["recall"] is None


def test_unreadable_images_are_left_out_with_a_warning():
    y, p = random_case(13, n=20)
    paths = [f"img{i}.jpg" for i in range(20)]
    p[[4, 9]] = np.nan
    with pytest.warns(EvaluationWarning, match=r"(?s)2 image\(s\) have no prediction.*img4.jpg"):
        r = EvaluationReport(y, p, CLASSES4, paths=paths)
    assert len(r) == 18 and [s[0] for s in r.skipped] == ["img4.jpg", "img9.jpg"]
    assert "img4.jpg" not in r.paths and r.paths[4] == "img5.jpg"
    keep = np.ones(20, bool)
    keep[[4, 9]] = False
    compare_with_sklearn(r, y[keep], p[keep])


def test_all_unreadable_is_a_clear_error():
    with pytest.raises(ValueError, match="no images to evaluate"), pytest.warns(EvaluationWarning):
        EvaluationReport([0, 1], np.full((2, 2), np.nan), ["a", "b"])


@pytest.mark.parametrize("y, p, classes, message", [
    ([0, 1], [[0.5, 0.5, 0.0], [0.1, 0.9, 0.0]], ["a", "b"], "3 columns but there are 2 classes"),
    (["a", "zebra"], [[0.5, 0.5], [0.1, 0.9]], ["a", "b"], "'zebra' are not among the classes"),
    ([0, 5], [[0.5, 0.5], [0.1, 0.9]], ["a", "b"], "class index 5 is out of range"),
    ([0, 1], [[2.0, -1.0], [0.1, 0.9]], ["a", "b"], "row 0 has values outside"),
    ([0, 1], [[0.2, 0.2], [0.1, 0.9]], ["a", "b"], "row 0 sums to 0.4000"),
    ([0, 1, 1], [[0.5, 0.5], [0.1, 0.9]], ["a", "b"], "3 labels but proba has 2 rows"),
    ([0, 0], [[1.0], [1.0]], ["a"], "at least 2 classes"),
    ([0, 1], [[0.5, 0.5], [0.1, 0.9]], ["a", "a"], "duplicate class name"),
    ([0, 1], [0.5, 0.5], ["a", "b"], "2-D array"),
])
def test_bad_input_names_the_problem(y, p, classes, message):
    with pytest.raises(ValueError, match=message):
        EvaluationReport(y, p, classes)


# ------------------------------------------------------------------ error analysis and thresholds
def test_most_confused_and_top_losses_agree_with_the_matrix_and_per_image_loss():
    y, p = random_case(21, n=100, skill=0.8)
    r = EvaluationReport(y, p, CLASSES4, paths=[f"p{i}" for i in range(100)])
    cm = skm.confusion_matrix(y, p.argmax(1), labels=np.arange(4))
    mc = r.most_confused(n=50)
    off = sorted(((cm[i, j]) for i in range(4) for j in range(4) if i != j and cm[i, j] > 0), reverse=True)
    assert list(mc["count"]) == off
    for row in mc.itertuples(index=False):
        assert cm[CLASSES4.index(row.true), CLASSES4.index(row.predicted)] == row.count
    tl = r.top_losses(10)
    for i, row in tl.iterrows():
        assert row["loss"] == pytest.approx(skm.log_loss([y[i]], p[i:i + 1], labels=np.arange(4)))
        assert row["path"] == f"p{i}" and row["p_true"] == pytest.approx(p[i, y[i]])
    assert list(tl["loss"]) == sorted(r.losses, reverse=True)[:10]
    errors = r.errors()
    assert len(errors) == int((p.argmax(1) != y).sum()) and errors["confidence"].is_monotonic_decreasing


def test_at_threshold_overall_and_per_class():
    y, p = random_case(22, n=120)
    r = EvaluationReport(y, p, CLASSES4)
    for t in (0.0, 0.4, 0.6, 0.9):
        out = r.at_threshold(t)
        covered = p.max(1) >= t
        assert out["coverage"] == pytest.approx(covered.mean())
        if covered.any():
            assert out["precision"] == pytest.approx(skm.accuracy_score(y[covered], p.argmax(1)[covered]))
        assert out["recall"] == pytest.approx(((p.argmax(1) == y) & covered).mean())
    assert r.at_threshold(0.0)["precision"] == pytest.approx(r.accuracy)
    # per class: the points of scikit-learn's precision-recall curve
    prec, rec, thr = skm.precision_recall_curve(y == 1, p[:, 1])
    for i in range(0, len(thr), max(1, len(thr) // 7)):
        out = r.at_threshold(float(thr[i]), "flower")
        assert out["precision"] == pytest.approx(prec[i]) and out["recall"] == pytest.approx(rec[i])
        assert out["coverage"] == pytest.approx((p[:, 1] >= thr[i]).mean())
    assert math.isnan(r.at_threshold(1.0)["precision"])  # nothing that confident: undefined
    with pytest.raises(ValueError, match="'cat' is not one of the classes"):
        r.at_threshold(0.5, "cat")
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\], got 1.5"):  # the uniform wording
        r.at_threshold(1.5)
    curve = r.threshold_curve()
    assert len(curve) == 101 and curve["coverage"].is_monotonic_decreasing


# ------------------------------------------------------------------ export
def test_json_round_trip_and_frames(tmp_path):
    y, p = random_case(31, n=40)
    paths = [f"img/{i}.jpg" for i in range(40)]
    r = EvaluationReport(y, p, CLASSES4, paths=paths, info={"model": "demo"})
    out = tmp_path / "sub" / "report.json"
    text = r.to_json(out)
    doc = json.loads(out.read_text())
    assert json.loads(text) == doc
    assert doc["format"] == "cvkit-evaluation" and doc["classes"] == CLASSES4 and doc["info"] == {"model": "demo"}
    assert doc["metrics"]["accuracy"] == pytest.approx(r.accuracy)
    assert doc["per_class_log_loss"]["bird"] == pytest.approx(r.per_class_log_loss["bird"])
    assert doc["confusion_matrix"] == r.confusion_matrix.tolist()
    back = EvaluationReport.from_json(out)
    assert back.summary() == pytest.approx(r.summary())
    assert back.paths == paths and back.info == {"model": "demo"}
    frame = r.to_frame()
    assert list(frame.columns[:7]) == ["path", "true", "predicted", "p_true", "confidence", "loss", "correct"]
    assert frame["correct"].mean() == pytest.approx(r.accuracy)
    np.testing.assert_allclose(frame[[f"proba_{c}" for c in CLASSES4]].to_numpy(), p)
    assert "accuracy" in str(r) and "bird" in str(r) and "accuracy 0." in repr(r)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="bad.json: not a cvkit evaluation report"):
        EvaluationReport.from_json(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        EvaluationReport.from_json(tmp_path / "missing.json")


# ------------------------------------------------------------------ evaluate(model, dataset) on real photos


@pytest.fixture(scope="module")
def saved_model_dir(fitted, tmp_path_factory):
    """``fitted`` saved as a model folder (what notebook 01 and the CLI produce)."""
    return fitted.save(tmp_path_factory.mktemp("models") / "model")


def _copy_images(src_paths, folder):
    import shutil
    folder.mkdir(parents=True, exist_ok=True)
    return [shutil.copy(p, folder / f"{i:02d}_{os.path.basename(p)}") for i, p in enumerate(src_paths)]


@pytest.mark.slow
def test_evaluate_real_model_agrees_with_sklearn(fitted, sample_split, tmp_path):
    from cvkit import evaluate
    from cvkit.data import save_split
    train, test = sample_split
    report = evaluate(fitted, test)
    proba = fitted.predict_proba(test)
    assert report.classes == list(fitted.classes_) == test.labels
    np.testing.assert_allclose(report.proba, proba)
    assert report.paths == [os.path.normpath(p) for p in test.paths]
    assert len(report) == 36 and report.accuracy > 0.85
    compare_with_sklearn(report, test.targets, proba)
    # the same test images through a split manifest (as notebook 02 and the CLI read them)
    manifest = save_split(tmp_path / "split.json", train, test)
    again = evaluate(fitted, manifest)
    np.testing.assert_allclose(again.proba, report.proba)
    assert [os.path.realpath(p) for p in again.paths] == [os.path.realpath(p) for p in test.paths]


@pytest.mark.slow
def test_evaluate_reports_unreadable_files_and_rejects_unknown_classes(fitted, sample_split, tmp_path):
    from cvkit import evaluate
    _, test = sample_split
    root = tmp_path / "data"
    for label in test.labels:
        _copy_images([p for p, lab in zip(test.paths, test.image_labels) if lab == label][:3], root / label)
    (root / "fruit" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UserWarning, match="broken.jpg"):
        report = evaluate(fitted, root)
    assert len(report) == 12 and [os.path.basename(p) for p, _ in report.skipped] == ["broken.jpg"]
    assert (root / "fruit" / "broken.jpg").read_bytes().startswith(b"\xff\xd8")  # untouched
    _copy_images(test.paths[:2], root / "cat")
    with pytest.raises(ValueError, match="class\\(es\\) the model was not trained on: 'cat'"), \
            pytest.warns(UserWarning, match="broken.jpg"):
        evaluate(fitted, root)
    from cvkit import ImageDataset
    with pytest.raises(ValueError, match="needs a labelled dataset"):
        evaluate(fitted, ImageDataset(test.paths))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        evaluate(fitted, tmp_path / "nowhere")


@pytest.mark.slow
def test_evaluate_a_loaded_model_folder_with_an_image_gone_bad(saved_model_dir, fitted, sample_split,
                                                               tmp_path):
    from cvkit import ImageDataset, evaluate
    _, test = sample_split
    root = tmp_path / "data"
    for label in test.labels:
        _copy_images([p for p, lab in zip(test.paths, test.image_labels) if lab == label][:4], root / label)
    ds = ImageDataset.from_directory(root)
    bad = ds.paths[5]
    with open(bad, "r+b") as fh:  # our own copy goes bad after the dataset was built
        fh.truncate(200)
    with pytest.warns(UserWarning, match=os.path.basename(bad)):
        report = evaluate(str(saved_model_dir), ds)  # a model folder path works as the model
    assert len(report) == 15 and [p for p, _ in report.skipped] == [os.path.normpath(bad)]
    assert report.info["model_path"] == str(saved_model_dir)
    keep = [p for p in ds.paths if p != bad]
    proba = fitted.predict_proba(keep)
    np.testing.assert_allclose(report.proba, proba, atol=1e-5)  # the saved graph == the fitted model
    compare_with_sklearn(report, np.array([ds.labels.index(os.path.basename(os.path.dirname(p))) for p in keep]),
                         report.proba)


@pytest.mark.slow
def test_hard_negatives_on_a_pool_and_on_a_labelled_set(fitted, sample_split, tmp_path):
    import hashlib

    from cvkit import evaluate, hard_negatives
    _, test = sample_split
    pool = tmp_path / "pool"
    copies = _copy_images(test.paths[:10], pool / "nested")
    before = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in copies}
    # a class the model does not know: every prediction is a mistake, most confident first
    hard = hard_negatives(fitted, pool, label="other", k=4)
    assert list(hard.columns) == ["path", "label", "predicted", "confidence"]
    assert len(hard) == 4 and set(hard["label"]) == {"other"}
    proba = fitted.predict_proba(copies)
    expected = np.argsort(-proba.max(axis=1), kind="stable")[:4]
    assert [os.path.realpath(p) for p in hard["path"]] == [os.path.realpath(copies[i]) for i in expected]
    np.testing.assert_allclose(hard["confidence"], proba.max(axis=1)[expected])
    assert list(hard["predicted"]) == [fitted.classes_[i] for i in proba.argmax(axis=1)[expected]]
    assert before == {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in copies}
    # a labelled set: its own labels, only the mistakes, as in the report's error table
    mined = hard_negatives(fitted, test, k=50)
    errors = evaluate(fitted, test).errors()
    assert len(mined) == len(errors) and list(mined["confidence"]) == pytest.approx(list(errors["confidence"]))
    assert (mined["label"] != mined["predicted"]).all()
    with pytest.raises(ValueError, match="pass label="):
        from cvkit import ImageDataset
        hard_negatives(fitted, ImageDataset(test.paths), k=3)
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):  # the uniform wording
        hard_negatives(fitted, test, k=0)


# ------------------------------------------------------------------ the command line
def _run_cli(*args):
    import subprocess
    import sys
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "cvkit.cli", "evaluate", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_cli_evaluate_writes_the_report_and_figure(saved_model_dir, fitted, sample_split, sample_dir,
                                                  tmp_path):
    from cvkit import evaluate
    from cvkit.data import save_split
    train, test = sample_split
    split = save_split(tmp_path / "split.json", train, test)
    out, fig = tmp_path / "out" / "report.json", tmp_path / "eval.png"
    done = _run_cli(saved_model_dir, "--split", split, "--output", out, "--figure", fig, "--top-losses", "3")
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    expected = evaluate(fitted, test)
    assert doc["metrics"]["accuracy"] == pytest.approx(expected.accuracy)
    assert doc["metrics"]["log_loss"] == pytest.approx(expected.log_loss, rel=1e-4)
    assert doc["per_class_log_loss"] == pytest.approx(expected.per_class_log_loss, rel=1e-4)
    assert f"accuracy                  {expected.accuracy:.3f}" in done.stdout
    assert "Top 3 losses" in done.stdout and str(out) in done.stdout
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a folder of class folders works too (all 104 images)
    done = _run_cli(saved_model_dir, sample_dir, "-o", tmp_path / "all.json", "--top-losses", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "all.json").read_text())["metrics"]["n_images"] == 104


@pytest.mark.slow
def test_cli_evaluate_bad_input_is_a_clear_error(saved_model_dir, tmp_path):
    done = _run_cli(saved_model_dir, "-o", tmp_path / "r.json")
    assert done.returncode == 2 and "give DATA_DIR_OR_TABLE or --split FILE" in done.stderr
    done = _run_cli(tmp_path / "no_model", tmp_path, "-o", tmp_path / "r.json")
    assert done.returncode == 2 and "no_model" in done.stderr
    assert not (tmp_path / "r.json").exists()
