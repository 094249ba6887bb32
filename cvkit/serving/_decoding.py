"""Decoding a request's images: the per-request pixel budget, then each image at the model's size.

Sizes are read from the image headers before anything is decoded, so a request of many highly
compressible, huge images is refused (413) at once; an image over the per-image limit, or with no
readable header, is refused on its own and its siblings are still scored.

Example:
    >>> import base64
    >>> from cvkit.serving._protocol import parse_json_request
    >>> with open("sample_data/bird/owl.jpg", "rb") as image:
    ...     text = base64.b64encode(image.read()).decode()
    >>> items = parse_json_request({"images": [{"image_in_base64": text}]}, n_classes=4)
    >>> check_pixel_budget(items, max_request_pixels=100_000_000) > 0
    True
    >>> class Model:                          # a loaded model: its classes and (width, height)
    ...     classes_, input_size_ = ["bird", "flower", "fruit", "vegetable"], (224, 224)
    >>> [p.shape for p in decode_items(items, Model())]
    [(224, 224, 3)]
"""
from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from PIL import Image

from cvkit.data._source import decode_item
from cvkit.models._inference import DEFAULT_MAX_PIXELS, input_size
from cvkit.serving._protocol import RequestError, ScoreItem

__all__ = ["header_pixels", "check_pixel_budget", "decode_items"]


def header_pixels(data: bytes) -> int | None:
    """Width x height as the image's header declares it (nothing is decoded); None if unreadable.

    Example:
        >>> buffer = io.BytesIO(); Image.new("L", (7000, 7000)).save(buffer, "PNG")
        >>> header_pixels(buffer.getvalue()), header_pixels(b"not an image")
        (49000000, None)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Exception:  # noqa: BLE001 - any unreadable header: the decode reports it per item
        return None
    return int(width) * int(height)


def check_pixel_budget(items: list[ScoreItem], max_request_pixels: int | None,
                       max_pixels: int | None = DEFAULT_MAX_PIXELS) -> int:
    """Refuse (413) a request whose images total over ``max_request_pixels``; returns the total.

    Sizes come from the image headers, before anything is decoded. An image with no readable
    header or over the per-image limit ``max_pixels`` is not counted: it is refused on its own,
    without decoding, and its siblings are still scored.

    Example:
        >>> buffer = io.BytesIO(); Image.new("L", (7000, 7000)).save(buffer, "PNG")
        >>> items = [ScoreItem(index=i, data=buffer.getvalue()) for i in range(3)]
        >>> check_pixel_budget(items, max_request_pixels=100_000_000)
        Traceback (most recent call last):
        ...
        cvkit.serving._protocol.RequestError: the images of this request total 147000000 pixels, over the ...
    """
    total = 0
    for item in items:
        if item.data is None:
            continue
        pixels = header_pixels(item.data)
        if pixels is None or (max_pixels is not None and pixels > max_pixels):
            continue
        total += pixels
    if max_request_pixels is not None and total > max_request_pixels:
        raise RequestError(f"the images of this request total {total} pixels, over the per-request "
                           f"budget of {max_request_pixels} pixels (max_request_pixels, "
                           f"{max_request_pixels / 1e6:g} MP): send fewer or smaller images per "
                           "request", status_code=413)
    return total


def decode_items(items: list[ScoreItem], model: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS
                 ) -> list[np.ndarray | None]:
    """Decode each item's bytes at the model's input size (None where it failed).

    Each goes through :func:`cvkit.data._source.decode_item`, the one decoder of every image
    cvkit reads (EXIF rotation, any colour mode, the ``max_pixels`` bomb guard). A failure becomes
    the item's ``error``, in the reader's words; the bytes are dropped once decoded.

    Example:
        >>> class Model:                      # anything with classes_ and an input size will do
        ...     classes_, input_size_ = ["cat", "dog"], (32, 24)
        >>> with open("sample_data/bird/owl.jpg", "rb") as image:
        ...     items = [ScoreItem(index=0, data=image.read()), ScoreItem(index=1, data=b"not an image")]
        >>> [None if p is None else p.shape for p in decode_items(items, Model())], items[1].error
        ([(24, 32, 3), None], 'not an image file, or a format Pillow cannot read')
    """
    size = input_size(model)
    out: list[np.ndarray | None] = []
    for item in items:
        if item.data is None:
            out.append(None)
            continue
        pixels, reason, _ = decode_item(item.data, size, max_pixels=max_pixels)
        if reason is not None:
            item.error = reason
        out.append(pixels)
        item.data = None
    return out
