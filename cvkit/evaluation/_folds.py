"""Repeated, stratified, duplicate-aware folds, and fitting a classifier on them: what
:func:`~cvkit.evaluation.cross_validate`, :func:`~cvkit.evaluation.compare` and
:func:`~cvkit.evaluation.learning_curve` share.

Why here, in one place: the three must cut the photos the same way (two classifiers compared on
the same folds; duplicates of one photo never on both sides, as :meth:`cvkit.ImageDataset.split`
keeps them) and must fit a :class:`~cvkit.classifiers.FeatureClassifier` the fast way: its photos
are featurized once, and each fold refits only the head (and its calibration temperature, as
``fit`` finds it). Any other classifier (a :class:`~cvkit.classifiers.FineTuneClassifier`) is cloned
and refitted from the photos on every fold: correct, but minutes per fold.

Example:
    >>> data = labelled_images("sample_data", "cross_validate")
    >>> folds = repeated_folds(data, cv=5, repeats=2, random_state=0)
    >>> len(folds), sorted(np.concatenate([f.test for f in folds if f.repeat == 0]).tolist()) == list(range(104))
    (10, True)
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.classifiers._features import FeatureClassifier, featurize
from cvkit.classifiers._inputs import labelled_source
from cvkit.data._checks import same_image_groups
from cvkit.data._inputs import encode_labels
from cvkit.data._source import ImageSource
from cvkit.models._calibration import tempered

__all__ = ["LabelledImages", "Fold", "labelled_images", "repeated_folds", "FoldFitter", "fold_scores",
           "run_folds", "slow_notice", "verbose_of", "REPEATS", "RANDOM_STATE"]

#: The constraints of ``repeats``.
REPEATS = [Interval(int, 1, None)]
#: The constraints of ``random_state``.
RANDOM_STATE = [Interval(int, 0, 2 ** 32 - 1), None]


@dataclass
class LabelledImages:
    """The photos to cross-validate on, resolved once: ``source`` (items and labels), the sorted
    ``classes``, each photo's class index ``codes``, and a duplicate ``groups`` id per photo."""

    source: ImageSource
    classes: list[str]
    codes: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def names(self) -> list[str]:
        """How each photo is named in results: its path (``<array #i>`` for an array)."""
        return [self.source.name(i) for i in range(len(self))]

    @property
    def n_kept(self) -> int:
        """Number of duplicate groups (2+ photos) kept on one side of every fold."""
        return int((np.bincount(self.groups) > 1).sum()) if len(self.groups) else 0


def labelled_images(dataset: Any, what: str) -> LabelledImages:
    """Any labelled input of :meth:`cvkit.ImageSource.resolve` (a dataset, a folder of class folders, a
    table, a split manifest's train side) with its class codes and duplicate groups (identical
    files, as :meth:`cvkit.ImageDataset.split` groups them by default)."""
    source = labelled_source(dataset, what=what, side="train")
    classes, codes = encode_labels(source.labels)
    if all(isinstance(item, str) for item in source.items):
        groups = same_image_groups(source.items)
    else:
        groups = np.arange(len(codes))
    return LabelledImages(source, list(classes), np.asarray(codes, dtype=np.int64), np.asarray(groups))


@dataclass
class Fold:
    """One fold of one repeat: photo indices to train on and to test on."""

    repeat: int
    index: int
    train: np.ndarray
    test: np.ndarray


def _n_folds(codes: np.ndarray, cv: int) -> int:
    """``cv``, lowered to the size of the smallest class (a class needs a photo in every test fold)."""
    smallest = int(np.bincount(codes).min())
    folds = min(int(cv), smallest)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 images per class for {cv} folds; the smallest "
                         f"class has {smallest}")
    return folds


def repeated_folds(data: LabelledImages, cv: int = 5, repeats: int = 1,
                   random_state: int | None = 0) -> list[Fold]:
    """``repeats`` × stratified ``cv``-fold cuts of ``data``: every photo is tested exactly once per
    repeat, and a group of duplicates stays on one side (scikit-learn's ``StratifiedGroupKFold``
    when there are groups of 2+, else ``StratifiedKFold``). Repeat ``r`` is shuffled with its own
    seed drawn from ``random_state``, so the same arguments always give the same folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    check_param("cv", cv, [Interval(int, 2, None)])
    check_param("repeats", repeats, REPEATS)
    check_param("random_state", random_state, RANDOM_STATE)
    n_folds = _n_folds(data.codes, cv)
    seeds = np.random.RandomState(random_state).randint(0, 2 ** 31 - 1, size=repeats)
    folds = []
    for repeat, seed in enumerate(seeds):
        if data.n_kept:
            splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=int(seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "least populated class ..." on tiny classes
                cuts = list(splitter.split(data.codes, data.codes, data.groups))
        else:
            cuts = StratifiedKFold(n_folds, shuffle=True, random_state=int(seed)).split(data.codes, data.codes)
        folds += [Fold(repeat, i, np.sort(train), np.sort(test)) for i, (train, test) in enumerate(cuts)]
    return folds


@dataclass
class FoldFitter:
    """Fits ``classifier`` on a fold's training photos and gives its probabilities for the test photos.

    For a :class:`~cvkit.classifiers.FeatureClassifier` the photos are featurized once (features
    shared through ``features``, keyed by backbone and runtime, so two classifiers on one backbone
    featurize once between them) and each fold fits the head, then its calibration, as ``fit`` does.
    Anything else is cloned and fitted on the fold's photos. Unreadable photos get NaN rows (and
    one warning naming them and ``what`` was reading them).
    """

    classifier: Any
    data: LabelledImages
    features: dict = field(default_factory=dict)
    verbose: bool = False
    what: str = "cross_validate"

    def __post_init__(self) -> None:
        self.fast = isinstance(self.classifier, FeatureClassifier)
        if self.fast:
            from sklearn.base import clone

            self._model = clone(self.classifier)
            self._model._checked_params()
            self._F, self._ok = self._featurized()

    def _featurized(self) -> tuple[np.ndarray, np.ndarray]:
        from cvkit import backbones
        from cvkit.options import resolve_runtime

        key = (backbones.info(self._model.backbone).name, resolve_runtime(self._model.runtime))
        if key not in self.features:
            featurizer = self._model.make_featurizer(verbose=self.verbose)
            self.features[key] = featurize(featurizer, self.data.source.items, self.what, verbose=self.verbose)
        return self.features[key]

    def fit_predict(self, train: np.ndarray, test: np.ndarray, calibrate: bool = True) -> np.ndarray:
        """``(len(test), n_classes)`` probabilities from a model fitted on ``train`` (NaN: unreadable).
        ``calibrate=False`` skips the temperature (the answers, so accuracy and recall, are the same)."""
        if self.fast:
            return self._fit_predict_head(train, test, calibrate)
        from sklearn.base import clone

        model = clone(self.classifier).fit(self.data.source.subset(train))
        proba = np.asarray(model.predict_proba(self.data.source.subset(test)), dtype=np.float64)
        return self._columns(proba, [self.data.classes.index(str(c)) for c in model.classes_])

    def _fit_predict_head(self, train: np.ndarray, test: np.ndarray, calibrate: bool) -> np.ndarray:
        classes, codes, F = self.data.classes, self.data.codes, self._F
        train, tested = train[self._ok[train]], test[self._ok[test]]
        model = self._model
        chosen = model.fit_calibrated_head(F[train], codes[train], classes, calibrate=calibrate)
        head, temperature = chosen.head, float(chosen.calibration.get("temperature", 1.0))
        proba = np.full((len(test), len(classes)), np.nan)
        if len(tested):
            found = tempered(head.predict_proba(F[tested]), temperature).astype(np.float64)
            proba[self._ok[test]] = self._columns(found, [int(c) for c in head.classes_])
        return proba

    def _columns(self, proba: np.ndarray, columns: list[int]) -> np.ndarray:
        """``proba`` with one column per class of ``data`` (a class a fold never saw gets 0)."""
        out = np.zeros((len(proba), len(self.data.classes)))
        out[:, columns] = proba
        out[np.isnan(proba).any(axis=1)] = np.nan
        return out


def fold_scores(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """``(accuracy, balanced accuracy)`` of one fold's readable test photos (balanced: the mean recall
    over the classes present).

    Example:
        >>> fold_scores(np.array([0, 0, 0, 1]), np.array([[.9, .1], [.8, .2], [.3, .7], [.4, .6]]))
        (0.75, 0.8333333333333333)
    """
    keep = ~np.isnan(proba).any(axis=1)
    y, pred = y[keep], proba[keep].argmax(axis=1)
    if not len(y):
        return float("nan"), float("nan")
    recalls = [np.mean(pred[y == c] == c) for c in np.unique(y)]
    return float(np.mean(pred == y)), float(np.mean(recalls))


def run_folds(fitter: FoldFitter, folds: list[Fold], what: str, verbose: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(oof, seconds)``: out-of-fold probabilities ``(repeats, n, n_classes)`` of ``fitter`` on
    ``folds`` and the seconds each fold took to fit and predict. A progress bar when ``verbose``."""
    from tqdm.auto import tqdm

    repeats = 1 + max(f.repeat for f in folds)
    oof = np.full((repeats, len(fitter.data), len(fitter.data.classes)), np.nan)
    seconds = np.zeros(len(folds))
    for i, fold in enumerate(tqdm(folds, desc=what, unit="fold", disable=not verbose, leave=False)):
        start = time.perf_counter()
        oof[fold.repeat, fold.test] = fitter.fit_predict(fold.train, fold.test)
        seconds[i] = time.perf_counter() - start
    return oof, seconds


def verbose_of(classifier: Any, verbose: bool | None) -> bool:
    """``verbose`` as given, else the classifier's own switch (its ``verbose``: ``"auto"``, 1 and True show bars)."""
    if verbose is not None:
        return bool(verbose)
    value = getattr(classifier, "verbose", False)
    return bool(value) if not isinstance(value, str) else value != "0"


def slow_notice(classifier: Any, n_fits: int, what: str) -> None:
    """One printed line when ``classifier`` is refitted from its photos on each fold (not a
    :class:`~cvkit.classifiers.FeatureClassifier`, whose folds take seconds)."""
    if not isinstance(classifier, FeatureClassifier):
        print(f"{what}: {type(classifier).__name__} is trained from scratch {n_fits} times (once per fold); "
              "this takes a while (a FeatureClassifier takes seconds)")
