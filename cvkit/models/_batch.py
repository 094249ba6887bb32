"""Batch scoring: every image of a folder or table into one CSV row (Azure ML's "Score Image Model").

Images stream through in chunks: a thread pool decodes the next chunk while the model scores the
current one, and rows are written as they are ready, so memory stays flat for 100 000 images.
A bad image gets a row with its ``error`` and the run goes on.

Output columns: ``path``, ``true_label`` (when the input has labels: a table with a label column,
a labelled dataset, or a folder of class folders named after the model's classes), ``label``
(predicted), ``score`` (its probability), ``score_<class>`` for every class, ``error``. With true
labels the summary gives the accuracy.

Example:
    >>> summary = batch_score(model_dir, test.paths[:4], f"{tmp}/predictions.csv", progress=False)
    >>> summary.n_images, summary.n_errors
    (4, 0)
"""
from __future__ import annotations

import csv
import glob
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from cvkit.data._images import ImageReadError, PathLike, is_image_path, read_image
from cvkit.data._sources import LABEL_COLUMNS, PATH_COLUMNS, TableFormatError, iter_records, read_table_text
from cvkit.data._sources import iter_images as iter_image_files
from cvkit.models import _inference as inference

__all__ = ["batch_score", "BatchSummary", "batch_inputs", "class_folder_labels", "score_chunks",
           "decode_or_reason", "output_columns", "csv_cells", "check_output"]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


@dataclass
class BatchSummary:
    """What a batch run did: where the CSV is, how many images, how many failed, how fast."""

    output: str
    n_images: int
    n_errors: int
    seconds: float
    classes: list[str]
    label_counts: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # the first 20 (path, reason)
    n_labelled: int = 0  # scored images with a true label
    n_correct: int = 0  # of those, predicted right

    @property
    def accuracy(self) -> float | None:
        """Share of the scored images with a true label that were predicted right (None without labels)."""
        return self.n_correct / self.n_labelled if self.n_labelled else None

    @property
    def images_per_s(self) -> float:
        """Throughput of the whole run, decoding included."""
        return self.n_images / self.seconds if self.seconds > 0 else float("nan")

    def add_rows(self, rows: list[list[Any]], has_labels: bool) -> None:
        """Count scored rows (as :func:`score_chunks` yields them) into this summary."""
        label_at = 2 if has_labels else 1
        for row in rows:
            self.n_images += 1
            if row[-1]:
                self.n_errors += 1
                if len(self.errors) < 20:
                    self.errors.append((row[0], row[-1]))
                continue
            label = row[label_at]
            self.label_counts[label] = self.label_counts.get(label, 0) + 1
            if has_labels and row[1]:
                self.n_labelled += 1
                self.n_correct += int(label == row[1])
        self._order_labels()

    def add(self, other: "BatchSummary") -> None:
        """Add the counts of ``other`` (the summary of another part of the same job) to this one."""
        self.n_images += other.n_images
        self.n_errors += other.n_errors
        self.errors += other.errors[:max(0, 20 - len(self.errors))]
        self.n_labelled += other.n_labelled
        self.n_correct += other.n_correct
        for label, count in other.label_counts.items():
            self.label_counts[label] = self.label_counts.get(label, 0) + count
        self._order_labels()

    def _order_labels(self) -> None:
        """Keep ``label_counts`` in the order of ``classes`` (as the model lists them)."""
        known = [c for c in self.classes if c in self.label_counts]
        rest = [c for c in self.label_counts if c not in known]
        self.label_counts = {c: self.label_counts[c] for c in known + rest}

    def warn_errors(self, caller: str, stacklevel: int = 2) -> None:
        """One warning listing the first unreadable images, if there were any; ``stacklevel`` as
        seen from the caller (2: the warning points at the caller's caller)."""
        if self.n_errors:
            import warnings
            shown = "\n".join(f"  {p}: {r}" for p, r in self.errors[:10])
            warnings.warn(f"{caller}: {self.n_errors} of {self.n_images} image(s) could not be read "
                          f"(rows with an error in {self.output}):\n{shown}", stacklevel=stacklevel + 1)

    def __str__(self) -> str:
        lines = [f"scored {self.n_images - self.n_errors} of {self.n_images} images into "
                 f"{self.output} ({self.images_per_s:.1f} images/s)"]
        if self.accuracy is not None:
            lines.append(f"accuracy: {self.accuracy:.3f} ({self.n_correct} of {self.n_labelled} images "
                         "with a true label)")
        if self.label_counts:
            lines.append("predicted: " + ", ".join(f"{k} {v}" for k, v in self.label_counts.items()))
        if self.n_errors:
            lines.append(f"{self.n_errors} image(s) could not be read, e.g.:")
            lines += [f"  {p}: {r}" for p, r in self.errors[:5]]
        return "\n".join(lines)


# ---------------------------------------------------------------------- inputs
def _table_rows(table: Path) -> list[tuple[str, str | None]]:
    """``(path, label or None)`` for every row of a table of image paths, labels optional.

    Cells are split by the one table reader (:func:`cvkit.data._sources.iter_records`), so quoting,
    over-long cells and unclosed quotes are handled (and reported, as
    :class:`~cvkit.data._sources.TableFormatError` naming the line) exactly as for training tables.
    Unlike :func:`~cvkit.data._sources.read_table`, a label is optional and a listed file that is
    missing keeps its row, to be reported in the output as that image's error.
    """
    text = read_table_text(table)
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    suffix = table.suffix.lower()
    delimiter = "\t" if suffix == ".tsv" or (suffix != ".csv" and "\t" in first) else ","
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


def class_folder_labels(folder: PathLike, classes: Any) -> bool:
    """True when ``folder`` is a folder of class folders for ``classes``: no image directly in it, and
    every sub-folder holding images (at any depth) is named after one of ``classes``.

    Then each image's true label is its top-level folder's name. A folder of unlabelled photos
    sorted by date or place (``2023/``, ``2024/``) does not qualify, so it gets no made-up labels.

    Example:
        >>> class_folder_labels("sample_data", ["bird", "flower", "fruit", "vegetable"])
        True
        >>> class_folder_labels("sample_data", ["cat", "dog"]), class_folder_labels("sample_data/bird", ["bird"])
        (False, False)
    """
    if not classes:
        return False
    known = {str(c) for c in classes}
    tops = set()
    for path in iter_image_files(folder):
        parts = Path(os.path.relpath(path, folder)).parts
        if len(parts) < 2 or parts[0] not in known:
            return False
        tops.add(parts[0])
    return bool(tops)


def batch_inputs(images: Any, classes: Any = None) -> tuple[Iterator[tuple[str, str | None]], int, bool]:
    """``(iterator of (path, true_label or None), count, has_labels)`` for any batch input.

    ``images`` is a folder (searched recursively by :func:`cvkit.data._sources.iter_images`), a
    ``.csv``/``.tsv``/``.txt`` table of paths (optionally with labels; relative paths are relative
    to the table), a glob pattern (``"photos/**/*.jpg"``, sorted), an :class:`~cvkit.data.ImageDataset`, or a list of paths. No image is read yet.
    A folder of class folders named after the model's ``classes`` (see :func:`class_folder_labels`)
    gives each image its folder's name as true label.

    Example:
        >>> rows, count, has_labels = batch_inputs("sample_data/tags.tsv")
        >>> count, has_labels, next(rows)[1]
        (104, True, 'bird')
        >>> rows, count, has_labels = batch_inputs("sample_data", classes=["bird", "flower", "fruit", "vegetable"])
        >>> count, has_labels, next(rows)
        (104, True, ('sample_data/bird/adelaide-rosella.jpg', 'bird'))
    """
    if hasattr(images, "paths") and hasattr(images, "image_labels"):
        labels = images.image_labels if getattr(images, "targets", None) is not None else None
        pairs = list(zip(images.paths, labels or [None] * len(images.paths)))
        return iter(pairs), len(pairs), labels is not None
    if isinstance(images, (str, os.PathLike)):
        path = Path(images)
        if path.is_dir():
            count = sum(1 for _ in iter_image_files(path))
            if class_folder_labels(path, classes):
                rows = ((p, Path(os.path.relpath(p, path)).parts[0]) for p in iter_image_files(path))
                return rows, count, True
            return ((p, None) for p in iter_image_files(path)), count, False
        if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
            rows = _table_rows(path)
            return iter(rows), len(rows), any(label is not None for _, label in rows)
        if path.is_file() and is_image_path(path):
            return iter([(os.fspath(path), None)]), 1, False
        if not path.exists() and glob.has_magic(os.fspath(path)):
            found = sorted(p for p in glob.glob(os.fspath(path), recursive=True) if is_image_path(p))
            if not found:
                raise FileNotFoundError(f"{path}: no image file matches this pattern")
            return iter([(p, None) for p in found]), len(found), False
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such folder or table")
        raise ValueError(f"{path}: give a folder of images, an image, or a .csv/.tsv/.txt table of paths")
    paths = [os.fspath(p) for p in images]
    return iter([(p, None) for p in paths]), len(paths), False


def _chunks(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ---------------------------------------------------------------------- scoring
def decode_or_reason(path: str, size: tuple[int, int], max_pixels: int | None) -> np.ndarray | str:
    """The model input for one image file (uint8 ``(H, W, 3)`` at ``size``), or why it cannot be read.

    Never raises for a bad image: the reason becomes that image's ``error`` cell.

    Example:
        >>> decode_or_reason("sample_data/bird/crow.jpg", (224, 224), None).shape
        (224, 224, 3)
        >>> decode_or_reason("no-such.jpg", (224, 224), None)
        'file not found'
    """
    try:
        return read_image(path, size=size, max_pixels=max_pixels)
    except ImageReadError as exc:
        return exc.reason


def output_columns(classes: list[str], has_labels: bool) -> list[str]:
    """The columns of a scoring output, in order (the same for CSV, TSV and Parquet).

    Example:
        >>> output_columns(["cat", "dog"], has_labels=True)
        ['path', 'true_label', 'label', 'score', 'score_cat', 'score_dog', 'error']
    """
    return ["path"] + (["true_label"] if has_labels else []) + ["label", "score"] + \
        [f"score_{c}" for c in classes] + ["error"]


def csv_cells(row: list[Any]) -> list[str]:
    """One scored row (as :func:`score_chunks` yields it) as the text cells of a CSV line.

    Scores are written with 6 decimals, a missing score (an unreadable image) as an empty cell.

    Example:
        >>> csv_cells(["a.jpg", "cat", 0.25, 0.75, 0.25, ""])
        ['a.jpg', 'cat', '0.250000', '0.750000', '0.250000', '']
    """
    return [f"{v:.6f}" if isinstance(v, float) else ("" if v is None else v) for v in row]


def score_chunks(model: Any, pairs: Iterable[tuple[str, str | None]], has_labels: bool,
                 batch_size: int = 32, workers: int = 2,
                 max_pixels: int | None = inference.DEFAULT_MAX_PIXELS) -> Iterator[list[list[Any]]]:
    """Score ``(path, true_label)`` pairs; yields the rows of each batch of ``batch_size`` images.

    The one scoring loop behind :func:`batch_score` and the Ray workers of :mod:`cvkit.scale`, so
    both write identical rows. A pool of ``workers`` threads decodes the next batch while the model
    scores the current one. Each row holds the values of :func:`output_columns`: path, true label
    (``""`` if unknown; only when ``has_labels``), predicted label, its score, one float per class,
    and ``error``: ``""``, or for an unreadable image the reason, with empty label and ``None`` scores.

    Example:
        >>> model = cvkit.load_model(model_dir)
        >>> [rows] = score_chunks(model, [(photo, "bird"), ("no-such.jpg", None)], has_labels=True)
        >>> rows[0][:3], rows[1][-1]
        (['sample_data/bird/adelaide-rosella.jpg', 'bird', 'bird'], 'file not found')
    """
    names = inference.classes(model)
    size = inference.input_size(model)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvkit-decode") as pool:

        def submit(chunk: list[tuple[str, str | None]]) -> list[Future]:
            return [pool.submit(decode_or_reason, p, size, max_pixels) for p, _ in chunk]

        chunks = _chunks(iter(pairs), batch_size)
        current = next(chunks, None)
        pending = submit(current) if current is not None else []
        while current is not None:
            decoded = [f.result() for f in pending]
            following = next(chunks, None)  # start decoding the next chunk before predicting
            pending = submit(following) if following is not None else []
            good = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
            proba = inference.predict_proba(model, np.stack([decoded[i] for i in good])) if good \
                else np.zeros((0, len(names)), np.float32)
            scored: dict[int, np.ndarray] = dict(zip(good, proba))
            rows = []
            for i, (path, true_label) in enumerate(current):
                lead = [path] + ([true_label or ""] if has_labels else [])
                if i in scored:
                    row = scored[i]
                    best = int(np.argmax(row))
                    rows.append(lead + [names[best], float(row[best])] + [float(p) for p in row] + [""])
                else:
                    rows.append(lead + ["", None] + [None] * len(names) + [str(decoded[i])])
            yield rows
            current = following


def batch_score(model: Any, images: Any, output: PathLike, batch_size: int = 32,
                workers: int = 2, progress: bool = True,
                max_pixels: int | None = inference.DEFAULT_MAX_PIXELS) -> BatchSummary:
    """Score every image of ``images`` with ``model`` into the CSV ``output`` (one row per image).

    Parameters
    ----------
    model : a model folder or a loaded model (:func:`cvkit.load_model`).
    images : a folder, a table of paths, a glob such as ``"photos/*.jpg"``, an ImageDataset or a
        list of paths (see :func:`batch_inputs`).
    output : the CSV to write (``.tsv`` writes tabs). It is written as ``output.partial`` and renamed
        when complete; an input table is never overwritten.
    batch_size : images per model call; memory use is about two batches of decoded images.
    workers : threads decoding images while the model runs.

    For millions of images on several machines, see :func:`cvkit.scale.score_images`.

    Example:
        >>> summary = batch_score(clf, test.paths[:3], f"{tmp}/predictions.tsv", progress=False)
        >>> print(summary)                                          # doctest: +ELLIPSIS
        scored 3 of 3 images into .../predictions.tsv (... images/s)
        predicted: ...
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    output = Path(output)
    check_output(images, output)
    if isinstance(model, (str, os.PathLike)):
        from cvkit.models._folder import load_model
        model = load_model(model)
    names = inference.classes(model)
    source, total, has_labels = batch_inputs(images, classes=names)

    delimiter = "\t" if output.suffix.lower() == ".tsv" else ","
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    summary = BatchSummary(output=os.fspath(output), n_images=0, n_errors=0, seconds=0.0, classes=names)
    bar = None
    if progress:
        from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks
        bar = tqdm(total=total, desc="Scoring images", unit="img")
    start = time.perf_counter()
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(output_columns(names, has_labels))
            for rows in score_chunks(model, source, has_labels, batch_size, workers, max_pixels):
                writer.writerows(csv_cells(row) for row in rows)
                summary.add_rows(rows, has_labels)
                if bar is not None:
                    bar.update(len(rows))
        os.replace(partial, output)
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - start
    summary.warn_errors("batch_score", stacklevel=2)
    return summary


def check_output(images: Any, output: Path, folder_ok: bool = False) -> None:
    """Refuse an output that would overwrite the input, looks like an image, or (unless
    ``folder_ok``: a folder of Parquet parts) is a folder."""
    if isinstance(images, (str, os.PathLike)) and Path(images).exists() and \
            output.resolve() == Path(images).resolve():
        raise ValueError(f"{output}: the output would overwrite the input; choose another file")
    if output.exists() and output.is_dir() and not folder_ok:
        raise IsADirectoryError(f"{output}: is a folder; give a file name such as predictions.csv")
    if is_image_path(output):
        raise ValueError(f"{output}: looks like an image file; the output is a .csv or .tsv table")
