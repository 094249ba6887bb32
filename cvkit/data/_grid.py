"""A grid of images with a title above each: the one picture of many photos that cvkit draws.

Datasets (``ds.show()``), augmentation previews, prediction grids and the evaluation plots all use
it, so every grid looks the same. Returns the matplotlib ``Figure``.

The layout is computed, not left to ``tight_layout``: every row gets room for the tallest panel
title (two-line titles such as "true: bird / pred: fruit" included) and the figure title is
wrapped to the figure's width, so titles never run into the images of the row above.

Example:
    >>> import numpy as np
    >>> fig = image_grid([np.zeros((8, 8, 3), np.uint8), None], titles=["black", "missing"])
    >>> len(fig.axes)
    2
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import numpy as np

__all__ = ["image_grid"]

TITLE_FONTSIZE = 9  # points, panel titles
SUPTITLE_FONTSIZE = 12  # points, the figure title


def _line_height(points: float) -> float:
    """Height in inches of one line of text at ``points`` size (with matplotlib's line spacing)."""
    return points * 1.3 / 72


def image_grid(images: Sequence[np.ndarray | None], titles: Sequence[str] | None = None,
               ncols: int | None = None, colors: Sequence[str] | None = None,
               panel_size: float = 2.2, suptitle: str | None = None):
    """A grid of images with a title above each; ``None`` entries show as "unreadable".

    ``colors`` sets each title's colour (e.g. red for a misclassified image). ``panel_size`` is
    the side of each image in inches; rows are spaced by the height of the tallest title and a
    long ``suptitle`` is wrapped to the figure's width. Returns the matplotlib Figure.

    Example:
        >>> fig = image_grid([np.zeros((8, 8, 3), np.uint8)] * 4, ["a\\nb"] * 4, ncols=2, suptitle="four")
        >>> [round(x, 2) for x in fig.get_size_inches()]
        [4.7, 5.88]
    """
    import matplotlib.pyplot as plt

    n = len(images)
    ncols = ncols or min(n, 6) or 1
    nrows = max(1, math.ceil(n / ncols))
    gap = 0.1  # inches between columns and around the grid
    width = panel_size * ncols + gap * (ncols + 1)
    lines = max([len(str(t).splitlines()) for t in titles] or [0]) if titles is not None else 0
    title_h = lines * _line_height(TITLE_FONTSIZE) + (0.08 if lines else 0.0)  # room above each panel
    wrapped = None
    if suptitle:
        chars = max(20, int(width * 72 / (SUPTITLE_FONTSIZE * 0.6)))  # about 0.6 em per character
        wrapped = "\n".join(textwrap.fill(part, chars) for part in str(suptitle).splitlines())
    top = (len(wrapped.splitlines()) * _line_height(SUPTITLE_FONTSIZE) + 0.15) if wrapped else 0.0
    row_h = panel_size + title_h + gap
    height = nrows * row_h + top + gap
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=gap / width, right=1 - gap / width, bottom=gap / height,
                        top=1 - (top + title_h) / height,
                        wspace=gap / panel_size, hspace=(title_h + gap) / panel_size)
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
            ax.set_title(titles[k], fontsize=TITLE_FONTSIZE, pad=3,
                         color=(colors[k] if colors is not None else "black"))
    if wrapped:
        fig.suptitle(wrapped, fontsize=SUPTITLE_FONTSIZE, y=1 - 0.08 / height, va="top")
    return fig
