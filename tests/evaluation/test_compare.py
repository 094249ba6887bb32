"""cvkit.compare: two classifiers on the very same folds, a paired difference with the corrected
resampled t-test's interval, and a verdict that says "no evidence" unless there is some."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.dummy import DummyClassifier

import cvkit
from cvkit._validation import InvalidParameterError
from cvkit.classifiers import FeatureClassifier
from cvkit.evaluation import ComparisonResult, _folds, compare
from cvkit.evaluation._compare import corrected_interval


@pytest.mark.slow
def test_a_classifier_compared_with_itself_shows_no_evidence_and_a_zero_difference(sample_dataset):
    probe = FeatureClassifier(verbose=False)
    found = compare(probe, probe, sample_dataset, cv=3, repeats=2)
    assert isinstance(found, ComparisonResult) and cvkit.compare is compare
    assert found.differences.shape == (6,) and (found.differences == 0).all()
    assert found.interval == (0.0, 0.0) and found.p_value == 1.0
    assert found.verdict == "no evidence that B beats A: +0.0 points (+0.0 to +0.0)"
    np.testing.assert_array_equal(found.a.fold_of, found.b.fold_of)  # the same folds
    assert found.verdict in found.summary() and found.verdict in repr(found)


@pytest.mark.slow
def test_a_clearly_worse_classifier_is_found_whichever_side_it_is_on(sample_dataset, monkeypatch):
    calls = []
    original = _folds.featurize
    monkeypatch.setattr(_folds, "featurize", lambda *a, **k: calls.append(1) or original(*a, **k))
    probe = FeatureClassifier(verbose=False)
    guess = FeatureClassifier(head=DummyClassifier(strategy="prior"), calibration=None, verbose=False)
    worse = compare(probe, guess, sample_dataset, cv=5, repeats=2, names=("probe", "guess"))
    assert len(calls) == 1, "two FeatureClassifiers on one backbone featurize once"
    low, high = worse.interval
    assert high < 0 and low < worse.mean_difference < high and worse.p_value < 0.01
    assert worse.verdict.startswith("guess is worse than probe: −")
    better = compare(guess, probe, sample_dataset, cv=5, repeats=2)
    assert better.verdict.startswith("B beats A: +") and better.interval[0] > 0
    np.testing.assert_allclose(better.differences, -worse.differences)
    # the worse one's own cross-validation: always the largest class
    assert worse.b.report.accuracy == pytest.approx(35 / 104)


@pytest.mark.slow
def test_balanced_accuracy_can_be_compared(sample_dataset):
    a = FeatureClassifier(verbose=False)
    b = FeatureClassifier(class_weight="balanced", verbose=False)
    found = compare(a, b, sample_dataset, cv=3, repeats=1, metric="balanced_accuracy")
    assert found.metric == "balanced_accuracy"
    np.testing.assert_allclose(found.differences, found.b.scores["test_balanced_accuracy"]
                               - found.a.scores["test_balanced_accuracy"])
    assert "balanced accuracy, B minus A, paired over 3 folds" in found.summary()


def test_the_corrected_interval_is_the_nadeau_bengio_formula_and_wider_than_the_naive_one():
    d = np.array([0.03, -0.01, 0.05, 0.02, 0.00, 0.04, 0.01, 0.02, -0.02, 0.03])
    low, high, p = corrected_interval(d, test_train_ratio=0.25)
    se = np.sqrt((1 / 10 + 0.25) * d.var(ddof=1))
    half = stats.t.ppf(0.975, 9) * se
    assert (low, high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert p == pytest.approx(2 * stats.t.sf(d.mean() / se, 9))
    naive = stats.t.ppf(0.975, 9) * d.std(ddof=1) / np.sqrt(10)
    assert high - low > 2 * naive * 1.8  # sqrt(1 + 10 * 0.25) = 1.87 times wider
    assert corrected_interval(np.full(6, 0.02), 0.25) == (0.02, 0.02, 0.0)


def test_verdict_wording():
    from cvkit.evaluation._compare import ComparisonResult as R

    def verdict(mean, low, high):
        return R(None, None, ("A", "B"), "accuracy", np.zeros(3), mean, (low, high), 0.5).verdict

    assert verdict(0.041, 0.012, 0.070) == "B beats A: +4.1 points (+1.2 to +7.0)"
    assert verdict(0.008, -0.021, 0.036) == "no evidence that B beats A: +0.8 points (−2.1 to +3.6)"
    assert verdict(-0.008, -0.036, 0.021) == "no evidence of a difference between A and B: −0.8 points (−3.6 to +2.1)"
    assert verdict(-0.063, -0.090, -0.035) == "B is worse than A: −6.3 points (−9.0 to −3.5)"


def test_bad_parameters_are_errors_naming_them(sample_dataset):
    probe = FeatureClassifier(verbose=False)
    with pytest.raises(InvalidParameterError, match="metric must be one of 'accuracy', 'balanced_accuracy'"):
        compare(probe, probe, sample_dataset, metric="f1")
    with pytest.raises(InvalidParameterError, match="names must be a pair of names"):
        compare(probe, probe, sample_dataset, names=("only one",))
    with pytest.raises(InvalidParameterError, match="repeats must be a positive int"):
        compare(probe, probe, sample_dataset, repeats=0)
