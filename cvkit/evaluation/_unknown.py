"""How well a model tells images of its classes from images of none of them: :func:`unknown_report`.

A model with a novelty score (every :class:`~cvkit.FeatureClassifier` by default) answers
"unknown" for an image whose score passes its cut (``model.set_unknown_threshold``). This module
measures what that costs and what it catches, on photos of the known classes and, when you have
them, photos of other things:

- **known images rejected**: the share of photos of the known classes answered "unknown" at the cut
  (the price; about ``1 - keep`` when the cut keeps a share ``keep`` of the training photos);
- **unknown images rejected** at the cut, and the **AUROC** of the novelty score (1.0: every
  unknown image scores above every known one; 0.5: chance), each beside the same figures for the
  usual baseline, the top class probability (low confidence taken as "unknown");
- without photos of other things, :func:`unseen_class_estimate` leaves each class out in turn and
  measures how many of its photos a scorer fitted on the other classes rejects: an estimate of how
  an unseen kind of thing would fare;
- a cut chosen on these photos: the one keeping a share ``keep`` of the known ones
  (:meth:`UnknownReport.cut_keeping`), to pass to ``model.set_unknown_threshold(cut=...)``.

Example:
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data/tags.tsv")   # 104 photos, 4 classes
    >>> noise = np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)
    >>> found = unknown_report(clf, "sample_data/bird", noise)
    >>> found.auroc, found.unknown_rejected
    (1.0, 1.0)
    >>> fig = found.plot()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cvkit.evaluation._models import as_model
from cvkit.models._inference import decision_rule, has_novelty

__all__ = ["UnknownReport", "unknown_report", "report_from_scores", "novelty_and_top", "unseen_class_estimate"]


@dataclass
class UnknownReport:
    """Novelty and top probability of known (and unknown) images, and the model's cut.

    ``cut`` is the model's unknown cut, or (when it has none yet) the one keeping a share ``keep``
    of the training photos' out-of-fold scores; ``cut_from`` says which.
    """

    method: str
    cut: float
    cut_from: str
    known_novelty: np.ndarray
    known_top: np.ndarray
    unknown_novelty: np.ndarray | None = None
    unknown_top: np.ndarray | None = None

    @property
    def known_rejected(self) -> float:
        """Share of known images answered "unknown" at the cut."""
        return float(np.mean(self.known_novelty > self.cut)) if len(self.known_novelty) else float("nan")

    @property
    def unknown_rejected(self) -> float | None:
        """Share of unknown images answered "unknown" at the cut (None without unknown images)."""
        if self.unknown_novelty is None or not len(self.unknown_novelty):
            return None
        return float(np.mean(self.unknown_novelty > self.cut))

    @property
    def auroc(self) -> float | None:
        """AUROC of the novelty score, unknown against known (None without unknown images)."""
        return self._auroc(self.known_novelty, self.unknown_novelty)

    @property
    def baseline_auroc(self) -> float | None:
        """AUROC of the baseline: one minus the top class probability."""
        if self.unknown_top is None:
            return None
        return self._auroc(-self.known_top, -self.unknown_top)

    @staticmethod
    def _auroc(known: np.ndarray, unknown: np.ndarray | None) -> float | None:
        from sklearn.metrics import roc_auc_score

        if unknown is None or not len(unknown) or not len(known):
            return None
        truth = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
        return float(roc_auc_score(truth, np.r_[known, unknown]))

    def cut_keeping(self, keep: float = 0.95) -> float:
        """The novelty cut that keeps a share ``keep`` of these known images."""
        return float(np.quantile(self.known_novelty, keep))

    def rejected_at(self, keep: float = 0.95) -> dict[str, float | None]:
        """Share of unknown images rejected when a share ``keep`` of the known ones is kept: by the
        novelty score and by the top-probability baseline (the benchmark's headline figures)."""
        if self.unknown_novelty is None:
            return {"novelty": None, "top_probability": None}
        novelty = float(np.mean(self.unknown_novelty > self.cut_keeping(keep)))
        floor = float(np.quantile(self.known_top, 1 - keep))
        return {"novelty": novelty, "top_probability": float(np.mean(self.unknown_top < floor))}

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain numbers (what ``report.json`` and benchmarks store)."""
        out: dict[str, Any] = {"method": self.method, "cut": self.cut, "cut_from": self.cut_from,
                               "n_known": int(len(self.known_novelty)), "known_rejected": self.known_rejected}
        if self.unknown_novelty is not None:
            out.update(n_unknown=int(len(self.unknown_novelty)), unknown_rejected=self.unknown_rejected,
                       auroc=self.auroc, baseline_auroc=self.baseline_auroc,
                       rejected_at_95_known_kept=self.rejected_at(0.95))
        return out

    def summary(self) -> str:
        """A few lines a person reads: the price, the catch, and the baseline."""
        lines = [f"unknown cut {self.cut:.4g} ({self.cut_from}, {self.method} novelty): "
                 f"{self.known_rejected:.1%} of {len(self.known_novelty)} known images answered 'unknown'"]
        if self.unknown_novelty is not None:
            at95 = self.rejected_at(0.95)
            lines.append(f"{self.unknown_rejected:.1%} of {len(self.unknown_novelty)} unknown images answered "
                         f"'unknown'; AUROC {self.auroc:.3f} (top probability: {self.baseline_auroc:.3f})")
            lines.append(f"keeping 95% of known images: {at95['novelty']:.1%} of unknown images rejected "
                         f"(top probability: {at95['top_probability']:.1%})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<UnknownReport: {self.summary().splitlines()[0]}>"

    def plot(self, ax: Any = None) -> Any:
        """Histograms of the novelty of known and unknown images, with the cut; returns the Figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 3.6))
        else:
            fig = ax.figure
        groups = [("known classes", self.known_novelty, "tab:blue")]
        if self.unknown_novelty is not None:
            groups.append(("other things", self.unknown_novelty, "tab:red"))
        values = np.concatenate([g[1] for g in groups])
        bins = np.linspace(float(values.min()), float(max(values.max(), self.cut)), 30)
        for name, scores, colour in groups:
            ax.hist(scores, bins=bins, alpha=0.55, color=colour, label=f"{name} ({len(scores)})")
        ax.axvline(self.cut, color="black", linestyle="--", label="cut: above it, 'unknown'")
        ax.set_xlabel(f"novelty ({self.method})")
        ax.set_ylabel("images")
        ax.set_title("How unlike the training photos" + (f": AUROC {self.auroc:.2f}" if self.auroc else ""))
        ax.legend(fontsize="small")
        fig.tight_layout()
        return fig


def novelty_and_top(model: Any, images: Any) -> tuple[np.ndarray, np.ndarray]:
    """Novelty and top probability of the readable images of ``images``."""
    proba, novelty = model._predict_outputs(images)
    proba, novelty = np.asarray(proba, np.float64), np.asarray(novelty, np.float64)
    ok = np.all(np.isfinite(proba), axis=1) & np.isfinite(novelty)
    return novelty[ok], proba[ok].max(axis=1)


def unknown_report(model: Any, known: Any, unknown: Any = None, keep: float = 0.95) -> UnknownReport:
    """Score ``known`` images (of the model's classes) and optional ``unknown`` ones (of other things).

    ``model``: a fitted classifier or a model folder with a novelty score. ``known`` / ``unknown``:
    any input :meth:`cvkit.ImageSource.resolve` takes (a folder, a table, paths, a uint8 array...);
    labels are not needed. The cut is the model's (``set_unknown_threshold``) or, when it has none,
    the one keeping a share ``keep`` of its training photos. Unreadable images are left out.
    (Example: see the module.)
    """
    model = as_model(model)
    known_novelty, known_top = novelty_and_top(model, known)
    report = report_from_scores(model, known_novelty, known_top, keep)
    if unknown is not None:
        report.unknown_novelty, report.unknown_top = novelty_and_top(model, unknown)
    return report


def report_from_scores(model: Any, known_novelty: np.ndarray, known_top: np.ndarray,
                       keep: float = 0.95) -> UnknownReport:
    """An :class:`UnknownReport` of known images already scored (``evaluate`` scores them once)."""
    if not has_novelty(model):
        raise ValueError(f"this {type(model).__name__} has no novelty score (fine-tuned models, models saved "
                         "before cvkit 0.2 and FeatureClassifier(novelty_method=None) have none)")
    scorer, rule = model.novelty_, decision_rule(model)
    if rule.unknown_cut is not None:
        cut, cut_from = float(rule.unknown_cut), "the model's cut"
    else:
        cut, cut_from = scorer.cut(keep), f"keeping {keep:.0%} of the training photos"
    return UnknownReport(scorer.method, cut, cut_from, known_novelty, known_top)


def unseen_class_estimate(classifier: Any, dataset: Any, keep: float = 0.95) -> Any:
    """How well the novelty score would reject a kind of thing the model never saw, estimated
    without photos of other things: each class is left out in turn, a scorer (the classifier's
    ``novelty_method``) is fitted on the photos of the others, and the table gives, per left-out
    class, the share of its photos above the cut keeping ``keep`` of the others' out-of-fold scores
    (``rejected``) and the AUROC against those scores. ``dataset``: labelled photos (the training
    photos, a folder of class folders...), featurized once (cached). Returns a pandas DataFrame
    with a ``mean`` row. A class close to another (fruit and vegetables) is rejected less: it is a
    lower bound for things unlike every class.

    Example:
        >>> import cvkit
        >>> table = unseen_class_estimate(cvkit.FeatureClassifier(verbose=False), "sample_data")
        >>> list(table.columns), list(table.index)
        (['rejected', 'auroc', 'n_images'], ['bird', 'flower', 'fruit', 'vegetable', 'mean'])
        >>> bool(table.loc["bird", "rejected"] > 0.8)
        True
    """
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from cvkit.classifiers._features import featurize
    from cvkit.evaluation._folds import labelled_images
    from cvkit.models._novelty import fit_novelty

    method = getattr(classifier, "novelty_method", None) or "mahalanobis"
    data = labelled_images(dataset, "unseen_class_estimate")
    if len(data.classes) < 3:
        raise ValueError("unseen_class_estimate needs at least 3 classes (each left out, 2 or more remain)")
    F, ok = featurize(classifier.make_featurizer(verbose=False), data.source.items, "unseen_class_estimate",
                      verbose=False)
    F, codes = F[ok], data.codes[ok]
    rows = {}
    for c, name in enumerate(data.classes):
        seen = codes != c
        scorer = fit_novelty(method, F[seen], codes[seen], random_state=0)
        held = scorer.score(F[~seen])
        truth = np.r_[np.zeros(len(scorer.train_scores_)), np.ones(len(held))]
        rows[name] = {"rejected": float(np.mean(held > scorer.cut(keep))),
                      "auroc": float(roc_auc_score(truth, np.r_[scorer.train_scores_, held])),
                      "n_images": int(len(held))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["mean"] = [table["rejected"].mean(), table["auroc"].mean(), int(table["n_images"].sum())]
    table["n_images"] = table["n_images"].astype(int)
    return table
