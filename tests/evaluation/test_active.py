"""Uncertainty sampling: the scores and the order the annotation queue and bench/labeling.py use."""
from __future__ import annotations

import numpy as np
import pytest

from cvkit.evaluation._active import UNCERTAINTY_METHODS, uncertainty_order, uncertainty_scores


@pytest.mark.parametrize("method", UNCERTAINTY_METHODS)
def test_a_tie_is_most_uncertain_and_a_sure_row_least(method):
    proba = np.array([[1.0, 0.0, 0.0], [0.4, 0.35, 0.25], [1 / 3, 1 / 3, 1 / 3], [0.8, 0.15, 0.05]])
    scores = uncertainty_scores(proba, method)
    assert scores[2] == pytest.approx(1.0) and scores[0] == pytest.approx(0.0)
    assert ((scores >= 0) & (scores <= 1 + 1e-12)).all()
    assert uncertainty_order(proba, method).tolist() == [2, 1, 3, 0]


def test_margin_looks_at_the_two_best_classes_only():
    # same top two, different rest: the margin is the same, the entropy is not
    a, b = [0.5, 0.3, 0.2, 0.0], [0.5, 0.3, 0.1, 0.1]
    margin = uncertainty_scores([a, b], "margin")
    assert margin[0] == pytest.approx(margin[1]) == pytest.approx(0.8)
    entropy = uncertainty_scores([a, b], "entropy")
    assert entropy[1] > entropy[0]


def test_ties_keep_their_order_and_rows_are_normalised():
    assert uncertainty_order([[2.0, 2.0], [1.0, 1.0], [3.0, 1.0]]).tolist() == [0, 1, 2]
    assert uncertainty_scores([[1.0]]).tolist() == [0.0]       # one class: nothing to doubt


@pytest.mark.parametrize("bad, message", [
    (([[0.5, 0.5]], "random"), "method must be one of"),
    (([0.5, 0.5],), "must be 2-D"),
    (([[np.nan, 1.0]],), "finite, non-negative"),
    (([[-0.1, 1.1]],), "finite, non-negative"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        uncertainty_scores(*bad)
