"""Cross-validation of a cvkit classifier on a labelled dataset, and choosing a classifier by name.

For a :class:`~cvkit.classifiers.FeatureClassifier` the images are featurized once and only the
head is refitted per fold, so 5-fold cross-validation takes seconds; other classifiers are cloned
and refitted on each fold.

Example:
    >>> from cvkit.classifiers import cross_validate
    >>> cv = cross_validate(FeatureClassifier(), dataset, cv=5)  # doctest: +SKIP
    >>> round(cv["mean"], 3), round(cv["std"], 3)                 # doctest: +SKIP
    (0.942, 0.03)
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["cross_validate", "make_classifier", "METHODS"]

#: Training methods understood by :func:`make_classifier` (and the notebook and CLI).
METHODS = ("features", "finetune")


def make_classifier(method: str = "features", backbone: str = "efficientnet_lite0", epochs: int = 10,
                    augment: Any = "default", random_state: int | None = 0, progress: bool = True,
                    **params: Any) -> Any:
    """A classifier for ``method``: ``"features"`` (:class:`FeatureClassifier`) or ``"finetune"``
    (:class:`FineTuneClassifier` with ``epochs`` and ``augment``). Extra ``params`` go to the class.

    Used by ``notebooks/01_train.ipynb`` and ``cvkit train`` so both build the same model.

    Example:
        >>> make_classifier("finetune", epochs=3).epochs
        3
    """
    if method == "features":
        from cvkit.classifiers.features import FeatureClassifier
        return FeatureClassifier(backbone=backbone, random_state=random_state, progress=progress, **params)
    if method == "finetune":
        from cvkit.classifiers.finetune import FineTuneClassifier
        return FineTuneClassifier(backbone=backbone, epochs=epochs, augment=augment, random_state=random_state,
                                  verbose="auto" if progress else 0, **params)
    raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, not {method!r}")


def cross_validate(classifier: Any, dataset: Any, cv: int = 5, random_state: int | None = 0) -> dict[str, Any]:
    """Stratified ``cv``-fold cross-validated accuracy of ``classifier`` (unfitted; it is not changed).

    Returns ``{"scores": [per fold], "mean", "std", "n_splits", "n_images"}``. Unreadable images
    are left out. ``cv`` is lowered to the size of the smallest class when needed.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from cvkit.classifiers.features import FeatureClassifier
    from cvkit.data.inputs import labels_for

    labels = np.asarray(labels_for(dataset, None, what="cross_validate"), dtype=object)
    names = sorted(set(labels))
    codes = np.array([names.index(v) for v in labels])
    folds = min(int(cv), int(np.bincount(codes).min()))
    if folds < 2:
        raise ValueError(f"cross_validate needs at least 2 images per class for {cv} folds; the smallest "
                         f"class has {int(np.bincount(codes).min())}")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    scores: list[float] = []
    if isinstance(classifier, FeatureClassifier):
        model = clone(classifier)
        featurizer = model._make_featurizer().fit()
        feats, ok = model._features(featurizer, dataset, "cross_validate")
        F, y = feats[ok], codes[ok]
        for train, test in splitter.split(F, y):
            head = model._make_head(y[train])
            head.fit(F[train], y[train])
            scores.append(float(np.mean(head.predict(F[test]) == y[test])))
    else:
        for train, test in splitter.split(np.zeros(len(codes)), codes):
            model = clone(classifier).fit(dataset.subset(train))
            scores.append(float(model.score(dataset.subset(test))))
    return {"scores": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores)),
            "n_splits": folds, "n_images": int(len(codes))}
