"""A model given as a fitted classifier or as a model folder: :func:`as_model`, shared by ``evaluate``,
``unknown_report``, ``hard_negatives`` and the CLI.
"""
from __future__ import annotations

import os
from typing import Any

from cvkit.models._folder import load_model

__all__ = ["as_model"]


def as_model(model: Any) -> Any:
    """A fitted classifier as is, or a model folder (``str``/``Path``) loaded with ``cvkit.load_model``.

    Example:
        >>> as_model("no/such/model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: ...no/such/model...
        >>> as_model(object())
        Traceback (most recent call last):
        ...
        TypeError: model must be a fitted cvkit classifier (with predict_proba and classes_) or a model folder, ...
    """
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise TypeError(f"model must be a fitted cvkit classifier (with predict_proba and classes_) "
                        f"or a model folder, not {type(model).__name__}")
    return model
