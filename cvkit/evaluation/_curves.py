"""One-vs-rest ROC and precision-recall curves of a multi-class classifier, from arrays.

Why apart from :class:`~cvkit.evaluation.EvaluationReport`: the curves are pure functions of the
true classes and the probabilities, computed with scikit-learn's own ``roc_curve`` and
``precision_recall_curve`` so that every number matches scikit-learn's. The report caches them.

Each function returns ``{name: (x, y, area)}`` with one entry per class, plus ``"micro"`` (every
(image, class) pair pooled) and ``"macro"`` (the mean area over the classes where it is defined).
A class whose curve is undefined gets ``NaN`` arrays and a ``NaN`` area.

Example:
    >>> import numpy as np
    >>> curves = roc_curves(np.array([0, 1, 1]), np.array([[.8, .2], [.3, .7], [.6, .4]]), ["a", "b"])
    >>> round(curves["b"][2], 3), round(curves["macro"][2], 3)
    (1.0, 1.0)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Curves", "roc_curves", "pr_curves"]

#: ``{class name, "micro" or "macro": (x values, y values, area)}``
Curves = dict[str, tuple[np.ndarray, np.ndarray, float]]


def _onehot(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    return np.eye(n_classes, dtype=np.int64)[y_true]


def roc_curves(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> Curves:
    """ROC curves ``{name: (fpr, tpr, auc)}``; a class needs images of it and images not of it.

    The macro curve averages the class curves on a common false-positive grid; its AUC is the mean
    of the class AUCs (scikit-learn's ``roc_auc_score(..., average="macro")``).

    Example:
        >>> roc_curves(np.array([0, 0]), np.array([[.9, .1], [.6, .4]]), ["a", "b"])["a"][2]
        nan
    """
    from sklearn.metrics import auc, roc_curve
    onehot = _onehot(y_true, len(classes))
    support = onehot.sum(axis=0)
    defined = (support > 0) & (support < len(y_true))
    curves: Curves = {}
    for c, name in enumerate(classes):
        if defined[c]:
            fpr, tpr, _ = roc_curve(onehot[:, c], proba[:, c])
            curves[name] = (fpr, tpr, float(auc(fpr, tpr)))
        else:
            curves[name] = (np.array([0.0, 1.0]), np.array([np.nan, np.nan]), float("nan"))
    fpr, tpr, _ = roc_curve(onehot.ravel(), proba.ravel())
    curves["micro"] = (fpr, tpr, float(auc(fpr, tpr)))
    ok = [classes[c] for c in np.flatnonzero(defined)]
    if ok:
        grid = np.unique(np.concatenate([curves[name][0] for name in ok]))
        mean_tpr = np.mean([np.interp(grid, curves[name][0], curves[name][1]) for name in ok], axis=0)
        curves["macro"] = (grid, mean_tpr, float(np.mean([curves[name][2] for name in ok])))
    else:
        curves["macro"] = (np.array([0.0, 1.0]), np.array([np.nan, np.nan]), float("nan"))
    return curves


def pr_curves(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> Curves:
    """Precision-recall curves ``{name: (precision, recall, average_precision)}``.

    A class needs test images of it. ``"macro"`` carries only the mean average precision (its
    arrays are ``NaN``: averaging PR curves is not meaningful).

    Example:
        >>> pr = pr_curves(np.array([0, 1, 1]), np.array([[.8, .2], [.3, .7], [.6, .4]]), ["a", "b"])
        >>> round(pr["a"][2], 3)
        1.0
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve
    onehot = _onehot(y_true, len(classes))
    defined = onehot.sum(axis=0) > 0
    curves: Curves = {}
    for c, name in enumerate(classes):
        if defined[c]:
            prec, rec, _ = precision_recall_curve(onehot[:, c], proba[:, c])
            curves[name] = (prec, rec, float(average_precision_score(onehot[:, c], proba[:, c])))
        else:
            curves[name] = (np.array([np.nan]), np.array([np.nan]), float("nan"))
    prec, rec, _ = precision_recall_curve(onehot.ravel(), proba.ravel())
    curves["micro"] = (prec, rec, float(average_precision_score(onehot.ravel(), proba.ravel())))
    aps = [curves[classes[c]][2] for c in np.flatnonzero(defined)]
    curves["macro"] = (np.array([np.nan]), np.array([np.nan]), float(np.mean(aps)) if aps else float("nan"))
    return curves
