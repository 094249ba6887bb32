"""Split manifests: the train and test images of a split, saved so later steps reload them exactly.

A manifest is a small JSON file listing the train and test images (paths relative to the
manifest's own folder where possible) with their labels, so ``02_evaluate`` scores exactly the
images ``01_train`` held out.

Example:
    >>> import os, tempfile
    >>> from cvkit.data import ImageDataset
    >>> train, test = ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> path = save_split(f"{tempfile.mkdtemp()}/split.json", train, test, random_state=0)
    >>> again, held_out = load_split(path)
    >>> held_out.paths == [os.path.abspath(p) for p in test.paths]  # paths come back absolute
    True
"""
from __future__ import annotations

import os
from pathlib import Path

from cvkit._io import from_portable, portable_path, read_json, write_json
from cvkit.data._checks import check_all, warn_skipped
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import PathLike

__all__ = ["save_split", "load_split", "read_json_file", "SPLIT_FORMAT"]

SPLIT_FORMAT = "cvkit-split"

#: The JSON reader whose errors name the file: :func:`cvkit._io.read_json`, under the name
#: :mod:`cvkit.evaluation._report` imports (kept for it; new code imports ``cvkit._io.read_json``).
read_json_file = read_json


def save_split(path: PathLike, train: ImageDataset, test: ImageDataset, **info: object) -> Path:
    """Write a split manifest (JSON) listing ``train`` and ``test`` images with their labels.

    Paths are stored relative to the manifest's folder (:func:`cvkit._io.portable_path`) so the
    project folder can move. Extra keyword arguments (``random_state=0``...) are stored under
    ``"info"``. Written atomically (:func:`cvkit._io.write_json`): a reader never sees half a file.

    Example:
        >>> import json, tempfile
        >>> from cvkit.data import ImageDataset
        >>> few = ImageDataset.from_directory("sample_data").subset([0, 40])
        >>> folder = tempfile.mkdtemp()
        >>> manifest = json.load(open(save_split(f"{folder}/split.json", few.subset([0]), few.subset([1]))))
        >>> manifest["format"], manifest["labels"], manifest["test"][0][1]
        ('cvkit-split', ['bird', 'flower', 'fruit', 'vegetable'], 'flower')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()

    def rows(ds: ImageDataset) -> list[list[str]]:
        return [[portable_path(p, base), label] for p, label in zip(ds.paths, ds.image_labels)]

    root = train.root or test.root
    doc = {"format": SPLIT_FORMAT, "version": 1, "labels": sorted(set(train.labels) | set(test.labels)),
           "root": portable_path(root, base) if root else None, "info": info, "train": rows(train), "test": rows(test)}
    write_json(path, doc, indent=1)
    return path


def load_split(path: PathLike, check: bool = True) -> tuple[ImageDataset, ImageDataset]:
    """Read a manifest written by :func:`save_split`; returns ``(train, test)`` datasets.

    Both datasets share the manifest's full class list, so class indices agree across them.
    Images that have since gone missing or become unreadable are skipped and reported.
    A file that is not a manifest is an error naming it.

    Example:
        >>> load_split("no/such/split.json")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no/such/split.json: split manifest not found
    """
    path = Path(path)
    doc = read_json(path, "split manifest")
    if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path}: not a cvkit split manifest (missing \"format\": \"{SPLIT_FORMAT}\")")
    labels = [str(v) for v in doc.get("labels", [])]
    index = {label: i for i, label in enumerate(labels)}
    base = path.parent
    root = doc.get("root")
    if root is not None:
        root = from_portable(root, base)
    out = []
    for side in ("train", "test"):
        rows = doc.get(side)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: field {side!r} must be a list of [path, label] pairs")
        paths, targets, skipped = [], [], []
        for k, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and row[1] in index):
                raise ValueError(f"{path}: {side}[{k}] must be [path, label] with a label from \"labels\"")
            paths.append(from_portable(row[0], base))
            targets.append(index[row[1]])
        if check:
            reasons = check_all(paths, None)
            skipped = [(p, r) for p, r in zip(paths, reasons) if r is not None]
            keep = [i for i, r in enumerate(reasons) if r is None]
            paths, targets = [paths[i] for i in keep], [targets[i] for i in keep]
            warn_skipped(skipped, f"load_split({os.fspath(path)!r}) {side}")
        out.append(ImageDataset(paths, targets, labels, root=root, skipped=skipped))
    return out[0], out[1]
