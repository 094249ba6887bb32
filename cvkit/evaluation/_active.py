"""Which unlabelled photo to label next: the ones the current model is least sure of.

Why: labelling in folder order spends the labeller's time on photos a model trained on the first
few labels already gets right. Uncertainty sampling asks for the photos whose predicted class
probabilities are closest to a tie; with cached backbone features a logistic regression refits on
the labelled photos in a second, so the queue can be reordered every few labels
(``bench/labeling.py`` measures the gain on ``sample_data``).

Three standard measures of uncertainty, each in 0..1 (1 = most uncertain):

- ``"margin"``: one minus the gap between the two most probable classes;
- ``"entropy"``: the entropy of the probabilities divided by ``log(n_classes)``;
- ``"least_confident"``: one minus the top probability.

Example:
    >>> proba = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3]])
    >>> uncertainty_order(proba).tolist()          # the near-tie first
    [1, 2, 0]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cvkit._validation import Options, check_param

__all__ = ["UNCERTAINTY_METHODS", "uncertainty_scores", "uncertainty_order"]

#: The measures :func:`uncertainty_scores` knows.
UNCERTAINTY_METHODS = ("margin", "entropy", "least_confident")


def uncertainty_scores(proba: Sequence[Sequence[float]] | np.ndarray, method: str = "margin") -> np.ndarray:
    """How uncertain each row of class probabilities is, in 0..1 (1 = a tie, 0 = certain).

    ``proba`` has one row per image and one column per class (e.g. ``predict_proba``'s output);
    rows need not sum exactly to 1 (they are normalised). A single-class ``proba`` is certain (0).

    Example:
        >>> uncertainty_scores([[0.5, 0.5], [1.0, 0.0]], "entropy").round(3).tolist()
        [1.0, 0.0]
        >>> uncertainty_scores([[0.6, 0.3, 0.1]], "margin").round(3).tolist()
        [0.7]
    """
    check_param("method", method, [Options(UNCERTAINTY_METHODS)])
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (images x classes), got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("proba must hold finite, non-negative probabilities")
    if p.shape[1] < 2:
        return np.zeros(len(p))
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    if method == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if method == "least_confident":
        k = p.shape[1]
        return (1.0 - p.max(axis=1)) * k / (k - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(p > 0, p * np.log(1.0 / p), 0.0).sum(axis=1)  # log(1/p), so a certain row is +0.0
    return h / np.log(p.shape[1])


def uncertainty_order(proba: Sequence[Sequence[float]] | np.ndarray, method: str = "margin") -> np.ndarray:
    """Row indices of ``proba``, most uncertain first (ties keep their original order).

    Use it to reorder an annotation queue: fit a model on the labelled photos, ``predict_proba``
    the unlabelled ones, and ask for them in this order. ``method`` is one of
    :data:`UNCERTAINTY_METHODS`.

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> F, y = np.array([[0.0], [0.1], [1.0], [1.1]]), np.array([0, 0, 1, 1])
        >>> pool = np.array([[0.0], [0.55], [1.4]])
        >>> uncertainty_order(LogisticRegression().fit(F, y).predict_proba(pool)).tolist()
        [1, 0, 2]
    """
    scores = uncertainty_scores(proba, method)
    return np.argsort(-scores, kind="stable")
