"""Split manifests: the train and test images of a split, saved so later steps reload them exactly.

A manifest is a small JSON file listing the train and test images (paths relative to the
manifest's own folder where possible) with their labels, so ``02_evaluate`` scores exactly the
images ``01_train`` held out.

Example:
    >>> train, test = ds.split(test_size=0.34, random_state=0)
    >>> path = save_split(f"{tmp}/split.json", train, test, random_state=0)
    >>> again, held_out = load_split(path)
    >>> held_out.paths == test.paths
    True
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cvkit.data._checks import check_all, warn_skipped
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import PathLike

__all__ = ["save_split", "load_split", "read_json_file", "SPLIT_FORMAT"]

SPLIT_FORMAT = "cvkit-split"


def _portable(path: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:
        return path


def save_split(path: PathLike, train: ImageDataset, test: ImageDataset, **info: object) -> Path:
    """Write a split manifest (JSON) listing ``train`` and ``test`` images with their labels.

    Paths are stored relative to the manifest's folder so the project folder can move. Extra
    keyword arguments (``random_state=0``...) are stored under ``"info"``. Written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()

    def rows(ds: ImageDataset) -> list[list[str]]:
        return [[_portable(os.path.abspath(p), base), label] for p, label in zip(ds.paths, ds.image_labels)]

    root = train.root or test.root
    doc = {"format": SPLIT_FORMAT, "version": 1, "labels": sorted(set(train.labels) | set(test.labels)),
           "root": _portable(os.path.abspath(root), base) if root else None, "info": info, "train": rows(train), "test": rows(test)}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json_file(path: PathLike, what: str) -> Any:
    """The JSON document in ``path``; errors say it is not a ``what`` and why (file named).

    ``FileNotFoundError`` when missing; ``ValueError`` for invalid JSON or text that is not UTF-8.

    Example:
        >>> read_json_file(f"{tmp}/none.json", "split manifest")
        Traceback (most recent call last):
        ...
        FileNotFoundError: .../none.json: split manifest not found
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise ValueError(f"{path}: not {article} {what} (invalid JSON: {exc})") from None


def load_split(path: PathLike, check: bool = True) -> tuple[ImageDataset, ImageDataset]:
    """Read a manifest written by :func:`save_split`; returns ``(train, test)`` datasets.

    Both datasets share the manifest's full class list, so class indices agree across them.
    Images that have since gone missing or become unreadable are skipped and reported.
    """

    path = Path(path)
    doc = read_json_file(path, "split manifest")
    if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT:
        raise ValueError(f"{path}: not a cvkit split manifest (missing \"format\": \"{SPLIT_FORMAT}\")")
    labels = [str(v) for v in doc.get("labels", [])]
    index = {label: i for i, label in enumerate(labels)}
    base = path.parent
    root = doc.get("root")
    if root is not None and not os.path.isabs(root):
        root = str(base / root)
    out = []
    for side in ("train", "test"):
        rows = doc.get(side)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: field {side!r} must be a list of [path, label] pairs")
        paths, targets, skipped = [], [], []
        for k, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) == 2 and row[1] in index):
                raise ValueError(f"{path}: {side}[{k}] must be [path, label] with a label from \"labels\"")
            full = row[0] if os.path.isabs(row[0]) else os.path.normpath(base / row[0])
            paths.append(full)
            targets.append(index[row[1]])
        if check:
            reasons = check_all(paths, None)
            skipped = [(p, r) for p, r in zip(paths, reasons) if r is not None]
            keep = [i for i, r in enumerate(reasons) if r is None]
            paths, targets = [paths[i] for i in keep], [targets[i] for i in keep]
            warn_skipped(skipped, f"load_split({os.fspath(path)!r}) {side}")
        out.append(ImageDataset(paths, targets, labels, root=root, skipped=skipped))
    return out[0], out[1]
