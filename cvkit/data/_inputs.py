"""What classifiers accept as images and labels, checked in one place with clear errors.

Images (``X``) are an :class:`~cvkit.data.ImageDataset`, a list of image paths, or a uint8 array
``(n, H, W, 3)``. Labels come from the dataset, or from ``y`` (class-name strings) for paths and
arrays. Pixels are read through :func:`cvkit.data.read_image` only.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Sequence

import numpy as np

from cvkit.data._checks import warn_skipped
from cvkit.data._images import ImageReadError, check_image_batch, read_image, resize

__all__ = ["labels_for", "load_pixels", "warn_unreadable", "n_images", "image_items"]


def _is_dataset(X: Any) -> bool:
    return hasattr(X, "paths") and hasattr(X, "image_labels") and not isinstance(X, np.ndarray)


def n_images(X: Any) -> int:
    """How many images ``X`` holds (a dataset, a list of paths or an array)."""
    if _is_dataset(X):
        return len(X.paths)
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"expected several images, not a single path ({X!r}); wrap it in a list: [path]")
    return len(X)


def image_items(X: Any) -> list:
    """The images of ``X`` as a list: path strings and uint8 ``(H, W, 3)`` arrays, checked.

    ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of paths and/or arrays, or an image array
    ``(n, H, W, 3)``. A single path, a wrong type or a bad array is an error naming the item.
    Used by everything that streams images through a model (the featurizer, loaded models).

    Example:
        >>> items = image_items(["a.jpg", np.zeros((4, 4, 3), np.uint8)])
        >>> items[0], items[1].shape
        ('a.jpg', (4, 4, 3))
        >>> image_items("a.jpg")
        Traceback (most recent call last):
        ...
        TypeError: expected several images, not a single path ('a.jpg'); wrap it in a list: [path]
    """
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"expected several images, not a single path ({X!r}); wrap it in a list: [path]")
    if _is_dataset(X) or (hasattr(X, "paths") and not isinstance(X, np.ndarray)):
        return [os.fspath(p) for p in X.paths]
    if isinstance(X, np.ndarray) and X.dtype.kind in "iufb":
        check_image_batch(X)
        return list(X)
    if not isinstance(X, Iterable):
        raise TypeError(f"cannot read images from a {type(X).__name__}: pass an ImageDataset, a list of paths "
                        "or a uint8 array (n, H, W, 3)")
    items: list = []
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            items.append(str(os.fspath(item)))
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[-1] != 3 or item.dtype != np.uint8:
                raise ValueError(f"item {i}: an image array must be uint8 (height, width, 3), got "
                                 f"{item.dtype} {item.shape}")
            items.append(item)
        else:
            raise TypeError(f"item {i}: expected an image path or a uint8 (H, W, 3) array, got {type(item).__name__}")
    return items


def labels_for(X: Any, y: Sequence[Any] | None, what: str = "fit") -> list[str]:
    """The class name of each image in ``X``: from ``y`` if given, else from the dataset.

    Raises ``ValueError`` naming the problem: an unlabelled dataset without ``y``, a length mismatch,
    or empty labels.
    """
    n = n_images(X)
    if y is None:
        if not _is_dataset(X):
            raise ValueError(f"{what}: labels are missing; pass an ImageDataset with labels, or y= "
                             "(one class name per image) with a list of paths or an image array")
        if X.targets is None:
            raise ValueError(f"{what}: the dataset is unlabelled (no class per image); label it first, "
                             "e.g. with cvkit.widgets.AnnotationWidget or a path<TAB>label table")
        return [str(v) for v in X.image_labels]
    labels = [None if v is None else str(v) for v in (y.tolist() if isinstance(y, np.ndarray) else y)]
    if len(labels) != n:
        raise ValueError(f"{what}: {n} images but {len(labels)} labels in y")
    empty = [i for i, v in enumerate(labels) if v is None or v == ""]
    if empty:
        raise ValueError(f"{what}: y has empty labels at positions {empty[:10]}")
    return labels  # type: ignore[return-value]


def encode_labels(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted class names and the class index of each label; at least 2 classes are required."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"fit needs images of at least 2 classes, got {len(classes)} "
                         f"({', '.join(map(repr, classes)) or 'no readable images'})")
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[lab] for lab in labels], dtype=np.int64)


def warn_unreadable(skipped: Sequence[tuple[str, str]], n: int, what: str, stacklevel: int = 3) -> None:
    """One :class:`~cvkit.data.BadImageWarning` listing the images that could not be read."""
    warn_skipped(skipped, what, stacklevel=stacklevel + 2,
                 summary=f"{len(skipped)} of {n} image(s) could not be read and have no prediction "
                         "(NaN probabilities, label None)")


def load_pixels(X: Any, size: tuple[int, int], progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Images of ``X`` as uint8 ``(n, height, width, 3)`` at ``size`` = ``(width, height)``.

    Returns ``(pixels, ok, skipped)``: rows of unreadable images are zeros with ``ok`` False, and
    ``skipped`` lists ``(path, reason)``. Files are decoded on a thread pool.

    Example:
        >>> pixels, ok, skipped = load_pixels(["sample_data/bird/owl.jpg", "missing.jpg"], (32, 24))
        >>> pixels.shape, ok.tolist(), skipped
        ((2, 24, 32, 3), [True, False], [('missing.jpg', 'file not found')])
    """
    width, height = int(size[0]), int(size[1])
    if isinstance(X, np.ndarray):
        check_image_batch(X)
        if X.shape[1:3] == (height, width):
            return X, np.ones(len(X), bool), []
        return np.stack([resize(x, (width, height)) for x in X]) if len(X) else \
            np.zeros((0, height, width, 3), np.uint8), np.ones(len(X), bool), []
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"expected several images, not a single path ({X!r}); wrap it in a list: [path]")
    paths = [os.fspath(p) for p in (X.paths if _is_dataset(X) else X)]
    bad = [i for i, p in enumerate(paths) if not isinstance(p, str)]
    if bad:
        raise TypeError(f"item {bad[0]}: expected an image path, got {type(paths[bad[0]]).__name__}")
    pixels = np.zeros((len(paths), height, width, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    skipped: list[tuple[str, str]] = []

    def one(i: int) -> tuple[int, str | None]:
        try:
            pixels[i] = read_image(paths[i], size=(width, height))
            return i, None
        except ImageReadError as exc:
            return i, exc.reason

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        results: Any = pool.map(one, range(len(paths)))
        if progress:
            from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks
            results = tqdm(results, total=len(paths), desc="Reading images", unit="img")
        for i, reason in results:
            if reason is None:
                ok[i] = True
            else:
                skipped.append((paths[i], reason))
    return pixels, ok, skipped
