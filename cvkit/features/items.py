"""What a featurizer accepts as images, and how each one is read: the input side of :mod:`cvkit.features`.

Why a module of its own: :class:`~cvkit.features.featurizer.ImageFeaturizer` runs a backbone; this
module turns what users pass (an :class:`~cvkit.data.ImageDataset`, paths, arrays, a mix) into a
list of items, reads and decodes one item on a worker thread without ever raising (an unreadable
image becomes a reason, reported later), and keys files by the SHA-1 of their bytes for the cache.

Example:
    >>> items = as_items([photo, np.zeros((5, 4, 3), np.uint8)])
    >>> pixels, key, reason = load_item(items[0], 224)
    >>> pixels.shape, len(key), reason
    ((224, 224, 3), 40, None)
    >>> load_item("no-such-file.jpg", 224)
    (None, None, 'file not found')
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable, Optional, Union

import numpy as np

from cvkit.data.images import ImageReadError, check_image_batch, read_file, read_image, resize

__all__ = ["as_items", "load_item", "file_key", "read_bytes", "describe_item", "check_int"]


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
    """File bytes, or the reason they cannot be read (never raises): :func:`cvkit.data.images.read_file`'s
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

    Files are squashed to ``size`` x ``size`` by :func:`cvkit.data.images.read_image`; arrays resized alike.
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


def as_items(X: Any) -> list:
    """Normalise the accepted inputs to a list of path strings and (H, W, 3) uint8 arrays.

    Example:
        >>> len(as_items(train)), as_items(np.zeros((2, 8, 8, 3), np.uint8))[0].shape
        (68, (8, 8, 3))
    """
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"transform takes a list of images, not a single path ({X!r}); wrap it: [path]")
    if hasattr(X, "paths") and not isinstance(X, np.ndarray):  # ImageDataset
        return [os.fspath(p) for p in X.paths]
    if isinstance(X, np.ndarray) and X.dtype.kind in "iufb":
        check_image_batch(X)
        return list(X)
    if not isinstance(X, Iterable):
        raise TypeError(f"cannot featurize a {type(X).__name__}: pass an ImageDataset, a list of paths "
                        "or a uint8 array (n, H, W, 3)")
    items: list = []
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            items.append(str(os.fspath(item)))
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[-1] != 3 or item.dtype != np.uint8:
                raise ValueError(f"item {i}: an image array must be uint8 (height, width, 3), got "
                                 f"{item.dtype} {item.shape}")
            items.append(item)
        else:
            raise TypeError(f"item {i}: expected an image path or a uint8 (H, W, 3) array, got {type(item).__name__}")
    return items
