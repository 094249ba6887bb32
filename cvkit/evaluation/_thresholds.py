"""Operating points: thresholds chosen on held-out answers for a target precision or recall.

A model answers its top class; with thresholds (``model.set_thresholds(...)``) it answers "no
decision" when the top class's probability is below that class's threshold. :func:`thresholds_for`
picks them from an :class:`~cvkit.evaluation.EvaluationReport` (held-out images the model did not
see), under exactly the rule every cvkit path applies (:mod:`cvkit.models._decision`):

- ``precision=0.95``: for each class the lowest threshold at which at least 95% of the images
  answered with that class really are of it, so as few images as possible go unanswered;
- ``recall=0.9``: for each class the highest threshold that still answers at least 90% of its images
  correctly, so the answers given are as sure as that allows.

``per_class=False`` gives one threshold for all classes (the same targets, over all answers).
A threshold lies halfway between the last answer it keeps and the next one below (0 when it keeps
them all), so the same answers come out of every runtime, whose probabilities differ in the last
digits. A class that cannot reach the target on these images gets the threshold that comes
closest, with a warning naming it: the target needs more (or better) photos of it, not a threshold.

Example:
    >>> from cvkit.evaluation import EvaluationReport
    >>> report = EvaluationReport(["a", "a", "b", "b", "b"],
    ...                           [[.9, .1], [.6, .4], [.7, .3], [.2, .8], [.4, .6]], ["a", "b"])
    >>> thresholds_for(report, precision=1.0)
    {'a': 0.8, 'b': 0.0}
    >>> thresholds_for(report, recall=0.4, per_class=False)
    0.75
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from cvkit._validation import Interval, check_param

__all__ = ["thresholds_for"]


def _pick(p: np.ndarray, right: np.ndarray, n_true: int, precision: float | None, recall: float | None
          ) -> tuple[float, float, bool]:
    """``(threshold, value reached, target met)`` over answers with top probability ``p`` that are
    ``right`` or not, for a class (or all classes) with ``n_true`` images."""
    order = np.argsort(-p, kind="stable")
    p, right = p[order], right[order]
    hits = np.cumsum(right)
    answered = np.arange(1, len(p) + 1)
    last = np.r_[p[1:] != p[:-1], True] if len(p) else np.zeros(0, bool)  # one cut per distinct value
    cuts, hits, answered = p[last], hits[last], answered[last]
    if not len(cuts):
        return 1.0, float("nan"), False
    if precision is not None:
        reached = hits / answered
        ok = reached >= precision - 1e-12
        # the lowest cut that keeps the target (most answers); else the most precise, lowest first
        i = int(np.flatnonzero(ok)[-1]) if ok.any() else int(np.flatnonzero(reached == reached.max())[-1])
    else:
        reached = hits / max(n_true, 1)
        ok = reached >= recall - 1e-12
        i = int(np.flatnonzero(ok)[0]) if ok.any() else len(cuts) - 1  # the highest cut keeping the recall
    # halfway to the next lower answer: the same answers here, and none flips on a runtime's last digits
    cut = (cuts[i] + cuts[i + 1]) / 2 if i + 1 < len(cuts) else 0.0
    return round(float(cut), 6), float(reached[i]), bool(ok[i])


def thresholds_for(report: Any, precision: float | None = None, recall: float | None = None,
                   per_class: bool = True) -> dict[str, float] | float:
    """Thresholds for ``model.set_thresholds`` that reach ``precision`` or ``recall`` (give one) on
    the report's images: ``{class: threshold}``, or one number with ``per_class=False``. (Examples:
    see the module.)
    """
    if (precision is None) == (recall is None):
        raise ValueError("thresholds_for: give exactly one target, precision= or recall=")
    target_name, target = ("precision", precision) if precision is not None else ("recall", recall)
    target = float(check_param(target_name, target, [Interval(float, 0, 1, closed="right")]))
    proba = np.asarray(report.proba, dtype=np.float64)
    y_true = np.asarray(report.y_true)
    y_pred = proba.argmax(axis=1)
    top = proba[np.arange(len(proba)), y_pred]
    right = y_pred == y_true
    classes = [str(c) for c in report.classes]
    goal = {"precision": precision, "recall": recall}
    if not per_class:
        cut, reached, met = _pick(top, right, len(y_true), **goal)
        if not met:
            warnings.warn(f"thresholds_for: {target_name} {target:g} is not reached on these {len(y_true)} images "
                          f"(best {reached:.3f}); using the closest threshold {cut:.3g}", stacklevel=2)
        return cut
    out: dict[str, float] = {}
    short = []
    for c, name in enumerate(classes):
        mine = y_pred == c
        cut, reached, met = _pick(top[mine], right[mine], int(np.sum(y_true == c)), **goal)
        out[name] = cut if mine.any() else 0.0
        if not met and mine.any():
            short.append(f"{name} (best {reached:.3f})")
    if short:
        warnings.warn(f"thresholds_for: {target_name} {target:g} is not reached for {', '.join(short)}; those "
                      "classes get the closest threshold. More (or better) photos of them would help.", stacklevel=2)
    return out
