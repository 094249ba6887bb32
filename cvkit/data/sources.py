"""Where labelled images come from: a folder of class folders, or a table of path and label.

Both return plain ``(paths, image_labels, problems)`` lists; :class:`~cvkit.data.ImageDataset`
turns them into a dataset. ``problems`` are ``(path_or_line, reason)`` pairs for rows that were
skipped rather than fatal.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterator

from cvkit.data.images import PathLike, is_image_path

#: Header names recognised (case-insensitively) in the first row of a table.
PATH_COLUMNS = ("path", "imagepath", "image_path", "image", "file", "filename", "filepath")
LABEL_COLUMNS = ("label", "labels", "class", "category", "tag")


class TableFormatError(ValueError):
    """A line of a path/label table is malformed. The message names the file and line number."""

    def __init__(self, table: PathLike, line: int, reason: str):
        self.table, self.line, self.reason = str(table), line, reason
        super().__init__(f"{table} line {line}: {reason}")


def iter_images(folder: PathLike) -> Iterator[str]:
    """Image files under ``folder``, at any depth, in sorted order (one walker for all of cvkit).

    Hidden files and folders (names starting with ``.``) and files without an image extension are
    left out; symbolic links to folders are not followed, so a link loop cannot trap the walk.
    """
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and is_image_path(name):
                yield os.path.join(dirpath, name)


def list_images(folder: PathLike) -> list[str]:
    """All image files under ``folder`` (see :func:`iter_images`); an error if it is not a folder.

    Example:
        >>> list_images("sample_data")[:1]
        ['sample_data/bird/adelaide-rosella.jpg']
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{os.fspath(folder)}: image folder not found")
    return list(iter_images(folder))


def scan_directory(root: PathLike) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """List images under ``root``: one class per top-level sub-folder.

    Images in deeper folders take their top folder's label. Hidden files and folders (names starting
    with ``.``) and files without an image extension are ignored. Files directly in ``root`` have no
    class and are reported as problems. Order is sorted, so results are reproducible.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder of class folders")
    paths: list[str] = []
    labels: list[str] = []
    problems: list[tuple[str, str]] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            if is_image_path(entry):
                problems.append((str(entry), "image directly in the root folder has no class folder"))
            continue
        if not entry.is_dir():
            continue
        found = list(iter_images(entry))
        paths += found
        labels += [entry.name] * len(found)
    return paths, labels, problems


def _sniff_delimiter(table: Path, first_line: str) -> str:
    suffix = table.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if "\t" in first_line else ","


def read_table(table: PathLike, root: PathLike | None = None, errors: str = "raise"
               ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Read a TSV or CSV of ``path, label`` rows (ML.NET's headerless ``relative/path<TAB>label``).

    - A header row is recognised by its names (``path,label``, ``ImagePath,Label`` ...); extra
      columns after the label are ignored only when a header names the two we need.
    - Relative paths are resolved against ``root``, or the table's own folder when ``root`` is None.
    - Blank lines and lines starting with ``#`` are ignored.
    - A malformed line raises :class:`TableFormatError` naming its line number; with
      ``errors="skip"`` it is skipped and reported instead. Missing image files are always reported,
      never fatal.
    """
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"{table}: table file not found")
    base = Path(root) if root is not None else table.parent
    try:
        text = table.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableFormatError(table, text_line(exc), "not UTF-8 text") from None
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = _sniff_delimiter(table, first)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)

    paths: list[str] = []
    labels: list[str] = []
    problems: list[tuple[str, str]] = []
    path_col, label_col, width = 0, 1, 2
    header_seen = False
    for row in reader:
        lineno = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if not header_seen:
            header_seen = True
            lowered = [c.lower().replace(" ", "") for c in cells]
            pc = next((i for i, c in enumerate(lowered) if c in PATH_COLUMNS), None)
            lc = next((i for i, c in enumerate(lowered) if c in LABEL_COLUMNS), None)
            if pc is not None and lc is not None:
                path_col, label_col, width = pc, lc, len(cells)
                continue
        try:
            if len(cells) != width and not (width > 2 and len(cells) >= max(path_col, label_col) + 1):
                sep = "a tab" if delimiter == "\t" else "a comma"
                raise TableFormatError(table, lineno, f"expected {width} fields (path, label) separated "
                                                      f"by {sep}, found {len(cells)}: {delimiter.join(row)!r}")
            path, label = cells[path_col], cells[label_col]
            if not path:
                raise TableFormatError(table, lineno, "empty image path")
            if not label:
                raise TableFormatError(table, lineno, f"empty label for {path!r}")
        except TableFormatError as exc:
            if errors == "raise":
                raise
            problems.append((f"{table} line {lineno}", exc.reason))
            continue
        full = Path(path) if os.path.isabs(path) else base / path
        if not full.is_file():
            problems.append((str(full), f"file not found (listed in {table.name} line {lineno})"))
            continue
        paths.append(str(full))
        labels.append(label)
    return paths, labels, problems


def text_line(exc: UnicodeDecodeError) -> int:
    """Line number (1-based) of the byte where decoding failed."""
    return exc.object[: exc.start].count(b"\n") + 1
