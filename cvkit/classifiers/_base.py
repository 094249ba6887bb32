"""The base class of cvkit's trainable classifiers: scikit-learn's estimator habits plus ``save``.

``predict``, ``predict_proba`` and ``score`` come from :class:`cvkit.models._predictor.PredictorMixin`,
shared with loaded model folders; ``save`` writes a model folder through :mod:`cvkit.models._folder`.
This module also holds what both classifiers share when checking their parameters in ``fit``:
small checks whose errors name the parameter, and the one way a renamed parameter keeps working.

Example:
    >>> from cvkit.classifiers._base import check_int
    >>> check_int("batch_size", 0, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1, got 0
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from cvkit._validation import DEPRECATED, is_deprecated_default, param_value, renamed_param
from cvkit.models._folder import save_model
from cvkit.models._predictor import PredictorMixin

__all__ = ["ImageClassifier", "DEPRECATED", "check_int", "check_fraction", "check_verbose", "is_deprecated_default", "param_value",
           "renamed_param"]

def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int if it is an integer (not a bool) ``>= minimum``; else ``ValueError`` naming ``name``.

    Example:
        >>> check_int("epochs", 3, minimum=0)
        3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, low: float = 0.0, high: float = 1.0, open_low: bool = False) -> float:
    """``value`` as a float in ``[low, high)`` (``(low, high)`` with ``open_low``); else ``ValueError`` naming ``name``.

    Example:
        >>> check_fraction("dropout", 0.2)
        0.2
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if open_low else value >= low) and value < high
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g})"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return value


def check_verbose(value: Any) -> Any:
    """``verbose`` is ``0``/``False`` (silent), ``1``/``True`` or ``"auto"`` (progress bars), ``2`` (a line per epoch).

    Example:
        >>> check_verbose("auto")
        'auto'
    """
    if value not in (0, 1, 2, "auto") or isinstance(value, float):
        raise ValueError(f"verbose must be 0, 1, 2, 'auto' or a bool, got {value!r}")
    return value


class ImageClassifier(PredictorMixin, ClassifierMixin, BaseEstimator):
    """Base class of cvkit's trainable image classifiers (scikit-learn estimator conventions).

    Parameters are stored by ``__init__`` untouched; ``fit`` checks them, does the work and sets
    attributes ending in ``_`` (so :func:`sklearn.utils.validation.check_is_fitted` and
    :func:`sklearn.base.clone` work). Subclasses implement ``fit``, ``_predict_proba`` and
    ``_export`` (what :meth:`save` writes).

    Example:
        >>> from sklearn.utils.validation import check_is_fitted
        >>> check_is_fitted(clf)  # passes: clf is fitted
        >>> issubclass(cvkit.FeatureClassifier, ImageClassifier)
        True
    """

    #: "features" or "finetune": written to the model folder's metadata.
    _method = ""

    def _export(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """``{"keras_model": ..., "head": estimator or None, "backbone": canonical name, "metrics": {...}}``."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike, overwrite: bool = False, metrics: dict | None = None,
             model_version: str | None = None) -> str:
        """Write the fitted classifier to a model folder (``model.keras``, ``model.tflite`` for LiteRT, ``metadata.json``).

        ``metrics`` (e.g. test accuracy) are stored with the training metrics; ``overwrite=True``
        replaces an existing *model folder* (any other folder is refused). Reload with
        :func:`cvkit.load_model`. Returns the folder path.

        Example:
            >>> folder = clf.save(tmp + "/birds", metrics={"test_accuracy": 0.97})
            >>> cvkit.load_model(folder).classes_
            ['bird', 'flower', 'fruit', 'vegetable']
        """
        self._check_is_fitted()
        return save_model(self, path, overwrite=overwrite, metrics=metrics, model_version=model_version)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.non_deterministic = False
        return tags
