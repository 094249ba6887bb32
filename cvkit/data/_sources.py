r"""Where labelled images come from: a folder of class folders, or a table of path and label.

Both return plain ``(paths, image_labels, problems)`` lists; :class:`~cvkit.data.ImageDataset`
turns them into a dataset. ``problems`` are ``(path_or_line, reason)`` pairs for rows that were
skipped rather than fatal.

Tables are CSV/TSV as spreadsheets write them, read by :func:`iter_records` so that a name is kept
exactly: a quoted cell is taken as written (leading spaces, tabs, line breaks and all), an unquoted
cell has its surrounding spaces removed, and :func:`format_row` quotes every cell that needs it.

Example:
    >>> format_row([" leading.jpg", "bird"], "\t")
    '" leading.jpg"\tbird\n'
    >>> [r.cells for r in iter_records(format_row([" leading.jpg", "bird"], "\t"), "\t")]
    [[' leading.jpg', 'bird']]
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cvkit._validation import Options, check_param
from cvkit.data._images import ImageReadError, PathLike, check_regular_file, is_image_path

__all__ = ["PATH_COLUMNS", "LABEL_COLUMNS", "MAX_FIELD_CHARS", "TableFormatError", "Record",
           "iter_records", "format_row", "iter_images", "list_images", "scan_directory",
           "read_table", "read_table_text", "read_image_table", "text_line"]

#: Header names recognised (case-insensitively) in the first row of a table.
PATH_COLUMNS = ("path", "imagepath", "image_path", "image", "file", "filename", "filepath")
LABEL_COLUMNS = ("label", "labels", "class", "category", "tag")

#: The longest cell a table may hold (the limit Python's csv module has): far above any file path
#: (4096 bytes on Linux); a longer one is almost always a quote that is never closed.
MAX_FIELD_CHARS = 131_072

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class TableFormatError(ValueError):
    """A line of a path/label table is malformed. The message names the file and line number."""

    def __init__(self, table: PathLike, line: int, reason: str):
        self.table, self.line, self.reason = str(table), line, reason
        super().__init__(f"{table} line {line}: {reason}")


class Record(NamedTuple):
    """One row of a table: its first line number, its cells, and which cells were quoted.

    ``error`` is set (and ``cells`` empty) for a row that cannot be split into cells.
    """

    line: int
    cells: list[str]
    quoted: list[bool]
    error: str | None = None


def _breaks(text: str, start: int, end: int) -> int:
    r"""How many line breaks (``\n``, ``\r\n`` or a lone ``\r``) ``text[start:end]`` holds."""
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


def _quoted_record(text: str, i: int, delimiter: str, max_field: int
                   ) -> tuple[list[str], list[bool], int, str | None]:
    """Parse one record that holds a quote, from ``text[i]``: ``(cells, quoted, end, error)``.

    The rules are the csv module's: a cell that starts with ``"`` runs to the next lone ``"``
    (``""`` is one quote, delimiters and line breaks inside are kept); a quote inside an unquoted
    cell is an ordinary character.
    """
    cells: list[str] = []
    quoted: list[bool] = []
    field: list[str] = []
    size, in_quotes, was_quoted, at_start, n = 0, False, False, True, len(text)
    while i < n:
        if size > max_field:
            return [], [], i, f"a cell is longer than {max_field} characters (a quote never closed?)"
        c = text[i]
        if in_quotes:
            j = text.find('"', i)
            if j < 0:
                return [], [], n, "a quoted cell is never closed (its closing \" is missing)"
            field.append(text[i:j])
            size += j - i
            if text.startswith('""', j):
                field.append('"')
                size += 1
                i = j + 2
            else:
                in_quotes, i = False, j + 1
            continue
        if c == delimiter or c in "\r\n":
            cells.append("".join(field))
            quoted.append(was_quoted)
            field, size, was_quoted, at_start = [], 0, False, True
            if c != delimiter:
                return cells, quoted, i + (2 if text.startswith("\r\n", i) else 1), None
        elif c == '"' and at_start:
            in_quotes = was_quoted = True
            at_start = False
        else:
            field.append(c)
            size += 1
            at_start = False
        i += 1
    if size > max_field:
        return [], [], i, f"a cell is longer than {max_field} characters (a quote never closed?)"
    cells.append("".join(field))
    quoted.append(was_quoted)
    return cells, quoted, n, None


def iter_records(text: str, delimiter: str, max_field: int = MAX_FIELD_CHARS) -> Iterator[Record]:
    r"""The rows of a CSV/TSV ``text`` (read with ``newline=""`` so line breaks in names survive).

    Cells follow the csv module's quoting rules, with two differences that keep data safe: a cell
    longer than ``max_field`` characters or a quote that is never closed gives a :class:`Record`
    with ``error`` set (not an exception), and reading goes on at the next line, so one bad line
    costs one row. Blank lines give a record with no cells.

    Example:
        >>> [r.cells for r in iter_records('a.jpg,cat\n"b, c.jpg",dog\n', ",")]
        [['a.jpg', 'cat'], ['b, c.jpg', 'dog']]
    """
    i, line, n = 0, 1, len(text)
    while i < n:
        m = _LINE_BREAK.search(text, i)
        stop, after = (m.start(), m.end()) if m else (n, n)
        if '"' not in text[i:stop]:
            cells = text[i:stop].split(delimiter) if stop > i else []
            if any(len(c) > max_field for c in cells):
                yield Record(line, [], [], f"a cell is longer than {max_field} characters")
            else:
                yield Record(line, cells, [False] * len(cells))
            i, line = after, line + (1 if m else 0)
            continue
        cells, quoted, end, error = _quoted_record(text, i, delimiter, max_field)
        if error is not None:
            yield Record(line, [], [], error)
            i, line = after, line + (1 if m else 0)  # go on at the next line: one bad row, not all
            continue
        yield Record(line, cells, quoted)
        line += _breaks(text, i, end)
        i = end


def _quote(cell: str, delimiter: str) -> str:
    special = delimiter in cell or '"' in cell or "\r" in cell or "\n" in cell
    if special or cell != cell.strip() or cell == "":
        return '"' + cell.replace('"', '""') + '"'
    return cell


def format_row(cells: list[str], delimiter: str) -> str:
    r"""One table line (ending in ``\n``), quoting every cell :func:`iter_records` would not read back
    exactly: cells with the delimiter, a quote, a line break, surrounding spaces, or nothing in them.

    Example:
        >>> format_row(["a\tb.jpg", "cat"], "\t")
        '"a\tb.jpg"\tcat\n'
    """
    return delimiter.join(_quote(c, delimiter) for c in cells) + "\n"


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


def read_table_text(table: PathLike) -> str:
    """The text of a table file exactly as stored (line breaks untranslated, so a line break inside a
    quoted file name survives); a UTF-8 byte-order mark is dropped.

    Raises ``FileNotFoundError`` unless ``table`` is a regular file (a named pipe would block), and
    :class:`TableFormatError` naming the line when it is not UTF-8 text.

    Example:
        >>> read_table_text("sample_data/tags.tsv").splitlines()[0].split()
        ['bird/adelaide-rosella.jpg', 'bird']
    """
    table = Path(table)
    if not table.is_file():
        raise FileNotFoundError(f"{table}: table file not found")
    try:
        with open(table, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise TableFormatError(table, text_line(exc), "not UTF-8 text") from None


def _header_columns(cells: list[str]) -> tuple[int, int] | None:
    """``(path column, label column)`` when ``cells`` is a header row naming both, else None."""
    lowered = [c.lower().replace(" ", "") for c in cells]
    pc = next((i for i, c in enumerate(lowered) if c in PATH_COLUMNS), None)
    lc = next((i for i, c in enumerate(lowered) if c in LABEL_COLUMNS), None)
    return None if pc is None or lc is None else (pc, lc)


def read_table(table: PathLike, root: PathLike | None = None, errors: str = "raise"
               ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """Read a TSV or CSV of ``path, label`` rows (ML.NET's headerless ``relative/path<TAB>label``).

    - A header row is recognised by its names (``path,label``, ``ImagePath,Label`` ...); extra
      columns after the label are ignored only when a header names the two we need.
    - Relative paths are resolved against ``root``, or the table's own folder when ``root`` is None.
    - Blank lines and lines starting with ``#`` are ignored.
    - Names are read exactly: a quoted cell keeps its spaces, tabs and line breaks; an unquoted cell
      loses its surrounding spaces (see :func:`iter_records`).
    - A malformed line (wrong number of cells, an empty cell, a cell over :data:`MAX_FIELD_CHARS`
      characters, a quote never closed) raises :class:`TableFormatError` naming the file and line;
      with ``errors="skip"`` it is skipped and reported instead. Missing image files are always
      reported, never fatal.

    Example:
        >>> paths, labels, problems = read_table("sample_data/tags.tsv")
        >>> len(paths), labels[0], problems
        (104, 'bird', [])
    """
    check_param("errors", errors, [Options(["raise", "skip"])])
    table = Path(table)
    text = read_table_text(table)
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = _sniff_delimiter(table, first)
    base = Path(root) if root is not None else table.parent
    paths: list[str] = []
    labels: list[str] = []
    problems: list[tuple[str, str]] = []
    columns: tuple[int, int, int] | None = None  # path column, label column, row width
    for record in iter_records(text, delimiter):
        row = [c if q else c.strip() for c, q in zip(record.cells, record.quoted)]
        if record.error is None and (not any(c.strip() for c in row)
                                     or (not record.quoted[0] and row[0].startswith("#"))):
            continue
        try:
            if record.error is not None:
                raise TableFormatError(table, record.line, record.error)
            if columns is None:
                header = _header_columns(row)
                columns = (0, 1, 2) if header is None else (*header, len(row))
                if header is not None:
                    continue
            path, label = _path_and_label(table, record.line, row, columns, delimiter)
        except TableFormatError as exc:
            if errors == "raise":
                raise
            problems.append((f"{table} line {exc.line}", exc.reason))
            continue
        full = Path(path) if os.path.isabs(path) else base / path
        try:
            check_regular_file(full, max_bytes=None)
        except ImageReadError as exc:
            problems.append((str(full), f"{exc.reason} (listed in {table.name} line {record.line})"))
            continue
        paths.append(str(full))
        labels.append(label)
    return paths, labels, problems


def read_image_table(table: PathLike) -> list[tuple[str, str | None]]:
    """``(path, label or None)`` for every row of a table of image paths whose labels are optional.

    For scoring and predicting: cells are split by :func:`iter_records` exactly as for training
    tables (quoting, over-long cells, unclosed quotes raise :class:`TableFormatError` naming the
    line), a header row is recognised by a path column name, relative paths are relative to the
    table's folder, and unlike :func:`read_table` a listed file that is missing keeps its row (it
    is reported when it is read).

    Example:
        >>> rows = read_image_table("sample_data/tags.tsv")
        >>> len(rows), rows[0][1]
        (104, 'bird')
    """
    table = Path(table)
    text = read_table_text(table)
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    delimiter = _sniff_delimiter(table, first)
    rows: list[tuple[str, str | None]] = []
    columns: tuple[int, int | None] | None = None  # path column, label column
    for record in iter_records(text, delimiter):
        if record.error is not None:
            raise TableFormatError(table, record.line, record.error)
        cells = [c if q else c.strip() for c, q in zip(record.cells, record.quoted)]
        if not any(c.strip() for c in cells) or (not record.quoted[0] and cells[0].startswith("#")):
            continue
        if columns is None:
            lowered = [c.lower().replace(" ", "") for c in cells]
            path_col = next((i for i, c in enumerate(lowered) if c in PATH_COLUMNS), None)
            if path_col is not None:  # a header row
                columns = (path_col, next((i for i, c in enumerate(lowered) if c in LABEL_COLUMNS), None))
                continue
            columns = (0, 1 if len(cells) > 1 else None)
        path_col, label_col = columns
        if path_col >= len(cells) or not cells[path_col].strip():
            raise TableFormatError(table, record.line, "no image path")
        path = cells[path_col]
        label = cells[label_col].strip() if label_col is not None and label_col < len(cells) else None
        rows.append((path if os.path.isabs(path) else str(table.parent / path), label or None))
    return rows


def _path_and_label(table: Path, line: int, row: list[str], columns: tuple[int, int, int],
                    delimiter: str) -> tuple[str, str]:
    """The path and label cells of one data row; :class:`TableFormatError` when they are not there."""
    path_col, label_col, width = columns
    if len(row) != width and not (width > 2 and len(row) >= max(path_col, label_col) + 1):
        sep = "a tab" if delimiter == "\t" else "a comma"
        shown = delimiter.join(row)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        raise TableFormatError(table, line, f"expected {width} fields (path, label) separated "
                                            f"by {sep}, found {len(row)}: {shown!r}")
    path, label = row[path_col], row[label_col].strip()  # a class name never keeps outer spaces
    if not path:  # a quoted " " is a file name (an unquoted one was stripped to nothing)
        raise TableFormatError(table, line, "empty image path")
    if not label:
        raise TableFormatError(table, line, f"empty label for {path!r}")
    return path, label


def text_line(exc: UnicodeDecodeError) -> int:
    """Line number (1-based) of the byte where decoding failed."""
    return exc.object[: exc.start].count(b"\n") + 1
