"""``find_image_issues`` and ``image_quality``: the image-quality checks of :mod:`cvkit.data._quality` on any input.

Why a module of its own: the checks themselves need only pixels, and ``ImageDataset.audit()`` calls
them on its own paths; resolving any other input (a folder, a table, a glob, a list of paths, bytes
or arrays) goes through :meth:`cvkit.ImageSource.resolve`, which knows datasets, so it lives here.

Example:
    >>> issues = find_image_issues("sample_data")
    >>> issues.issue.tolist(), issues.score.round(2).tolist()
    (['odd_aspect'], [3.68])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cvkit._validation import check_param, validate_params
from cvkit.data._images import MAX_IMAGE_PIXELS
from cvkit.data._quality import QUALITY_CONSTRAINTS, flag_image_issues, measure_images
from cvkit.data._source import ImageSource

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["find_image_issues", "image_quality"]


def image_quality(images: Any, *, threads: int | None = None, max_pixels: int | None = MAX_IMAGE_PIXELS
                  ) -> pd.DataFrame:
    """The quality scores of every image: one row each, in input order (what :func:`find_image_issues` judges).

    ``images`` is an :class:`~cvkit.data.ImageDataset` or any input :meth:`cvkit.ImageSource.resolve`
    takes (a folder, a table, a glob, a list of paths, bytes or arrays). Columns: ``path``, ``label``,
    ``width``, ``height`` (upright, as cvkit reads it), ``orientation`` (the EXIF tag; 1 when there is
    none), ``stored_grey``, ``sharpness``, ``laplacian_variance``, ``brightest`` (99th percentile of
    the brightness), ``darkest`` (1st percentile), ``brightness`` (mean), ``contrast`` (its standard
    deviation), ``colourfulness``, ``side``, ``aspect`` and ``error`` (why an image could not be read;
    its scores are then empty). Images a dataset skipped when it was built come last, with their
    reason. Decoding runs on ``threads`` threads (default :func:`cvkit.options.decode_threads`).

    Example:
        >>> q = image_quality("sample_data/bird/*.jpg")
        >>> len(q), bool(q.error.isna().all()), bool((q.sharpness > 0).all())
        (35, True, True)
    """
    check_param("threads", threads, QUALITY_CONSTRAINTS["threads"])
    source = ImageSource.resolve(images)
    return measure_images(source.items, [source.name(i) for i in range(len(source))], source.labels,
                          source.skipped, threads=threads, max_pixels=max_pixels)


def find_image_issues(images: Any, *, checks: Sequence[str] | None = None, blur_ratio: float = 0.07,
                      dark_ratio: float = 0.4, bright_ratio: float = 0.4, constant_ratio: float = 0.2,
                      size_ratio: float = 0.25, min_size: int = 32, max_aspect: float = 3.0,
                      threads: int | None = None) -> pd.DataFrame:
    """Photos that are blurry, dark, bright, near-constant, small, oddly shaped, grey or rotated: one row per flag.

    The checks and their rules are those of :mod:`cvkit.data._quality` (its table says which score
    each uses and when it flags); each compares a photo with the set's median and with an absolute
    floor, so run it on the whole set, not photo by photo.

    Parameters
    ----------
    images : an :class:`~cvkit.data.ImageDataset` or any input :meth:`cvkit.ImageSource.resolve`
        takes (a folder, a table, a split manifest's test side, a glob, a list of paths or arrays).
    checks : the issues to report (names from ``cvkit.data._quality.ISSUES``); default all:
        ``unreadable``, ``blurry``, ``dark``, ``bright``, ``near_constant``, ``small``, ``odd_aspect``,
        ``grayscale``, ``orientation``.
    blur_ratio, dark_ratio, bright_ratio, constant_ratio, size_ratio : how far below the set's median
        score an image must fall to be flagged (``bright_ratio``: its distance to white); each check
        also has an absolute floor, so a set that is all blurry or all dark is still reported.
    min_size : side (in pixels, of a square of the image's area) below which an image is small.
    max_aspect : long side / short side above which an image is oddly shaped.
    threads : decoding threads (default :func:`cvkit.options.decode_threads`).

    Returns a DataFrame with columns ``path``, ``label`` (the given class, "" when none), ``issue``,
    ``score`` (the measure the check uses), ``threshold`` (the value it was compared with) and
    ``reason`` (a sentence a person can read). An image with two issues has two rows; the index is
    its position in the input (:func:`image_quality`'s row). Rows come by issue, worst first. An
    unreadable image is a row with its reason, never an error. ``orientation`` is information rather
    than a fault: cvkit's :func:`~cvkit.data.read_image` turns such a photo upright, while tools that
    ignore the tag see it on its side. Draw the flagged photos with
    :func:`cvkit.evaluation.plots.plot_image_issues`; ``dataset.audit()`` gives the same table.

    Example:
        >>> issues = find_image_issues(["sample_data/bird/owl.jpg", "missing.jpg"])
        >>> issues[["issue", "reason"]].values.tolist()
        [['unreadable', 'file not found']]
    """
    params = {"checks": checks, "blur_ratio": blur_ratio, "dark_ratio": dark_ratio, "bright_ratio": bright_ratio,
              "constant_ratio": constant_ratio, "size_ratio": size_ratio, "min_size": min_size,
              "max_aspect": max_aspect}
    validate_params("find_image_issues", {**params, "checks": None if checks is None else list(checks),
                                          "threads": threads}, QUALITY_CONSTRAINTS)  # before any image is read
    return flag_image_issues(image_quality(images, threads=threads), **params)
