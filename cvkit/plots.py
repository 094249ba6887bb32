"""matplotlib figures. Every function returns its ``Figure`` (and shows it in a notebook)."""
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.3),
                             squeeze=False)
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
    fig.tight_layout()
    return fig
