"""JSON-safe copies of results: the one cleaner behind ``metadata.json`` and evaluation reports.

Metrics come out of numpy and scikit-learn as ``np.float32``, ``np.int64``, arrays and sometimes
NaN. ``json.dumps`` refuses numpy types and writes NaN as ``NaN``, which is not JSON (browsers and
other languages reject it). :func:`to_jsonable` turns such values into plain Python ones, with
NaN and infinity as ``None`` ("undefined").

Example:
    >>> to_jsonable({"accuracy": np.float32(0.5), "loss": float("nan"), 3: np.arange(2), "ok": np.bool_(True)})
    {'accuracy': 0.5, 'loss': None, '3': [0, 1], 'ok': True}
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` writes as strict JSON.

    Dict keys become strings, tuples and arrays lists, numpy scalars Python numbers, and
    non-finite floats ``None``; anything else is returned as it is.

    Example:
        >>> to_jsonable([np.int64(3), (1.5, float("inf"))])
        [3, [1.5, None]]
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
