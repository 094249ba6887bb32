"""Checks shared by every step that reads images: one warning for skipped files, one image check pool.

Why one home: every loop over thousands of photos (datasets, the featurizer, classifiers, scoring,
augmentation) reports unreadable files the same way, with the first ten named and a count of the
rest, so a user learns one message.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_skipped([("a.jpg", "empty file")], "demo")
    >>> str(caught[0].message).splitlines()[0]
    'demo: skipped 1 unreadable file(s):'
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from cvkit.data.images import check_image

__all__ = ["BadImageWarning", "warn_skipped", "list_skipped", "check_all"]

#: How many skipped files a warning names before it says "... and N more".
SHOWN = 10


class BadImageWarning(UserWarning):
    """Some images were skipped because they could not be read (see ``dataset.skipped``)."""


def list_skipped(skipped: Sequence[tuple[str, str]], shown: int = SHOWN) -> str:
    """The indented ``path: reason`` lines of a skipped-files message, at most ``shown`` of them.

    Example:
        >>> print(list_skipped([("a.jpg", "empty file"), ("b.jpg", "not an image")], shown=1))
          a.jpg: empty file
          ... and 1 more
    """
    lines = "\n".join(f"  {p}: {r}" if r else f"  {p}" for p, r in skipped[:shown])
    more = f"\n  ... and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return lines + more


def warn_skipped(skipped: Sequence[tuple[str, str]], what: str, stacklevel: int = 3,
                 summary: str | None = None, category: type[Warning] = BadImageWarning) -> None:
    """Warn once about the files in ``skipped`` (``(path, reason)`` pairs); nothing if it is empty.

    ``summary`` replaces the default first line's text after ``what:``
    (``skipped N unreadable file(s)``).
    """
    if not skipped:
        return
    summary = summary or f"skipped {len(skipped)} unreadable file(s)"
    warnings.warn(f"{what}: {summary}:\n{list_skipped(skipped)}", category, stacklevel=stacklevel)


def check_all(paths: Sequence[str], progress: bool | None = None) -> list[str | None]:
    """Check every image (decoding at a tiny draft scale) on a thread pool; returns reasons (None = ok).

    ``progress=None`` shows a bar from 500 images on.
    """
    if not paths:
        return []
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(check_image, paths)
        if progress is None:
            progress = len(paths) >= 500
        if progress:
            from tqdm.auto import tqdm
            results = tqdm(results, total=len(paths), desc="Checking images", unit="img")
        return list(results)
