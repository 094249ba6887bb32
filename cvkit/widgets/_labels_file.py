r"""The annotation file behind :class:`~cvkit.widgets.AnnotationWidget`: a TSV, saved atomically.

Why a plain TSV: it is the table :meth:`cvkit.ImageDataset.from_table` reads directly, it diffs well
and it can be fixed by hand. The widget's extra state lives in ``#`` comment lines, which
``from_table`` ignores::

    # cvkit annotations: read with cvkit.ImageDataset.from_table("labels.tsv")
    #labels	bird	flower	fruit
    path	label
    photos/owl.jpg	bird
    #excluded	photos/broken.jpg	corrupt image: truncated

Paths are written relative to the file's folder (``from_table`` resolves them the same way), and
exactly: a name with surrounding spaces, a tab, a quote or a line break is quoted, and a quoted cell
is read back as written.

Every save writes a temporary file in the same folder and then ``os.replace``-s it over the old
one, so a crash or a killed kernel leaves either the old or the new file, never half of one.
Several writers (two notebooks, two processes) may share one file: a save holds a lock on the
file's folder, re-reads the file, merges in only this writer's own changes, and writes the result,
so no writer's labels are lost. A killed save may leave a hidden ``.labels.tsv.*.tmp`` file; the
next ``LabelsFile`` opened on that file removes it.

The writing itself (temporary file, lock, stale temporaries) is :mod:`cvkit._io`'s, the one
home of file writing in cvkit.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.tsv")
    >>> store = LabelsFile(path)
    >>> store.set_label(" owl.jpg", "bird"); store.save()
    >>> LabelsFile(path).annotations == store.annotations
    True
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cvkit._io import atomic_write, folder_lock, image_key, portable_path, remove_stale_temporaries
from cvkit.data._images import ImageReadError, PathLike, check_regular_file
from cvkit.data._sources import LABEL_COLUMNS, PATH_COLUMNS, TableFormatError, format_row, iter_records

__all__ = ["LabelsFile", "check_label"]

_LABELS_TAG = "#labels"
_EXCLUDED_TAG = "#excluded"
_BANNER = "# cvkit annotations: read with cvkit.ImageDataset.from_table({name!r})"


def check_label(name: str) -> str:
    """Return ``name`` stripped, or raise ``ValueError`` saying why it cannot be a class name.

    A label must be non-empty and fit in one TSV cell (no tab, no line break).

    Example:
        >>> check_label(" cat ")
        'cat'
        >>> check_label("a\\tb")
        Traceback (most recent call last):
        ...
        ValueError: label 'a\\tb' contains a tab or a line break
    """
    if not isinstance(name, str):
        raise ValueError(f"label must be a string, not {type(name).__name__}")
    label = name.strip()
    if not label:
        raise ValueError("label is empty")
    if any(c in label for c in "\t\r\n"):
        raise ValueError(f"label {label!r} contains a tab or a line break")
    return label


class LabelsFile:
    """Labels and exclusions of images, kept in memory and saved to one TSV file.

    Parameters
    ----------
    path : the TSV file. Read if it exists (so work resumes); created, with its folder, on save.

    Attributes
    ----------
    path : the file (absolute).
    labels : class names, in the order they were first declared.
    annotations : ``{absolute image path: label}``.
    excluded : ``{absolute image path: reason}`` for images left out on purpose.

    An existing file that cannot be parsed raises :class:`~cvkit.data.TableFormatError` naming the
    line, and is never overwritten. Other writers' saves made since this one last read or wrote
    the file are merged in on :meth:`save` (see the module docstring).

    Example:
        >>> import os, tempfile
        >>> store = LabelsFile(os.path.join(tempfile.mkdtemp(), "labels.tsv"))
        >>> store.set_label("sample_data/bird/owl.jpg", "bird")
        >>> store.save()
        >>> LabelsFile(store.path).label_of("sample_data/bird/owl.jpg")
        'bird'
    """

    def __init__(self, path: PathLike):
        self.path = Path(os.path.abspath(os.fspath(path)))
        # the delimiter from_table expects for this file name: comma for .csv, tab otherwise
        self.delimiter = "," if self.path.suffix.lower() == ".csv" else "\t"
        self.labels: list[str] = []
        self.annotations: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        # the file's entries as this object last read or wrote them: what save() diffs against
        self._seen: tuple[dict[str, str], dict[str, str]] = ({}, {})
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a folder; give a file name such as labels.tsv")
        remove_stale_temporaries(self.path)
        if os.path.exists(self.path):
            labels, self.annotations, self.excluded = self._read()
            for name in labels:
                self.add_label(name)
            self._seen = (dict(self.annotations), dict(self.excluded))

    # ------------------------------------------------------------------ reading
    def _resolve(self, cell: str) -> str:
        return image_key(cell if os.path.isabs(cell) else self.path.parent / cell)

    def _read(self) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """``(labels, annotations, excluded)`` as the file holds them now."""
        try:
            check_regular_file(self.path)  # a named pipe would block, a device never end
        except ImageReadError as exc:
            raise ValueError(f"{self.path}: {exc.reason}; give a file name such as labels.tsv") from None
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            raise TableFormatError(self.path, 1, "not UTF-8 text; refusing to overwrite it") from None
        labels: list[str] = []
        annotations: dict[str, str] = {}
        excluded: dict[str, str] = {}
        header_seen = False
        for record in iter_records(text, self.delimiter):
            if record.error is not None:
                raise TableFormatError(self.path, record.line, record.error)
            cells = [c if q else c.strip() for c, q in zip(record.cells, record.quoted)]
            if not any(c.strip() for c in cells):
                continue
            tag = cells[0] if not record.quoted[0] else ""
            if tag == _LABELS_TAG:
                labels += [check_label(name) for name in cells[1:] if name.strip()]
                continue
            if tag == _EXCLUDED_TAG:
                if len(cells) < 2 or not cells[1]:
                    raise TableFormatError(self.path, record.line, "#excluded line without an image path")
                excluded[self._resolve(cells[1])] = cells[2] if len(cells) > 2 else ""
                continue
            if tag.startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                if self._is_header(cells, record.line):
                    continue
            path, label = self._data_row(cells, record.line)
            key = self._resolve(path)
            annotations[key] = label
            excluded.pop(key, None)
            labels.append(label)
        return list(dict.fromkeys(labels)), annotations, excluded

    def _is_header(self, cells: list[str], line: int) -> bool:
        lowered = [c.lower().replace(" ", "") for c in cells]
        if len(cells) >= 2 and lowered[0] in PATH_COLUMNS and lowered[1] in LABEL_COLUMNS:
            if len(cells) > 2:
                raise TableFormatError(self.path, line, f"has {len(cells)} columns; the "
                                       "annotation file keeps only path and label, so it "
                                       "would drop the others: choose another output file")
            return True
        return False

    def _data_row(self, cells: list[str], line: int) -> tuple[str, str]:
        if len(cells) != 2:
            shown = self.delimiter.join(cells)
            shown = shown if len(shown) <= 200 else shown[:200] + "..."
            raise TableFormatError(self.path, line, f"expected 2 fields (path, label), found "
                                   f"{len(cells)}: {shown!r}")
        path, label = cells[0], cells[1].strip()
        if not path or not label:
            raise TableFormatError(self.path, line, "empty image path or label")
        try:
            return path, check_label(label)
        except ValueError as exc:
            raise TableFormatError(self.path, line, str(exc)) from None

    def _merge(self, labels: list[str], annotations: dict[str, str], excluded: dict[str, str]) -> None:
        """Take the file's current entries, then re-apply this object's own changes on top.

        A change is an image whose label or exclusion differs from what this object last read or
        wrote; images this object did not touch keep the file's version (another writer's).
        """
        seen_ann, seen_exc = self._seen
        merged_ann, merged_exc = dict(annotations), dict(excluded)
        keys = dict.fromkeys([*self.annotations, *self.excluded, *seen_ann, *seen_exc])
        for key in keys:
            mine = (self.annotations.get(key), self.excluded.get(key))
            if mine == (seen_ann.get(key), seen_exc.get(key)):
                continue
            merged_ann.pop(key, None)
            merged_exc.pop(key, None)
            if mine[0] is not None:
                merged_ann[key] = mine[0]
            elif mine[1] is not None:
                merged_exc[key] = mine[1]
        self._seen = (dict(annotations), dict(excluded))
        self.annotations.clear()
        self.annotations.update(merged_ann)
        self.excluded.clear()
        self.excluded.update(merged_exc)
        for name in labels:
            if name not in self.labels:
                self.labels.append(name)

    # ------------------------------------------------------------------ changes
    def add_label(self, name: str) -> str:
        """Declare a class name (kept even before any image has it); returns the cleaned name."""
        label = check_label(name)
        if label not in self.labels:
            self.labels.append(label)
        return label

    def set_label(self, image: PathLike, label: str) -> None:
        """Give ``image`` a class (this also un-excludes it)."""
        label = self.add_label(label)
        key = image_key(image)
        self.excluded.pop(key, None)
        self.annotations[key] = label

    def exclude(self, image: PathLike, reason: str = "") -> None:
        """Leave ``image`` out of the dataset on purpose (its label, if any, is dropped)."""
        key = image_key(image)
        self.annotations.pop(key, None)
        self.excluded[key] = " ".join(str(reason).split())

    def clear(self, image: PathLike) -> None:
        """Forget the label or exclusion of ``image``."""
        key = image_key(image)
        self.annotations.pop(key, None)
        self.excluded.pop(key, None)

    def label_of(self, image: PathLike) -> str | None:
        """The label of ``image``, or None."""
        return self.annotations.get(image_key(image))

    def is_excluded(self, image: PathLike) -> bool:
        """True when ``image`` was excluded."""
        return image_key(image) in self.excluded

    # ------------------------------------------------------------------ writing
    def _cell(self, key: str) -> str:
        """Relative to the file's folder when both share a folder below the file-system root
        (so a project folder can move as a whole); absolute otherwise."""
        folder = os.fspath(self.path.parent)
        try:
            common = os.path.commonpath([key, folder])
        except ValueError:  # another drive (Windows)
            return Path(key).as_posix()
        if os.path.dirname(common) == common:  # only the root (or drive) in common
            return Path(key).as_posix()
        rel = portable_path(key, folder)
        return "./" + rel if rel.startswith("#") else rel

    def to_text(self, order: Iterable[PathLike] = ()) -> str:
        """The file's content. Images in ``order`` come first, in that order; others follow."""
        keys = [image_key(p) for p in order]
        known = set(keys)
        keys += [k for k in list(self.annotations) + list(self.excluded) if k not in known]
        lines = [_BANNER.format(name=self.path.name) + "\n",
                 format_row([_LABELS_TAG, *self.labels], self.delimiter),
                 format_row(["path", "label"], self.delimiter)]
        for key in dict.fromkeys(keys):
            if key in self.annotations:
                lines.append(format_row([self._cell(key), self.annotations[key]], self.delimiter))
            elif key in self.excluded:
                lines.append(format_row([_EXCLUDED_TAG, self._cell(key), self.excluded[key]],
                                        self.delimiter))
        return "".join(lines)

    def save(self, order: Iterable[PathLike] = ()) -> None:
        """Write the file atomically (creating its folder), merged with other writers' saves.

        Under :func:`cvkit._io.folder_lock`, the file is read again, this object's changes since
        it last read or wrote the file are applied on top (the file's other entries are kept, and
        become visible here), and the result is written with :func:`cvkit._io.atomic_write`.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with folder_lock(self.path.parent):
            if os.path.exists(self.path):
                self._merge(*self._read())
            else:
                self._merge([], {}, {})
            atomic_write(self.path, self.to_text(order))
            self._seen = (dict(self.annotations), dict(self.excluded))
