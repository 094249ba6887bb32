"""Checks of the arguments every backbone builder takes (``pooling``, ``input_shape``)."""
from __future__ import annotations

from typing import Optional, Sequence


def check_build_args(input_size: int, pooling: Optional[str],
                     input_shape: Optional[Sequence[int]]) -> tuple[int, ...]:
    """Validate ``pooling`` and return ``input_shape`` as a tuple (default: a square at ``input_size``)."""
    if pooling not in ("avg", "max", None):
        raise ValueError(f"pooling must be 'avg', 'max' or None, got {pooling!r}")
    shape = (input_size, input_size, 3) if input_shape is None else tuple(input_shape)
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {shape!r}")
    return shape
