"""Resumable jobs: fixed chunks of the input list, one Parquet part per chunk, a manifest.

Why: a job over millions of images runs for hours, and machines get lost or someone presses
Ctrl-C. So the input list (in its given order; a folder is listed sorted) is cut into chunks of
``chunk_size`` images, numbered from 0, and each chunk is written as its own file
``part-000012.parquet``, atomically (a temporary name, then a rename), by the worker that scored
it. ``_cvkit_job.json`` (the manifest) records what the job is: the inputs' fingerprint, the chunk
size, the model or backbone. Started again with the same output, a job skips the chunks whose part
exists and does the rest; started with other inputs or another model, it refuses (with a clear
error) rather than mixing two jobs in one output.

Where the parts go: for ``-o out.parquet`` or ``-o out/`` the folder *is* the output (any Parquet
reader reads it as one table; names starting with ``_`` or ``.`` are skipped by readers). For
``-o out.csv`` (small jobs) the parts go to ``out.csv.parts/`` beside it, are merged into the CSV
in input order at the end, and the work folder is removed. A finished output is never replaced
unless ``overwrite=True``.

Example:
    >>> import os, tempfile
    >>> layout = plan_output(os.path.join(tempfile.mkdtemp(), "predictions.csv"))
    >>> layout.parts.name, layout.merge_to.name
    ('predictions.csv.parts', 'predictions.csv')
    >>> [len(c) for c in chunk_pairs([("a.jpg", None)] * 5, chunk_size=2)]
    [2, 2, 1]
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvkit._io import atomic_open, read_json, write_json
from cvkit._validation import Interval, check_param
from cvkit.data._images import PathLike, is_image_path
from cvkit.data._source import ImageSource

__all__ = ["DEFAULT_CHUNK_SIZE", "MANIFEST_NAME", "JobLayout", "Job", "plan_output", "job_pairs", "chunk_pairs",
           "fingerprint", "part_name", "write_part", "read_part_info", "merge_to_csv"]

#: Images per chunk (and per Parquet part) unless asked otherwise: big enough that the per-chunk
#: overhead (a task, a file) is small, small enough that a lost chunk costs seconds.
DEFAULT_CHUNK_SIZE = 256
#: The manifest's file name in the parts folder (a leading ``_``: Parquet readers skip it).
MANIFEST_NAME = "_cvkit_job.json"
_META_KEY = b"cvkit"
TABLE_SUFFIXES = (".csv", ".tsv")


@dataclass
class JobLayout:
    """Where a job writes: ``parts`` (the folder of parts and manifest), ``merge_to`` (the CSV or TSV
    written from the parts at the end, or None when the parts folder is the output)."""

    output: Path
    parts: Path
    merge_to: Path | None


def plan_output(output: PathLike, tables: bool = True) -> JobLayout:
    """The layout for ``output``: a ``.csv``/``.tsv`` file (if ``tables``) or a Parquet folder.

    Example:
        >>> plan_output("preds.parquet").parts.name, plan_output("preds.parquet").merge_to
        ('preds.parquet', None)
    """
    output = Path(output)
    if is_image_path(output):
        raise ValueError(f"{output}: looks like an image file; the output is a .parquet folder"
                         + (" or a .csv/.tsv table" if tables else ""))
    if output.suffix.lower() in TABLE_SUFFIXES:
        if not tables:
            raise ValueError(f"{output}: features go to Parquet; give a name such as features.parquet")
        if output.is_dir():
            raise IsADirectoryError(f"{output}: is a folder; give a file name such as predictions.csv")
        return JobLayout(output, output.with_name(output.name + ".parts"), output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output}: exists and is not a folder; the Parquet output is a folder "
                              "of parts: choose another name")
    return JobLayout(output, output, None)


def job_pairs(images: Any, classes: Sequence[str] | None = None) -> tuple[list[tuple[str, str | None]], bool]:
    """A job's input list: ``([(path, true_label or None)], has_labels)`` for any input of image files.

    ``images`` is resolved once by :meth:`cvkit.data.ImageSource.resolve` (a folder, a table, a
    glob, a split manifest, an ImageDataset, a list of paths; ``classes``, a model's, decide whether
    a folder's sub-folders are true labels). Workers read the files themselves, so pixel arrays and
    image bytes are refused with an error naming the first.

    Example:
        >>> pairs, has_labels = job_pairs("sample_data/tags.tsv")
        >>> len(pairs), has_labels, pairs[0][1]
        (104, True, 'bird')
        >>> job_pairs([b"not a path"])
        Traceback (most recent call last):
        ...
        TypeError: item 0: a scale-out job reads image files; give paths, not <bytes #0>
    """
    source = ImageSource.resolve(images, classes=classes)
    bad = next((i for i, item in enumerate(source.items) if not isinstance(item, str)), None)
    if bad is not None:
        raise TypeError(f"item {bad}: a scale-out job reads image files; give paths, not {source.name(bad)}")
    labels = source.labels or [None] * len(source)
    return list(zip(source.items, labels)), source.has_labels


def chunk_pairs(pairs: Sequence[Any], chunk_size: int) -> list[list[Any]]:
    """``pairs`` cut into consecutive chunks of ``chunk_size`` (the last one may be shorter).

    Example:
        >>> chunk_pairs([1, 2, 3], chunk_size=0)
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: chunk_size must be a positive int, got 0
    """
    check_param("chunk_size", chunk_size, [Interval(int, 1, None)])
    return [list(pairs[i:i + chunk_size]) for i in range(0, len(pairs), chunk_size)]


def fingerprint(pairs: Sequence[tuple[str, str | None]]) -> str:
    """SHA-256 of the input list (paths and labels, in order): a restart must see the same list.

    Example:
        >>> fingerprint([("a.jpg", None)]) == fingerprint([("a.jpg", None)]) != fingerprint([("b.jpg", None)])
        True
    """
    digest = hashlib.sha256()
    for path, label in pairs:
        digest.update(f"{path}\0{label or ''}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def part_name(chunk: int) -> str:
    """The file name of chunk ``chunk``'s part: ``part-000012.parquet`` (sorted = input order)."""
    return f"part-{int(chunk):06d}.parquet"


def write_part(folder: PathLike, chunk: int, table: Any, info: dict) -> Path:
    """Write ``table`` (a ``pyarrow.Table``) as chunk ``chunk``'s part, with ``info`` in its metadata.

    Atomic (:func:`cvkit._io.atomic_open`: a hidden ``.part-000012.parquet.<random>.tmp``, then
    renamed), so a part that exists is whole.

    Example:
        >>> import tempfile
        >>> import pyarrow as pa
        >>> folder = tempfile.mkdtemp()
        >>> write_part(folder, 3, pa.table({"path": ["a.jpg"]}), {"n_images": 1}).name
        'part-000003.parquet'
        >>> read_part_info(f"{folder}/part-000003.parquet")
        {'n_images': 1}
    """
    import pyarrow.parquet as pq
    target = Path(folder) / part_name(chunk)
    meta = dict(table.schema.metadata or {})
    meta[_META_KEY] = json.dumps(info, sort_keys=True).encode()
    with atomic_open(target, "wb") as handle:
        pq.write_table(table.replace_schema_metadata(meta), handle)
    return target


def read_part_info(path: PathLike) -> dict | None:
    """The ``info`` a part was written with, or None if the file is not a readable part."""
    import pyarrow.parquet as pq
    try:
        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[_META_KEY])
    except (OSError, KeyError, ValueError):
        return None


def merge_to_csv(parts: PathLike, n_chunks: int, target: PathLike, format_row: Any) -> None:
    """Concatenate parts ``0 .. n_chunks-1`` into the CSV/TSV ``target``, atomically (:func:`cvkit._io.atomic_open`).

    Example:
        >>> import tempfile
        >>> import pyarrow as pa
        >>> folder = tempfile.mkdtemp()
        >>> for chunk in range(2):
        ...     _ = write_part(folder, chunk, pa.table({"path": [f"{chunk}.jpg"]}), {})
        >>> merge_to_csv(folder, 2, f"{folder}/all.csv", format_row=list)
        >>> open(f"{folder}/all.csv").read().split()
        ['path', '0.jpg', '1.jpg']
    """
    import csv

    import pyarrow.parquet as pq
    target = Path(target)
    delimiter = "\t" if target.suffix.lower() == ".tsv" else ","
    with atomic_open(target, "w") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        for chunk in range(n_chunks):
            table = pq.read_table(Path(parts) / part_name(chunk))
            if chunk == 0:
                writer.writerow(table.column_names)
            columns = [table.column(c).to_pylist() for c in table.column_names]
            writer.writerows(format_row(list(row)) for row in zip(*columns))


class Job:
    """One resumable job in ``layout.parts``: what it is (``kind``, ``identity``) and its chunks.

    :meth:`start` checks or writes the manifest and returns the chunks still to do (and the
    ``info`` of the parts already written); :meth:`finish` marks the job complete and, for a CSV
    output, merges the parts into it.
    """

    def __init__(self, layout: JobLayout, kind: str, identity: dict, pairs: Sequence[tuple[str, str | None]],
                 chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.layout = layout
        self.kind = kind
        self.identity = identity
        self.pairs = list(pairs)
        self.chunk_size = chunk_size
        self.chunks = chunk_pairs(self.pairs, chunk_size)
        self.manifest_path = layout.parts / MANIFEST_NAME

    def manifest(self, complete: bool = False) -> dict:
        """The manifest's content."""
        return {"cvkit_job": 1, "kind": self.kind, "identity": self.identity,
                "inputs": {"count": len(self.pairs), "sha256": fingerprint(self.pairs)},
                "chunk_size": self.chunk_size, "n_chunks": len(self.chunks), "complete": complete,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def start(self, overwrite: bool = False) -> tuple[list[int], dict[int, dict]]:
        """Check the output and the manifest; returns ``(chunks to do, {chunk: info} of parts done)``."""
        self._check_finished(overwrite)
        parts = self.layout.parts
        if parts.is_dir() and any(parts.iterdir()):
            if not self.manifest_path.is_file():
                raise FileExistsError(f"{parts}: folder exists and is not a cvkit job's output; refusing to "
                                      "write into it: choose another output")
            old = self._read_manifest()
            if overwrite:
                self._remove_parts()
            else:
                self._check_same_job(old)
        parts.mkdir(parents=True, exist_ok=True)
        for stale in parts.glob(".part-*.tmp"):  # a worker killed while writing; ours to remove
            stale.unlink(missing_ok=True)
        self._write_manifest(complete=False)
        done: dict[int, dict] = {}
        for chunk in range(len(self.chunks)):
            path = parts / part_name(chunk)
            info = read_part_info(path) if path.is_file() else None
            if info is not None and info.get("n_images") == len(self.chunks[chunk]):
                done[chunk] = info
        return [c for c in range(len(self.chunks)) if c not in done], done

    def finish(self, format_row: Any = None) -> None:
        """Mark the job complete; for a CSV output, merge the parts into it and remove the parts."""
        if self.layout.merge_to is None:
            self._write_manifest(complete=True)
            return
        merge_to_csv(self.layout.parts, len(self.chunks), self.layout.merge_to, format_row)
        self._remove_parts()
        with contextlib.suppress(OSError):  # not empty: someone else's files stay
            self.layout.parts.rmdir()

    # ------------------------------------------------------------------ checks
    def _check_finished(self, overwrite: bool) -> None:
        merge_to = self.layout.merge_to
        if merge_to is not None and merge_to.exists() and not overwrite:
            raise FileExistsError(f"{merge_to}: exists (a finished job?); choose another output, or "
                                  "overwrite=True (--overwrite) to replace it")
        if merge_to is None and self.manifest_path.is_file() and not overwrite and \
                self._read_manifest().get("complete"):
            raise FileExistsError(f"{self.layout.parts}: holds a finished job; choose another output, or "
                                  "overwrite=True (--overwrite) to compute it again")

    def _read_manifest(self) -> dict:
        try:
            data = read_json(self.manifest_path, "cvkit job manifest")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{exc}; choose another output") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.manifest_path}: not a cvkit job manifest")
        return data

    def _check_same_job(self, old: dict) -> None:
        new = self.manifest()
        checks = [("kind", "a job of another kind"), ("identity", "another model or backbone"),
                  ("inputs", "other input images"), ("chunk_size", "another chunk size")]
        for key, what in checks:
            if old.get(key) != new[key]:
                raise ValueError(f"{self.manifest_path}: this output holds an unfinished job with {what} "
                                 f"({key}: {old.get(key)!r}, now {new[key]!r}); resume it with the same "
                                 "inputs, choose another output, or overwrite=True (--overwrite) to start over")

    def _write_manifest(self, complete: bool) -> None:
        write_json(self.manifest_path, self.manifest(complete), indent=2)

    def _remove_parts(self) -> None:
        """Delete this job's own files (parts, temporaries, manifest); nothing else in the folder."""
        parts = self.layout.parts
        for path in list(parts.glob("part-*.parquet")) + list(parts.glob(".part-*.tmp")):
            path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)
        for tmp in parts.glob(f".{MANIFEST_NAME}*.tmp"):  # a killed manifest write's temporary file
            tmp.unlink(missing_ok=True)
