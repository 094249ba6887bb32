"""``FeatureClassifier``: a pretrained backbone turns images into features, scikit-learn learns on them.

The fast, strong baseline for small datasets (cvtk's "DNN featurization", ML.NET's image
classification tutorial): nothing in the network is trained, so a fit takes seconds and cannot
overfit the backbone. Features are cached on disk by image content, so refitting with another
head or another split costs almost nothing.

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(random_state=0)  # doctest: +SKIP
    >>> clf = cvkit.FeatureClassifier().fit(train)                                           # doctest: +SKIP
    >>> clf.score(test)                                                                      # doctest: +SKIP
    0.972...
    >>> from sklearn.svm import LinearSVC                                                    # doctest: +SKIP
    >>> svm = cvkit.FeatureClassifier(estimator=LinearSVC(class_weight="balanced")).fit(train)  # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from cvkit.classifiers.base import ImageClassifier
from cvkit.data.inputs import encode_labels, labels_for, warn_unreadable

__all__ = ["FeatureClassifier"]

# Backbones built in this process, by name: building one (and converting its ImageNet weights)
# takes seconds, and a FeatureClassifier never changes its backbone, so refits share it.
_BACKBONES: dict[str, Any] = {}


def _shared_backbone(name: str) -> Any:
    from cvkit import backbones
    spec = backbones.info(name)
    if spec.name not in _BACKBONES:
        size = int(spec.input_size)
        _BACKBONES[spec.name] = backbones.get(spec.name, input_shape=(size, size, 3))
    return _BACKBONES[spec.name]


class FeatureClassifier(ImageClassifier):
    """Backbone features + a scikit-learn classifier.

    Parameters
    ----------
    backbone : backbone name (see :func:`cvkit.backbones.available`); ``"efficientnet_lite0"``
        works offline.
    estimator : any scikit-learn classifier, fitted on the features (a clone; yours is untouched).
        Default: multinomial logistic regression with ``C`` chosen by stratified cross-validation
        (:func:`cvkit.classifiers.heads.default_estimator`). A classifier without ``predict_proba``
        (e.g. ``LinearSVC(class_weight="balanced")``) gets sigmoid-calibrated probabilities.
    cache : keep features on disk keyed by image content (see :class:`cvkit.features.featurizer.ImageFeaturizer`).
    cache_dir : cache folder; default ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``.
    batch_size : images per backbone forward pass.
    progress : show progress bars while featurizing for ``fit`` (and for predictions on 200+ images).
    cv : folds for the default head's choice of regularisation.
    random_state : seed for the cross-validation folds and calibration.

    Attributes
    ----------
    classes_ : class names (sorted), the columns of :meth:`predict_proba`.
    featurizer_ : the fitted :class:`~cvkit.features.featurizer.ImageFeaturizer`.
    estimator_ : the fitted scikit-learn head (predicts class *indices* into ``classes_``).
    input_size_ : ``(width, height)`` images are resized to.
    n_features_in_ : feature width.
    metrics_ : training facts written to the model folder (training accuracy, chosen ``C``, ...).
    skipped_ : ``(path, reason)`` for training images that could not be read (left out of fit).
    """

    _method = "features"

    def __init__(self, backbone: str = "efficientnet_lite0", estimator: Any = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 32, progress: bool = True,
                 cv: int = 5, random_state: int | None = 0):
        self.backbone = backbone
        self.estimator = estimator
        self.cache = cache
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.progress = progress
        self.cv = cv
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _make_featurizer(self):
        from cvkit.features.featurizer import ImageFeaturizer
        if not isinstance(self.backbone, str):
            raise TypeError(f"backbone must be a backbone name (see cvkit.backbones.available()), "
                            f"not {type(self.backbone).__name__}")
        return ImageFeaturizer(backbone=_shared_backbone(self.backbone), cache=self.cache, cache_dir=self.cache_dir,
                               batch_size=self.batch_size, progress=self.progress)

    def _features(self, featurizer: Any, X: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        from cvkit.data import BadImageWarning
        from cvkit.data.inputs import n_images

        # a progress bar for training, and for predictions only when they take a while
        featurizer.progress = bool(self.progress) and (what in ("fit", "cross_validate") or n_images(X) >= 200)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=BadImageWarning, message="ImageFeaturizer")
            feats, ok = featurizer.transform(X, return_mask=True)
        warn_unreadable(featurizer.skipped_, len(ok), what, stacklevel=4)
        return feats, ok

    def _make_head(self, target: np.ndarray) -> Any:
        """An unfitted head for class indices ``target``: a clone of ``estimator`` or the default."""
        from sklearn.base import clone

        from cvkit.classifiers.heads import default_estimator, with_probabilities

        min_count = int(np.bincount(target).min())
        if self.estimator is None:
            return default_estimator(min_count, cv=self.cv, random_state=self.random_state)
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "get_params")):
            raise TypeError(f"estimator must be a scikit-learn classifier, not {type(self.estimator).__name__}")
        return with_probabilities(clone(self.estimator), min_count, random_state=self.random_state)

    def fit(self, X: Any, y: Sequence[str] | None = None) -> "FeatureClassifier":
        """Featurize the training images and fit the head; returns ``self``.

        ``X`` is a labelled :class:`~cvkit.data.ImageDataset`, or image paths / a uint8 array with
        ``y`` (one class name per image). Unreadable images are reported and left out.

        Example:
            >>> clf = FeatureClassifier().fit(train)  # doctest: +SKIP
            >>> clf.classes_  # doctest: +SKIP
            ['bird', 'flower', 'fruit', 'vegetable']
        """
        labels = labels_for(X, y, what="fit")
        featurizer = self._make_featurizer().fit()
        feats, ok = self._features(featurizer, X, "fit")
        skipped = list(featurizer.skipped_)
        labels_ok = [lab for lab, good in zip(labels, ok) if good]
        classes, target = encode_labels(labels_ok)
        F = feats[ok]
        estimator = self._make_head(target)
        estimator.fit(F, target)

        self.featurizer_ = featurizer
        self.estimator_ = estimator
        self.classes_ = classes
        size = int(featurizer.input_size_)
        self.input_size_ = (size, size)
        self.n_features_in_ = int(F.shape[1])
        self.skipped_ = skipped
        train_pred = estimator.predict(F)
        metrics: dict[str, Any] = {"n_train": int(len(target)), "train_accuracy": float(np.mean(train_pred == target)),
                                   "class_counts": {c: int(n) for c, n in zip(classes, np.bincount(target))}}
        chosen_c = getattr(estimator, "C_", None)
        if chosen_c is not None:
            metrics["C"] = float(np.ravel(chosen_c)[0])
            scores = np.asarray(getattr(estimator, "scores_", []), dtype=float)
            if scores.ndim == 3 and scores.size:  # (folds, l1_ratios, Cs) of negative log-loss
                metrics["cv_log_loss"] = float(-scores.mean(axis=0).max())
        self.metrics_ = metrics
        self._check_features = F[: min(len(F), 64)]
        return self

    # ------------------------------------------------------------------ predicting
    def transform(self, X: Any) -> np.ndarray:
        """The backbone features of ``X`` (float32 ``(n, d)``; NaN rows for unreadable images)."""
        self._check_is_fitted()
        return self._features(self.featurizer_, X, "transform")[0]

    def _predict_proba(self, X: Any) -> np.ndarray:
        feats, ok = self._features(self.featurizer_, X, "predict_proba")
        proba = np.full((len(ok), len(self.classes_)), np.nan, dtype=np.float32)
        if ok.any():
            proba[ok] = self.estimator_.predict_proba(feats[ok]).astype(np.float32)
        return proba

    # ------------------------------------------------------------------ saving
    def _export(self) -> dict[str, Any]:
        """One Keras graph when the head folds into a softmax Dense layer; else features + skops head."""
        import keras

        from cvkit.classifiers.heads import fold_linear_head

        backbone = self.featurizer_.model_
        folded = fold_linear_head(self.estimator_, self._check_features)
        if folded is None:
            return {"keras_model": backbone, "head": self.estimator_, "metrics": dict(self.metrics_)}
        W, b = folded
        width, height = self.input_size_
        inputs = keras.Input((height, width, 3), dtype="float32", name="image")
        features = backbone(inputs)
        dense = keras.layers.Dense(len(self.classes_), activation="softmax", name="classifier")
        outputs = dense(features)
        dense.set_weights([W, b])
        model = keras.Model(inputs, outputs, name=f"{backbone.name}_classifier")
        return {"keras_model": model, "head": None, "metrics": dict(self.metrics_)}
