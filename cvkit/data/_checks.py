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

import hashlib
import os
import stat
import warnings
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cvkit._console import user_stacklevel
from cvkit._io import image_key
from cvkit.data._images import check_image
from cvkit.options import decode_threads

__all__ = ["BadImageWarning", "DuplicateImageWarning", "same_image_groups", "warn_skipped", "list_skipped", "check_all",
           "find_conflicts", "warn_conflicts", "file_sha256"]

#: How many skipped files a warning names before it says "... and N more".
SHOWN = 10


class BadImageWarning(UserWarning):
    """Some images were skipped because they could not be read (see ``dataset.skipped``)."""


class DuplicateImageWarning(UserWarning):
    """One image has two classes: the same file listed with two labels, or the same bytes filed
    in two class folders. A model cannot learn both; fix the labels or remove a copy."""


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
    # the user's line, not this one, is what the warning shows (``stacklevel`` is only a lower bound)
    warnings.warn(f"{what}: {summary}:\n{list_skipped(skipped)}", category,
                  stacklevel=max(stacklevel, user_stacklevel()))


def check_all(paths: Sequence[str], verbose: bool | None = None) -> list[str | None]:
    """Check every image (its header, decoded at a tiny draft scale) on a thread pool; returns reasons (None = ok).

    Why a pool of its own: this checks files while a dataset is built, it decodes no pixels for a
    model (that is :meth:`cvkit.data.ImageSource.batches`); its size is the one rule,
    :func:`cvkit.options.decode_threads`. ``verbose=None`` shows a bar from 500 images on.

    Example:
        >>> check_all(["sample_data/bird/owl.jpg", "no-such.jpg"])
        [None, 'file not found']
    """
    if not paths:
        return []
    with ThreadPoolExecutor(max_workers=decode_threads(), thread_name_prefix="cvkit-check") as pool:
        results = pool.map(check_image, paths)
        if verbose is None:
            verbose = len(paths) >= 500
        if verbose:
            from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks
            results = tqdm(results, total=len(paths), desc="Checking images", unit="img")
        return list(results)


def _same_file_groups(paths: Sequence[str]) -> dict[str, list[int]]:
    """Indices of ``paths`` grouped by the file they name (:func:`cvkit._io.image_key`, case-folded
    where the file system ignores case)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        groups[os.path.normcase(image_key(p))].append(i)
    return groups


def file_sha256(path: str) -> str | None:
    """SHA-256 of a regular file's bytes, streamed (None if it cannot be read or is no regular file).

    Example:
        >>> file_sha256("/dev/null") is None, len(file_sha256("sample_data/tags.tsv"))
        (True, 64)
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _same_image_indices(paths: Sequence[str], labels: Sequence[str] | None = None,
                        hash_bytes: bool = True) -> list[list[int]]:
    """Indices of ``paths`` grouped by image: the same file, or (``hash_bytes``) the same bytes.

    Only files whose sizes collide are read and hashed (and, when ``labels`` are given, only where
    the labels of a size group differ); everything else costs one ``stat``.
    """
    files = list(_same_file_groups(paths).values())
    merged: dict[object, list[int]] = dict(enumerate(files))
    if hash_bytes:
        by_size: dict[int, list[int]] = defaultdict(list)
        for k, idx in enumerate(files):
            try:
                by_size[os.stat(paths[idx[0]]).st_size].append(k)
            except OSError:
                continue
        for same_size in by_size.values():
            if len(same_size) < 2:
                continue
            if labels is not None and len({labels[i] for k in same_size for i in files[k]}) < 2:
                continue
            for k in same_size:
                digest = file_sha256(paths[files[k][0]])
                if digest is not None:
                    merged.setdefault(digest, []).extend(merged.pop(k))
    return list(merged.values())


def same_image_groups(paths: Sequence[str]) -> np.ndarray:
    """A group id per path: paths naming the same file, or files with identical bytes, share one.

    What :meth:`ImageDataset.split` keeps on one side by default, so an exact copy of a training
    photo never lands among the test photos. Cheap: only files whose sizes collide are hashed.

    Example:
        >>> same_image_groups(["sample_data/bird/owl.jpg", "sample_data/fruit/apple_fuji.jpg",
        ...                    "sample_data/bird/owl.jpg"]).tolist()
        [0, 1, 0]
    """
    ids = np.empty(len(paths), dtype=np.int64)
    for group, idx in enumerate(sorted(_same_image_indices(paths), key=min)):
        ids[idx] = group
    return ids


def find_conflicts(paths: Sequence[str], labels: Sequence[str], compare_bytes: bool = True
                   ) -> list[list[tuple[str, str]]]:
    """Groups of ``(path, label)`` that are one image with two or more labels.

    One image means the same file (listed twice) or, with ``compare_bytes``, the same bytes under
    two names. To keep this cheap only files whose sizes collide (and whose labels differ) are
    read and hashed; the rest cost one ``stat``.

    Example:
        >>> find_conflicts(["sample_data/bird/owl.jpg", "sample_data/bird/owl.jpg"], ["bird", "fruit"])
        [[('sample_data/bird/owl.jpg', 'bird'), ('sample_data/bird/owl.jpg', 'fruit')]]
    """
    merged = _same_image_indices(paths, labels if compare_bytes else None, hash_bytes=compare_bytes)
    groups = []
    for idx in merged:
        pairs = sorted({(paths[i], labels[i]) for i in idx})
        if len({label for _, label in pairs}) > 1:
            groups.append(pairs)
    return sorted(groups)


def warn_conflicts(groups: Sequence[Sequence[tuple[str, str]]], what: str, stacklevel: int = 3) -> None:
    """One :class:`DuplicateImageWarning` naming every place of each image found with two labels
    (the first ten images, then a count); nothing if ``groups`` is empty.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_conflicts([[("cat/a.jpg", "cat"), ("dog/a.jpg", "dog")]], "demo")
        >>> str(caught[0].message).splitlines()[1]
        '  cat/a.jpg (cat) = dog/a.jpg (dog)'
    """
    if not groups:
        return
    lines = [" = ".join(f"{path} ({label})" for path, label in group) for group in groups]
    shown = "\n".join(f"  {line}" for line in lines[:SHOWN])
    more = f"\n  ... and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
    warnings.warn(f"{what}: {len(groups)} image(s) have more than one label (the same file, or the "
                  f"same bytes, in two places):\n{shown}{more}", DuplicateImageWarning,
                  stacklevel=max(stacklevel, user_stacklevel()))
