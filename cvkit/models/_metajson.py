"""Reading ``metadata.json`` defensively: size, nesting depth and integer length are checked before trusting it.

A hostile or corrupt ``metadata.json`` must give a :class:`~cvkit.models._trusted.ModelFormatError`
naming the file and the field, never a ``RecursionError``, a minutes-long integer conversion or
a huge allocation.

Example:
    >>> parse_metadata(Path("m/metadata.json"), b'{"a": [[[1]]]}')
    {'a': [[[1]]]}
    >>> parse_metadata(Path("m/metadata.json"), b'{"a": 1' + b"0" * 200 + b"}")
    Traceback (most recent call last):
    cvkit.models._trusted.ModelFormatError: m/metadata.json: field 'a' holds an integer of more than 100 digits
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cvkit.models._trusted import ModelFormatError

__all__ = ["parse_metadata", "MAX_METADATA_BYTES", "MAX_JSON_DEPTH"]

#: A metadata.json is a few kilobytes; a much larger one is refused unread.
MAX_METADATA_BYTES = 16 * 1024 * 1024
#: metadata.json nests about 4 levels; deeper than this is refused before parsing.
MAX_JSON_DEPTH = 64
# Longest integer accepted in metadata.json (Python refuses to parse past 4300 digits anyway).
_MAX_INT_DIGITS = 100


def _too_deep(text: str, limit: int) -> str | None:
    """The top-level field of JSON ``text`` whose value nests deeper than ``limit``, else None."""
    depth, field, last = 0, None, None
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', text):
        token = match.group()
        if token[0] == '"':
            last = token
        elif token in "[{":
            depth += 1
            if depth > limit:
                return json.loads(field) if field else "(top level)"
        elif token in "]}":
            depth -= 1
        elif depth == 1:  # ":" after a top-level key
            field = last
    return None


class _LongInteger:
    """Stands in for an integer too long to be a real value, so the field holding it can be named."""

    def __init__(self, digits: str):
        self.digits = digits


def _parse_int(digits: str) -> Any:
    return int(digits) if len(digits.lstrip("-")) <= _MAX_INT_DIGITS else _LongInteger(digits)


def _long_integer_field(value: Any, path: str = "") -> str | None:
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _LongInteger):
            return where or "(top level)"
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return None


def parse_metadata(file: Path, data: bytes) -> Any:
    if len(data) > MAX_METADATA_BYTES:
        raise ModelFormatError(f"{file}: more than {MAX_METADATA_BYTES} bytes; not a cvkit metadata file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{file}: not valid JSON (not UTF-8: {exc})") from None
    field = _too_deep(text, MAX_JSON_DEPTH)
    if field is not None:
        raise ModelFormatError(f"{file}: field {field!r} is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        meta = json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{file}: not valid JSON ({exc})") from None
    field = _long_integer_field(meta)
    if field is not None:
        raise ModelFormatError(f"{file}: field {field!r} holds an integer of more than {_MAX_INT_DIGITS} digits")
    return meta


