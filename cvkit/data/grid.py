"""A grid of images with a title under each: the one picture of many photos that cvkit draws.

Datasets (``ds.show()``), augmentation previews, prediction grids and the evaluation plots all use
it, so every grid looks the same. Returns the matplotlib ``Figure``.

Example:
    >>> import numpy as np
    >>> fig = image_grid([np.zeros((8, 8, 3), np.uint8), None], titles=["black", "missing"])
    >>> len(fig.axes)
    2
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["image_grid"]


def image_grid(images: Sequence[np.ndarray | None], titles: Sequence[str] | None = None,
               ncols: int | None = None, colors: Sequence[str] | None = None,
               panel_size: float = 2.2, suptitle: str | None = None):
    """A grid of images with a title under each; ``None`` entries show as "unreadable".

    ``colors`` sets each title's colour (e.g. red for a misclassified image).
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or min(n, 6) or 1
    nrows = max(1, math.ceil(n / ncols))
    top = 0.4 if suptitle else 0.0  # room for the suptitle above the panel titles
    height = panel_size * nrows + 0.3 + top
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, height), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        img = images[k]
        if img is None:
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(img)
        if titles is not None:
            ax.set_title(titles[k], fontsize=9, color=(colors[k] if colors is not None else "black"))
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0, 1, 1 - top / height))
    return fig
