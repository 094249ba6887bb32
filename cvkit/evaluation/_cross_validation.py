"""``cvkit.cross_validate``: repeated stratified K-fold, out-of-fold probabilities for every photo,
and one :class:`~cvkit.evaluation.EvaluationReport` (with its intervals) over them.

Why: with 30 to 3,000 photos, one test split of a third of them says little (on 36 test photos one
photo is 2.8 points), and another split easily moves accuracy by 10 points. Cross-validation tests
every photo once per repeat, with a model that never saw it; repeating with other shuffles averages
out the luck of one cut. For a :class:`~cvkit.classifiers.FeatureClassifier` the photos are
featurized once and each fold refits only the head, so 5 folds × 3 repeats take seconds; a
:class:`~cvkit.classifiers.FineTuneClassifier` is trained from scratch on every fold (minutes each).

Example:
    >>> import cvkit
    >>> result = cvkit.cross_validate(cvkit.FeatureClassifier(verbose=False), "sample_data", cv=5, repeats=2)
    >>> print(result.summary())
    accuracy 0.962 (0.905–0.990), balanced accuracy 0.953 (0.873–0.990) over 5 folds × 2 repeats, 104 images
    >>> result.oof_proba.shape, result.scores["test_accuracy"].shape
    ((2, 104, 4), (10,))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvkit.evaluation._folds import (
    Fold,
    FoldFitter,
    LabelledImages,
    fold_scores,
    labelled_images,
    repeated_folds,
    run_folds,
    slow_notice,
    verbose_of,
)
from cvkit.evaluation._report import EvaluationReport, EvaluationWarning
from cvkit.evaluation._tables import between

__all__ = ["CrossValidationResult", "cross_validate", "cross_validate_on"]


@dataclass(repr=False)
class CrossValidationResult:
    """What :func:`cross_validate` found.

    Attributes
    ----------
    classes : the class names, the columns of the probabilities.
    paths, labels : each photo (path) and its true class, in the order of the rows below.
    oof_proba : ``(repeats, n_images, n_classes)``: each photo's probabilities in each repeat, from
        the model of the one fold that did not train on it.
    proba : ``(n_images, n_classes)``: their mean over the repeats (what :attr:`report` scores).
    fold_of : ``(repeats, n_images)``: the fold that tested each photo, in each repeat.
    scores : per fold (repeat after repeat), like scikit-learn's ``cross_validate``:
        ``"test_accuracy"``, ``"test_balanced_accuracy"`` and ``"fit_time"`` (seconds to fit and predict).
    n_splits, n_repeats : folds per repeat, and repeats.
    report : an :class:`~cvkit.evaluation.EvaluationReport` of :attr:`proba`, with its 95% intervals.
    skipped : ``(path, reason)`` of photos left out (unreadable).
    classifier : the (unfitted) classifier, as given.
    """

    classes: list[str]
    paths: list[str]
    labels: list[str]
    oof_proba: np.ndarray
    proba: np.ndarray
    fold_of: np.ndarray
    scores: dict[str, np.ndarray]
    n_splits: int
    n_repeats: int
    report: EvaluationReport
    skipped: list[tuple[str, str]] = field(default_factory=list)
    classifier: Any = None

    @property
    def n_images(self) -> int:
        """Photos with out-of-fold predictions."""
        return len(self.paths)

    def summary(self) -> str:
        """One line: accuracy and balanced accuracy of the out-of-fold predictions, with their 95%
        intervals (a bootstrap over the photos), the folds and the number of photos."""
        found, r = self.report.intervals(), self.report
        return (f"accuracy {r.accuracy:.3f}{between(found['accuracy'])}, balanced accuracy "
                f"{r.balanced_accuracy:.3f}{between(found['balanced_accuracy'])} over {self.n_splits} folds × "
                f"{self.n_repeats} repeat{'s' if self.n_repeats > 1 else ''}, {self.n_images} images")

    def __repr__(self) -> str:
        return f"<CrossValidationResult: {self.summary()}>"


def cross_validate(classifier: Any, dataset: Any, cv: int = 5, repeats: int = 1, random_state: int | None = 0,
                   *, verbose: bool | None = None) -> CrossValidationResult:
    """Cross-validate an unfitted ``classifier`` (it is not changed) on the labelled photos of ``dataset``.

    ``dataset`` is any labelled input of :meth:`cvkit.ImageSource.resolve`: an
    :class:`~cvkit.data.ImageDataset`, a folder of class folders, a ``path<TAB>label`` table, a split
    manifest (its train side). The photos are cut ``repeats`` times into ``cv`` stratified folds
    (``cv`` is lowered to the size of the smallest class when needed); identical files stay in one
    fold, as :meth:`~cvkit.data.ImageDataset.split` keeps them on one side. Each fold is tested by
    a model trained on the others.

    A :class:`~cvkit.classifiers.FeatureClassifier` is featurized once; each fold refits its head and
    then its calibration temperature, exactly as ``fit`` does (so the out-of-fold probabilities are
    the calibrated ones a saved model would give). Any other classifier (a
    :class:`~cvkit.classifiers.FineTuneClassifier`) is cloned and trained on every fold: allowed,
    but ``cv × repeats`` full trainings (a line says so). Unreadable photos are reported and left
    out. ``verbose`` (default: the classifier's own) shows a progress bar over the folds.

    Returns a :class:`CrossValidationResult`: out-of-fold probabilities for every photo and repeat,
    per-fold scores, and :attr:`~CrossValidationResult.report`, an evaluation of them all.

    Example:
        >>> import cvkit
        >>> result = cross_validate(cvkit.FeatureClassifier(verbose=False), "sample_data/tags.tsv", cv=3)
        >>> result.n_splits, result.n_images, result.scores["test_accuracy"].mean() > 0.85
        (3, 104, True)
        >>> result.report.accuracy > 0.85, sorted(set(result.fold_of[0].tolist()))
        (True, [0, 1, 2])
    """
    data = labelled_images(dataset, "cross_validate")
    folds = repeated_folds(data, cv, repeats, random_state)
    show = verbose_of(classifier, verbose)
    slow_notice(classifier, len(folds), "cross_validate")
    return cross_validate_on(FoldFitter(classifier, data, verbose=show), folds, verbose=show)


def cross_validate_on(fitter: FoldFitter, folds: list[Fold], verbose: bool = False) -> CrossValidationResult:
    """:func:`cross_validate`'s work on given folds (so :func:`~cvkit.evaluation.compare` can run two
    classifiers on the very same ones)."""
    data = fitter.data
    oof, seconds = run_folds(fitter, folds, fitter.what, verbose=verbose)
    scores = np.array([fold_scores(data.codes[f.test], oof[f.repeat, f.test]) for f in folds])
    fold_of = np.zeros(oof.shape[:2], dtype=np.int64)
    for f in folds:
        fold_of[f.repeat, f.test] = f.index
    keep = ~np.isnan(oof).any(axis=(0, 2))
    names = data.names
    skipped = list(data.source.skipped) + [(names[i], "could not be read") for i in np.flatnonzero(~keep)]
    return CrossValidationResult(
        classes=list(data.classes), paths=[n for n, k in zip(names, keep) if k],
        labels=[data.classes[c] for c in data.codes[keep]], oof_proba=oof[:, keep], proba=oof[:, keep].mean(axis=0),
        fold_of=fold_of[:, keep], n_splits=1 + max(f.index for f in folds), n_repeats=oof.shape[0],
        scores={"test_accuracy": scores[:, 0], "test_balanced_accuracy": scores[:, 1], "fit_time": seconds},
        report=_report(data, oof[:, keep].mean(axis=0), keep, folds), skipped=skipped, classifier=fitter.classifier)


def _report(data: LabelledImages, proba: np.ndarray, keep: np.ndarray, folds: list[Fold]) -> EvaluationReport:
    info = {"evaluated_by": "cross-validation", "n_splits": 1 + max(f.index for f in folds),
            "n_repeats": 1 + max(f.repeat for f in folds), "duplicate_groups_kept": data.n_kept}
    names = [n for n, k in zip(data.names, keep) if k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)  # a class never predicted: the report says so itself
        return EvaluationReport(data.codes[keep], proba, data.classes, paths=names, info=info)
