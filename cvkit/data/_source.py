"""``ImageSource``: any input of images, resolved once, decoded in batches by the one decode loop.

Why: ``fit``, ``predict``, ``evaluate``, the featurizer, batch scoring, the Ray jobs and the web
service all take images. They accept the same inputs because they all start here:

- an :class:`~cvkit.data.ImageDataset`; a folder (of class folders: labelled by folder, or of any
  photos); a ``.csv``/``.tsv``/``.txt`` table of paths (a label column optional); a split manifest
  (``.json``, its test side unless told); a glob (``"photos/**/*.jpg"``); one image file; a list of
  paths, image arrays or image bytes; a uint8 array ``(n, H, W, 3)``; with ``y`` the labels of a
  list or array.

and they all decode through :meth:`ImageSource.batches` (or :func:`decode_item` for one image):
files are read with the size and file-type checks of :func:`cvkit.data.read_image`, decoded on a
few threads a bounded number of batches ahead, at one size convention ``(width, height)``. A
failure never raises: its row is zeros with ``ok`` False and a reason a person can read.

Example:
    >>> source = ImageSource.resolve("sample_data")
    >>> len(source), source.labels[:2], source.kind
    (104, ['bird', 'bird'], 'folder')
    >>> batch = next(ImageSource.resolve(["sample_data/bird/owl.jpg", "missing.jpg"]).batches((32, 24)))
    >>> batch.pixels.shape, batch.ok.tolist(), batch.reasons
    ((2, 24, 32, 3), [True, False], [None, 'file not found'])
"""
from __future__ import annotations

import glob
import hashlib
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._validation import Interval, Options, check_param
from cvkit.data._dataset import TABLE_SUFFIXES, ImageDataset
from cvkit.data._images import (
    MAX_IMAGE_PIXELS,
    ImageReadError,
    PathLike,
    check_image_batch,
    is_image_path,
    read_file,
    read_image,
    resize,
)
from cvkit.data._sources import iter_images, read_image_table, scan_directory
from cvkit.options import decode_threads

__all__ = ["ImageSource", "Batch", "decode_item", "content_key", "as_size", "class_folder_labels", "Item"]

#: One image as cvkit takes it: a file path, an RGB uint8 array ``(H, W, 3)``, or encoded image bytes.
Item = str | np.ndarray | bytes

#: Batches decoded ahead of the one being used: memory stays at a few batches of pixels.
LOOKAHEAD_BATCHES = 3


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """An image size as cvkit uses it everywhere: ``(width, height)``; an int is a square side.

    Example:
        >>> as_size(224), as_size((320, 240))
        ((224, 224), (320, 240))
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return int(size), int(size)
    width, height = (int(v) for v in size)
    return width, height


def decode_item(item: Item, size: int | Sequence[int], max_pixels: int | None = MAX_IMAGE_PIXELS,
                key: bool = False) -> tuple[np.ndarray | None, str | None, str | None]:
    """One image at ``size`` = ``(width, height)``: ``(pixels, None, key)`` or ``(None, reason, None)``; never raises.

    A path is read once (regular files only, bounded size), keyed by the SHA-1 of its bytes when
    ``key`` (the feature cache's key), and decoded by :func:`cvkit.data.read_image` (EXIF rotation,
    any colour mode, at most ``max_pixels``). Bytes are decoded alike; an array is resized.

    Example:
        >>> pixels, reason, key = decode_item("sample_data/bird/owl.jpg", 224, key=True)
        >>> pixels.shape, reason, len(key)
        ((224, 224, 3), None, 40)
        >>> decode_item(b"not an image", 224)
        (None, 'not an image file, or a format Pillow cannot read', None)
    """
    size = as_size(size)
    try:
        if isinstance(item, np.ndarray):
            return resize(item, size), None, None
        data = read_file(item) if isinstance(item, str) else item
        digest = hashlib.sha1(data).hexdigest() if key and isinstance(item, str) else None
        return read_image(data, size=size, max_pixels=max_pixels), None, digest
    except ImageReadError as exc:
        return None, exc.reason, None
    except Exception as exc:  # noqa: BLE001 - a reader bug must not stop a run of thousands either
        return None, f"cannot read image ({type(exc).__name__}: {exc})", None


def content_key(path: PathLike) -> tuple[str | None, str | None]:
    """``(SHA-1 of the file's bytes, None)``, or ``(None, reason)``: the feature cache's key of an image file.

    The file is read as :func:`decode_item` reads it (regular files only, bounded size), so the
    key of a file is the one :meth:`ImageSource.batches` gives with ``keys=True``; never raises.
    Why the bytes and not the path: an edited photo gets a new key, a copy under another name the same.

    Example:
        >>> key, reason = content_key("sample_data/bird/owl.jpg")
        >>> len(key), reason, content_key("no-such.jpg")
        (40, None, (None, 'file not found'))
        >>> decode_item("sample_data/bird/owl.jpg", 8, key=True)[2] == key
        True
    """
    try:
        return hashlib.sha1(read_file(path)).hexdigest(), None
    except ImageReadError as exc:
        return None, exc.reason


@dataclass
class Batch:
    """Decoded images of one batch: ``index`` (positions in the source), ``pixels`` uint8
    ``(n, H, W, 3)`` (zeros where decoding failed), ``ok``, ``reasons`` (None where ok) and ``keys``
    (content keys of files, when asked for; else None)."""

    index: np.ndarray
    pixels: np.ndarray
    ok: np.ndarray
    reasons: list[str | None]
    keys: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.index)


def class_folder_labels(folder: PathLike, classes: Sequence[str] | None = None) -> bool:
    """True when ``folder`` is a folder of class folders: no image directly in it, and (when
    ``classes`` are given) every sub-folder holding images named after one of them.

    Then each image's label is its top-level folder's name. With ``classes`` (a model's), a folder
    of unlabelled photos sorted by date or place (``2023/``, ``2024/``) gets no made-up labels.

    Example:
        >>> class_folder_labels("sample_data"), class_folder_labels("sample_data", ["cat", "dog"])
        (True, False)
        >>> class_folder_labels("sample_data/bird", ["bird"])
        False
    """
    known = None if classes is None else {str(c) for c in classes}
    tops = set()
    for path in iter_images(folder):
        parts = Path(os.path.relpath(path, folder)).parts
        if len(parts) < 2 or (known is not None and parts[0] not in known):
            return False
        tops.add(parts[0])
    return bool(tops)


class ImageSource:
    """Images (``items``) with optional ``labels``, from any input: build one with :meth:`resolve`.

    Attributes: ``items`` (paths as ``str``, arrays, bytes), ``labels`` (one class name per item,
    ``None`` for an item without one; ``labels`` itself is None when the input has none), ``kind``
    (what the input was: ``"dataset"``, ``"folder"``, ``"table"``, ``"manifest"``, ``"glob"``,
    ``"image"``, ``"list"``, ``"array"``), ``root`` (the folder paths are shown relative to) and
    ``skipped`` (``(name, reason)`` for entries left out while resolving, e.g. an image outside any
    class folder).

    Example:
        >>> source = ImageSource.resolve("sample_data/tags.tsv")
        >>> len(source), source.kind, source.has_labels
        (104, 'table', True)
    """

    def __init__(self, items: Sequence[Item], labels: Sequence[str | None] | None = None,
                 kind: str = "list", root: str | None = None, skipped: Sequence[tuple[str, str]] = ()):
        self.items = list(items)
        if labels is not None and len(labels) != len(self.items):
            raise ValueError(f"{len(self.items)} images but {len(labels)} labels")
        self.labels = None if labels is None else [None if v is None or v == "" else str(v) for v in labels]
        self.kind, self.root, self.skipped = kind, root, list(skipped)

    # ------------------------------------------------------------------ resolving
    @classmethod
    def resolve(cls, X: Any, y: Sequence[Any] | None = None, *, classes: Sequence[str] | None = None,
                side: str = "test") -> ImageSource:
        """The images of any input ``X`` (see the module notes), with labels where it has them.

        ``y`` gives one label per image of a list or array (and replaces a dataset's). ``classes``
        (a model's) decides whether a folder's sub-folders are labels (see :func:`class_folder_labels`).
        ``side`` picks a split manifest's ``"test"`` (default) or ``"train"`` images. A bad input is
        an error naming it: a missing path, a pattern matching nothing, an item of a wrong type.

        Example:
            >>> ImageSource.resolve("sample_data/bird/*.jpg").kind, len(ImageSource.resolve("sample_data/bird/*.jpg"))
            ('glob', 35)
            >>> ImageSource.resolve("no/such/folder")
            Traceback (most recent call last):
            ...
            FileNotFoundError: no/such/folder: no such folder, table, image or file pattern
        """
        if isinstance(X, ImageSource):
            source = X
        elif isinstance(X, ImageDataset):
            source = cls.from_dataset(X, "dataset")
        elif isinstance(X, (str, os.PathLike)):
            source = cls._from_path(Path(X), classes, side)
        elif isinstance(X, np.ndarray) and X.dtype.kind in "iufb":
            check_image_batch(X)
            source = cls(list(X), kind="array")
        elif isinstance(X, (bytes, bytearray, memoryview)):
            raise TypeError("expected several images, not the bytes of one; wrap them in a list: [data]")
        elif hasattr(X, "__iter__"):
            source = cls(_checked_items(X), kind="list")
        else:
            raise TypeError(f"cannot read images from a {type(X).__name__}: pass an ImageDataset, a folder, a "
                            "table, a glob, a list of paths or a uint8 array (n, H, W, 3)")
        if y is not None:
            source = cls(source.items, _labels_list(y, len(source)), source.kind, source.root, source.skipped)
        return source

    @classmethod
    def from_dataset(cls, ds: ImageDataset, kind: str = "dataset") -> ImageSource:
        labels = ds.image_labels if ds.targets is not None else None
        return cls(ds.paths, labels, kind, ds.root, ds.skipped)

    @classmethod
    def _from_path(cls, path: Path, classes: Sequence[str] | None, side: str) -> ImageSource:
        name = os.fspath(path)
        if path.is_dir():
            if class_folder_labels(path, classes):
                paths, labels, problems = scan_directory(path)
                return cls(paths, labels, "folder", name, problems)
            return cls(list(iter_images(path)), None, "folder", name)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix == ".json":
                from cvkit.data._manifest import load_split  # reads datasets, which read sources

                check_param("side", side, [Options(["train", "test"])])
                train, test = load_split(path)
                return cls.from_dataset(test if side == "test" else train, "manifest")
            if suffix in TABLE_SUFFIXES:
                rows = read_image_table(path)
                labels = [label for _, label in rows]
                return cls([p for p, _ in rows], labels if any(v is not None for v in labels) else None,
                           "table", os.fspath(path.parent))
            if is_image_path(path):
                return cls([name], None, "image", os.fspath(path.parent))
            raise ValueError(f"{name}: give a folder of images, an image, a .csv/.tsv/.txt table of paths "
                             "or a .json split manifest")
        if not path.exists() and glob.has_magic(name):
            found = sorted(p for p in glob.glob(name, recursive=True) if is_image_path(p))
            if not found:
                raise FileNotFoundError(f"{name}: no image file matches this pattern")
            return cls(found, None, "glob")
        raise FileNotFoundError(f"{name}: no such folder, table, image or file pattern")

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        labelled = "labelled" if self.has_labels else "unlabelled"
        return f"<ImageSource: {len(self)} {labelled} images from a {self.kind}>"

    @property
    def has_labels(self) -> bool:
        """True when at least one image has a label."""
        return self.labels is not None and any(v is not None for v in self.labels)

    def name(self, i: int) -> str:
        """How reports name item ``i``: its path, or ``<array #i>`` / ``<bytes #i>``."""
        item = self.items[i]
        if isinstance(item, str):
            return item
        return f"<array #{i}>" if isinstance(item, np.ndarray) else f"<bytes #{i}>"

    def subset(self, indices: Sequence[int]) -> ImageSource:
        """The images at ``indices``, with their labels."""
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return type(self)([self.items[i] for i in indices], labels, self.kind, self.root)

    def dataset(self, what: str = "fit") -> ImageDataset:
        """The labelled images as an :class:`~cvkit.data.ImageDataset` (no image is read).

        An input without labels, or an image without one, is an error naming ``what`` needed them.
        """
        if not self.has_labels:
            raise ValueError(f"{what}: the images have no labels; pass a folder of class folders, a table with a "
                             "label column, a labelled ImageDataset, or y= (one class name per image)")
        missing = [i for i, v in enumerate(self.labels or []) if v is None]
        if missing:
            raise ValueError(f"{what}: {len(missing)} image(s) have no label, e.g. {self.name(missing[0])}")
        if not all(isinstance(item, str) for item in self.items):
            raise TypeError(f"{what}: an ImageDataset holds image files; these images include arrays or bytes")
        labels = sorted(set(self.labels))  # type: ignore[arg-type]
        index = {label: i for i, label in enumerate(labels)}
        return ImageDataset(self.items, [index[v] for v in self.labels], labels, root=self.root,  # type: ignore
                            skipped=self.skipped)

    # ------------------------------------------------------------------ decoding
    def batches(self, size: int | Sequence[int], batch_size: int = 32, *,
                max_pixels: int | None = MAX_IMAGE_PIXELS, threads: int | None = None, keys: bool = False,
                indices: Sequence[int] | None = None) -> Iterator[Batch]:
        """Decode the images (all, or those at ``indices``) at ``size`` = ``(width, height)``, in order.

        The one decode loop of cvkit: ``threads`` decode (default :func:`cvkit.options.decode_threads`)
        while the caller uses the current batch; at most :data:`LOOKAHEAD_BATCHES` batches are
        decoded ahead, so memory stays bounded for any number of images. ``keys`` adds each file's
        content key (for the feature cache).

        Example:
            >>> [len(b) for b in ImageSource.resolve("sample_data/bird").batches(64, batch_size=16)]
            [16, 16, 3]
        """
        width, height = as_size(size)
        order = list(range(len(self))) if indices is None else [int(i) for i in indices]
        check_param("batch_size", batch_size, [Interval(int, 1, None)])
        if not order:
            return
        with ThreadPoolExecutor(max_workers=decode_threads(threads), thread_name_prefix="cvkit-decode") as pool:
            pending: deque = deque()
            todo = iter(order)

            def submit() -> None:
                i = next(todo, None)
                if i is not None:
                    pending.append((i, pool.submit(decode_item, self.items[i], (width, height), max_pixels, keys)))

            for _ in range(LOOKAHEAD_BATCHES * int(batch_size)):
                submit()
            while pending:
                n = min(int(batch_size), len(pending))
                index = np.empty(n, np.int64)
                pixels = np.zeros((n, height, width, 3), np.uint8)
                ok = np.zeros(n, bool)
                reasons: list[str | None] = [None] * n
                found: list[str | None] = [None] * n
                for j in range(n):
                    i, future = pending.popleft()
                    submit()
                    image, reason, key = future.result()
                    index[j] = i
                    if image is None:
                        reasons[j] = reason
                    else:
                        pixels[j], ok[j], found[j] = image, True, key
                yield Batch(index, pixels, ok, reasons, found if keys else None)

    def content_keys(self, indices: Sequence[int] | None = None, threads: int | None = None
                     ) -> list[tuple[str | None, str | None]]:
        """:func:`content_key` of the files at ``indices`` (default: every item, which must be paths), in order.

        The feature cache's lookup pass: files are read and hashed on ``threads`` threads (default
        :func:`cvkit.options.decode_threads`; hashing releases the GIL), nothing is decoded.

        Example:
            >>> [len(key) for key, _ in ImageSource.resolve("sample_data/bird/*.jpg").content_keys()][:2]
            [40, 40]
        """
        order = list(range(len(self))) if indices is None else [int(i) for i in indices]
        paths = [self.items[i] for i in order]
        if not all(isinstance(p, str) for p in paths):
            raise TypeError("content_keys: only image files have content keys; pass the indices of paths")
        if len(paths) < 2:
            return [content_key(p) for p in paths]
        with ThreadPoolExecutor(max_workers=decode_threads(threads), thread_name_prefix="cvkit-keys") as pool:
            return list(pool.map(content_key, paths, chunksize=16))

    def read_all(self, size: int | Sequence[int], threads: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
        """Every image at ``size`` in one array: ``(pixels (n, H, W, 3), ok, skipped [(name, reason)])``.

        For the few hundred images a fine-tuning run holds in memory; use :meth:`batches` for more.

        Example:
            >>> source = ImageSource.resolve(["sample_data/bird/owl.jpg", "missing.jpg"])
            >>> pixels, ok, skipped = source.read_all((32, 24))
            >>> pixels.shape, ok.tolist(), skipped
            ((2, 24, 32, 3), [True, False], [('missing.jpg', 'file not found')])
        """
        width, height = as_size(size)
        pixels = np.zeros((len(self), height, width, 3), np.uint8)
        ok = np.zeros(len(self), bool)
        skipped: list[tuple[str, str]] = []
        for batch in self.batches((width, height), batch_size=64, threads=threads):
            pixels[batch.index], ok[batch.index] = batch.pixels, batch.ok
            skipped += [(self.name(int(i)), r) for i, r in zip(batch.index, batch.reasons) if r is not None]
        return pixels, ok, skipped


def _checked_items(X: Any) -> list[Item]:
    items: list[Item] = []
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            items.append(str(os.fspath(item)))
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[-1] != 3 or item.dtype != np.uint8:
                raise ValueError(f"item {i}: an image array must be uint8 (height, width, 3), got "
                                 f"{item.dtype} {item.shape}")
            items.append(item)
        elif isinstance(item, (bytes, bytearray, memoryview)):
            items.append(bytes(item))
        else:
            raise TypeError(f"item {i}: expected an image path, image bytes or a uint8 (H, W, 3) array, got "
                            f"{type(item).__name__}")
    return items


def _labels_list(y: Any, n: int) -> list[str | None]:
    labels = [None if v is None else str(v) for v in (y.tolist() if isinstance(y, np.ndarray) else y)]
    if len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels in y")
    return labels
