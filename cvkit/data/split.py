"""Stratified train/test splits, and split manifests that later notebooks reload exactly.

A manifest is a small JSON file listing the train and test images (paths relative to the
manifest's own folder where possible) with their labels, so ``02_evaluate`` scores exactly the
images ``01_train`` held out.

Example:
    >>> train, test = ds.split(test_size=0.34, random_state=0)            # doctest: +SKIP
    >>> save_split("models/sample/split.json", train, test)              # doctest: +SKIP
    >>> train, test = load_split("models/sample/split.json")             # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import ImageDataset

PathLike = Union[str, os.PathLike]

__all__ = ["stratified_split_indices", "save_split", "load_split", "SPLIT_FORMAT"]

SPLIT_FORMAT = "cvkit-split"


def stratified_split_indices(targets: np.ndarray, labels: Sequence[str], test_size: float | int = 0.34,
                             stratify: bool = True, random_state: int | None = 0
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` for a split; see :meth:`ImageDataset.split`.

    Uses scikit-learn's ``train_test_split``, then makes sure every class with two or more images
    has at least one image on each side (scikit-learn can leave a tiny class on one side only).
    """
    from sklearn.model_selection import train_test_split

    targets = np.asarray(targets)
    n = len(targets)
    if isinstance(test_size, float) and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1 (a fraction) or a count, not {test_size}")
    if n < 2:
        raise ValueError(f"cannot split {n} image(s): need at least 2")
    idx = np.arange(n)
    if not stratify:
        train, test = train_test_split(idx, test_size=test_size, random_state=random_state)
        return np.sort(train), np.sort(test)

    counts = np.bincount(targets, minlength=len(labels))
    too_small = [labels[c] for c in range(len(labels)) if counts[c] == 1]
    if too_small:
        raise ValueError(
            "cannot make a stratified split: class(es) " + ", ".join(repr(c) for c in too_small)
            + " have only 1 image; each class needs at least 2 (one for training, one for testing). "
            "Add images, remove the class, or use stratify=False.")
    n_classes = int((counts > 0).sum())
    n_test = int(np.ceil(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if n_test < n_classes or n - n_test < n_classes:
        raise ValueError(f"test_size={test_size} gives {n_test} test and {n - n_test} training images, "
                         f"but a stratified split of {n_classes} classes needs at least "
                         f"{n_classes} on each side")
    train, test = train_test_split(idx, test_size=test_size, random_state=random_state, stratify=targets)
    train, test = list(train), list(test)
    rng = np.random.RandomState(random_state)
    for c in np.flatnonzero(counts >= 2):
        for src, dst in ((train, test), (test, train)):
            if not any(targets[i] == c for i in dst):
                members = [i for i in src if targets[i] == c]
                moved = members[rng.randint(len(members))]
                src.remove(moved)
                dst.append(moved)
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


def _portable(path: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:
        return path


def save_split(path: PathLike, train: "ImageDataset", test: "ImageDataset", **info: object) -> Path:
    """Write a split manifest (JSON) listing ``train`` and ``test`` images with their labels.

    Paths are stored relative to the manifest's folder so the project folder can move. Extra
    keyword arguments (``random_state=0``...) are stored under ``"info"``. Written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()

    def rows(ds: "ImageDataset") -> list[list[str]]:
        return [[_portable(os.path.abspath(p), base), label] for p, label in zip(ds.paths, ds.image_labels)]

    root = train.root or test.root
    doc = {"format": SPLIT_FORMAT, "version": 1, "labels": sorted(set(train.labels) | set(test.labels)),
           "root": _portable(os.path.abspath(root), base) if root else None, "info": info, "train": rows(train), "test": rows(test)}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_split(path: PathLike, check: bool = True) -> tuple["ImageDataset", "ImageDataset"]:
    """Read a manifest written by :func:`save_split`; returns ``(train, test)`` datasets.

    Both datasets share the manifest's full class list, so class indices agree across them.
    Images that have since gone missing or become unreadable are skipped and reported.
    """
    from .dataset import ImageDataset, _check_all, _warn_skipped

    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: split manifest not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a split manifest (invalid JSON: {exc})") from None
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
            full = row[0] if os.path.isabs(row[0]) else str(base / row[0])
            paths.append(full)
            targets.append(index[row[1]])
        if check:
            reasons = _check_all(paths, None)
            skipped = [(p, r) for p, r in zip(paths, reasons) if r is not None]
            keep = [i for i, r in enumerate(reasons) if r is None]
            paths, targets = [paths[i] for i in keep], [targets[i] for i in keep]
            _warn_skipped(skipped, f"load_split({os.fspath(path)!r}) {side}")
        out.append(ImageDataset(paths, targets, labels, root=root, skipped=skipped))
    return out[0], out[1]
