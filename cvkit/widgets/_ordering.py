"""Which photos to label, and in which order: a model refitted on the labels so far ranks the rest by uncertainty.

Why: in folder order a labeller spends most of the time on photos a model already gets right.
:class:`UncertaintyRanker` fits a logistic regression on the cached backbone features of the
labelled photos (a fraction of a second; features come from
:func:`cvkit.evaluation._audit.image_features`, computed once per photo and kept in memory, and
cached on disk by the featurizer), measures its cross-validated accuracy with
:func:`cvkit.evaluation._audit.out_of_fold_probabilities`, and orders the unlabelled photos by
*margin* (top probability minus the second: smallest first) or *entropy* (largest first). Its
suggestion for each photo lets one key accept the model's guess.

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> ranker = UncertaintyRanker()
    >>> ranker.fit(train.paths[:30], train.image_labels[:30])
    True
    >>> order, suggestions = ranker.rank(test.paths[:5])
    >>> sorted(order) == sorted(test.paths[:5]), 0 <= ranker.cv_accuracy_ <= 1
    (True, True)
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvkit.data._checks import BadImageWarning
from cvkit.data._dataset import ImageDataset
from cvkit.data._sources import list_images
from cvkit.evaluation._active import uncertainty_order, uncertainty_scores
from cvkit.evaluation._audit import default_featurizer, image_features, out_of_fold_probabilities

__all__ = ["UncertaintyRanker", "ORDERS", "resolve_images", "reorder", "describe"]

#: The orders the annotation widget offers.
ORDERS = ("folder", "random", "uncertain")


class UncertaintyRanker:
    """Fit on labelled photos, rank unlabelled ones by uncertainty (see the module docstring).

    Parameters
    ----------
    featurizer : an :class:`~cvkit.features._featurizer.ImageFeaturizer` (or anything with
        ``transform(paths, return_mask=True)``); default the audit's cached EfficientNet-Lite0.
    measure : ``"margin"`` or ``"entropy"``.
    cv : folds of the cross-validated accuracy (fewer when a class has fewer photos).

    After :meth:`fit`: ``classes_``, ``n_fit_`` (photos used) and ``cv_accuracy_`` (None when a
    class has a single photo).
    """

    def __init__(self, featurizer: Any = None, measure: str = "margin", cv: int = 5, random_state: int | None = 0):
        uncertainty_scores(np.ones((1, 2)) / 2, measure)  # checks the name now
        self.featurizer = featurizer
        self.measure = measure
        self.cv = cv
        self.random_state = random_state
        self._features: dict[str, np.ndarray | None] = {}
        self.model_: Any = None
        self.classes_: list[str] = []
        self.n_fit_ = 0
        self.cv_accuracy_: float | None = None

    def features(self, paths: Sequence[str]) -> dict[str, np.ndarray | None]:
        """``{path: feature vector or None (unreadable)}``; each photo is featurized once."""
        missing = [p for p in dict.fromkeys(paths) if p not in self._features]
        if missing:
            if self.featurizer is None:
                self.featurizer = default_featurizer()
            with warnings.catch_warnings():  # the widget shows unreadable photos itself
                warnings.simplefilter("ignore", BadImageWarning)
                F, ok = image_features(ImageDataset(missing), self.featurizer, "AnnotationWidget")
            self._features.update({p: (F[i] if ok[i] else None) for i, p in enumerate(missing)})
        return {p: self._features[p] for p in paths}

    def fit(self, paths: Sequence[str], labels: Sequence[str]) -> bool:
        """Fit on labelled photos; False (and nothing changes) while fewer than 2 classes have photos."""
        feats = self.features(paths)
        rows = [(feats[p], y) for p, y in zip(paths, labels) if feats[p] is not None]
        counts = Counter(y for _, y in rows)
        if len(counts) < 2:
            return False
        classes = sorted(counts)
        X = np.stack([f for f, _ in rows])
        y = np.array([classes.index(label) for _, label in rows])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000,
                                                                   random_state=self.random_state))
        self.model_ = model.fit(X, y)
        self.classes_, self.n_fit_ = classes, len(rows)
        folds = min(self.cv, min(counts.values()))
        self.cv_accuracy_ = None
        if folds >= 2:
            P = out_of_fold_probabilities(X, y, len(classes), cv=folds, random_state=self.random_state)
            self.cv_accuracy_ = float(np.mean(P.argmax(axis=1) == y))
        return True

    def rank(self, paths: Sequence[str]) -> tuple[list[str], dict[str, tuple[str, float]]]:
        """``(paths most uncertain first, {path: (suggested label, its probability)})``.

        Unreadable photos go last and get no suggestion.
        """
        if self.model_ is None:
            return list(paths), {}
        feats = self.features(paths)
        readable = [p for p in paths if feats[p] is not None]
        if not readable:
            return list(paths), {}
        P = self.model_.predict_proba(np.stack([feats[p] for p in readable]))
        order = uncertainty_order(P, self.measure)
        ranked = [readable[i] for i in order] + [p for p in paths if feats[p] is None]
        suggestions = {p: (self.classes_[int(P[i].argmax())], float(P[i].max())) for i, p in enumerate(readable)}
        return ranked, suggestions


def reorder(paths: list[str], after: int, is_pending: Callable[[str], bool],
            ranker: UncertaintyRanker) -> tuple[list[str], dict[str, tuple[str, float]]]:
    """``(new order, suggestions)``: ``paths`` up to position ``after`` unchanged, then the pending
    photos most uncertain first, then the others (labelled or excluded) as they were.

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> ranker = UncertaintyRanker(); _ = ranker.fit(train.paths[:30], train.image_labels[:30])
        >>> order, _ = reorder(test.paths[:4], 0, lambda p: True, ranker)
        >>> order[0] == test.paths[0], sorted(order) == sorted(test.paths[:4])
        (True, True)
    """
    head, tail = paths[:after + 1], paths[after + 1:]
    pending = [p for p in tail if is_pending(p)]
    ranked, suggestions = ranker.rank(pending)
    waiting = set(pending)
    return head + ranked + [p for p in tail if p not in waiting], suggestions


def describe(ranker: UncertaintyRanker | None, fitted_at: int | None, n_labelled: int, refit_every: int) -> str:
    """The widget's one-line (HTML) account of the model behind the order; empty without one.

    Example:
        >>> describe(UncertaintyRanker(), None, 3, 10)[:40]
        'uncertain first: the model is fitted onc'
    """
    if ranker is None:
        return ""
    if fitted_at is None:
        return (f"uncertain first: the model is fitted once {refit_every} images have labels in 2 classes; "
                "until then the order is random")
    acc = ranker.cv_accuracy_
    shown = f"cross-validated accuracy <b>{acc:.0%}</b>" if acc is not None else "accuracy not yet measurable"
    due = max(fitted_at + refit_every - n_labelled, 0)
    return f"uncertain first: model fitted on {ranker.n_fit_} labels, {shown}; next refit in {due} label(s)"


def resolve_images(images: Any) -> tuple[list[str], str | None, list[str]]:
    """``(paths, root, dataset_labels)`` from a folder, a list of paths or an ImageDataset.

    Example:
        >>> resolve_images("sample_data/fruit")[0][:1]
        ['sample_data/fruit/apple_fuji.jpg']
    """
    if isinstance(images, ImageDataset):
        return list(images.paths), images.root, list(images.labels)
    if isinstance(images, (str, os.PathLike)):
        if not os.path.isdir(images):
            raise FileNotFoundError(f"{os.fspath(images)}: image folder not found")
        paths = list_images(images)
        if not paths:
            raise ValueError(f"{os.fspath(images)}: no images found (looked for files ending in "
                             ".jpg, .jpeg, .png, .bmp, .gif, .webp, .tif or .tiff)")
        return paths, os.fspath(images), []
    try:
        paths = [os.fspath(p) for p in images]
    except TypeError:
        raise TypeError("images must be a folder, a list of image paths or an ImageDataset, not "
                        f"{type(images).__name__}") from None
    return paths, None, []
