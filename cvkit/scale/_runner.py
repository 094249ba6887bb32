"""Running a :class:`~cvkit.scale._jobs.Job`'s chunks: in this process, or on Ray Data's actor pool.

Why Ray Data: its actor pool is the pattern batch inference needs. Each actor (a worker process
on some machine of the cluster, given ``cpus_per_worker`` CPUs) loads the model once, then chunks
stream through the pool with backpressure, and a lost actor's chunk is retried elsewhere. Each
chunk's part is written by the actor that computed it, so the driver only sees a line of
statistics per chunk and never the pixels or the features.

A worker class derives from :class:`ChunkWorker`: its constructor loads what it needs (once per
actor) and :meth:`ChunkWorker.table` turns a chunk's ``(path, label)`` pairs into a ``pyarrow``
table plus a summary. ``engine="local"`` runs the same class in this process, so both engines
write the same parts.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from cvkit._validation import Interval, Options, validate_params
from cvkit.models._batch import BatchSummary
from cvkit.options import RunOptions
from cvkit.scale._cluster import import_ray, limit_threads, node_id, ray_session
from cvkit.scale._jobs import Job, write_part

__all__ = ["ChunkWorker", "ScaleSummary", "run_job", "ENGINES", "JOB_CONSTRAINTS", "check_job_params"]

ENGINES = ("local", "ray")


#: The declared constraints of the parameters every scale-out job takes (see :func:`check_job_params`).
JOB_CONSTRAINTS = {
    "engine": [Options(ENGINES)],
    "address": [str, None],
    "workers": [Interval(int, 1, None), None],
    "cpus_per_worker": [Interval(float, 0, None, closed="neither")],
    "batch_size": [Interval(int, 1, None)],
    "chunk_size": [Interval(int, 1, None)],
    "decode_threads": [Interval(int, 1, None)],
    "verbose": ["boolean"],
    "overwrite": ["boolean"],
    "max_pixels": [Interval(int, 1, None), None],
}


def check_job_params(owner: str, **params: Any) -> None:
    """Check a job's parameters against :data:`JOB_CONSTRAINTS` (the first bad one raises, naming it);
    ``ImportError`` (how to install it) for ``engine="ray"`` without Ray.

    Example:
        >>> check_job_params("score_images", engine="local", workers=None, chunk_size=256)
        >>> check_job_params("score_images", engine="spark")
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: engine must be one of 'local', 'ray', got 'spark'
    """
    validate_params(owner, params, JOB_CONSTRAINTS)
    if params.get("engine") == "ray":
        import_ray()  # before any work: a clear "pip install 'cvkit[ray]'" when Ray is missing


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _process_age(fallback: float) -> float:
    """Seconds since this process started (its start-up and imports included), if psutil can tell."""
    try:
        import psutil
        return time.time() - psutil.Process().create_time()
    except Exception:  # psutil missing or the platform does not say
        return fallback


class ChunkWorker:
    """One worker: set up once (:meth:`setup`), then one part per chunk (:meth:`run_chunk`).

    Called by Ray Data with a batch holding one chunk (``chunk``, ``paths``, ``labels``), it
    returns one row of statistics (``info``, JSON) for the driver. ``run_options`` (a
    :class:`~cvkit.options.RunOptions`: runtime, precision) say what runs the model; in a Ray worker
    (``threads`` not None) they and the thread limits become the process's environment
    (:func:`cvkit.scale._cluster.limit_threads`), so everything the worker loads reads the same values.
    """

    def __init__(self, parts_dir: str, threads: int | None = 1, run_options: RunOptions | None = None,
                 **options: Any):
        start = time.perf_counter()
        self.parts_dir = parts_dir
        self.run_options = run_options if run_options is not None else RunOptions()
        if threads is not None:  # a Ray worker: its share of the CPUs (not in the caller's own process)
            limit_threads(threads, self.run_options)
        self.setup(**options)
        self.load_seconds = time.perf_counter() - start
        self.ready_seconds = _process_age(self.load_seconds)
        self.node = node_id()

    def setup(self, **options: Any) -> None:
        """Load the model (once per worker)."""
        raise NotImplementedError

    def table(self, pairs: list[tuple[str, str | None]]) -> tuple[Any, BatchSummary]:
        """The part's ``pyarrow.Table`` for ``pairs`` and the chunk's summary."""
        raise NotImplementedError

    def run_chunk(self, chunk: int, pairs: list[tuple[str, str | None]]) -> dict:
        """Compute and write chunk ``chunk``; returns its ``info`` (also stored in the part)."""
        start = time.perf_counter()
        table, summary = self.table(pairs)
        info = {"chunk": int(chunk), "n_images": len(pairs), "node": self.node, "pid": os.getpid(),
                "seconds": time.perf_counter() - start, "load_seconds": self.load_seconds,
                "ready_seconds": self.ready_seconds,
                "peak_rss_mb": _peak_rss_mb(), "n_errors": summary.n_errors, "errors": summary.errors,
                "label_counts": summary.label_counts, "n_labelled": summary.n_labelled,
                "n_correct": summary.n_correct}
        write_part(self.parts_dir, chunk, table, info)
        return info

    def __call__(self, batch: Any) -> dict:
        """Ray Data's entry: a ``pyarrow`` batch of chunks -> their ``info`` rows."""
        infos = []
        for chunk, paths, labels in zip(batch.column("chunk").to_pylist(), batch.column("paths").to_pylist(),
                                        batch.column("labels").to_pylist()):
            infos.append(json.dumps(self.run_chunk(chunk, [(p, lab or None) for p, lab in zip(paths, labels)])))
        return {"info": infos}


@dataclass
class ScaleSummary(BatchSummary):
    """What a scale-out job did: :class:`~cvkit.models.BatchSummary`'s counts over the
    whole output, plus ``n_reused`` (images found already done by an earlier run), ``nodes``
    (images computed per machine), the engine, the workers and their load time and peak memory."""

    kind: str = "scored"
    n_reused: int = 0
    engine: str = "local"
    n_workers: int = 1
    startup_seconds: float = 0.0
    nodes: dict[str, int] = field(default_factory=dict)
    # "node/pid" -> load_seconds (the model), ready_seconds (process start to ready), peak_rss_mb
    worker_stats: dict[str, dict] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        """Images computed in this run (reused ones excluded) per second of the run."""
        done = self.n_images - self.n_reused
        return done / self.seconds if self.seconds > 0 else float("nan")

    def add_info(self, info: dict, reused: bool = False) -> None:
        """Count one chunk's ``info`` (from its worker, or read back from its part)."""
        self.add(BatchSummary(output="", n_images=info["n_images"], n_errors=info["n_errors"], seconds=0.0,
                              classes=self.classes, label_counts=info.get("label_counts", {}),
                              errors=[tuple(e) for e in info.get("errors", [])],
                              n_labelled=info.get("n_labelled", 0), n_correct=info.get("n_correct", 0)))
        if reused:
            self.n_reused += info["n_images"]
            return
        self.nodes[info["node"]] = self.nodes.get(info["node"], 0) + info["n_images"]
        self.worker_stats[f"{info['node']}/{info['pid']}"] = {
            "load_seconds": round(info["load_seconds"], 3), "ready_seconds": round(info.get("ready_seconds", 0), 3),
            "peak_rss_mb": round(info["peak_rss_mb"], 1)}

    def __str__(self) -> str:
        where = f"{self.n_workers} Ray worker(s) on {len(self.nodes)} node(s)" if self.engine == "ray" \
            else "this process"
        lines = [f"{self.kind} {self.n_images - self.n_errors} of {self.n_images} images into {self.output} "
                 f"({self.images_per_s:.1f} images/s, {where})"]
        if self.engine == "ray" and self.startup_seconds:
            lines.append(f"{self.seconds:.1f} s in all, of which {self.startup_seconds:.1f} s connecting to Ray "
                         "(and each worker's start-up and model load follow)")
        if self.n_reused:
            lines.append(f"reused {self.n_reused} image(s) already done by an earlier run of this job")
        text = BatchSummary.__str__(self).split("\n", 1)
        if len(text) > 1:
            lines.append(text[1])
        return "\n".join(lines)


def run_job(job: Job, worker_class: type, options: dict, summary: ScaleSummary, engine: str = "local",
            address: str | None = None, workers: int | None = None, cpus_per_worker: float = 1,
            verbose: bool = True, overwrite: bool = False, ship: Any = None) -> ScaleSummary:
    """Do ``job``'s remaining chunks with ``worker_class(**options)``; fills and returns ``summary``.

    ``ship(ray) -> dict`` (for the Ray engine) may replace options with object-store references,
    e.g. the model folder's files. The summary's counts cover the whole output, reused parts too.
    """
    todo, done = job.start(overwrite=overwrite)
    for info in done.values():
        summary.add_info(info, reused=True)
    from cvkit._console import progress_bar
    bar = progress_bar(total=len(job.pairs), initial=summary.n_reused, desc=f"{summary.kind.capitalize()} images",
                       unit="img", disable=not verbose, smoothing=0.1)
    start = time.perf_counter()
    summary.engine, summary.n_workers = engine, 1 if engine == "local" else 0
    try:
        if engine == "local":
            worker = worker_class(parts_dir=str(job.layout.parts), threads=None, **options) if todo else None
            for chunk in todo:
                _count(summary, bar, worker.run_chunk(chunk, job.chunks[chunk]))
        elif todo:
            _run_on_ray(job, todo, worker_class, options, summary, bar, address, workers, cpus_per_worker, ship)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    job.finish(format_row=getattr(worker_class, "format_row", None))
    return summary


def _count(summary: ScaleSummary, bar: Any, info: dict) -> None:
    summary.add_info(info)
    bar.update(info["n_images"])


def _run_on_ray(job: Job, todo: list[int], worker_class: type, options: dict, summary: ScaleSummary,
                bar: Any, address: str | None, workers: int | None, cpus_per_worker: float, ship: Any) -> None:
    with ray_session(address, num_cpus=None if address else workers) as session:
        import ray
        summary.engine = "ray"
        summary.startup_seconds = session["seconds"]
        fits = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
        if workers is not None and workers > fits:  # more would wait for CPUs that never come
            warnings.warn(f"workers={workers}: the cluster has CPUs for {fits} worker(s) of {cpus_per_worker} "
                          f"CPU(s); using {fits}", stacklevel=4)
        summary.n_workers = n_workers = min(workers or fits, fits, len(todo))
        if ship is not None:
            options = {**options, **ship(ray)}
        items = [{"chunk": c, "paths": [p for p, _ in job.chunks[c]],
                  "labels": [lab or "" for _, lab in job.chunks[c]]} for c in todo]
        # small blocks (<= 16 chunks): work spreads evenly and the driver never holds a big block
        dataset = ray.data.from_items(items, override_num_blocks=min(len(items), max(4 * n_workers, len(items) // 16)))
        results = dataset.map_batches(
            worker_class, batch_size=1, batch_format="pyarrow", num_cpus=cpus_per_worker,
            compute=ray.data.ActorPoolStrategy(size=n_workers),  # a lost actor is restarted, its chunk retried
            fn_constructor_kwargs={"parts_dir": str(job.layout.parts),
                                   "threads": max(1, int(cpus_per_worker)), **options})
        for row in results.iter_rows():
            _count(summary, bar, json.loads(row["info"]))
