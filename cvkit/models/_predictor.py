"""What every cvkit model shares: ``predict``, ``predict_proba``, ``score`` and "not fitted" errors.

Trainable classifiers (:class:`~cvkit.classifiers.FeatureClassifier`,
:class:`~cvkit.classifiers.FineTuneClassifier`) and the loaded model of :func:`cvkit.load_model` only
say how to get probabilities from images; turning them into labels, accuracy and warnings about
unreadable images happens here, once. :func:`run_graph` runs a pixel graph (LiteRT or Keras) that maps
raw pixels to vectors over many images, decoding on threads while the graph computes.

Example:
    >>> isinstance(clf, PredictorMixin), isinstance(cvkit.load_model(model_dir), PredictorMixin)
    (True, True)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from cvkit.data._inputs import labels_for, warn_unreadable
from cvkit.models._graphs import as_graph
from cvkit.models._pipeline import run_pixels

__all__ = ["PredictorMixin", "run_graph", "NotFittedError"]


def run_graph(graph: Any, X: Any, batch_size: int = 32, progress: bool = False,
              what: str = "predict_proba") -> tuple[np.ndarray, np.ndarray]:
    """Run a pixel graph over images ``X``; returns ``(out, ok)``.

    ``graph`` maps raw pixels to vectors: a loaded model's ``graph_`` (LiteRT or Keras), or a Keras
    model (a fine-tuned classifier's). Decoding runs on threads while the graph computes
    (:func:`cvkit.models._pipeline.run_pixels`). Unreadable images give NaN rows, ``ok`` False, and
    one warning naming them.

    Example:
        >>> out, ok = run_graph(cvkit.load_model(model_dir).graph_, [photo, f"{tmp}/missing.jpg"])
        >>> out.shape, ok.tolist()
        ((2, 4), [True, False])
    """
    out, ok, skipped = run_pixels(as_graph(graph), X, batch_size=batch_size, progress=progress)
    warn_unreadable(skipped, len(ok), what, stacklevel=3)
    return out, ok


class PredictorMixin:
    """``predict``, ``score`` and input checks on top of a subclass's ``_predict_proba(X)``.

    The subclass sets ``classes_`` (list of class names) and implements ``_predict_proba(X)``
    returning float32 ``(n, n_classes)`` with NaN rows for unreadable images.
    """

    classes_: list[str]

    def _check_is_fitted(self) -> None:
        """scikit-learn's own check for estimators (objects with ``fit``); a loaded model is fitted by construction."""
        if hasattr(self, "fit"):
            check_is_fitted(self, msg="This %(name)s is not fitted yet: call fit(dataset) first "
                                      "(or load a saved model with cvkit.load_model(path))")
        elif not hasattr(self, "classes_"):
            raise NotFittedError(f"This {type(self).__name__} has no classes_: it is not fitted")

    def _predict_proba(self, X: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, float32 ``(n_images, n_classes)``, columns in ``classes_`` order.

        ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of image paths, or a uint8 array
        ``(n, H, W, 3)`` (resized to ``input_size_`` when needed). Unreadable images give a row of
        NaN and one warning naming them; they never stop the run.

        Example:
            >>> proba = clf.predict_proba([photo, "sample_data/fruit/apple_fuji.jpg"])
            >>> proba.shape, proba.dtype
            ((2, 4), dtype('float32'))
        """
        self._check_is_fitted()
        proba = np.asarray(self._predict_proba(X), dtype=np.float32)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most likely class name per image (object array); ``None`` for unreadable images.

        Example:
            >>> clf.predict([photo, "sample_data/fruit/apple_fuji.jpg"])
            array(['bird', 'fruit'], dtype=object)
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
            >>> round(clf.score(test), 3)
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
