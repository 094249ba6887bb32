"""The tables of an :class:`~cvkit.evaluation.EvaluationReport`: per class, per image, per threshold.

Why a separate module: the report computes its metrics in ``report.py``; turning them into
DataFrames, text and confidence-threshold trade-offs is a second job. :class:`ReportTables` is the
part of ``EvaluationReport`` that does it (a mixin: it reads the report's ``classes``, ``y_true``,
``y_pred``, ``proba``, ``paths``, ``losses`` and metric properties).

Example:
    >>> from cvkit.evaluation import EvaluationReport
    >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
    >>> report.most_confused().values.tolist()
    [['b', 'a', 1]]
    >>> report.at_threshold(0.7)["coverage"]
    0.6666666666666666
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.evaluation._intervals import LEVEL, N_BOOT, bootstrap_intervals, interval_note

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ReportTables", "names_list"]


def between(bounds: tuple[float, float] | None, digits: int = 3) -> str:
    """``" (low\u2013high)"`` for an interval (the 95% range of a metric), or ``""`` when it has none."""
    return "" if bounds is None else f" ({bounds[0]:.{digits}f}\u2013{bounds[1]:.{digits}f})"


def names_list(names: Sequence[str]) -> str:
    """Names quoted and comma-separated, for error messages.

    Example:
        >>> names_list(["bird", "fruit"])
        "'bird', 'fruit'"
    """
    return ", ".join(repr(n) for n in names)


class ReportTables:
    """Tables, thresholds and text of an evaluation report (mixed into ``EvaluationReport``).

    Besides the attributes below it reads the report's metrics: ``confusion_matrix``, ``support``,
    ``precision``, ``recall``, ``f1``, ``losses``, ``auc``, ``average_precision`` and the rest.
    """

    # Set by EvaluationReport.__init__.
    classes: list[str]
    proba: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    paths: list[str] | None
    skipped: list[tuple[str, str]]

    # ------------------------------------------------------------------ tables
    def per_class(self, intervals: bool = False) -> pd.DataFrame:
        """One row per class: precision, recall, f1, support, log_loss, auc, average_precision.

        ``intervals=True`` adds the 95% interval of precision, recall and f1 (``precision_low``,
        ``precision_high``, ...; see :meth:`intervals`).

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> report.per_class()[["precision", "recall", "support"]].values.tolist()
            [[0.5, 1.0, 1.0], [1.0, 0.5, 2.0]]
            >>> list(report.per_class(intervals=True).columns[-2:])
            ['f1_low', 'f1_high']
        """
        import pandas as pd
        auc, ap, ll = self.auc, self.average_precision, self.per_class_log_loss
        table = pd.DataFrame({
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "support": self.support.astype(np.int64),
            "log_loss": [ll[c] for c in self.classes], "auc": [auc[c] for c in self.classes],
            "average_precision": [ap[c] for c in self.classes],
        }, index=pd.Index(self.classes, name="class"))
        if intervals:
            found = self.intervals()["per_class"]
            for metric in ("precision", "recall", "f1"):
                for side, name in ((0, "low"), (1, "high")):
                    table[f"{metric}_{name}"] = [np.nan if v is None else v[side] for v in found[metric]]
        return table

    def intervals(self, n_boot: int = N_BOOT, level: float = LEVEL, random_state: int | None = 0) -> dict:
        """95% intervals (``level``) of the headline and per-class metrics: a stratified bootstrap
        over the test images (:func:`cvkit.evaluation._intervals.bootstrap_intervals`), seeded, so the
        same report always gives the same intervals. ``{"accuracy": (low, high), "balanced_accuracy",
        "log_loss", "macro_roc_auc", "per_class": {"precision": [...], ...}, ...}``; None where a
        metric is undefined in most resamples. Computed once per setting.

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> proba = [[.8, .2]] * 9 + [[.3, .7]] + [[.1, .9]] * 10
            >>> report = EvaluationReport(["a"] * 10 + ["b"] * 10, proba, ["a", "b"])
            >>> report.accuracy, [round(v, 3) for v in report.intervals()["accuracy"]]
            (0.95, [0.764, 1.0])
        """
        key = (int(n_boot), float(level), random_state)
        cache = self.__dict__.setdefault("_intervals", {})
        if key not in cache:
            cache[key] = bootstrap_intervals(self.y_true, self.proba, *key)
        return cache[key]

    @property
    def imbalanced(self) -> bool:
        """True when the largest class has more than 3 times the test photos of the smallest (the line
        :func:`cvkit.data.check_class_balance` draws): then accuracy hides the small classes, and the
        headline leads with balanced accuracy and the smallest recall."""
        from cvkit.data._balance import is_imbalanced

        return is_imbalanced(self.support)

    def smallest_recall(self) -> tuple[str, float]:
        """``(class, recall)`` of the class with the lowest recall among those with test photos: the
        number accuracy hides when classes differ in size."""
        recall = np.asarray(self.recall, dtype=float)
        worst = int(np.nanargmin(np.where(self.support > 0, recall, np.nan)))
        return self.classes[worst], float(recall[worst])

    def headline(self) -> str:
        """Accuracy and balanced accuracy with their 95% intervals in one line, and a plain warning
        when the test set is too small for a precise number. When classes differ more than 3x
        (:attr:`imbalanced`) balanced accuracy comes first, with the smallest recall and its class.

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> proba = [[.8, .2]] * 9 + [[.3, .7]] + [[.1, .9]] * 10
            >>> report = EvaluationReport(["a"] * 10 + ["b"] * 10, proba, ["a", "b"])
            >>> print(report.headline())
            accuracy 0.950 (0.764\u20131.000), balanced accuracy 0.950 (0.744\u20131.000) on 20 test images
            only 20 test images: accuracy is known to within about ±12 points; more test images ...
        """
        found = self.intervals()
        accuracy = f"accuracy {self.accuracy:.3f}{between(found['accuracy'])}"
        balanced = f"balanced accuracy {self.balanced_accuracy:.3f}{between(found['balanced_accuracy'])}"
        if self.imbalanced:
            name, recall = self.smallest_recall()
            text = (f"{balanced}, smallest recall {recall:.3f} ({name}), {accuracy} "
                    f"on {len(self)} test images (classes differ more than 3x: judge by balanced accuracy)")
        else:
            text = f"{accuracy}, {balanced} on {len(self)} test images"
        note = self.interval_warning()
        return text + (f"\n{note}" if note else "")

    def interval_warning(self) -> str | None:
        """A plain sentence when the test set is too small for a precise accuracy (its interval is
        wide), else None (see :func:`cvkit.evaluation._intervals.interval_note`)."""
        accuracy = self.intervals()["accuracy"]
        return interval_note(len(self), *accuracy) if accuracy else None

    def summary(self) -> dict[str, float]:
        """The headline numbers as a flat dict (accuracy, balanced accuracy, log-loss, AUCs, ...).

        ``top_2_accuracy``/``top_3_accuracy`` appear when there are more classes than ``k``.

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> report.summary()["n_images"], round(report.summary()["accuracy"], 3)
            (3, 0.667)
        """
        auc, ap = self.auc, self.average_precision
        out = {"n_images": int(len(self)), "accuracy": self.accuracy,
               "balanced_accuracy": self.balanced_accuracy, "log_loss": self.log_loss}
        for k in (2, 3):
            if k < self.n_classes:
                out[f"top_{k}_accuracy"] = self.top_k_accuracy(k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN
            out.update({
                "precision_macro": float(np.nanmean(self.precision)),
                "recall_macro": float(np.nanmean(self.recall)),
                "f1_macro": float(np.nanmean(self.f1)),
            })
        out.update({"auc_macro": auc["macro"], "auc_micro": auc["micro"],
                    "average_precision_macro": ap["macro"], "average_precision_micro": ap["micro"]})
        return out

    def most_confused(self, n: int = 5, min_count: int = 1) -> pd.DataFrame:
        """The ``n`` most frequent mistakes as rows ``(true, predicted, count)``, most frequent first."""
        import pandas as pd
        cm = self.confusion_matrix
        rows = [(self.classes[i], self.classes[j], int(cm[i, j]))
                for i in range(self.n_classes) for j in range(self.n_classes)
                if i != j and cm[i, j] >= max(min_count, 1)]
        rows.sort(key=lambda r: -r[2])  # stable: ties keep class order
        return pd.DataFrame(rows[:n], columns=["true", "predicted", "count"])

    def top_losses(self, k: int = 9) -> pd.DataFrame:
        """The ``k`` images with the highest log-loss (the worst mistakes), worst first.

        Columns: ``path`` (if known), ``true``, ``predicted``, ``p_true`` (probability given to the
        true class), ``confidence`` (probability of the predicted class), ``loss``. The index is
        the image's row in the report.

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> report.top_losses(1)[["true", "predicted", "p_true"]].values.tolist()
            [['b', 'a', 0.4]]
        """
        order = np.argsort(-self.losses, kind="stable")[:k]
        return self._rows(order)

    def _rows(self, order: np.ndarray) -> pd.DataFrame:
        import pandas as pd
        idx = np.arange(len(self))
        data = {
            "path": [self.paths[i] for i in order] if self.paths is not None else [None] * len(order),
            "true": [self.classes[self.y_true[i]] for i in order],
            "predicted": [self.classes[self.y_pred[i]] for i in order],
            "p_true": self.proba[order, self.y_true[order]].astype(np.float64),
            "confidence": self.proba[order, self.y_pred[order]].astype(np.float64),
            "loss": self.losses[order],
        }
        return pd.DataFrame(data, index=pd.Index(idx[order], name="row"))

    def errors(self) -> pd.DataFrame:
        """Every misclassified image (same columns as :meth:`top_losses`), most confident first."""
        wrong = np.flatnonzero(self.y_pred != self.y_true)
        conf = self.proba[wrong, self.y_pred[wrong]]
        return self._rows(wrong[np.argsort(-conf, kind="stable")])

    def to_frame(self) -> pd.DataFrame:
        """One row per image: path, true, predicted, confidence, p_true, loss, correct, and the
        probability of every class (``proba_<class>`` columns). Save it with ``to_csv`` to compare
        two models image by image.

        Example:
            >>> import os, tempfile
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> frame = report.to_frame()
            >>> frame.to_csv(os.path.join(tempfile.mkdtemp(), "predictions.csv")); list(frame.correct)
            [True, True, False]
        """
        frame = self._rows(np.arange(len(self)))
        frame["correct"] = self.y_pred == self.y_true
        for c, name in enumerate(self.classes):
            frame[f"proba_{name}"] = self.proba[:, c].astype(np.float64)
        return frame

    # ------------------------------------------------------------------ thresholds
    def at_threshold(self, threshold: float, class_name: str | None = None) -> dict[str, float]:
        """Precision, recall and coverage when only confident predictions count.

        Without ``class_name``: an image is *covered* when its top probability is at least
        ``threshold``; ``precision`` is the accuracy on covered images, ``recall`` the fraction of
        all images that are covered and right, ``coverage`` the fraction covered.

        With ``class_name``: one-vs-rest for that class; an image is flagged when its probability for
        the class is at least ``threshold`` (the points of the class's PR curve); ``coverage`` is
        the fraction of all images flagged.

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> sorted(report.at_threshold(0.8))
            ['coverage', 'n_covered', 'precision', 'recall', 'threshold']
        """
        threshold = float(check_param("threshold", threshold, [Interval(float, 0, 1)]))
        if class_name is None:
            covered = self.proba.max(axis=1) >= threshold
            hit = covered & (self.y_pred == self.y_true)
            n_pos = len(self)
        else:
            c = self._class_index(class_name)
            covered = self.proba[:, c] >= threshold
            truth = self.y_true == c
            hit = covered & truth
            n_pos = int(truth.sum())
        n_cov = int(covered.sum())
        return {"threshold": threshold,
                "precision": float(hit.sum() / n_cov) if n_cov else float("nan"),
                "recall": float(hit.sum() / n_pos) if n_pos else float("nan"),
                "coverage": float(n_cov / len(self)), "n_covered": n_cov}

    def threshold_curve(self, class_name: str | None = None,
                        thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
        """:meth:`at_threshold` over a range of thresholds (default 0, 0.01, ..., 1) as a DataFrame."""
        import pandas as pd
        grid = np.linspace(0.0, 1.0, 101) if thresholds is None else np.asarray(thresholds, float)
        return pd.DataFrame([self.at_threshold(t, class_name) for t in grid])

    def _class_index(self, class_name: str) -> int:
        """Column of ``class_name`` in ``proba``; a clear error for a name that is not a class."""
        try:
            return self.classes.index(str(class_name))
        except ValueError:
            raise ValueError(f"class_name {class_name!r} is not one of the classes "
                             f"({names_list(self.classes)})") from None

    # ------------------------------------------------------------------ text
    def to_text(self, digits: int = 3) -> str:
        """A plain-text report: headline metrics then the per-class table (rounded, deterministic).

        Example:
            >>> from cvkit.evaluation import EvaluationReport
            >>> report = EvaluationReport(["a", "b", "b"], [[.8, .2], [.3, .7], [.6, .4]], ["a", "b"])
            >>> print(report.to_text().splitlines()[0])
            3 images, 2 classes
        """
        import pandas as pd
        lines = [f"{len(self)} images, {self.n_classes} classes"
                 + (f" ({len(self.skipped)} unreadable, left out)" if self.skipped else "")]
        found = self.intervals()
        ranges = {"accuracy": found["accuracy"], "balanced_accuracy": found["balanced_accuracy"],
                  "log_loss": found["log_loss"], "auc_macro": found["macro_roc_auc"]}
        for key, value in self.summary().items():
            if key != "n_images":
                lines.append(f"{key:<26}{value:.{digits}f}{between(ranges.get(key), digits)}".rstrip())
        note = self.interval_warning()
        if note:
            lines.append(note)
        lines += unknown_lines(self.info.get("unknown"))
        table = self.per_class().round(digits)
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            lines += ["", table.to_string(na_rep="n/a")]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def unknown_lines(figures: Any) -> list[str]:
    """The lines ``to_text`` gives the "unknown" answer (``evaluate``'s ``info["unknown"]``).

    Example:
        >>> unknown_lines({"cut_from": "the model's cut", "n_known": 40, "known_rejected": 0.05})
        ["'unknown' answer (the model's cut): 5.0% of the 40 images here would be rejected"]
    """
    if not isinstance(figures, dict) or "known_rejected" not in figures:
        return []
    lines = [f"'unknown' answer ({figures.get('cut_from')}): {figures['known_rejected']:.1%} of the "
             f"{figures.get('n_known')} images here would be rejected"]
    if figures.get("auroc") is not None:
        lines.append(f"  and {figures['unknown_rejected']:.1%} of {figures['n_unknown']} images of other things; "
                     f"AUROC {figures['auroc']:.3f} (top probability: {figures['baseline_auroc']:.3f})")
    return lines
