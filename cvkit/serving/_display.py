"""Showing scored images: a grid titled with each prediction, mistakes in red.

Example:
    >>> paths = ["sample_data/bird/owl.jpg", "sample_data/bird/crow.jpg"]
    >>> answers = [{"label": "bird", "score": 0.97}, {"label": "fruit", "score": 0.51}]  # Client(url).score(paths)
    >>> figure = prediction_grid(paths, answers, true_labels=["bird", "bird"])
    >>> figure.axes[0].get_title()                         # mistakes first
    'fruit (0.51)\\ntrue: bird'
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cvkit.data._images import ImageReadError, read_image

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["prediction_grid"]


def prediction_grid(images: Sequence[str | os.PathLike], answers: Sequence[dict[str, Any]],
                    true_labels: Sequence[str] | None = None, ncols: int | None = None,
                    max_images: int = 36, size: int = 160) -> Figure:
    """A grid of images titled ``label (score)``; red when it differs from ``true_labels``.

    ``answers`` are scoring answers (from :class:`~cvkit.serving.Client`, ``POST /score`` or
    :func:`~cvkit.models._inference.score_sources`); an answer with an ``error`` shows the error.
    Mistakes are shown first so they are not cut off by ``max_images``. Returns the Figure.
    """
    from cvkit.data._grid import image_grid

    if len(answers) != len(images):
        raise ValueError(f"{len(images)} images but {len(answers)} answers")
    if true_labels is not None and len(true_labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(true_labels)} true labels")

    def wrong(i: int) -> bool:
        return true_labels is not None and answers[i].get("label") != true_labels[i]

    order = sorted(range(len(images)), key=lambda i: (not wrong(i), i))[:max_images]
    pixels, titles, colors = [], [], []
    n_wrong = sum(wrong(i) for i in range(len(images)))
    for i in order:
        answer = answers[i]
        try:
            pixels.append(read_image(images[i], size=size))
        except ImageReadError:
            pixels.append(None)
        if "error" in answer:
            titles.append("error")
            colors.append("red")
            continue
        title = f"{answer['label']} ({answer['score']:.2f})"
        if wrong(i):
            title += f"\ntrue: {true_labels[i]}"  # type: ignore[index]
        titles.append(title)
        colors.append("red" if wrong(i) else "black")
    suptitle = None
    if true_labels is not None:
        suptitle = f"{len(images) - n_wrong}/{len(images)} correct; mistakes in red, shown first"
    return image_grid(pixels, titles, ncols=ncols, colors=colors, suptitle=suptitle)
