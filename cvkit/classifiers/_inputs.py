"""What the classifiers (and the evaluation above them) take as images and labels: any input of ImageSource.

Why one module: ``fit``, ``predict``, ``score``, ``cross_validate``, ``evaluate`` and the audits
all accept the same inputs, resolved once by :meth:`cvkit.ImageSource.resolve`: a labelled
:class:`~cvkit.data.ImageDataset`, a folder of class folders, a ``path,label`` table, a split
manifest (its train side for fitting, its test side for scoring), a glob, or paths / image
arrays with ``y``. What is checked here is the labels: an input without them is an error that
says which call needed them and how to give them.

Example:
    >>> source = labelled_source("sample_data", what="fit")
    >>> len(source), source.labels[0]
    (104, 'bird')
    >>> labelled_source(["sample_data/bird/owl.jpg"], what="fit")
    Traceback (most recent call last):
    ...
    ValueError: fit: labels are missing; pass a labelled ImageDataset, a folder of class folders, ...
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cvkit.data._dataset import ImageDataset
from cvkit.data._source import ImageSource

__all__ = ["labelled_source", "image_source", "image_dataset", "size_wh"]


def image_source(X: Any, classes: Sequence[str] | None = None, side: str = "test") -> ImageSource:
    """The images of any input ``X`` (see :meth:`cvkit.ImageSource.resolve`), labelled or not.

    ``classes`` (a fitted model's) decides whether a folder's sub-folders are labels; ``side``
    picks a split manifest's ``"test"`` (default: what predictions are for) or ``"train"`` images.

    Example:
        >>> image_source("sample_data/bird").kind, len(image_source("sample_data/bird"))
        ('folder', 35)
    """
    return ImageSource.resolve(X, classes=classes, side=side)


def labelled_source(X: Any, y: Sequence[Any] | None = None, *, what: str = "fit", side: str = "train",
                    classes: Sequence[str] | None = None) -> ImageSource:
    """The images of ``X`` with one label each (from ``y``, or from the input); else an error naming ``what``.

    Example:
        >>> labelled_source(["a.jpg", "b.jpg"], ["cat", "dog"]).labels
        ['cat', 'dog']
        >>> labelled_source(["a.jpg", "b.jpg"], ["cat", ""], what="score")
        Traceback (most recent call last):
        ...
        ValueError: score: y has empty labels at positions [1]
    """
    source = ImageSource.resolve(X, y, classes=classes, side=side)
    if source.labels is None:
        if isinstance(X, ImageDataset):
            raise ValueError(f"{what}: the dataset is unlabelled (no class per image); label it first, "
                             "e.g. with cvkit.widgets.AnnotationWidget or a path<TAB>label table")
        raise ValueError(f"{what}: labels are missing; pass a labelled ImageDataset, a folder of class folders, a "
                         "table with a label column, or y= (one class name per image) with a list of paths or an "
                         "image array")
    empty = [i for i, label in enumerate(source.labels) if label is None]
    if empty and y is not None:
        raise ValueError(f"{what}: y has empty labels at positions {empty[:10]}")
    if empty:
        raise ValueError(f"{what}: {len(empty)} image(s) have no label, e.g. {source.name(empty[0])}")
    return source


def image_dataset(X: Any, what: str, side: str = "train") -> ImageDataset:
    """An :class:`~cvkit.data.ImageDataset` of any input of image files, labelled when the input is.

    What the audits take (they need paths, and labels only for label checks): a dataset is used
    as it is; a folder, table, manifest (``side``), glob or list of paths is resolved once. No
    image is read here.

    Example:
        >>> image_dataset("sample_data/tags.tsv", "find_duplicates").labels
        ['bird', 'flower', 'fruit', 'vegetable']
        >>> image_dataset("sample_data/bird", "find_duplicates").is_labelled
        False
    """
    if isinstance(X, ImageDataset):
        return X
    source = ImageSource.resolve(X, side=side)
    if source.has_labels:
        return source.dataset(what)
    if not all(isinstance(item, str) for item in source.items):
        raise TypeError(f"{what}: needs image files (paths); these images include arrays or bytes")
    return ImageDataset(source.items, root=source.root, skipped=source.skipped)


def size_wh(size: Any) -> tuple[int, int]:
    """An image size as ``(width, height)``: an int is a square, a pair is ``(width, height)``.

    Why: backbones give one number, featurizers and model folders a pair; code here takes both.

    Example:
        >>> size_wh(224), size_wh((320, 240))
        ((224, 224), (320, 240))
    """
    if isinstance(size, (tuple, list)):
        width, height = (int(v) for v in size)
        return width, height
    return int(size), int(size)
