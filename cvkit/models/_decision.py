"""A model's decision rule: from probabilities (and a novelty score) to the answer, the same in every path.

Why one place: ``predict``, ``score_image``, the web service (every protocol), ``cvkit score``, the
Ray jobs and the exported model's sidecar all answer with the rule saved in the model folder, so a
threshold picked in a notebook is the threshold the service applies.

The rule, in order:

1. **unknown**: when the model has a novelty cut and the image's novelty score is above it, the
   answer is ``unknown_label`` (default ``"unknown"``): the image looks like none of the training
   photos, so its class probabilities mean nothing. This wins over a low confidence.
2. **no decision**: when the model has thresholds (one for all classes, or one per class) and the
   top class's probability is below its threshold, the answer is ``no_decision_label`` (default
   ``"no decision"``): a known kind of image, but not sure enough to name it.
3. otherwise the class with the highest probability (arg-max).

Probabilities are always returned as they are; only the label changes. An image that could not be
read has no answer (``None``). The rule is stored in ``metadata.json`` under ``"decision"`` and
checked when read (:meth:`DecisionRule.from_metadata`): a malformed, out-of-range or unknown field
is refused with an error naming it.

Example:
    >>> rule = DecisionRule(thresholds={"cat": 0.7, "dog": 0.5}, unknown_cut=0.4)
    >>> proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.9, 0.1]])
    >>> labels, decisions = rule.decide(proba, ["cat", "dog"], novelty=np.array([0.1, 0.1, 0.1, 0.9]))
    >>> labels.tolist(), decisions.tolist()
    (['cat', 'no decision', 'dog', 'unknown'], ['label', 'no_decision', 'label', 'unknown'])
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["DecisionRule", "UNKNOWN", "NO_DECISION", "DECISIONS", "MAX_LABEL_CHARS"]

#: Default answers when the rule withholds a class name.
UNKNOWN, NO_DECISION = "unknown", "no decision"
#: What each answer is: a class name, below its threshold, unlike the training photos, or unreadable.
DECISIONS = ("label", "no_decision", "unknown", "error")
#: Longest answer name accepted in a model folder.
MAX_LABEL_CHARS = 100

Thresholds = None | float | Mapping[str, float]


def _problem(field_name: str, message: str) -> ValueError:
    return ValueError(f"field 'decision.{field_name}' {message}")


@dataclass(frozen=True)
class DecisionRule:
    """How probabilities become an answer: ``thresholds`` (None: arg-max; a number; or
    ``{class: threshold}``), ``unknown_cut`` (a novelty score above it answers ``unknown_label``;
    None: never unknown), and the two names used when no class is named.

    ``unknown_info`` records how the cut was chosen (share of training photos kept, method,
    expected rejection) for reports; it does not change answers.
    """

    thresholds: Thresholds = None
    unknown_cut: float | None = None
    unknown_label: str = UNKNOWN
    no_decision_label: str = NO_DECISION
    unknown_info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.thresholds
        if t is not None and not isinstance(t, Mapping):
            _check_threshold("thresholds", t)
        elif isinstance(t, Mapping):
            for name, value in t.items():
                _check_threshold(f"thresholds[{name!r}]", value)
        if self.unknown_cut is not None and (not _is_number(self.unknown_cut) or not math.isfinite(self.unknown_cut)):
            raise _problem("unknown_cut", f"must be a finite number or null, got {self.unknown_cut!r}")
        for name in ("unknown_label", "no_decision_label"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL_CHARS \
                    or any(c in value for c in "\t\r\n"):
                raise _problem(name, f"must be a non-empty name of at most {MAX_LABEL_CHARS} characters "
                                     f"without tabs or line breaks, got {value!r}")

    # ------------------------------------------------------------------ answering
    @property
    def is_argmax(self) -> bool:
        """True when the rule is plain arg-max (no thresholds, no unknown)."""
        return self.thresholds is None and self.unknown_cut is None

    def threshold_array(self, classes: Sequence[str]) -> np.ndarray:
        """One threshold per class (0 where none is set)."""
        if self.thresholds is None:
            return np.zeros(len(classes))
        if not isinstance(self.thresholds, Mapping):
            return np.full(len(classes), float(self.thresholds))
        return np.array([float(self.thresholds.get(c, 0.0)) for c in classes])

    def decide(self, proba: np.ndarray, classes: Sequence[str], novelty: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, decisions)`` for probabilities ``(n, n_classes)``: labels are class names, the
        two withheld names, or None for rows with a NaN (unreadable images); decisions are from
        :data:`DECISIONS`. ``novelty`` (one score per image) is needed when the rule has a cut.
        """
        proba = np.asarray(proba, dtype=np.float64)
        names = np.asarray([str(c) for c in classes], dtype=object)
        n = len(proba)
        labels = np.empty(n, dtype=object)
        decisions = np.full(n, "error", dtype=object)
        ok = np.all(np.isfinite(proba), axis=1) if n else np.zeros(0, bool)
        if self.unknown_cut is not None:
            if novelty is None:
                raise ValueError("this model answers 'unknown' from a novelty score, but none was computed")
            novelty = np.asarray(novelty, dtype=np.float64)
            ok &= np.isfinite(novelty)
        best = np.argmax(np.where(np.isfinite(proba), proba, -np.inf), axis=1) if n else np.zeros(0, int)
        labels[ok] = names[best[ok]]
        decisions[ok] = "label"
        if self.thresholds is not None:
            low = ok & (proba[np.arange(n), best] < self.threshold_array(classes)[best])
            labels[low], decisions[low] = self.no_decision_label, "no_decision"
        if self.unknown_cut is not None:
            far = ok & (novelty > float(self.unknown_cut))
            labels[far], decisions[far] = self.unknown_label, "unknown"
        labels[~ok] = None
        return labels, decisions

    def describe(self) -> str:
        """The rule in a few words, as answers and summaries show it.

        Example:
            >>> DecisionRule().describe(), DecisionRule(thresholds=0.8, unknown_cut=0.3).describe()
            ('arg-max', 'threshold 0.8, unknown above novelty 0.3')
        """
        parts = []
        if isinstance(self.thresholds, Mapping):
            values = sorted(float(v) for v in self.thresholds.values())
            parts.append(f"per-class thresholds {values[0]:.4g}-{values[-1]:.4g}" if values else "arg-max")
        elif self.thresholds is not None:
            parts.append(f"threshold {float(self.thresholds):.4g}")
        if self.unknown_cut is not None:
            parts.append(f"unknown above novelty {float(self.unknown_cut):.3g}")
        return ", ".join(parts) or "arg-max"

    # ------------------------------------------------------------------ metadata
    def to_metadata(self) -> dict[str, Any]:
        """The ``"decision"`` field of ``metadata.json``."""
        thresholds: Any = dict(self.thresholds) if isinstance(self.thresholds, Mapping) else self.thresholds
        return {"thresholds": thresholds, "unknown_cut": self.unknown_cut, "unknown_label": self.unknown_label,
                "no_decision_label": self.no_decision_label, "unknown_info": dict(self.unknown_info),
                "rule": self.describe()}

    @classmethod
    def from_metadata(cls, value: Any, classes: Sequence[str], novelty: bool = True) -> DecisionRule:
        """The rule of a ``metadata.json``'s ``"decision"`` field (absent: arg-max), checked.

        Raises ``ValueError`` naming the field: a threshold outside [0, 1] or not a number, a
        threshold for a class the model does not have, an unknown key, an answer name that is also
        a class name, an unknown cut for a model without a ``novelty`` scorer.

        Example:
            >>> DecisionRule.from_metadata({"thresholds": {"cat": 1.5}}, ["cat", "dog"])
            Traceback (most recent call last):
            ...
            ValueError: field 'decision.thresholds['cat']' must be a number in [0, 1], got 1.5
        """
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(f"field 'decision' must be an object, got {type(value).__name__}")
        allowed = {"thresholds", "unknown_cut", "unknown_label", "no_decision_label", "unknown_info", "rule"}
        extra = sorted(set(value) - allowed)
        if extra:
            raise _problem(extra[0], f"is not a field of a decision rule (allowed: {', '.join(sorted(allowed))})")
        thresholds = value.get("thresholds")
        if isinstance(thresholds, Mapping):
            unknown = sorted(set(thresholds) - {str(c) for c in classes})
            if unknown:
                raise _problem("thresholds", "names class(es) the model does not have: "
                                             + ", ".join(map(repr, unknown)))
        elif isinstance(thresholds, list):
            raise _problem("thresholds", "must be a number, an object of class -> threshold, or null")
        info = value.get("unknown_info") or {}
        if not isinstance(info, Mapping):
            raise _problem("unknown_info", f"must be an object, got {type(info).__name__}")
        rule = cls(thresholds=thresholds, unknown_cut=value.get("unknown_cut"),
                   unknown_label=value.get("unknown_label", UNKNOWN),
                   no_decision_label=value.get("no_decision_label", NO_DECISION), unknown_info=dict(info))
        rule.check_classes(classes)
        if rule.unknown_cut is not None and not novelty:
            raise _problem("unknown_cut", "needs a novelty scorer, and this model has none")
        return rule

    def with_thresholds(self, thresholds: Thresholds, classes: Sequence[str],
                        no_decision_label: str = NO_DECISION) -> DecisionRule:
        """This rule with new ``thresholds`` for a model of ``classes``: a mapping must name only
        those classes (the others get 0), and every value and name is checked as on load.

        Example:
            >>> DecisionRule().with_thresholds({"dog": 0.7}, ["cat", "dog"]).thresholds
            {'cat': 0.0, 'dog': 0.7}
            >>> DecisionRule().with_thresholds({"cow": 0.7}, ["cat", "dog"])
            Traceback (most recent call last):
            ...
            ValueError: 'cow' is not a class of this model (classes: 'cat', 'dog')
        """
        names = [str(c) for c in classes]
        if isinstance(thresholds, Mapping):
            unknown = sorted(set(map(str, thresholds)) - set(names))
            if unknown:
                raise ValueError(f"{', '.join(map(repr, unknown))} is not a class of this model "
                                 f"(classes: {', '.join(map(repr, names))})")
            given = {str(k): v for k, v in thresholds.items()}
            thresholds = {c: given.get(c, 0.0) for c in names}
        rule = replace(self, thresholds=thresholds, no_decision_label=no_decision_label)
        rule.check_classes(names)
        return rule

    def check_classes(self, classes: Sequence[str]) -> None:
        """Refuse answer names that are class names (an answer must say which kind it is)."""
        for name in ("unknown_label", "no_decision_label"):
            if getattr(self, name) in {str(c) for c in classes}:
                raise _problem(name, f"{getattr(self, name)!r} is also a class name; choose another name")
        if self.unknown_label == self.no_decision_label:
            raise _problem("no_decision_label", "must differ from unknown_label")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_threshold(name: str, value: Any) -> None:
    if not _is_number(value) or not (0.0 <= float(value) <= 1.0):
        raise _problem(name, f"must be a number in [0, 1], got {value!r}")
