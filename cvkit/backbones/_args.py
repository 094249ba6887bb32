"""Checks of the arguments every backbone builder takes (``pooling``, ``input_shape``), declared once.

Example:
    >>> check_build_args(224, "avg", None)
    (224, 224, 3)
    >>> check_build_args(224, "mean", None)
    Traceback (most recent call last):
    ...
    cvkit._validation.InvalidParameterError: pooling must be one of 'avg', 'max' or None, got 'mean'
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cvkit._validation import Custom, Options, check_param

__all__ = ["check_build_args", "BUILD_CONSTRAINTS"]


def _is_image_shape(value: Any) -> bool:
    try:
        shape = tuple(value)
    except TypeError:
        return False
    return len(shape) == 3 and shape[-1] == 3


#: What the builders' ``pooling`` and ``input_shape`` may be.
BUILD_CONSTRAINTS = {"pooling": [Options(["avg", "max"]), None],
                     "input_shape": [Custom(_is_image_shape, "(height, width, 3)"), None]}


def check_build_args(input_size: int, pooling: str | None,
                     input_shape: Sequence[int] | None) -> tuple[int, ...]:
    """Check ``pooling`` and ``input_shape`` (errors name the argument); return ``input_shape`` as a
    tuple (default: a square at ``input_size``).

    Example:
        >>> check_build_args(224, None, (192, 256, 3))
        (192, 256, 3)
    """
    check_param("pooling", pooling, BUILD_CONSTRAINTS["pooling"])
    check_param("input_shape", input_shape, BUILD_CONSTRAINTS["input_shape"])
    return (input_size, input_size, 3) if input_shape is None else tuple(input_shape)
