"""The base class of cvkit's trainable classifiers: scikit-learn's estimator habits plus ``save``.

``predict``, ``predict_proba`` and ``score`` come from :class:`cvkit.models.predictor.PredictorMixin`,
shared with loaded model folders; ``save`` writes a model folder through :mod:`cvkit.models.folder`.
"""
from __future__ import annotations

import os
from typing import Any

from sklearn.base import BaseEstimator, ClassifierMixin

from cvkit.models.folder import save_model
from cvkit.models.predictor import PredictorMixin

__all__ = ["ImageClassifier"]


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
        self._check_is_fitted()
        return save_model(self, path, overwrite=overwrite, metrics=metrics, model_version=model_version)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
