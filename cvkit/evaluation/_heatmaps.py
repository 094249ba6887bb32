"""Heat maps on photos: blend a map onto an image, and draw a grid of them (no TensorFlow here).

A heat map is a float array ``(height, width)`` of values in [0, 1] (what :func:`cvkit.explain`
returns): 1 where the evidence for the class is strongest. :func:`overlay_heatmap` colours it
(matplotlib's ``"jet"`` by default: blue = nothing, red = most) and blends it onto the photo as a
uint8 RGB array, ready to save as a PNG or to show; :func:`plot_heatmaps` draws photos with their
maps in a grid titled with the class each map explains, and returns the Figure.

Example:
    >>> image = np.full((40, 60, 3), 200, np.uint8)
    >>> heat = np.zeros((40, 60), np.float32); heat[:20, :30] = 1.0
    >>> blended = overlay_heatmap(image, heat, alpha=0.5)
    >>> blended.dtype, blended.shape, bool((blended[5, 5] != blended[35, 55]).any())
    (dtype('uint8'), (40, 60, 3), True)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cvkit.data._grid import image_grid
from cvkit.data._images import resize

__all__ = ["overlay_heatmap", "plot_heatmaps", "resize_map"]


def resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float map resized (bilinear) to ``size`` = ``(height, width)``, as float32 clipped to [0, 1].

    Example:
        >>> resize_map(np.eye(2, dtype=np.float32), (4, 6)).shape
        (4, 6)
    """
    from PIL import Image

    heat = np.asarray(heatmap, dtype=np.float32)
    height, width = (int(v) for v in size)
    if heat.shape == (height, width):
        return np.clip(heat, 0.0, 1.0)
    img = Image.fromarray(np.ascontiguousarray(heat), mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """``image`` (uint8 RGB ``(H, W, 3)``) with ``heatmap`` coloured by ``cmap`` blended on top: uint8 RGB.

    ``alpha`` is the weight of the colours (0: the photo alone, 1: the map alone). A map of
    another size is resized to the image's (bilinear); values are clipped to [0, 1]; NaN counts as 0.
    The image is not modified. (Example: see the module.)
    """
    from matplotlib import colormaps

    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB (height, width, 3), got {pixels.dtype} {pixels.shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    heat = resize_map(np.nan_to_num(np.asarray(heatmap, np.float32)), pixels.shape[:2])
    colours = colormaps[cmap](heat)[..., :3] * 255.0
    blended = (1.0 - float(alpha)) * pixels.astype(np.float32) + float(alpha) * colours
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def plot_heatmaps(explanation: Any, images: Sequence[Any] | None = None, ncols: int | None = None,
                  alpha: float = 0.45, size: int = 224, panel_size: float = 2.2, titles: Sequence[str] | None = None,
                  colors: Sequence[str] | None = None, suptitle: str | None = None):
    """A grid of photos with their heat maps blended on (:func:`overlay_heatmap`); returns the Figure.

    ``explanation``: what :func:`cvkit.explain` returned (its photos are read again for the picture,
    at ``size`` pixels square), or a list of maps with ``images`` (uint8 RGB arrays) beside them.
    Each panel is titled with the class its map explains and its probability, and the method (or
    ``titles``; ``colors`` colours them). Unreadable photos show as "unreadable".

    Example:
        >>> fig = plot_heatmaps([np.ones((4, 4), np.float32)], images=[np.zeros((8, 8, 3), np.uint8)], titles=["x"])
        >>> len(fig.axes)
        1
    """
    if images is None:
        if not hasattr(explanation, "images"):
            raise TypeError("plot_heatmaps: pass an Explanation (from cvkit.explain), or maps with images=")
        images = explanation.images(size=size)
        maps: Sequence[Any] = explanation.maps
    else:
        maps = list(explanation.maps) if hasattr(explanation, "maps") else list(explanation)
        images = [None if im is None else resize(np.asarray(im), size) for im in images]
    if len(images) != len(maps):
        raise ValueError(f"plot_heatmaps: {len(maps)} maps but {len(images)} images")
    panels = [None if im is None or m is None else overlay_heatmap(im, m, alpha=alpha) for im, m in zip(images, maps)]
    if titles is None and hasattr(explanation, "titles"):
        titles = explanation.titles()
    if suptitle is None and hasattr(explanation, "method"):
        suptitle = f"Where the model looked ({explanation.method}): red = most evidence for the class named"
    return image_grid(panels, titles, ncols=ncols, colors=colors, panel_size=panel_size, suptitle=suptitle)
