"""The annotation file behind :class:`~cvkit.widgets.AnnotationWidget`: a TSV, saved atomically.

Why a plain TSV: it is the table :meth:`cvkit.ImageDataset.from_table` reads directly, it diffs well
and it can be fixed by hand. The widget's extra state lives in ``#`` comment lines, which
``from_table`` ignores::

    # cvkit annotations: read with cvkit.ImageDataset.from_table("labels.tsv")
    #labels	bird	flower	fruit
    path	label
    photos/owl.jpg	bird
    #excluded	photos/broken.jpg	corrupt image: truncated

Paths are written relative to the file's folder (``from_table`` resolves them the same way).
Every save writes a temporary file in the same folder and then ``os.replace``-s it over the old
one, so a crash or a killed kernel leaves either the old or the new file, never half of one.

Example:
    >>> store = LabelsFile("runs/annotate/labels.tsv")            # doctest: +SKIP
    >>> store.set_label("photos/owl.jpg", "bird"); store.save()   # doctest: +SKIP
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Union

from cvkit.data.sources import LABEL_COLUMNS, PATH_COLUMNS, TableFormatError

PathLike = Union[str, os.PathLike]

__all__ = ["LabelsFile", "check_label", "atomic_write_text"]

_LABELS_TAG = "#labels"
_EXCLUDED_TAG = "#excluded"
_BANNER = "# cvkit annotations: read with cvkit.ImageDataset.from_table({name!r})"


def check_label(name: str) -> str:
    """Return ``name`` stripped, or raise ``ValueError`` saying why it cannot be a class name.

    A label must be non-empty and fit in one TSV cell (no tab, no line break).

    Example: ``check_label(" cat ")`` -> ``'cat'``; ``check_label("a\\tb")`` raises ValueError.
    """
    if not isinstance(name, str):
        raise ValueError(f"label must be a string, not {type(name).__name__}")
    label = name.strip()
    if not label:
        raise ValueError("label is empty")
    if any(c in label for c in "\t\r\n"):
        raise ValueError(f"label {label!r} contains a tab or a line break")
    return label


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers only ever see the old or the new content.

    The text goes to a temporary file in the same folder (same file system, so the rename is
    atomic), is flushed to disk, and then replaces ``path`` with :func:`os.replace`. If anything
    fails before the replace, the old file is untouched and the temporary file is removed.

    Example: ``atomic_write_text("runs/labels.tsv", "path\\tlabel\\n")``
    """
    path = Path(path)
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        try:
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


def _key(path: PathLike) -> str:
    """The normalised absolute path used to match images between the widget and the file."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


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
    line, and is never overwritten.

    Example:
        >>> store = LabelsFile("labels.tsv")                      # doctest: +SKIP
        >>> store.set_label("photos/owl.jpg", "bird")             # doctest: +SKIP
        >>> store.save()                                          # doctest: +SKIP
    """

    def __init__(self, path: PathLike):
        self.path = Path(os.path.abspath(os.fspath(path)))
        # the delimiter from_table expects for this file name: comma for .csv, tab otherwise
        self.delimiter = "," if self.path.suffix.lower() == ".csv" else "\t"
        self.labels: list[str] = []
        self.annotations: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a folder; give a file name such as labels.tsv")
        if self.path.exists():
            self._read()

    # ------------------------------------------------------------------ reading
    def _resolve(self, cell: str) -> str:
        return _key(cell if os.path.isabs(cell) else self.path.parent / cell)

    def _read(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise TableFormatError(self.path, 1, "not UTF-8 text; refusing to overwrite it") from None
        delimiter = self.delimiter
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header_seen = False
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not cells or all(not c for c in cells):
                continue
            head = cells[0]
            if head == _LABELS_TAG:
                for name in cells[1:]:
                    if name:
                        self.add_label(name)
                continue
            if head == _EXCLUDED_TAG:
                if len(cells) < 2 or not cells[1]:
                    raise TableFormatError(self.path, line, "#excluded line without an image path")
                self.excluded[self._resolve(cells[1])] = cells[2] if len(cells) > 2 else ""
                continue
            if head.startswith("#"):
                continue
            if not header_seen:
                header_seen = True
                lowered = [c.lower().replace(" ", "") for c in cells]
                if len(cells) >= 2 and lowered[0] in PATH_COLUMNS and lowered[1] in LABEL_COLUMNS:
                    if len(cells) > 2:
                        raise TableFormatError(self.path, line, f"has {len(cells)} columns; the "
                                               "annotation file keeps only path and label, so it "
                                               "would drop the others: choose another output file")
                    continue
            if len(cells) != 2:
                raise TableFormatError(self.path, line, f"expected 2 fields (path, label), found "
                                       f"{len(cells)}: {delimiter.join(row)!r}")
            path, label = cells
            if not path or not label:
                raise TableFormatError(self.path, line, "empty image path or label")
            key = self._resolve(path)
            self.annotations[key] = label
            self.excluded.pop(key, None)
            self.add_label(label)

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
        key = _key(image)
        self.excluded.pop(key, None)
        self.annotations[key] = label

    def exclude(self, image: PathLike, reason: str = "") -> None:
        """Leave ``image`` out of the dataset on purpose (its label, if any, is dropped)."""
        key = _key(image)
        self.annotations.pop(key, None)
        self.excluded[key] = " ".join(str(reason).split())

    def clear(self, image: PathLike) -> None:
        """Forget the label or exclusion of ``image``."""
        key = _key(image)
        self.annotations.pop(key, None)
        self.excluded.pop(key, None)

    def label_of(self, image: PathLike) -> str | None:
        """The label of ``image``, or None."""
        return self.annotations.get(_key(image))

    def is_excluded(self, image: PathLike) -> bool:
        """True when ``image`` was excluded."""
        return _key(image) in self.excluded

    # ------------------------------------------------------------------ writing
    def _cell(self, image_key: str) -> str:
        """Relative to the file's folder when both share a folder below the file-system root
        (so a project folder can move as a whole); absolute otherwise."""
        folder = os.fspath(self.path.parent)
        try:
            common = os.path.commonpath([image_key, folder])
            rel = os.path.relpath(image_key, folder)
        except ValueError:  # another drive (Windows)
            return Path(image_key).as_posix()
        if os.path.dirname(common) == common:  # only the root (or drive) in common
            return Path(image_key).as_posix()
        rel = Path(rel).as_posix()
        return "./" + rel if rel.startswith("#") else rel

    def to_text(self, order: Iterable[PathLike] = ()) -> str:
        """The file's content. Images in ``order`` come first, in that order; others follow."""
        keys = [_key(p) for p in order]
        known = set(keys)
        keys += [k for k in list(self.annotations) + list(self.excluded) if k not in known]
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self.delimiter, lineterminator="\n",
                            quoting=csv.QUOTE_MINIMAL)
        buf.write(_BANNER.format(name=self.path.name) + "\n")
        writer.writerow([_LABELS_TAG, *self.labels])
        writer.writerow(["path", "label"])
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            if key in self.annotations:
                writer.writerow([self._cell(key), self.annotations[key]])
            elif key in self.excluded:
                writer.writerow([_EXCLUDED_TAG, self._cell(key), self.excluded[key]])
        return buf.getvalue()

    def save(self, order: Iterable[PathLike] = ()) -> None:
        """Write the file atomically (creating its folder). See :func:`atomic_write_text`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, self.to_text(order))
