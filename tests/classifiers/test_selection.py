"""``head="auto"`` and ``class_weight="auto"``: what the fit chooses by itself, and that the choice is saved,
reproducible and answers the same on every runtime."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cvkit.classifiers import FeatureClassifier
from cvkit.classifiers._calibrate import fixed_head, out_of_fold_log_proba
from cvkit.classifiers._heads import fit_head, resolve_class_weight
from cvkit.classifiers._selection import (
    CANDIDATES,
    MARGIN,
    choose_head,
    describe,
    favourite,
    named_head,
    path_log_proba,
)
from cvkit.models import load_model
from cvkit.models._head import LinearHead, ScoresAsLogits


def _blobs(counts, spread=1.0, seed=0, dims=6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, (len(counts), dims))
    F = np.vstack([rng.normal(centres[c], spread, (n, dims)) for c, n in enumerate(counts)])
    return F, np.repeat(np.arange(len(counts)), counts)


def test_choose_head_scores_both_candidates_and_follows_the_margin_rule():
    F, y = _blobs([30, 30, 30], spread=2.5)
    chosen = choose_head(F, y, None, cv=5, random_state=0)
    scores = chosen.selection["scores"]
    assert sorted(scores) == sorted(CANDIDATES)
    kept = favourite(y)
    other = next(n for n in CANDIDATES if n != kept)
    beats = scores[other]["balanced_accuracy"] >= scores[kept]["balanced_accuracy"] + MARGIN
    assert chosen.name == (other if beats else kept)
    assert chosen.calibration["method"] == "temperature" and chosen.calibration["temperature"] > 0
    assert chosen.name in describe(chosen.selection)


def test_favourite_follows_the_class_balance_line():
    assert favourite(np.repeat([0, 1], [31, 10])) == "svm"      # 3.1x
    assert favourite(np.repeat([0, 1], [30, 10])) == "logistic"  # exactly 3x is not imbalanced
    assert resolve_class_weight("auto", np.repeat([0, 1], [31, 10])) == "balanced"
    assert resolve_class_weight("auto", np.repeat([0, 1], [30, 10])) is None
    assert resolve_class_weight(None, np.repeat([0, 1], [90, 1])) is None  # an explicit None stays None


@pytest.mark.parametrize("name", CANDIDATES)
def test_every_candidate_gives_probabilities_and_saves_as_arrays(name):
    F, y = _blobs([25, 12, 8], seed=1)
    head = named_head(name, 8).fit(F, y)
    proba = head.predict_proba(F)
    assert proba.shape == (len(y), 3) and np.allclose(proba.sum(axis=1), 1.0)
    linear = LinearHead.from_estimator(head, F)
    assert linear is not None, f"{name} must fold into head.npz arrays"
    assert np.allclose(linear.predict_proba(F), proba, atol=1e-5)


def test_svm_scores_as_logits_binary_and_clone():
    F, y = _blobs([20, 20], seed=2)
    head = named_head("svm", 20).fit(F, y)
    scores = head.decision_function(F)
    assert scores.ndim == 1  # binary: one score, read as logits [0, score]
    assert np.allclose(head.predict_proba(F)[:, 1], 1 / (1 + np.exp(-scores)))
    assert isinstance(clone(head), ScoresAsLogits) and not hasattr(clone(head), "estimator_")


def test_too_few_photos_to_compare_falls_back_to_logistic_and_says_so():
    F, y = _blobs([10, 1], seed=3)
    chosen = choose_head(F, y, None, cv=5, random_state=0)
    assert chosen.name == "logistic" and chosen.calibration["temperature"] == 1.0
    assert "fewer than 2" in chosen.selection["by"]


def test_auto_head_is_reproducible_and_keeps_its_parameters():
    F, y = _blobs([40, 12, 9], spread=2.0, seed=4)
    classes = ["a", "b", "c"]
    clf = FeatureClassifier(cv=4, random_state=7)
    first = clf.fit_calibrated_head(F, y, classes)
    second = clf.fit_calibrated_head(F, y, classes)
    assert first.selection == second.selection
    assert np.array_equal(first.head.predict_proba(F), second.head.predict_proba(F))
    assert clf.get_params()["head"] == "auto" and clf.get_params()["class_weight"] == "auto"
    assert clone(clf).get_params() == clf.get_params()


def test_calibration_choices_with_the_auto_head():
    F, y = _blobs([30, 10, 8], spread=2.0, seed=5)
    none = FeatureClassifier(calibration=None, cv=3).fit_calibrated_head(F, y, ["a", "b", "c"])
    assert none.calibration == {"method": None}
    sigmoid = FeatureClassifier(calibration="sigmoid", cv=3).fit_calibrated_head(F, y, ["a", "b", "c"])
    assert type(sigmoid.head).__name__ == "CalibratedClassifierCV" and sigmoid.name in CANDIDATES
    assert np.allclose(sigmoid.head.predict_proba(F).sum(axis=1), 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("head", ["svm", "logistic"])
def test_saved_named_heads_answer_the_same_on_keras_and_litert(head, sample_split, tmp_path):
    train, test = sample_split
    clf = FeatureClassifier(head=head, verbose=False).fit(train)
    assert clf.head_ == head and clf.selection_ == {"chosen": head, "by": "given"}
    with pytest.raises(NotFittedError):
        check_is_fitted(FeatureClassifier(head=head))
    folder = Path(clf.save(tmp_path / head))
    assert (folder / "head.npz").exists() and not (folder / "head.skops").exists()
    expected = clf.predict_proba(test)
    for runtime in ("litert", "keras"):
        loaded = load_model(folder, runtime=runtime)
        assert np.allclose(loaded.predict_proba(test), expected, atol=1e-4), runtime
        assert loaded.predict(test).tolist() == clf.predict(test).tolist()


@pytest.mark.slow
def test_auto_on_imbalanced_photos_weighs_classes_and_records_the_choice(sample_split, tmp_path):
    train, _ = sample_split
    labels = np.array(train.image_labels)
    keep = [i for c in ("bird", "flower", "fruit") for i in np.flatnonzero(labels == c)[:13]]
    small = train.subset(keep + list(np.flatnonzero(labels == "vegetable")[:4]))  # 13:4, more than 3x apart
    clf = FeatureClassifier(verbose=False).fit(small)
    assert clf.metrics_["class_weight"] == "balanced"
    assert clf.head_ in CANDIDATES and clf.selection_["chosen"] == clf.head_
    assert clf.metrics_["head"]["scores"].keys() == set(CANDIDATES)
    loaded = load_model(clf.save(tmp_path / "imbalanced"))
    assert loaded.metadata_["metrics"]["head"]["chosen"] == clf.head_


@pytest.mark.parametrize("weighted", [False, True])
def test_out_of_fold_predictions_read_from_the_search_match_refitting(weighted):
    F, y = _blobs([30, 20, 12], spread=2.0, seed=6)
    weights = {0: 0.7, 1: 1.0, 2: 1.7} if weighted else None
    head = fit_head(named_head("logistic", 12), F, y, weights)
    read = path_log_proba(head, F, y)
    refit = out_of_fold_log_proba(fixed_head(head, None), F, y, 5, 0, weights, fit_head)
    assert read is not None and read.shape == refit.shape
    assert np.mean(read.argmax(axis=1) == refit.argmax(axis=1)) >= 0.95
    assert np.abs(np.exp(read) - np.exp(refit)).max() < 0.1
    assert path_log_proba(named_head("svm", 12).fit(F, y), F, y) is None  # not a search: refit instead
