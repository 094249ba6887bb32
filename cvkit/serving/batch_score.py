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
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from cvkit.data.images import ImageReadError, PathLike, is_image_path, read_image
from cvkit.data.sources import LABEL_COLUMNS, PATH_COLUMNS, TableFormatError, iter_records, read_table_text
from cvkit.data.sources import iter_images as iter_image_files
from cvkit.models import inference

__all__ = ["batch_score", "BatchSummary", "batch_inputs", "class_folder_labels"]

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

    Cells are split by the one table reader (:func:`cvkit.data.sources.iter_records`), so quoting,
    over-long cells and unclosed quotes are handled (and reported, as
    :class:`~cvkit.data.sources.TableFormatError` naming the line) exactly as for training tables.
    Unlike :func:`~cvkit.data.sources.read_table`, a label is optional and a listed file that is
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

    ``images`` is a folder (searched recursively by :func:`cvkit.data.sources.iter_images`), a
    ``.csv``/``.tsv``/``.txt`` table of paths (optionally with labels; relative paths are relative
    to the table), an :class:`~cvkit.data.ImageDataset`, or a list of paths. No image is read yet.
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
def _decode(path: str, size: tuple[int, int], max_pixels: int | None) -> np.ndarray | str:
    try:
        return read_image(path, size=size, max_pixels=max_pixels)
    except ImageReadError as exc:
        return exc.reason


def batch_score(model: Any, images: Any, output: PathLike, batch_size: int = 32,
                workers: int = 2, progress: bool = True,
                max_pixels: int | None = inference.DEFAULT_MAX_PIXELS) -> BatchSummary:
    """Score every image of ``images`` with ``model`` into the CSV ``output`` (one row per image).

    Parameters
    ----------
    model : a model folder or a loaded model (:func:`cvkit.load_model`).
    images : a folder, a table of paths, an ImageDataset or a list of paths (see :func:`batch_inputs`).
    output : the CSV to write (``.tsv`` writes tabs). It is written as ``output.partial`` and renamed
        when complete; an input table is never overwritten.
    batch_size : images per model call; memory use is about two batches of decoded images.
    workers : threads decoding images while the model runs.

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
    if isinstance(images, (str, os.PathLike)) and Path(images).exists() and \
            output.resolve() == Path(images).resolve():
        raise ValueError(f"{output}: the output would overwrite the input; choose another file")
    if output.exists() and output.is_dir():
        raise IsADirectoryError(f"{output}: is a folder; give a file name such as predictions.csv")
    if is_image_path(output):
        raise ValueError(f"{output}: looks like an image file; the output is a .csv or .tsv table")
    if isinstance(model, (str, os.PathLike)):
        from cvkit.models.folder import load_model
        model = load_model(model)
    names = inference.classes(model)
    size = inference.input_size(model)
    source, total, has_labels = batch_inputs(images, classes=names)

    header = ["path"] + (["true_label"] if has_labels else []) + ["label", "score"] + \
        [f"score_{c}" for c in names] + ["error"]
    delimiter = "\t" if output.suffix.lower() == ".tsv" else ","
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    counts = {c: 0 for c in names}
    errors: list[tuple[str, str]] = []
    n_images = n_errors = n_labelled = n_correct = 0
    bar = None
    if progress:
        from cvkit.runtime import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks
        bar = tqdm(total=total, desc="Scoring images", unit="img")
    start = time.perf_counter()
    try:
        with open(partial, "w", newline="", encoding="utf-8") as handle, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvkit-decode") as pool:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(header)

            def submit(chunk: list[tuple[str, str | None]]) -> list[Future]:
                return [pool.submit(_decode, p, size, max_pixels) for p, _ in chunk]

            chunks = _chunks(source, batch_size)
            current = next(chunks, None)
            pending = submit(current) if current is not None else []
            while current is not None:
                decoded = [f.result() for f in pending]
                following = next(chunks, None)  # start decoding the next chunk before predicting
                pending = submit(following) if following is not None else []
                good = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
                proba = inference.predict_proba(model, np.stack([decoded[i] for i in good])) if good \
                    else np.zeros((0, len(names)), np.float32)
                rows: dict[int, np.ndarray] = dict(zip(good, proba))
                for i, (path, true_label) in enumerate(current):
                    lead = [path] + ([true_label or ""] if has_labels else [])
                    if i in rows:
                        row = rows[i]
                        best = int(np.argmax(row))
                        counts[names[best]] += 1
                        if true_label is not None:
                            n_labelled += 1
                            n_correct += names[best] == true_label
                        writer.writerow(lead + [names[best], f"{row[best]:.6f}"] +
                                        [f"{p:.6f}" for p in row] + [""])
                    else:
                        n_errors += 1
                        if len(errors) < 20:
                            errors.append((path, str(decoded[i])))
                        writer.writerow(lead + ["", ""] + [""] * len(names) + [str(decoded[i])])
                n_images += len(current)
                if bar is not None:
                    bar.update(len(current))
                current = following
        os.replace(partial, output)
    finally:
        if bar is not None:
            bar.close()
    if n_errors:
        import warnings
        shown = "\n".join(f"  {p}: {r}" for p, r in errors[:10])
        warnings.warn(f"batch_score: {n_errors} of {n_images} image(s) could not be read "
                      f"(rows with an error in {output}):\n{shown}", stacklevel=2)
    return BatchSummary(output=os.fspath(output), n_images=n_images, n_errors=n_errors,
                        seconds=time.perf_counter() - start, classes=names,
                        label_counts={k: v for k, v in counts.items() if v}, errors=errors,
                        n_labelled=n_labelled, n_correct=int(n_correct))
