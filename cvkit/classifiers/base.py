"""What every cvkit classifier shares: predict, predict_proba, score, save, and "not fitted" errors.

Subclasses (:class:`~cvkit.classifiers.FeatureClassifier`, :class:`~cvkit.classifiers.FineTuneClassifier`
and the loaded model of :func:`cvkit.load_model`) only say how to get probabilities from images;
turning them into labels, accuracy and warnings about unreadable images happens here, once.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError

from .inputs import labels_for, warn_unreadable

__all__ = ["PredictorMixin", "ImageClassifier", "run_graph", "NotFittedError"]


def run_graph(keras_model: Any, X: Any, batch_size: int = 32, progress: bool = False,
              what: str = "predict_proba") -> tuple[np.ndarray, np.ndarray]:
    """Run a Keras model that maps raw pixels to vectors over images ``X``; returns ``(out, ok)``.

    Uses :class:`cvkit.featurize.ImageFeaturizer` with the model as its backbone and no cache, so
    decoding runs on threads while the model computes. Unreadable images give NaN rows, ``ok``
    False, and one warning naming them.
    """
    from ..data import BadImageWarning
    from ..featurize import ImageFeaturizer

    featurizer = ImageFeaturizer(backbone=keras_model, cache=False, progress=progress, batch_size=batch_size)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BadImageWarning, message="ImageFeaturizer")
        out, ok = featurizer.transform(X, return_mask=True)
    warn_unreadable(featurizer.skipped_, len(ok), what, stacklevel=3)
    return out, ok


class PredictorMixin:
    """``predict``, ``score`` and input checks on top of a subclass's ``_predict_proba(X)``.

    The subclass sets ``classes_`` (list of class names) and implements ``_predict_proba(X)``
    returning float32 ``(n, n_classes)`` with NaN rows for unreadable images.
    """

    classes_: list[str]

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet: call fit(dataset) first "
                                 "(or load a saved model with cvkit.load_model(path))")

    def _predict_proba(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, float32 ``(n_images, n_classes)``, columns in ``classes_`` order.

        ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of image paths, or a uint8 array
        ``(n, H, W, 3)`` (resized to ``input_size_`` when needed). Unreadable images give a row of
        NaN and one warning naming them; they never stop the run.

        Example:
            >>> proba = clf.predict_proba(["a.jpg", "b.jpg"])  # doctest: +SKIP
            >>> proba.shape  # doctest: +SKIP
            (2, 4)
        """
        self._check_is_fitted()
        proba = np.asarray(self._predict_proba(X), dtype=np.float32)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class name per image (object array); ``None`` for unreadable images.

        Example:
            >>> clf.predict(test)[:3]  # doctest: +SKIP
            array(['bird', 'fruit', 'bird'], dtype=object)
        """
        proba = self.predict_proba(X)
        out = np.empty(len(proba), dtype=object)
        ok = np.all(np.isfinite(proba), axis=1) if len(proba) else np.zeros(0, bool)
        names = np.asarray(self.classes_, dtype=object)
        out[ok] = names[np.argmax(proba[ok], axis=1)] if ok.any() else []
        out[~ok] = None
        return out

    def score(self, X: Any, y: Sequence[Any] | None = None, sample_weight: Any = None) -> float:
        """Accuracy on labelled images (labels from the dataset, or ``y``); unreadable images are left out.

        A label the classifier was never trained on raises ``ValueError`` naming it, rather than
        being silently counted as a mistake.

        Example:
            >>> clf.score(test)  # doctest: +SKIP
            0.972
        """
        self._check_is_fitted()
        truth = labels_for(X, y, what="score")
        unknown = sorted(set(truth) - set(self.classes_))
        if unknown:
            raise ValueError(f"score: label(s) {', '.join(map(repr, unknown))} were not seen in training "
                             f"(known classes: {', '.join(map(repr, self.classes_))})")
        pred = self.predict(X)
        keep = np.array([p is not None for p in pred], dtype=bool)
        if not keep.any():
            raise ValueError("score: none of the images could be read")
        hits = np.array([p == t for p, t in zip(pred, truth)], dtype=float)
        if sample_weight is None:
            return float(hits[keep].mean())
        w = np.asarray(sample_weight, dtype=float)
        return float(np.average(hits[keep], weights=w[keep]))


class ImageClassifier(PredictorMixin, ClassifierMixin, BaseEstimator):
    """Base class of cvkit's trainable image classifiers (scikit-learn estimator conventions).

    Parameters are stored by ``__init__`` untouched; ``fit`` does the work and sets attributes
    ending in ``_``. Subclasses implement ``fit``, ``_predict_proba`` and ``_export`` (what
    :meth:`save` writes).
    """

    #: "features" or "finetune": written to the model folder's metadata.
    _method = ""

    def _export(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """``{"keras_model": ..., "head": estimator or None, "metrics": {...}}`` for saving."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike, overwrite: bool = False, metrics: dict | None = None,
             model_version: str | None = None) -> str:
        """Write the fitted classifier to a model folder (``model.keras`` + ``metadata.json``).

        ``metrics`` (e.g. test accuracy) are stored with the training metrics; ``overwrite=True``
        replaces an existing *model folder* (any other folder is refused). Reload with
        :func:`cvkit.load_model`. Returns the folder path.

        Example:
            >>> clf.save("models/birds", metrics={"test_accuracy": 0.97})  # doctest: +SKIP
            'models/birds'
        """
        from ..artifacts import save_model
        self._check_is_fitted()
        return save_model(self, path, overwrite=overwrite, metrics=metrics, model_version=model_version)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
