"""Score millions of images with a saved model, on a Ray cluster (or resumably on this machine).

:func:`score_images` is :func:`cvkit.batch_score` for archives: the same rows (each worker runs
:func:`cvkit.models._batch.score_chunks`, the loop behind ``batch_score``), written as one
Parquet part per chunk of the input, resumable after a crash. The model folder is read once by
the driver and its (small) files are shipped to the workers through Ray's object store; each
worker writes them to a private temporary folder and loads them with the same hash-checked
:func:`cvkit.load_model`, once. So workers need cvkit installed and the images (and the output
folder) reachable under the same paths, e.g. on NFS; they do not need the model folder.

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> folder = tempfile.mkdtemp()
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> model_dir = clf.save(os.path.join(folder, "model"))
    >>> summary = score_images(model_dir, "sample_data/bird/c*.jpg", os.path.join(folder, "preds.csv"),
    ...                        engine="local", chunk_size=2, verbose=False)
    >>> summary.n_images, summary.n_errors, summary.n_reused
    (4, 0, 0)
    >>> sorted(model_files(model_dir))[:2]
    ['head.npz', 'metadata.json']
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cvkit._io import atomic_write
from cvkit._validation import DEPRECATED, renamed_keyword
from cvkit.data._images import PathLike
from cvkit.models._batch import BatchSummary, check_output, csv_cells, output_columns, score_chunks
from cvkit.models._decision import DecisionRule
from cvkit.models._folder import read_checked, read_metadata, sha256_bytes
from cvkit.models._inference import DEFAULT_MAX_PIXELS, has_novelty
from cvkit.options import RunOptions
from cvkit.scale._jobs import DEFAULT_CHUNK_SIZE, Job, job_pairs, plan_output
from cvkit.scale._runner import ChunkWorker, ScaleSummary, check_job_params, run_job

__all__ = ["score_images", "ScoringWorker", "model_files"]


def model_files(model_dir: PathLike) -> dict[str, bytes]:
    """The files of a model folder, by name: ``metadata.json`` and every file it lists a hash for.

    Read with the same checks as :func:`cvkit.load_model` (regular files inside the folder), so
    what is shipped to workers is exactly what they will hash-check again when loading (see the
    module example).
    """
    folder = Path(model_dir)
    meta = read_metadata(folder)
    files = {"metadata.json": read_checked(folder, "metadata.json")}
    for name in meta.get("files", {}):
        files[name] = read_checked(folder, name)
    return files


class ScoringWorker(ChunkWorker):
    """A worker that loads a model once and writes the rows of :func:`score_chunks` for each chunk.

    The model runs as the worker's ``run_options`` say (:class:`~cvkit.options.RunOptions`).
    """

    format_row = staticmethod(csv_cells)  # how the driver writes the parts' rows into a CSV

    def setup(self, model: str | None = None, shipped: list | None = None, has_labels: bool = False,
              batch_size: int = 32, decode_threads: int = 1, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        from cvkit.models._folder import load_model
        run = self.run_options
        if shipped is not None:  # [object ref of {name: bytes}]: write a private copy, load it, delete it
            import ray
            files = ray.get(shipped[0])
            folder = tempfile.mkdtemp(prefix="cvkit-model-")
            try:
                for name, data in files.items():
                    atomic_write(Path(folder, name), data)
                self.model = load_model(folder, runtime=run.runtime, precision=run.precision,
                                        num_threads=run.num_threads)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            self.model = load_model(model, runtime=run.runtime, precision=run.precision, num_threads=run.num_threads)
        self.has_labels = has_labels
        self.batch_size = batch_size
        self.decode_threads = decode_threads
        self.max_pixels = max_pixels
        self.columns = output_columns(list(self.model.classes_), has_labels, has_novelty(self.model))

    def table(self, pairs: list[tuple[str, str | None]]) -> tuple[Any, BatchSummary]:
        import pyarrow as pa
        summary = BatchSummary(output="", n_images=0, n_errors=0, seconds=0.0, classes=list(self.model.classes_))
        rows: list[list[Any]] = []
        for batch in score_chunks(self.model, pairs, self.has_labels, self.batch_size, self.decode_threads,
                                  self.max_pixels):
            rows += batch
            summary.add_rows(batch, self.has_labels)
        text = {"path", "true_label", "label", "error"}
        arrays = [pa.array([r[i] for r in rows], pa.string() if c in text else pa.float64())
                  for i, c in enumerate(self.columns)]
        return pa.table(arrays, names=self.columns), summary


def score_images(model: PathLike, images: Any, output: PathLike, engine: str = "ray",
                 address: str | None = None, workers: int | None = None, batch_size: int = 32,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, cpus_per_worker: float = 1, decode_threads: int = 1,
                 verbose: bool = True, overwrite: bool = False,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, runtime: str | None = "auto",
                 precision: str | None = "float32", *, progress: Any = DEPRECATED) -> ScaleSummary:
    """Score every image of ``images`` with the model folder ``model`` into ``output``, resumably.

    Parameters
    ----------
    model : a model folder (``clf.save(path)``); its files are shipped to the workers.
    images : a folder, a ``.csv``/``.tsv`` table of paths (labels optional), a glob, a split
        manifest, an ImageDataset or a list of paths (as for :func:`cvkit.batch_score`).
    output : ``preds.csv``/``.tsv`` (merged from parts at the end: small jobs) or ``preds.parquet``
        (a folder of Parquet parts, one per chunk: big jobs). Same columns as ``batch_score``.
    engine : ``"ray"`` (Ray Data; needs ``pip install 'cvkit[ray]'``) or ``"local"`` (this process,
        same parts, still resumable).
    address : the Ray cluster to join (``"auto"``: the one ``ray start --head`` runs here); None
        starts a local Ray with ``workers`` CPUs.
    workers : Ray workers (actors, i.e. processes), each loading the model once; default: the
        cluster's CPUs divided by ``cpus_per_worker``.
    batch_size : images per model call. chunk_size : images per part (the unit of resuming).
    decode_threads : threads decoding images inside each worker while its model runs.
    verbose : show a progress bar (formerly ``progress``, deprecated).
    overwrite : replace a finished output (or start an unfinished job of other inputs over).
    runtime, precision : what runs the model on each worker, checked here as one
        :class:`~cvkit.options.RunOptions` (None: ``$CVKIT_RUNTIME``/``$CVKIT_PRECISION``, else the
        default) and given to every worker's environment. LiteRT by default: workers do not import
        TensorFlow. An int8 job is a job of its own.

    A job stopped half-way and started again with the same ``output`` skips the parts already
    written (``summary.n_reused``); other inputs or another model raise ``ValueError``.
    """
    verbose = renamed_keyword("score_images", "progress", progress, "verbose", verbose, True)
    check_job_params("score_images", engine=engine, address=address, workers=workers, cpus_per_worker=cpus_per_worker,
                     batch_size=batch_size, chunk_size=chunk_size, decode_threads=decode_threads, verbose=verbose,
                     overwrite=overwrite, max_pixels=max_pixels)
    run = RunOptions.from_env(runtime=runtime, precision=precision)
    output = Path(output)
    check_output(images, output, folder_ok=True)
    layout = plan_output(output)
    meta = read_metadata(model)
    names = [str(c) for c in meta["classes"]]
    pairs, has_labels = job_pairs(images, classes=names)
    identity = {"model": sha256_bytes(read_checked(Path(model), "metadata.json")), "classes": names,
                "columns": output_columns(names, has_labels, meta.get("novelty") is not None), "max_pixels": max_pixels}
    if run.precision != "float32":  # other answers: a job of its own (float32 keeps the identity of earlier jobs)
        identity["precision"] = run.precision
    job = Job(layout, "score", identity, pairs, chunk_size)
    options = {"model": os.fspath(model), "has_labels": has_labels, "batch_size": batch_size,
               "decode_threads": decode_threads, "max_pixels": max_pixels, "run_options": run}

    def ship(ray: Any) -> dict:
        return {"model": None, "shipped": [ray.put(model_files(model))]}

    summary = ScaleSummary(output=os.fspath(output), n_images=0, n_errors=0, seconds=0.0, classes=names,
                           rule=DecisionRule.from_metadata(meta.get("decision"), names).describe())
    run_job(job, ScoringWorker, options, summary, engine=engine, address=address, workers=workers,
            cpus_per_worker=cpus_per_worker, verbose=verbose, overwrite=overwrite, ship=ship)
    summary.warn_errors("score_images", stacklevel=2)
    return summary
