"""cvkit.learning_curve: per-class out-of-fold recall at growing shares of the training photos, a
plot, and advice naming the classes that were still improving."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cvkit
from cvkit._validation import InvalidParameterError
from cvkit.classifiers import FeatureClassifier
from cvkit.evaluation import LearningCurve, learning_curve
from cvkit.evaluation._learning_curve import _nested_subsets


@pytest.fixture(scope="module")
def curve(sample_dataset):
    return learning_curve(FeatureClassifier(verbose=False), sample_dataset, cv=5)


@pytest.mark.slow
def test_the_table_has_a_row_per_class_and_a_column_per_fraction(curve, sample_dataset):
    assert isinstance(curve, LearningCurve) and cvkit.learning_curve is learning_curve
    assert curve.recall.shape == (4, 4)
    assert curve.recall.index.tolist() == sample_dataset.labels
    assert curve.recall.columns.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert ((curve.recall.values >= 0) & (curve.recall.values <= 1)).all()
    # at 100%, a fold trains on 4/5 of each class; at 25% on a quarter of that (at least 2)
    counts = pd.Series(sample_dataset.counts())
    np.testing.assert_allclose(curve.n_train[1.0], counts * 0.8, atol=1)
    np.testing.assert_allclose(curve.n_train[0.25], np.maximum(2, np.ceil(counts * 0.8 * 0.25)), atol=1)
    assert (np.diff(curve.n_train.values, axis=1) > 0).all()
    assert curve.accuracy[1.0] > 0.85 and curve.accuracy[1.0] >= curve.accuracy[0.25]


@pytest.mark.slow
def test_the_curve_at_all_photos_is_plain_cross_validation(curve, sample_dataset):
    """At 100% every fold trains on all its photos: recall equals cross_validate's (same folds, one repeat)."""
    cv = cvkit.cross_validate(FeatureClassifier(verbose=False), sample_dataset, cv=5)
    np.testing.assert_allclose(curve.recall[1.0].values, cv.report.recall)


@pytest.mark.slow
def test_plot_and_advice(curve):
    fig = curve.plot()
    assert fig.axes[0].get_title() == "Learning curve per class" and len(fig.axes[0].lines) == 5
    text = curve.advice()
    assert any(repr(c) in text for c in curve.recall.index), text


def test_advice_names_the_classes_still_rising_or_the_weakest():
    def made(rows):
        recall = pd.DataFrame(rows, index=["a", "b", "c"], columns=[0.25, 0.5, 0.75, 1.0])
        return LearningCurve(recall, recall.mean(), recall, (0.25, 0.5, 0.75, 1.0))

    rising = made([[0.5, 0.6, 0.7, 0.8], [0.9, 0.95, 0.96, 0.96], [0.4, 0.6, 0.7, 0.75]])
    assert rising.advice().startswith("More photos would help 'a' (0.70 → 0.80) and 'c' (0.70 → 0.75) most")
    slower = made([[0.5, 0.6, 0.8, 0.8], [0.9, 0.95, 0.96, 0.96], [0.9, 0.9, 0.9, 0.9]])
    assert slower.advice().startswith("More photos would help 'a' (0.60 → 0.80) most: its recall still rose "
                                      "over the last 50%")
    flat = made([[0.7, 0.7, 0.7, 0.7], [0.9, 0.95, 0.96, 0.96], [0.9, 0.9, 0.9, 0.9]])
    assert flat.advice().startswith("Recall has levelled off for every class; 'a' is weakest (0.70)")


def test_smaller_training_sets_are_subsets_of_larger_ones():
    codes = np.array([0] * 10 + [1] * 6 + [2] * 3)
    subsets = _nested_subsets(np.arange(19), codes, (0.25, 0.5, 1.0), np.random.RandomState(0))
    assert [np.bincount(codes[s], minlength=3).tolist() for s in subsets] == [[3, 2, 2], [5, 3, 2], [10, 6, 3]]
    assert set(subsets[0]) <= set(subsets[1]) <= set(subsets[2])


def test_bad_fractions_are_errors_naming_them(sample_dataset):
    for bad in ((0.5, 0.25), (0.0, 1.0), (1.0,), (0.5, 1.5), "half"):
        with pytest.raises(InvalidParameterError, match="fractions must be increasing shares in"):
            learning_curve(FeatureClassifier(verbose=False), sample_dataset, fractions=bad)
