"""What a featurizer accepts as images, and how each one is read: the input side of :mod:`cvkit.features`.

Why a module of its own: :class:`~cvkit.features._featurizer.ImageFeaturizer` runs a backbone; this
module reads and decodes one item (a path or an array, as listed by
:func:`cvkit.data._inputs.image_items`) on a worker thread without ever raising (an unreadable
image becomes a reason, reported later), and keys files by the SHA-1 of their bytes for the cache.

Example:
    >>> items = [photo, np.zeros((5, 4, 3), np.uint8)]
    >>> pixels, key, reason = load_item(items[0], 224)
    >>> pixels.shape, len(key), reason
    ((224, 224, 3), 40, None)
    >>> load_item("no-such-file.jpg", 224)
    (None, None, 'file not found')
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Union

import numpy as np

from cvkit.data._images import ImageReadError, read_file, read_image, resize

__all__ = ["load_item", "file_key", "read_bytes", "describe_item", "check_int"]


def check_int(name: str, value: Any, optional: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive int (or None if ``optional``).

    Example:
        >>> check_int("batch_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be a positive int, got 0
    """
    if optional and value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "a positive int or None" if optional else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def read_bytes(path: str) -> tuple[Optional[bytes], Optional[str]]:
    """File bytes, or the reason they cannot be read (never raises): :func:`cvkit.data._images.read_file`'s
    checks, so a FIFO, a device or an enormous file named ``x.jpg`` is refused before it is read.

    Example:
        >>> read_bytes("no-such-file.jpg")
        (None, 'file not found')
    """
    try:
        return read_file(path), None
    except ImageReadError as exc:
        return None, exc.reason


def file_key(path: str) -> tuple[Optional[str], Optional[str]]:
    """``(SHA-1 of the file's bytes, None)`` or ``(None, reason)``: the cache key of an image file.

    Example:
        >>> len(file_key(photo)[0])
        40
    """
    data, reason = read_bytes(path)
    if data is None:
        return None, reason
    return hashlib.sha1(data).hexdigest(), None


def load_item(item: Union[str, np.ndarray], size: int) -> tuple[Optional[np.ndarray], Optional[str], Optional[str]]:
    """Decode one item to ``(pixels, cache key or None, None)`` or ``(None, None, reason)``; never raises.

    Files are squashed to ``size`` x ``size`` by :func:`cvkit.data._images.read_image`; arrays resized alike.
    """
    if isinstance(item, str):
        data, reason = read_bytes(item)
        if data is None:
            return None, None, reason
        try:
            pixels = read_image(data, size=size)
        except ImageReadError as exc:
            return None, None, exc.reason
        except Exception as exc:  # a reader bug must not stop the run either
            return None, None, f"cannot decode image ({type(exc).__name__}: {exc})"
        return pixels, hashlib.sha1(data).hexdigest(), None
    try:
        return resize(item, size), None, None
    except Exception as exc:
        return None, None, f"cannot resize array ({type(exc).__name__}: {exc})"


def describe_item(item: Union[str, np.ndarray], index: int) -> str:
    """How a report names an item: its path, or ``<array #i>``.

    Example:
        >>> describe_item(np.zeros((2, 2, 3), np.uint8), 4)
        '<array #4>'
    """
    return item if isinstance(item, str) else f"<array #{index}>"
