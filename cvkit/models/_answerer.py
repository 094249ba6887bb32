"""Everything after the graph: from its outputs to probabilities, a novelty score and the answer.

A model's graph (LiteRT or Keras) turns pixels into a vector per image. What happens next is the
same for a classifier just trained and for a model folder loaded anywhere (the service, a Ray
worker, ``cvkit score``), because both hold one :class:`Answerer`:

1. the head: the graph's outputs are already probabilities (folders saved before cvkit 0.2), or
   features that a :class:`~cvkit.models._head.LinearHead` (arrays) or a scikit-learn head turns
   into class scores;
2. calibration: the scores are divided by a temperature (1 when uncalibrated) and soft-maxed;
3. novelty: a :class:`~cvkit.models._novelty.NoveltyScorer` scores the features (when the model has one);
4. the :class:`~cvkit.models._decision.DecisionRule` names the answer.

Example:
    >>> from cvkit.models._head import LinearHead
    >>> head = LinearHead(np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    >>> answerer = Answerer(["cat", "dog"], "features", linear=head, temperature=2.0)
    >>> answers = answerer.answer(np.array([[2.0, 0.0], [np.nan, 0.0]]))
    >>> [round(float(p), 3) for p in answers.proba[0]], answers.labels.tolist()
    ([0.731, 0.269], ['cat', None])
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cvkit.models._calibration import softmax
from cvkit.models._decision import DecisionRule
from cvkit.models._head import LinearHead, log_proba_as_logits
from cvkit.models._novelty import NoveltyScorer

__all__ = ["Answerer", "Answers", "OUTPUTS"]

#: What a model's graph outputs: class probabilities (the whole classifier) or backbone features.
OUTPUTS = ("probabilities", "features")


@dataclass
class Answers:
    """Answers for a batch: ``proba`` float32 ``(n, n_classes)`` (NaN rows for unreadable images),
    ``labels`` and ``decisions`` (object arrays, see :class:`~cvkit.models._decision.DecisionRule`),
    ``novelty`` float32 ``(n,)`` or None, and the ``rule`` applied, in words."""

    proba: np.ndarray
    labels: np.ndarray
    decisions: np.ndarray
    novelty: np.ndarray | None
    rule: str


@dataclass(frozen=True)
class Answerer:
    """Turns graph outputs into :class:`Answers` (see the module notes).

    ``classes``: the class names; ``output``: what the graph gives (:data:`OUTPUTS`); ``linear``: a
    :class:`LinearHead`, or ``estimator``: a fitted scikit-learn head (for feature outputs);
    ``temperature``: calibration (1.0: none); ``novelty``: a fitted scorer or None; ``rule``.
    """

    classes: Sequence[str]
    output: str = "probabilities"
    linear: LinearHead | None = None
    estimator: Any = None
    temperature: float = 1.0
    novelty: NoveltyScorer | None = None
    rule: DecisionRule = DecisionRule()

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.output == "features" and (self.linear is None) == (self.estimator is None):
            raise ValueError("a model whose graph outputs features needs exactly one head: linear or estimator")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        if self.rule.unknown_cut is not None and (self.novelty is None or self.output != "features"):
            raise ValueError("an unknown cut needs a novelty scorer on features")

    @property
    def features_out(self) -> bool:
        return self.output == "features"

    def with_rule(self, rule: DecisionRule) -> Answerer:
        """The same answerer with another decision rule (the graph and head untouched)."""
        rule.check_classes(self.classes)
        return replace(self, rule=rule)

    def logits(self, outputs: np.ndarray) -> np.ndarray:
        """Uncalibrated class scores float64 for the rows of ``outputs`` (NaN rows stay NaN)."""
        out = np.asarray(outputs, dtype=np.float64)
        ok = np.all(np.isfinite(out), axis=1) if len(out) else np.zeros(0, bool)
        logits = np.full((len(out), len(self.classes)), np.nan)
        if not ok.any():
            return logits
        if self.output == "probabilities":
            logits[ok] = log_proba_as_logits(out[ok])
        elif self.linear is not None:
            logits[ok] = self.linear.logits(out[ok])
        else:
            logits[ok] = log_proba_as_logits(self.estimator.predict_proba(out[ok]))
        return logits

    def proba(self, outputs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities float32 ``(n, n_classes)``.

        Uncalibrated outputs that already are probabilities pass through unchanged (bit for bit),
        so a folder saved before calibration existed answers exactly as it did.
        """
        out = np.asarray(outputs)
        if self.output == "probabilities" and self.temperature == 1.0:
            return np.asarray(out, dtype=np.float32)
        if self.output == "features" and self.estimator is not None and self.temperature == 1.0:
            proba = np.full((len(out), len(self.classes)), np.nan, np.float32)
            ok = np.all(np.isfinite(out), axis=1) if len(out) else np.zeros(0, bool)
            if ok.any():
                proba[ok] = self.estimator.predict_proba(np.asarray(out[ok], dtype=np.float32))
            return proba
        logits = self.logits(out)
        ok = np.all(np.isfinite(logits), axis=1)
        proba = np.full(logits.shape, np.nan, np.float32)
        proba[ok] = softmax(logits[ok] / self.temperature)
        return proba

    def novelty_scores(self, outputs: np.ndarray) -> np.ndarray | None:
        """Novelty float32 ``(n,)`` (NaN for unreadable rows), or None when the model has no scorer."""
        if self.novelty is None or self.output != "features":
            return None
        out = np.asarray(outputs, dtype=np.float32)
        scores = np.full(len(out), np.nan, np.float32)
        ok = np.all(np.isfinite(out), axis=1) if len(out) else np.zeros(0, bool)
        if ok.any():
            scores[ok] = self.novelty.score(out[ok])
        return scores

    def answer(self, outputs: np.ndarray) -> Answers:
        """Probabilities, novelty, labels and decisions for graph ``outputs``."""
        proba = self.proba(outputs)
        novelty = self.novelty_scores(outputs)
        labels, decisions = self.rule.decide(proba, self.classes,
                                             novelty if self.rule.unknown_cut is not None else None)
        return Answers(proba, labels, decisions, novelty, self.rule.describe())

