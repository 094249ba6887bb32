"""What classifiers and models accept as images and labels: thin uses of :class:`~cvkit.data.ImageSource`.

Why these remain: classifiers and loaded models call them by these names. Every input goes
through :meth:`ImageSource.resolve`, so each accepts what it accepts (a dataset, a folder, a
table, a manifest, a glob, one image file, a list of paths/arrays/bytes, a uint8 array), with the
same errors, and pixels come from :meth:`ImageSource.batches`, the one decode loop.

Example:
    >>> from cvkit.data._inputs import labels_for, n_images
    >>> n_images("sample_data"), labels_for("sample_data/tags.tsv", None)[:2]
    (104, ['bird', 'bird'])
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cvkit.data._checks import warn_skipped
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import check_image_batch, resize
from cvkit.data._source import ImageSource

__all__ = ["labels_for", "load_pixels", "warn_unreadable", "n_images", "image_items", "encode_labels"]


def _source(X: Any) -> ImageSource:
    """``X`` resolved; an object with ``paths`` that is not an ImageDataset is read by its paths."""
    if hasattr(X, "paths") and not isinstance(X, (ImageDataset, ImageSource, np.ndarray)):
        return ImageSource.resolve(list(X.paths))
    return ImageSource.resolve(X)


def n_images(X: Any) -> int:
    """How many images ``X`` holds (anything :meth:`ImageSource.resolve` takes).

    Example:
        >>> n_images(["sample_data/bird/owl.jpg"]), n_images("sample_data/bird/owl.jpg")
        (1, 1)
    """
    return len(_source(X))


def image_items(X: Any) -> list:
    """The images of ``X`` as a list: path strings, uint8 ``(H, W, 3)`` arrays and image bytes, checked.

    ``X`` is anything :meth:`ImageSource.resolve` takes; a single image file is a one-image input.
    A wrong type or a bad array is an error naming the item.

    Example:
        >>> items = image_items(["a.jpg", np.zeros((4, 4, 3), np.uint8)])
        >>> items[0], items[1].shape
        ('a.jpg', (4, 4, 3))
        >>> image_items("sample_data/bird/owl.jpg")
        ['sample_data/bird/owl.jpg']
        >>> image_items(42)
        Traceback (most recent call last):
        ...
        TypeError: cannot read images from a int: pass an ImageDataset, a folder, a table, a glob, ...
    """
    return _source(X).items


def labels_for(X: Any, y: Sequence[Any] | None, what: str = "fit") -> list[str]:
    """The class name of each image in ``X``: from ``y`` if given, else from ``X`` itself.

    ``X`` carries labels when it is a labelled dataset, a folder of class folders or a table with a
    label column. Raises ``ValueError`` naming the problem: an unlabelled input without ``y``, a
    length mismatch, or empty labels.

    Example:
        >>> labels_for(["a.jpg", "b.jpg"], ["cat", "dog"])
        ['cat', 'dog']
        >>> labels_for(["a.jpg"], None)
        Traceback (most recent call last):
        ...
        ValueError: fit: labels are missing; pass an ImageDataset with labels, or y= ...
    """
    source = _source(X)
    if y is None:
        if isinstance(X, ImageDataset) and X.targets is None:
            raise ValueError(f"{what}: the dataset is unlabelled (no class per image); label it first, "
                             "e.g. with cvkit.widgets.AnnotationWidget or a path<TAB>label table")
        if not source.has_labels:
            raise ValueError(f"{what}: labels are missing; pass an ImageDataset with labels, or y= "
                             "(one class name per image) with a list of paths or an image array")
        labels = source.labels or []
        missing = [i for i, v in enumerate(labels) if v is None]
        if missing:
            raise ValueError(f"{what}: {len(missing)} image(s) have no label, e.g. {source.name(missing[0])}")
        return list(labels)  # type: ignore[arg-type]
    labels = [None if v is None else str(v) for v in (y.tolist() if isinstance(y, np.ndarray) else y)]
    if len(labels) != len(source):
        raise ValueError(f"{what}: {len(source)} images but {len(labels)} labels in y")
    empty = [i for i, v in enumerate(labels) if v is None or v == ""]
    if empty:
        raise ValueError(f"{what}: y has empty labels at positions {empty[:10]}")
    return labels  # type: ignore[return-value]


def encode_labels(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Sorted class names and the class index of each label; at least 2 classes are required.

    Example:
        >>> encode_labels(["dog", "cat", "dog"])
        (['cat', 'dog'], array([1, 0, 1]))
    """
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"fit needs images of at least 2 classes, got {len(classes)} "
                         f"({', '.join(map(repr, classes)) or 'no readable images'})")
    index = {c: i for i, c in enumerate(classes)}
    return classes, np.array([index[lab] for lab in labels], dtype=np.int64)


def warn_unreadable(skipped: Sequence[tuple[str, str]], n: int, what: str, stacklevel: int = 3) -> None:
    """One :class:`~cvkit.data.BadImageWarning` listing the images that could not be read.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_unreadable([("a.jpg", "file not found")], 3, "predict")
        >>> str(caught[0].message).splitlines()[0]
        'predict: 1 of 3 image(s) could not be read and have no prediction (NaN probabilities, label None):'
    """
    warn_skipped(skipped, what, stacklevel=stacklevel + 2,
                 summary=f"{len(skipped)} of {n} image(s) could not be read and have no prediction "
                         "(NaN probabilities, label None)")


def load_pixels(X: Any, size: tuple[int, int], progress: bool = False
                ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Images of ``X`` as uint8 ``(n, height, width, 3)`` at ``size`` = ``(width, height)``.

    Returns ``(pixels, ok, skipped)``: rows of unreadable images are zeros with ``ok`` False, and
    ``skipped`` lists ``(name, reason)``. Decoded by :meth:`ImageSource.batches`; an image array
    already at ``size`` is returned as it is (no copy). ``progress`` shows a bar.

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
    source = _source(X)
    if not progress:
        return source.read_all((width, height))
    from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks

    pixels = np.zeros((len(source), height, width, 3), np.uint8)
    ok = np.zeros(len(source), bool)
    skipped: list[tuple[str, str]] = []
    with tqdm(total=len(source), desc="Reading images", unit="img") as bar:
        for batch in source.batches((width, height), batch_size=64):
            pixels[batch.index], ok[batch.index] = batch.pixels, batch.ok
            skipped += [(source.name(int(i)), r) for i, r in zip(batch.index, batch.reasons) if r is not None]
            bar.update(len(batch))
    return pixels, ok, skipped
