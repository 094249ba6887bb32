"""JSON files: read with an error that names the file, written strictly and atomically.

Metrics come out of numpy and scikit-learn as ``np.float32``, ``np.int64``, arrays and sometimes
NaN. ``json.dumps`` refuses numpy types and writes NaN as ``NaN``, which is not JSON (browsers and
other languages reject it). :func:`to_jsonable` turns such values into plain Python ones, with
NaN and infinity as ``None`` ("undefined"); :func:`write_json` writes the result atomically and
:func:`read_json` reads a document back with an error naming the file and what it should be.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> write_json(path, {"accuracy": np.float32(0.5), "loss": float("nan"), 3: np.arange(2)})
    >>> read_json(path, "report")
    {'accuracy': 0.5, 'loss': None, '3': [0, 1]}
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._io._atomic import atomic_write

__all__ = ["to_jsonable", "read_json", "write_json"]

PathLike = str | os.PathLike


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` writes as strict JSON.

    Dict keys become strings, tuples and arrays lists, numpy scalars Python numbers, and
    non-finite floats ``None``; anything else is returned as it is.

    Example:
        >>> to_jsonable([np.int64(3), (1.5, float("inf")), np.bool_(True)])
        [3, [1.5, None], True]
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


def read_json(path: PathLike, what: str, max_bytes: int | None = None) -> Any:
    """The JSON document in ``path``; errors say it is not a ``what`` and why, naming the file.

    ``FileNotFoundError`` when missing; ``ValueError`` for invalid JSON, text that is not UTF-8, or
    a file over ``max_bytes``.

    Example:
        >>> read_json("/no/such/split.json", "split manifest")
        Traceback (most recent call last):
        ...
        FileNotFoundError: /no/such/split.json: split manifest not found
    """
    path = Path(path)
    article = "an" if what[:1].lower() in "aeiou" else "a"
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise ValueError(f"{path}: not {article} {what} (larger than {max_bytes} bytes)")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not {article} {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: not {article} {what} (invalid JSON: {exc})") from None


def write_json(path: PathLike, value: Any, indent: int | None = 1) -> None:
    """Write ``value`` (made JSON-safe by :func:`to_jsonable`) to ``path`` atomically, UTF-8, strict JSON.

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "split.json")
        >>> write_json(path, {"labels": ["bird", "cat"]}, indent=None)
        >>> open(path).read()
        '{"labels": ["bird", "cat"]}\\n'
    """
    text = json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False, allow_nan=False)
    atomic_write(path, text + "\n")
