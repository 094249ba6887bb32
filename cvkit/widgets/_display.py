"""Small helpers shared by the widgets: images scaled to fit a box, placeholders, HTML escaping.

Why here: every widget shows one image at a time in a fixed box, and an unreadable image as a
placeholder that says why, so they share one cache and one look.

Example:
    >>> cache = ImageCache((160, 120))
    >>> data, reason = cache.get("sample_data/bird/owl.jpg")
    >>> data[:2], reason                      # JPEG bytes, no error
    (b'\\xff\\xd8', None)
    >>> fit_size(640, 480, (160, 160))
    (160, 120)
"""
from __future__ import annotations

import html
import io
import os
from collections import OrderedDict

import numpy as np

from cvkit.data._images import ImageReadError, PathLike, read_image


def esc(text: object) -> str:
    """``text`` escaped for an ipywidgets HTML value."""
    return html.escape(str(text), quote=True)


def fit_size(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the aspect ratio of ``width x height`` that fits in ``box`` (w, h)."""
    scale = min(box[0] / width, box[1] / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_fitted(pixels: np.ndarray, box: tuple[int, int]) -> tuple[bytes, tuple[int, int]]:
    """Scale an RGB array to fit ``box`` (keeping its aspect ratio) and encode it as JPEG."""
    from PIL import Image

    img = Image.fromarray(pixels)
    size = fit_size(img.width, img.height, box)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue(), size


class ImageCache:
    """Display-ready JPEG bytes per image path, read with :func:`cvkit.data.read_image`.

    ``get(path)`` returns ``(jpeg_bytes, None)`` or ``(None, reason)`` for an unreadable image.
    The last ``capacity`` results are kept so that going back and forth is instant.
    """

    def __init__(self, box: tuple[int, int], capacity: int = 16):
        self.box = (int(box[0]), int(box[1]))
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[bytes | None, str | None]] = OrderedDict()

    def get(self, path: PathLike) -> tuple[bytes | None, str | None]:
        key = os.fspath(path)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        try:
            data, _ = encode_fitted(read_image(key), self.box)
            item: tuple[bytes | None, str | None] = (data, None)
        except ImageReadError as exc:
            item = (None, exc.reason)
        self._items[key] = item
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return item


def placeholder_html(reason: str, box: tuple[int, int]) -> str:
    """A grey box of the image's size saying why the image cannot be shown."""
    return (f'<div class="cvkit-placeholder" style="width:{box[0]}px;height:{box[1]}px;'
            'display:flex;flex-direction:column;align-items:center;justify-content:center;'
            'background:#eee;border:2px dashed #c33;color:#822;text-align:center;padding:8px;'
            'box-sizing:border-box;font-family:sans-serif">'
            '<div style="font-size:28px">&#9888;</div>'
            '<div style="font-weight:bold">cannot show this image</div>'
            f'<div style="font-size:12px;word-break:break-word">{esc(reason)}</div></div>')
