"""``ImageDataset``: a list of image paths with their class, built from a folder or a table.

A dataset holds paths, not pixels, so it is cheap to make, split and subset even for thousands of
photos. Bad files (corrupt, truncated, empty, not an image, missing, a named pipe or device) are
found when the dataset is built, skipped with one summarising warning, and listed in
:attr:`ImageDataset.skipped`. An image given two classes is named in a
:class:`~cvkit.data._checks.DuplicateImageWarning`.

Example:
    >>> ds = ImageDataset.from_path("sample_data")
    >>> train, test = ds.split(test_size=0.34, random_state=0)
    >>> train.counts()
    {'bird': 23, 'flower': 16, 'fruit': 17, 'vegetable': 12}
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import DEPRECATED, Options, check_param, renamed_keyword
from cvkit.data._checks import (
    BadImageWarning,
    check_all,
    find_conflicts,
    same_image_groups,
    warn_conflicts,
    warn_skipped,
)
from cvkit.data._grid import image_grid
from cvkit.data._images import ImageReadError, PathLike, read_image
from cvkit.data._sources import read_table, scan_directory
from cvkit.data._split import grouped_split_indices

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["ImageDataset", "BadImageWarning", "TABLE_SUFFIXES"]

#: File name endings :meth:`ImageDataset.from_path` reads as a table rather than a folder.
TABLE_SUFFIXES = (".tsv", ".csv", ".txt")


class ImageDataset:
    """Images (as file paths) and, optionally, their class.

    Parameters
    ----------
    paths : image file paths.
    targets : class index per image (into ``labels``), or None for unlabelled images.
    labels : the class names, sorted. Derived from ``targets`` when omitted.
    root : the folder the dataset came from, used to show short relative paths.
    skipped : ``(path, reason)`` pairs for files left out because they could not be read.

    Most users build one with :meth:`from_directory`, :meth:`from_table` or :meth:`from_paths`.
    """

    def __init__(self, paths: Sequence[PathLike], targets: Sequence[int] | np.ndarray | None = None,
                 labels: Sequence[str] | None = None, root: PathLike | None = None,
                 skipped: Iterable[tuple[str, str]] = ()):
        self.paths: list[str] = [os.fspath(p) for p in paths]
        self.root: str | None = os.fspath(root) if root is not None else None
        self.skipped: list[tuple[str, str]] = list(skipped)
        if targets is None:
            self.targets: np.ndarray | None = None
            self.labels: list[str] = list(labels or [])
            return
        self.targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        if len(self.targets) != len(self.paths):
            raise ValueError(f"{len(self.paths)} paths but {len(self.targets)} targets")
        if labels is None:
            raise ValueError("labels (the class names) are required when targets are given")
        self.labels = [str(label) for label in labels]
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.labels)):
            raise ValueError(f"targets must be in [0, {len(self.labels)}) to index labels")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_paths(cls, paths: Sequence[PathLike], image_labels: Sequence[str] | None = None,
                   root: PathLike | None = None, check: bool = True,
                   verbose: bool | None = None, *, progress: Any = DEPRECATED) -> ImageDataset:
        """Build a dataset from paths and (optionally) one label string per image.

        With ``check=True`` every image is decoded once (cheaply) and unreadable ones are skipped,
        reported in one warning and listed in ``skipped``.
        """
        paths = [os.fspath(p) for p in paths]
        if image_labels is not None:
            image_labels = [str(v) for v in image_labels]
            if len(image_labels) != len(paths):
                raise ValueError(f"{len(paths)} paths but {len(image_labels)} labels")
        verbose = renamed_keyword("ImageDataset.from_paths", "progress", progress, "verbose", verbose, None)
        return cls._build(paths, image_labels, [], root, check, verbose, "ImageDataset.from_paths")

    @classmethod
    def from_path(cls, path: PathLike, **kwargs) -> ImageDataset:
        """A dataset from a folder of class folders or from a path/label table, whichever ``path`` is.

        A folder goes to :meth:`from_directory`, a file to :meth:`from_table`; keyword arguments
        (``check``, ``verbose``, and for tables ``root`` and ``errors``) are passed on.

        Example:
            >>> len(ImageDataset.from_path("sample_data")), len(ImageDataset.from_path("sample_data/tags.tsv"))
            (104, 104)
        """
        if os.path.isdir(path):
            return cls.from_directory(path, **kwargs)
        if os.path.isfile(path):
            return cls.from_table(path, **kwargs)
        if os.path.exists(path):
            raise ValueError(f"{os.fspath(path)}: neither a folder of class folders nor a table file")
        raise FileNotFoundError(f"{os.fspath(path)}: no such folder of class folders or table "
                                f"({', '.join(TABLE_SUFFIXES)})")

    @classmethod
    def from_directory(cls, root: PathLike, check: bool = True,
                       verbose: bool | None = None, *, progress: Any = DEPRECATED) -> ImageDataset:
        """One class per sub-folder of ``root``; images in deeper folders take their top folder's class.

        Extensions jpg/jpeg/png/bmp/gif/webp/tif/tiff (any case) are read; hidden files and other
        files are ignored. Example: ``ImageDataset.from_directory("sample_data")``.
        """
        paths, image_labels, problems = scan_directory(root)
        verbose = renamed_keyword("ImageDataset.from_directory", "progress", progress, "verbose", verbose, None)
        return cls._build(paths, image_labels, problems, root, check, verbose,
                          f"ImageDataset.from_directory({os.fspath(root)!r})")

    @classmethod
    def from_table(cls, path: PathLike, root: PathLike | None = None, errors: str = "raise",
                   check: bool = True, verbose: bool | None = None, *, progress: Any = DEPRECATED
                   ) -> ImageDataset:
        """Read a TSV/CSV of ``path, label`` (header optional; ML.NET's headerless TSV works).

        Relative paths are resolved against ``root`` or, by default, the table's folder. Malformed
        lines raise an error naming the line (``errors="skip"`` reports and skips them instead);
        missing or unreadable images are always skipped and reported.
        Example: ``ImageDataset.from_table("sample_data/tags.tsv")``.
        """
        paths, image_labels, problems = read_table(path, root=root, errors=errors)
        base = root if root is not None else Path(path).parent
        verbose = renamed_keyword("ImageDataset.from_table", "progress", progress, "verbose", verbose, None)
        return cls._build(paths, image_labels, problems, base, check, verbose,
                          f"ImageDataset.from_table({os.fspath(path)!r})")

    @classmethod
    def _build(cls, paths: list[str], image_labels: list[str] | None,
               problems: list[tuple[str, str]], root: PathLike | None, check: bool,
               verbose: bool | None, what: str) -> ImageDataset:
        skipped = list(problems)
        if check:
            reasons = check_all(paths, verbose)
            keep = [i for i, r in enumerate(reasons) if r is None]
            skipped += [(paths[i], r) for i, r in enumerate(reasons) if r is not None]
            paths = [paths[i] for i in keep]
            if image_labels is not None:
                image_labels = [image_labels[i] for i in keep]
        warn_skipped(skipped, what, stacklevel=4)
        if image_labels is not None:  # bytes are compared only when checking reads the files anyway
            warn_conflicts(find_conflicts(paths, image_labels, compare_bytes=check), what, stacklevel=4)
        if image_labels is None:
            return cls(paths, None, None, root=root, skipped=skipped)
        labels = sorted(set(image_labels))
        index = {label: i for i, label in enumerate(labels)}
        return cls(paths, [index[v] for v in image_labels], labels, root=root, skipped=skipped)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        where = f" from {self.root!r}" if self.root else ""
        if self.targets is None:
            return f"<ImageDataset: {len(self)} unlabelled images{where}>"
        counts = ", ".join(f"{k}: {v}" for k, v in self.counts().items())
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return f"<ImageDataset: {len(self)} images in {len(self.labels)} classes ({counts}){skipped}{where}>"

    @property
    def is_labelled(self) -> bool:
        """True when every image has a class."""
        return self.targets is not None

    @property
    def image_labels(self) -> list[str]:
        """The class name of each image, in order (empty strings when unlabelled)."""
        if self.targets is None:
            return [""] * len(self)
        return [self.labels[t] for t in self.targets]

    def relative_paths(self) -> list[str]:
        """Paths relative to ``root`` (or as given when there is no root), with ``/`` separators."""
        if not self.root:
            return list(self.paths)
        out = []
        for p in self.paths:
            try:
                out.append(Path(os.path.relpath(p, self.root)).as_posix())
            except ValueError:  # a different drive on Windows
                out.append(p)
        return out

    def counts(self) -> dict[str, int]:
        """Number of images per class, in class order, e.g. ``{'bird': 35, 'flower': 25}``."""
        if self.targets is None:
            return {}
        found = np.bincount(self.targets, minlength=len(self.labels))
        return {label: int(n) for label, n in zip(self.labels, found)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageDataset:
        """A new dataset with the images at ``indices`` (boolean masks work too); classes are kept."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if len(idx) != len(self):
                raise ValueError(f"boolean mask has {len(idx)} entries for {len(self)} images")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if len(idx) and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"index out of range for a dataset of {len(self)} images")
        paths = [self.paths[i] for i in idx]
        targets = None if self.targets is None else self.targets[idx]
        return type(self)(paths, targets, list(self.labels), root=self.root)

    def split(self, test_size: float | int = 0.34, stratify: bool = True,
              random_state: int | None = 0, groups: Any = "exact") -> tuple[ImageDataset, ImageDataset]:
        """Split into ``(train, test)``: deterministic for a given ``random_state``.

        With ``stratify=True`` each class keeps its share on both sides and every class with at
        least two images appears in both. A class with a single image cannot be stratified and
        raises an error naming it. Save the split with :func:`cvkit.data.save_split`.

        ``groups`` keeps duplicates on one side, so a copy of a training photo is never a test
        photo: ``"exact"`` (the default) groups identical files (cheap: only files of equal size
        are read), an array of group ids (e.g. ``cvkit.duplicate_groups(ds)`` for near-duplicates)
        groups as given, ``None`` splits image by image. A line says how many groups were kept
        together, when there were any.

        Example:
            >>> ds = ImageDataset.from_directory("sample_data")
            >>> train, test = ds.split(test_size=0.34, random_state=0)
            >>> len(train), len(test)
            (68, 36)
        """
        if self.targets is None and stratify:
            raise ValueError("cannot stratify an unlabelled dataset; use stratify=False")
        targets = self.targets if self.targets is not None else np.zeros(len(self), np.int64)
        check_param("groups", groups, [Options(["exact"]), "array-like", None])
        if isinstance(groups, str):
            groups = same_image_groups(self.paths)
        if groups is None:
            groups = np.arange(len(self))
        train_idx, test_idx, kept = grouped_split_indices(
            targets, self.labels, np.asarray(groups), test_size=test_size, stratify=stratify,
            random_state=random_state)
        if kept:
            print(f"split: kept {kept} group(s) of duplicate images together, each on one side")
        return self.subset(train_idx), self.subset(test_idx)

    def show(self, n: int = 16, ncols: int | None = None, random_state: int | None = 0,
             size: int = 160) -> Figure:
        """A labelled grid of ``n`` images (a random sample, one draw per ``random_state``).

        Returns the matplotlib Figure (also displayed in a notebook).
        """
        n = min(n, len(self))
        rng = np.random.default_rng(random_state)
        idx = np.sort(rng.choice(len(self), size=n, replace=False)) if random_state is not None \
            else np.arange(n)
        images, titles = [], []
        labels = self.image_labels
        for i in idx:
            try:
                images.append(read_image(self.paths[i], size=size))
            except ImageReadError:
                images.append(None)
            titles.append(labels[i] or Path(self.paths[i]).name)
        return image_grid(images, titles, ncols=ncols)

    def audit(self, **kwargs: Any) -> pd.DataFrame:
        """The image-quality checks of these photos: blurry, dark, bright, near-constant, small, oddly
        shaped, grey in a colour set, rotated by an EXIF tag, unreadable. One row per flag, with its
        score, threshold and reason; keyword arguments go to :func:`cvkit.find_image_issues`.

        Label mistakes and duplicates need a model's features: :func:`cvkit.find_label_issues`,
        :func:`cvkit.find_duplicates`, or all of them at once with ``cvkit audit``. Draw the flagged
        photos with :func:`cvkit.evaluation.plots.plot_image_issues`.

        Example:
            >>> ImageDataset.from_directory("sample_data").audit().issue.tolist()
            ['odd_aspect']
        """
        from cvkit.data._quality import flag_image_issues, measure_images  # the checks import no dataset

        threads = kwargs.pop("threads", None)
        table = measure_images(self.paths, self.paths, self.image_labels if self.is_labelled else None,
                               self.skipped, threads=threads)
        return flag_image_issues(table, **kwargs)

    def with_corrections(self, path: PathLike) -> ImageDataset:
        """This dataset with a corrections file applied (see :func:`cvkit.data._corrections.apply_corrections`):
        relabelled images take their new label, excluded ones are dropped; no file is changed.

        Example: ``FeatureClassifier().fit(train.with_corrections("sample_data/corrections.tsv"))``.
        """
        from cvkit.data._corrections import apply_corrections  # corrections imports this module

        return apply_corrections(self, path)
