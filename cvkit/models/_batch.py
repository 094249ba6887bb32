"""Batch scoring: every image of a folder or table into one CSV row (Azure ML's "Score Image Model").

Images stream through in batches: :meth:`cvkit.data.ImageSource.batches` (the one decode loop)
decodes the next batches while the model scores the current one, and rows are written as they are
ready, so memory stays flat for 100 000 images. A bad image gets a row with its ``error`` and the
run goes on. The CSV appears whole when the run ends (written through :func:`cvkit._io.atomic_open`).

Inputs are anything :meth:`cvkit.data.ImageSource.resolve` takes: a folder, a table of paths
(labels optional), a glob, a split manifest, an ImageDataset, one image, a list of paths.

Output columns: ``path``, ``true_label`` (when the input has labels: a table with a label column,
a labelled dataset, or a folder of class folders named after the model's classes), ``label``
(the model's answer under its decision rule: the predicted class, or ``"no decision"`` below a
threshold set with ``set_thresholds``, or ``"unknown"`` above the novelty cut set with
``set_unknown_threshold``), ``score`` (the top class's probability), ``score_<class>`` for every
class, ``novelty`` (for a model with a novelty scorer: how unlike the training photos), ``error``.
With true labels the summary gives the accuracy (a withheld answer
counts as not right).

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> out = os.path.join(tempfile.mkdtemp(), "predictions.csv")
    >>> summary = batch_score(clf, "sample_data/tags.tsv", out, verbose=False)
    >>> summary.n_images, summary.n_errors, summary.accuracy > 0.9
    (104, 0, True)
"""
from __future__ import annotations

import csv
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._io import atomic_open
from cvkit._validation import DEPRECATED, Interval, renamed_keyword, validate_params
from cvkit.data._images import PathLike, is_image_path
from cvkit.data._source import ImageSource
from cvkit.models import _inference as inference

__all__ = ["batch_score", "BatchSummary", "score_chunks", "as_source", "output_columns", "csv_cells",
           "check_output"]

#: The declared constraints of :func:`batch_score`'s parameters (checked before any work).
BATCH_CONSTRAINTS = {"batch_size": [Interval(int, 1, None)], "decode_threads": [Interval(int, 1, None), None],
                     "verbose": ["boolean"], "max_pixels": [Interval(int, 1, None), None]}

@dataclass
class BatchSummary:
    """What a batch run did: where the CSV is, how many images, how many failed, how fast.

    Example:
        >>> summary = BatchSummary(output="p.csv", n_images=0, n_errors=0, seconds=1.0, classes=["cat", "dog"])
        >>> summary.add_rows([["a.jpg", "cat", "dog", 0.9, 0.1, 0.9, ""], ["b.jpg", "", "", None, None, None, "empty"]],
        ...                  has_labels=True)
        >>> summary.n_images, summary.n_errors, summary.label_counts, summary.accuracy
        (2, 1, {'dog': 1}, 0.0)
    """

    output: str
    n_images: int
    n_errors: int
    seconds: float
    classes: list[str]
    label_counts: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)  # the first 20 (path, reason)
    n_labelled: int = 0  # scored images with a true label
    n_correct: int = 0  # of those, predicted right
    rule: str = "arg-max"  # the model's decision rule, in words (cvkit.models._decision)

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

    def add(self, other: BatchSummary) -> None:
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
        if self.rule != "arg-max":
            lines.append(f"decision rule: {self.rule}")
        if self.label_counts:
            lines.append("predicted: " + ", ".join(f"{k} {v}" for k, v in self.label_counts.items()))
        if self.n_errors:
            lines.append(f"{self.n_errors} image(s) could not be read, e.g.:")
            lines += [f"  {p}: {r}" for p, r in self.errors[:5]]
        return "\n".join(lines)


# ---------------------------------------------------------------------- scoring
def as_source(images: Any, classes: Any = None) -> ImageSource:
    """``images`` as an :class:`~cvkit.data.ImageSource`: ``(path, true_label or None)`` pairs are
    wrapped into one; anything else goes through :meth:`ImageSource.resolve` (with the model's
    ``classes`` deciding whether a folder's sub-folders are true labels).

    Example:
        >>> source = as_source([("sample_data/bird/owl.jpg", "bird"), ("missing.jpg", None)])
        >>> source.items, source.labels
        (['sample_data/bird/owl.jpg', 'missing.jpg'], ['bird', None])
        >>> as_source("sample_data", classes=["cat", "dog"]).labels is None   # not these classes' folders
        True
    """
    if isinstance(images, ImageSource):
        return images
    if isinstance(images, (list, tuple)) and images and all(isinstance(p, tuple) and len(p) == 2 for p in images):
        return ImageSource([os.fspath(p) for p, _ in images], [label for _, label in images], kind="list")
    return ImageSource.resolve(images, classes=classes)


def output_columns(classes: list[str], has_labels: bool, novelty: bool = False) -> list[str]:
    """The columns of a scoring output, in order (the same for CSV, TSV and Parquet); ``novelty``
    for a model with a novelty scorer.

    Example:
        >>> output_columns(["cat", "dog"], has_labels=True)
        ['path', 'true_label', 'label', 'score', 'score_cat', 'score_dog', 'error']
        >>> output_columns(["cat", "dog"], has_labels=False, novelty=True)[-2:]
        ['novelty', 'error']
    """
    return ["path"] + (["true_label"] if has_labels else []) + ["label", "score"] + \
        [f"score_{c}" for c in classes] + (["novelty"] if novelty else []) + ["error"]


def csv_cells(row: list[Any]) -> list[str]:
    """One scored row (as :func:`score_chunks` yields it) as the text cells of a CSV line.

    Scores are written with 6 decimals, a missing score (an unreadable image) as an empty cell.

    Example:
        >>> csv_cells(["a.jpg", "cat", 0.25, 0.75, 0.25, ""])
        ['a.jpg', 'cat', '0.250000', '0.750000', '0.250000', '']
    """
    return [f"{v:.6f}" if isinstance(v, float) else ("" if v is None else v) for v in row]


def _row(lead: list[Any], names: list[str], proba: np.ndarray | None, reason: str | None, label: Any = None,
         novelty: list[float | None] | None = None) -> list[Any]:
    """One output row; ``novelty`` is ``[]`` (no column), ``[None]`` or ``[score]``."""
    extra = list(novelty or [])
    if proba is None:
        return lead + ["", None] + [None] * len(names) + [None] * len(extra) + [str(reason)]
    best = int(np.argmax(proba))
    return lead + [str(label), float(proba[best])] + [float(p) for p in proba] + extra + [""]


def score_chunks(model: Any, images: Any, has_labels: bool | None = None, batch_size: int = 32,
                 decode_threads: int | None = None,
                 max_pixels: int | None = inference.DEFAULT_MAX_PIXELS) -> Iterator[list[list[Any]]]:
    """Score the images of ``images``; yields the rows of each batch of ``batch_size`` images, in order.

    ``images`` is an :class:`~cvkit.data.ImageSource`, ``(path, true_label)`` pairs, or any input
    :meth:`~cvkit.data.ImageSource.resolve` takes (see :func:`as_source`). The one scoring loop
    behind :func:`batch_score` and the Ray workers of :mod:`cvkit.scale`, so both write identical
    rows; images are decoded by :meth:`ImageSource.batches` on ``decode_threads`` threads (default
    :func:`cvkit.options.decode_threads`) while the model scores. Each row holds the values of
    :func:`output_columns`: path, true label (``""`` if unknown; only when ``has_labels``, by default
    whether the input has labels), predicted label, its score, one float per class, and ``error``:
    ``""``, or for an unreadable image the reason, with an empty label and ``None`` scores.

    Example:
        >>> class Brightness:   # any model with classes_, input_size_ and predict_proba(uint8 pixels)
        ...     classes_, input_size_ = ["dark", "light"], (32, 32)
        ...     def predict_proba(self, pixels):
        ...         light = pixels.mean(axis=(1, 2, 3)) / 255
        ...         return np.stack([1 - light, light], axis=1)
        >>> [rows] = score_chunks(Brightness(), [("sample_data/bird/owl.jpg", "bird"), ("no-such.jpg", None)])
        >>> rows[0][:2], rows[0][2] in ("dark", "light"), rows[1][-1]
        (['sample_data/bird/owl.jpg', 'bird'], True, 'file not found')
    """
    names = inference.classes(model)
    source = as_source(images, classes=names)
    if has_labels is None:
        has_labels = source.has_labels
    labels = source.labels or [None] * len(source)
    size = inference.input_size(model)
    rule = inference.decision_rule(model)
    with_novelty = inference.has_novelty(model)
    for batch in source.batches(size, batch_size, max_pixels=max_pixels, threads=decode_threads):
        proba, novelty = inference.predict_outputs(model, batch.pixels[batch.ok]) if batch.ok.any() \
            else (np.zeros((0, len(names)), np.float32), None)
        answers, _ = rule.decide(proba, names, novelty)
        extras = [[float(v)] for v in novelty] if novelty is not None else [[]] * len(proba)
        scored = iter(zip(proba, answers, extras))
        rows = []
        for j, i in enumerate(batch.index):
            lead = [source.name(int(i))] + ([labels[i] or ""] if has_labels else [])
            row, label, extra = next(scored) if batch.ok[j] else (None, None, [None] if with_novelty else [])
            rows.append(_row(lead, names, row, batch.reasons[j], label, extra))
        yield rows


def batch_score(model: Any, images: Any, output: PathLike, batch_size: int = 32,
                decode_threads: int | None = None, verbose: bool = True,
                max_pixels: int | None = inference.DEFAULT_MAX_PIXELS, *,
                workers: Any = DEPRECATED, progress: Any = DEPRECATED) -> BatchSummary:
    """Score every image of ``images`` with ``model`` into the CSV ``output`` (one row per image).

    Parameters
    ----------
    model : a model folder or a loaded model (:func:`cvkit.load_model`), or a fitted classifier.
    images : a folder, a table of paths, a glob such as ``"photos/*.jpg"``, a split manifest, an
        ImageDataset, one image or a list of paths (anything :meth:`cvkit.data.ImageSource.resolve` takes).
    output : the CSV to write (``.tsv`` writes tabs). It appears whole when the run ends (atomically:
        a temporary file beside it, renamed); an input table is never overwritten.
    batch_size : images per model call; memory use is a few batches of decoded images.
    decode_threads : threads decoding images while the model runs (default
        :func:`cvkit.options.decode_threads`). Formerly ``workers`` (deprecated).
    verbose : show a progress bar. Formerly ``progress`` (deprecated).
    max_pixels : the decompression-bomb guard per image.

    For millions of images on several machines, see :func:`cvkit.scale.score_images`.

    Example:
        >>> import os, tempfile
        >>> class Brightness:   # any model with classes_, input_size_ and predict_proba(uint8 pixels)
        ...     classes_, input_size_ = ["dark", "light"], (32, 32)
        ...     def predict_proba(self, pixels):
        ...         light = pixels.mean(axis=(1, 2, 3)) / 255
        ...         return np.stack([1 - light, light], axis=1)
        >>> out = os.path.join(tempfile.mkdtemp(), "predictions.tsv")
        >>> print(batch_score(Brightness(), "sample_data/bird", out, verbose=False))   # doctest: +ELLIPSIS
        scored 35 of 35 images into .../predictions.tsv (... images/s)
        predicted: ...
    """
    decode_threads = renamed_keyword("batch_score", "workers", workers, "decode_threads", decode_threads, None)
    verbose = renamed_keyword("batch_score", "progress", progress, "verbose", verbose, True)
    validate_params("batch_score", {"batch_size": batch_size, "decode_threads": decode_threads, "verbose": verbose,
                                    "max_pixels": max_pixels}, BATCH_CONSTRAINTS)
    output = Path(output)
    check_output(images, output)
    if isinstance(model, (str, os.PathLike)):
        from cvkit.models._folder import load_model
        model = load_model(model)
    names = inference.classes(model)
    source = as_source(images, classes=names)
    summary = _write_csv(model, source, output, batch_size, decode_threads, bool(verbose), max_pixels)
    summary.warn_errors("batch_score", stacklevel=2)
    return summary


def _write_csv(model: Any, source: ImageSource, output: Path, batch_size: int, decode_threads: int | None,
               verbose: bool, max_pixels: int | None) -> BatchSummary:
    """Score ``source`` into the CSV/TSV ``output``, atomically; the run's summary."""
    names, has_labels = inference.classes(model), source.has_labels
    summary = BatchSummary(output=os.fspath(output), n_images=0, n_errors=0, seconds=0.0, classes=names,
                           rule=inference.decision_rule(model).describe())
    from cvkit._console import progress_bar  # tqdm.auto, ending at 100% in saved notebooks

    bar = progress_bar(total=len(source), desc="Scoring images", unit="img", disable=not verbose)
    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(output, "w") as handle:
            writer = csv.writer(handle, delimiter="\t" if output.suffix.lower() == ".tsv" else ",")
            writer.writerow(output_columns(names, has_labels, inference.has_novelty(model)))
            for rows in score_chunks(model, source, has_labels, batch_size, decode_threads, max_pixels):
                writer.writerows(csv_cells(row) for row in rows)
                summary.add_rows(rows, has_labels)
                bar.update(len(rows))
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def check_output(images: Any, output: Path, folder_ok: bool = False) -> None:
    """Refuse an output that would overwrite the input, looks like an image, or (unless
    ``folder_ok``: a folder of Parquet parts) is a folder.

    Example:
        >>> check_output("sample_data", Path("predictions.jpg"))
        Traceback (most recent call last):
        ...
        ValueError: predictions.jpg: looks like an image file; the output is a .csv or .tsv table
    """
    if isinstance(images, (str, os.PathLike)) and Path(images).exists() and \
            output.resolve() == Path(images).resolve():
        raise ValueError(f"{output}: the output would overwrite the input; choose another file")
    if output.exists() and output.is_dir() and not folder_ok:
        raise IsADirectoryError(f"{output}: is a folder; give a file name such as predictions.csv")
    if is_image_path(output):
        raise ValueError(f"{output}: looks like an image file; the output is a .csv or .tsv table")
