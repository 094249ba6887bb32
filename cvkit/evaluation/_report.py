"""``EvaluationReport``: every classification metric cvkit reports, computed from labels and probabilities.

Why from arrays: a report needs nothing but the true classes and the predicted probabilities, so
it works for any model (cvkit's, a scikit-learn pipeline, a reloaded JSON report) and every number
can be checked against scikit-learn's own functions on the same arrays.

Conventions (all chosen to agree with scikit-learn):

- the predicted class is the arg-max of the probabilities (the first class wins a tie);
- log-loss clips probabilities to ``[eps, 1 - eps]`` with ``eps`` the machine epsilon of their dtype;
- per-class log-loss is the mean log-loss over the images *of* that class (as ML.NET reports it);
- ROC/PR curves are one-vs-rest; the macro AUC and macro average precision are the plain means over
  classes, the micro ones pool every (image, class) pair;
- a metric that is undefined (the precision of a class never predicted, the recall, AUC or
  log-loss of a class with no test images) is ``NaN`` and left out of macro averages, with one
  :class:`EvaluationWarning` naming the classes.

Example:
    >>> from cvkit.evaluation import EvaluationReport
    >>> report = EvaluationReport(["cat", "dog", "dog"], [[.8, .2], [.3, .7], [.6, .4]], ["cat", "dog"])
    >>> round(report.accuracy, 3)
    0.667
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._io import read_json, to_jsonable, write_json
from cvkit._validation import Custom, Interval, check_param
from cvkit.data._checks import warn_skipped
from cvkit.data._images import PathLike
from cvkit.evaluation import plots
from cvkit.evaluation._curves import Curves, pr_curves, roc_curves
from cvkit.evaluation._tables import ReportTables, names_list

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["EvaluationReport", "EvaluationWarning", "REPORT_FORMAT"]

REPORT_FORMAT = "cvkit-evaluation"
_FORMAT_VERSION = 1
#: The constraints of ``zero_division``: NaN (undefined, the default), 0.0 or 1.0.
ZERO_DIVISION = [Custom(lambda v: (Interval(float, 0, 1).is_satisfied_by(v) and v in (0, 1))
                        or (isinstance(v, float) and np.isnan(v)), "nan, 0.0 or 1.0")]


class EvaluationWarning(UserWarning):
    """Something about the evaluation data makes some metrics undefined or leaves images out."""


def _check_classes(classes: Sequence[str]) -> list[str]:
    """The class names as strings: at least two, all different."""
    names = [str(c) for c in classes]
    if len(names) < 2:
        raise ValueError(f"classes: a classifier needs at least 2 classes, got {names}")
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise ValueError(f"classes: duplicate class name(s) {names_list(dup)}")
    return names


def _as_proba(proba: Any, classes: list[str]) -> np.ndarray:
    """``proba`` as a 2-D float array with one column per class (NaN rows still in)."""
    proba = np.asarray(proba)
    if proba.dtype.kind not in "fiub":
        raise ValueError(f"proba must be numbers, got an array of dtype {proba.dtype}")
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be a 2-D array (n_images, n_classes), got shape {proba.shape}")
    if proba.shape[1] != len(classes):
        raise ValueError(f"proba has {proba.shape[1]} columns but there are {len(classes)} classes "
                         f"({names_list(classes)})")
    return proba


def _check_probabilities(proba: np.ndarray) -> None:
    """Every row finite, in [0, 1] and summing to 1: probabilities, not scores or logits."""
    if not np.isfinite(proba).all():
        row = int(np.flatnonzero(~np.isfinite(proba).all(axis=1))[0])
        raise ValueError(f"proba: row {row} contains an infinite value; pass probabilities")
    if proba.min() < 0 or proba.max() > 1:
        row = int(np.flatnonzero(((proba < 0) | (proba > 1)).any(axis=1))[0])
        raise ValueError(f"proba: row {row} has values outside [0, 1] ({proba[row].tolist()}); "
                         "pass probabilities (predict_proba), not scores or logits")
    sums = proba.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
    if len(bad):
        raise ValueError(f"proba: row {int(bad[0])} sums to {sums[bad[0]]:.4f}, not 1; "
                         "pass probabilities (predict_proba), not scores or logits")


class EvaluationReport(ReportTables):
    """Metrics, curves and error analysis for a classifier's predictions on a labelled test set.

    Parameters
    ----------
    y_true : the true class of each image, as class names (``"bird"``) or indices into ``classes``.
    proba : predicted probabilities, shape ``(n_images, n_classes)``, columns in ``classes`` order
        (what ``model.predict_proba`` returns). Rows that are all ``NaN`` (images the model could
        not read) are left out with one warning and listed in :attr:`skipped`.
    classes : the class names, in the column order of ``proba``.
    paths : optional image path per row, used by :meth:`top_losses` and the image grids.
    zero_division : value for a precision/recall/F1 that divides by zero. The default ``NaN``
        marks it as undefined (and leaves it out of macro averages); ``0.0`` gives scikit-learn's
        traditional behaviour.
    info : optional free-form details stored with the report (model folder, backbone ...).

    Example:
        >>> r = EvaluationReport([0, 1, 1, 0], [[.9, .1], [.2, .8], [.6, .4], [.7, .3]], ["a", "b"])
        >>> r.accuracy, r.confusion_matrix.tolist()
        (0.75, [[2, 0], [1, 1]])
    """

    def __init__(self, y_true: Sequence[str] | Sequence[int] | np.ndarray,
                 proba: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str],
                 paths: Sequence[PathLike] | None = None, *, zero_division: float = np.nan,
                 info: dict | None = None):
        self.classes: list[str] = _check_classes(classes)
        check_param("zero_division", zero_division, ZERO_DIVISION)
        self.zero_division = float(zero_division)
        self.info: dict = dict(info or {})

        proba = _as_proba(proba, self.classes)
        n = proba.shape[0]
        y = self._encode(y_true, n)
        path_list = None if paths is None else [os.fspath(p) for p in paths]
        if path_list is not None and len(path_list) != n:
            raise ValueError(f"paths has {len(path_list)} entries for {n} images")

        # Rows that could not be scored (unreadable images) are NaN: leave them out, loudly.
        nan_rows = np.isnan(proba).any(axis=1)
        where = path_list if path_list is not None else [f"row {i}" for i in range(n)]
        self.skipped: list[tuple[str, str]] = [(where[i], "no prediction (image could not be read)")
                                               for i in np.flatnonzero(nan_rows)]
        warn_skipped(self.skipped, "evaluation", category=EvaluationWarning,
                     summary=f"{len(self.skipped)} image(s) have no prediction (unreadable) and are "
                             "left out of the evaluation")
        if nan_rows.any():
            keep = ~nan_rows
            proba, y = proba[keep], y[keep]
            if path_list is not None:
                path_list = [p for p, k in zip(path_list, keep) if k]
        if len(y) == 0:
            raise ValueError("no images to evaluate (empty input, or every image was unreadable)")
        _check_probabilities(proba)

        self.proba: np.ndarray = proba
        self.y_true: np.ndarray = y
        self.paths: list[str] | None = path_list
        self.y_pred: np.ndarray = proba.argmax(axis=1).astype(np.int64)
        self._warn_undefined()

    # ------------------------------------------------------------------ input
    def _encode(self, y_true: Any, n: int) -> np.ndarray:
        y = np.asarray(y_true, dtype=object).reshape(-1) if not isinstance(y_true, np.ndarray) \
            else y_true.reshape(-1)
        if len(y) != n:
            raise ValueError(f"y_true has {len(y)} labels but proba has {n} rows")
        if n == 0:
            return np.zeros(0, np.int64)
        if y.dtype.kind in "iu" or all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in y):
            out = y.astype(np.int64)
            bad = out[(out < 0) | (out >= len(self.classes))]
            if len(bad):
                raise ValueError(f"y_true: class index {int(bad[0])} is out of range for "
                                 f"{len(self.classes)} classes")
            return out
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({str(v) for v in y if str(v) not in index})
        if unknown:
            raise ValueError(f"y_true: label(s) {names_list(unknown[:10])} are not among the classes "
                             f"({names_list(self.classes)})")
        return np.array([index[str(v)] for v in y], dtype=np.int64)

    def _warn_undefined(self) -> None:
        absent = [self.classes[c] for c in np.flatnonzero(self.support == 0)]
        if absent:
            warnings.warn(
                f"class(es) {names_list(absent)} have no images in the evaluation set: their recall, "
                "AUC, average precision and log-loss are undefined (NaN) and left out of the macro "
                "averages. Evaluate on a set with every class to measure them.",
                EvaluationWarning, stacklevel=3)
        never = [self.classes[c] for c in np.flatnonzero(self.confusion_matrix.sum(axis=0) == 0)
                 if self.support[c] > 0]
        if never:
            warnings.warn(f"class(es) {names_list(never)} were never predicted: their precision is "
                          "undefined" + (" (NaN)." if np.isnan(self.zero_division)
                                         else f" (set to {self.zero_division})."),
                          EvaluationWarning, stacklevel=3)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.y_true)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @cached_property
    def confusion_matrix(self) -> np.ndarray:
        """Counts: ``[i, j]`` is the number of images of class ``i`` predicted as class ``j``."""
        k = self.n_classes
        return np.bincount(self.y_true * k + self.y_pred, minlength=k * k).reshape(k, k)

    @property
    def confusion_matrix_normalized(self) -> np.ndarray:
        """Row-normalised confusion matrix: each row sums to 1 (a row of a class with no images is 0)."""
        cm = self.confusion_matrix.astype(np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        return np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)

    @property
    def support(self) -> np.ndarray:
        """Number of test images per class."""
        return self.confusion_matrix.sum(axis=1)

    @property
    def accuracy(self) -> float:
        """Fraction of images whose predicted class is the true class."""
        return float(np.mean(self.y_pred == self.y_true))

    @property
    def balanced_accuracy(self) -> float:
        """Class-averaged accuracy: the mean recall over the classes present in the test set."""
        present = self.support > 0
        return float(np.mean(np.diag(self.confusion_matrix)[present] / self.support[present]))

    def top_k_accuracy(self, k: int = 3) -> float:
        """Fraction of images whose true class is among the ``k`` most probable classes.

        Ties are broken like scikit-learn's ``top_k_accuracy_score`` (the later class ranks first).
        """
        check_param("k", k, [Interval(int, 1, None)])
        p_true = self.proba[np.arange(len(self)), self.y_true][:, None]
        cols = np.arange(self.n_classes)[None, :]
        ahead = (self.proba > p_true) | ((self.proba == p_true) & (cols > self.y_true[:, None]))
        return float(np.mean(ahead.sum(axis=1) < k))

    # ------------------------------------------------------------------ losses
    @cached_property
    def losses(self) -> np.ndarray:
        """Log-loss of each image: ``-log(p_true)``, with ``p_true`` clipped to ``[eps, 1 - eps]``."""
        eps = np.finfo(self.proba.dtype).eps
        p_true = np.clip(self.proba[np.arange(len(self)), self.y_true], eps, 1 - eps)
        return -np.log(p_true).astype(np.float64)

    @property
    def log_loss(self) -> float:
        """Mean log-loss (cross-entropy) over all images; lower is better, 0 is perfect."""
        return float(np.mean(self.losses))

    @property
    def per_class_log_loss(self) -> dict[str, float]:
        """Mean log-loss over the images of each class (``NaN`` for a class with no images)."""
        out = {}
        for c, name in enumerate(self.classes):
            mask = self.y_true == c
            out[name] = float(np.mean(self.losses[mask])) if mask.any() else float("nan")
        return out

    # ------------------------------------------------------------------ precision / recall
    @cached_property
    def calibration_error(self) -> float:
        """Expected calibration error of the top probability (15 equal-width bins; 0 is perfect).
        On a few dozen images it is noisy: a calibrated model scores about 0.1 on 34 images."""
        from cvkit.models._calibration import expected_calibration_error
        return expected_calibration_error(self.proba, self.y_true)

    def _divide(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        num, den = num.astype(np.float64), den.astype(np.float64)
        return np.divide(num, den, out=np.full_like(num, self.zero_division), where=den > 0)

    @property
    def precision(self) -> np.ndarray:
        """Per-class precision: of the images predicted as the class, the fraction that are."""
        cm = self.confusion_matrix
        return self._divide(np.diag(cm), cm.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        """Per-class recall: of the images of the class, the fraction predicted as it."""
        cm = self.confusion_matrix
        return self._divide(np.diag(cm), cm.sum(axis=1))

    @property
    def f1(self) -> np.ndarray:
        """Per-class F1: ``2 tp / (2 tp + fp + fn)``, the harmonic mean of precision and recall."""
        cm = self.confusion_matrix
        tp = np.diag(cm)
        return self._divide(2 * tp, cm.sum(axis=0) + cm.sum(axis=1))

    # ------------------------------------------------------------------ curves
    @cached_property
    def _roc(self) -> Curves:
        return roc_curves(self.y_true, self.proba, self.classes)

    def roc_curves(self) -> Curves:
        """One-vs-rest ROC curves: ``{name: (fpr, tpr, auc)}`` per class plus ``"micro"`` and ``"macro"``.

        The macro curve averages the class curves on a common false-positive grid; its AUC is the
        mean of the class AUCs (scikit-learn's ``roc_auc_score(..., average="macro")``).
        """
        return dict(self._roc)

    @property
    def auc(self) -> dict[str, float]:
        """ROC AUC per class plus ``"micro"`` and ``"macro"`` (``NaN`` where undefined)."""
        return {name: value[2] for name, value in self._roc.items()}

    @cached_property
    def _pr(self) -> Curves:
        return pr_curves(self.y_true, self.proba, self.classes)

    def pr_curves(self) -> Curves:
        """One-vs-rest precision-recall curves: ``{name: (precision, recall, average_precision)}``.

        Includes ``"micro"`` (pooled over classes). ``"macro"`` carries only the mean average
        precision (its curve arrays are ``NaN``: averaging PR curves is not meaningful).
        """
        return dict(self._pr)

    @property
    def average_precision(self) -> dict[str, float]:
        """Average precision (area under the PR curve) per class plus ``"micro"`` and ``"macro"``."""
        return {name: value[2] for name, value in self._pr.items()}

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict:
        """Everything as JSON-ready Python data: metrics, per-class table, confusion matrix and the
        predictions themselves (so :meth:`from_dict` rebuilds the report). Undefined values are ``None``.
        """
        table = self.per_class()
        per_class = {name: {col: table.loc[name, col] for col in table.columns} for name in self.classes}
        return to_jsonable({
            "format": REPORT_FORMAT, "format_version": _FORMAT_VERSION,
            "classes": self.classes, "info": self.info,
            "metrics": self.summary(),
            "intervals": self.intervals(),
            "calibration_error": self.calibration_error,
            "per_class_log_loss": self.per_class_log_loss,
            "auc": self.auc, "average_precision": self.average_precision,
            "per_class": per_class,
            "confusion_matrix": self.confusion_matrix,
            "most_confused": self.most_confused(n=10).values.tolist(),
            "skipped": [list(s) for s in self.skipped],
            "zero_division": self.zero_division,
            "predictions": {"paths": self.paths,
                            "y_true": [self.classes[t] for t in self.y_true],
                            "proba": self.proba.astype(np.float64)},
        })

    def to_json(self, path: PathLike | None = None, indent: int | None = 1) -> str:
        """:meth:`to_dict` as JSON; written to ``path`` when given (folders created; atomically, by
        :func:`cvkit._io.write_json`). Returns the text.

        Example:
            >>> import os, tempfile
            >>> report = EvaluationReport(["a", "b"], [[.9, .1], [.2, .8]], ["a", "b"])
            >>> path = os.path.join(tempfile.mkdtemp(), "reports", "eval.json")
            >>> text = report.to_json(path)
            >>> EvaluationReport.from_json(path).accuracy, open(path).read() == text + "\\n"
            (1.0, True)
        """
        doc = self.to_dict()
        text = json.dumps(doc, indent=indent, ensure_ascii=False, allow_nan=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write_json(path, doc, indent=indent)
        return text

    @classmethod
    def from_dict(cls, doc: dict) -> EvaluationReport:
        """Rebuild a report from :meth:`to_dict` output (metrics are recomputed from the predictions)."""
        if not isinstance(doc, dict) or doc.get("format") != REPORT_FORMAT:
            raise ValueError(f"not a cvkit evaluation report (missing \"format\": \"{REPORT_FORMAT}\")")
        pred = doc.get("predictions")
        if not isinstance(pred, dict) or "y_true" not in pred or "proba" not in pred:
            raise ValueError("evaluation report: field 'predictions' must hold 'y_true' and 'proba'")
        zero_division = doc.get("zero_division")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EvaluationWarning)  # already warned when first made
            report = cls(pred["y_true"], np.asarray(pred["proba"], dtype=np.float64), doc["classes"],
                         paths=pred.get("paths"), info=doc.get("info"),
                         zero_division=float("nan") if zero_division is None else float(zero_division))
        report.skipped = [tuple(s) for s in doc.get("skipped", [])]
        return report

    @classmethod
    def from_json(cls, path: PathLike) -> EvaluationReport:
        """Read a report written by :meth:`to_json`."""
        path = Path(path)
        doc = read_json(path, "evaluation report")
        try:
            return cls.from_dict(doc)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        return (f"<EvaluationReport: {len(self)} images, {self.n_classes} classes, "
                f"accuracy {self.accuracy:.3f}, log-loss {self.log_loss:.3f}>")

    # ------------------------------------------------------------------ plots (see cvkit.evaluation.plots)
    def plot_confusion_matrix(self, ax: Axes | None = None, normalize: bool = False, **kwargs: Any) -> Figure:
        """Confusion matrix with class names on the axes; ``normalize=True`` shows row fractions."""
        return plots.plot_confusion_matrix(self, ax=ax, normalize=normalize, **kwargs)

    def plot_roc(self, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """One-vs-rest ROC curves with AUC per class and micro/macro averages."""
        return plots.plot_roc(self, ax=ax, **kwargs)

    def plot_pr(self, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Precision-recall curves with average precision per class and the micro average."""
        return plots.plot_pr(self, ax=ax, **kwargs)

    def plot_summary(self, **kwargs: Any) -> Figure:
        """Confusion matrix, ROC and PR side by side in one Figure."""
        return plots.plot_summary(self, **kwargs)

    def plot_thresholds(self, class_name: str | None = None, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Precision, recall and coverage as the confidence threshold varies."""
        return plots.plot_thresholds(self, class_name=class_name, ax=ax, **kwargs)

    def plot_calibration(self, n_bins: int = 10, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Reliability diagram of the top probability, with the ECE (:attr:`calibration_error`)."""
        return plots.plot_calibration(self, n_bins=n_bins, ax=ax, **kwargs)

    def plot_predictions(self, n: int = 16, **kwargs: Any) -> Figure:
        """A grid of test images titled true vs predicted; mistakes in red."""
        return plots.plot_predictions(self, n=n, **kwargs)

    def plot_top_losses(self, k: int = 9, **kwargs: Any) -> Figure:
        """A grid of the ``k`` images with the highest loss."""
        return plots.plot_top_losses(self, k=k, **kwargs)
