"""Choosing a classifier by name (:func:`make_classifier`), and the deprecated ``cross_validate``.

``cvkit.classifiers.cross_validate`` (a dict of per-fold accuracies) is deprecated: use
:func:`cvkit.cross_validate` (repeated folds, duplicates kept in one fold, out-of-fold probabilities
for every photo and an :class:`~cvkit.evaluation.EvaluationReport` with intervals). It keeps working,
with a ``FutureWarning``, for one minor version (cvkit's deprecation rule).

Example:
    >>> import warnings
    >>> from cvkit.classifiers import FeatureClassifier, cross_validate
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     cv = cross_validate(FeatureClassifier(verbose=False), "sample_data", cv=5)   # a folder of class folders
    >>> len(cv["scores"]), cv["mean"] > 0.85, "cvkit.cross_validate" in str(caught[0].message)
    (5, True, True)
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from cvkit._validation import DEPRECATED, DEPRECATION_RULE, Interval, Options, check_param, param_value, renamed_keyword
from cvkit.classifiers._features import FeatureClassifier, featurize
from cvkit.classifiers._inputs import labelled_source
from cvkit.data._inputs import encode_labels
from cvkit.data._source import ImageSource

__all__ = ["cross_validate", "make_classifier", "METHODS"]

#: Training methods understood by :func:`make_classifier` (and the notebook and CLI).
METHODS = ("features", "finetune")


def make_classifier(method: str = "features", backbone: str = "efficientnet_lite0", epochs: int = 10,
                    augment: Any = "default", random_state: int | None = 0, verbose: Any = True,
                    progress: Any = DEPRECATED, class_weight: str | dict | None = "auto", **params: Any) -> Any:
    """A classifier for ``method``: ``"features"`` (:class:`FeatureClassifier`) or ``"finetune"``
    (:class:`FineTuneClassifier` with ``epochs`` and ``augment``). Extra ``params`` go to the class.

    ``verbose`` (``progress`` is its deprecated former name) is passed on: ``True`` shows progress
    bars (Keras' ``"auto"`` for fine-tuning), ``False`` nothing. Used by ``notebooks/01_train.ipynb``
    and ``cvkit train`` so both build the same model. ``class_weight="balanced"`` (``cvkit train
    --class-weight balanced``) makes every class count the same in training, whatever its size.

    Example:
        >>> make_classifier("features", class_weight="balanced").class_weight
        'balanced'
        >>> make_classifier("finetune", epochs=3).epochs
        3
        >>> make_classifier("features", verbose=False).verbose
        False
    """
    check_param("method", method, [Options(METHODS)])
    verbose = renamed_keyword("make_classifier", "progress", progress, "verbose", verbose, default=True)
    if method == "features":
        from cvkit.classifiers._features import FeatureClassifier
        return FeatureClassifier(backbone=backbone, random_state=random_state, verbose=verbose,
                                 class_weight=class_weight, **params)
    if method == "finetune":
        from cvkit.classifiers._finetune import FineTuneClassifier
        if isinstance(verbose, bool):
            verbose = "auto" if verbose else 0
        return FineTuneClassifier(backbone=backbone, epochs=epochs, augment=augment, random_state=random_state,
                                  verbose=verbose, class_weight=class_weight, **params)
    raise AssertionError(method)  # pragma: no cover - checked above


def cross_validate(classifier: Any, dataset: Any, cv: int = 5, random_state: int | None = 0) -> dict[str, Any]:
    """Deprecated: use :func:`cvkit.cross_validate`. Stratified ``cv``-fold cross-validated accuracy
    of ``classifier`` (unfitted; it is not changed), with a ``FutureWarning``.

    ``dataset`` is any labelled input of :meth:`cvkit.ImageSource.resolve` (a labelled dataset, a
    folder of class folders, a ``path,label`` table, a split manifest's train side). Returns
    ``{"scores": [per fold], "mean", "std", "n_splits", "n_images"}``. Unreadable images are left
    out. ``cv`` is lowered to the size of the smallest class when needed.

    Example:
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", FutureWarning)
        ...     result = cross_validate(FeatureClassifier(verbose=False), "sample_data/tags.tsv", cv=3)
        >>> result["n_splits"], result["n_images"], result["mean"] > 0.8
        (3, 104, True)
    """
    warnings.warn("cvkit.classifiers.cross_validate is deprecated: use cvkit.cross_validate(classifier, dataset, "
                  "cv=5, repeats=3), which returns out-of-fold probabilities and a report with intervals "
                  f"({DEPRECATION_RULE})", FutureWarning, stacklevel=2)
    source = labelled_source(dataset, what="cross_validate", side="train")
    check_param("cv", cv, [Interval(int, 2, None)])
    classes, codes = encode_labels(source.labels)
    folds = min(int(cv), int(np.bincount(codes).min()))
    if folds < 2:
        raise ValueError(f"cross_validate needs at least 2 images per class for {cv} folds; the smallest "
                         f"class has {int(np.bincount(codes).min())}")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    if isinstance(classifier, FeatureClassifier):
        scores = _cross_validate_head(classifier, source, codes, classes, splitter)
    else:
        scores = []
        for train, test in splitter.split(np.zeros(len(codes)), codes):
            model = clone(classifier).fit(source.subset(train))
            scores.append(float(model.score(source.subset(test))))
    return {"scores": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores)),
            "n_splits": folds, "n_images": int(len(codes))}


def _cross_validate_head(classifier: Any, source: ImageSource, codes: np.ndarray, classes: list[str],
                         splitter: Any) -> list[float]:
    """Featurize once (as :meth:`FeatureClassifier.fit` does), then fit and score only the head on each fold."""
    model = clone(classifier)
    model._validate_params()
    featurizer = model.make_featurizer()
    verbose = bool(param_value(model, "progress", "verbose"))
    feats, ok = featurize(featurizer, source.items, "cross_validate", verbose=verbose)
    F, y = feats[ok], codes[ok]
    scores: list[float] = []
    for train, test in splitter.split(F, y):
        head = model.fit_head(F[train], y[train], classes)  # class_weight reaches every fold's head
        scores.append(float(np.mean(head.predict(F[test]) == y[test])))
    return scores
