"""Micro-batching: concurrent requests share one model call.

A model scores 16 images in one call far faster than in 16 calls. :class:`MicroBatcher` collects
the images of requests that arrive close together (waiting at most ``max_wait_ms`` after the first,
and never more than ``max_batch_size`` images), runs the model once on a worker thread, and hands
each request its own rows. While the model is busy, new requests queue up and form the next batch,
so under load batches grow by themselves. A batch only waits while other requests are known to be
on the way (queued, or announced with :meth:`MicroBatcher.incoming` while their images decode), so
a lone request is scored at once.

Example:
    >>> import asyncio
    >>> async def three_requests():
    ...     batcher = MicroBatcher(lambda x: x.mean(axis=(1, 2)), max_batch_size=8, max_wait_ms=50)
    ...     await batcher.start()
    ...     try:
    ...         images = np.ones((2, 4, 4, 3))   # (k, H, W, 3) -> (k, n_outputs)
    ...         rows = await asyncio.gather(*(batcher.submit(images) for _ in range(3)))
    ...     finally:
    ...         await batcher.stop()
    ...     return [r.shape for r in rows], batcher.stats.batches
    >>> asyncio.run(three_requests())
    ([(2, 3), (2, 3), (2, 3)], 1)
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from cvkit._validation import Interval, check_param

__all__ = ["MicroBatcher", "BatchStats"]


@dataclass
class BatchStats:
    """Counters: how many model calls ran and how many images they scored."""

    batches: int = 0
    images: int = 0
    requests: int = 0
    largest_batch: int = 0
    errors: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy, with the mean batch size."""
        mean = self.images / self.batches if self.batches else 0.0
        return {"batches": self.batches, "images": self.images, "requests": self.requests,
                "largest_batch": self.largest_batch, "mean_batch": round(mean, 2),
                "errors": self.errors}


@dataclass
class _Job:
    images: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """Group concurrent ``submit`` calls into model calls of at most ``max_batch_size`` images.

    Parameters
    ----------
    predict_fn : called with a uint8 array (n, H, W, 3), returns an array (n, ...) of results.
        It runs on one dedicated worker thread, so the event loop stays responsive and the model is
        never called from two threads at once.
    max_batch_size : most images per model call. A single request larger than this is split.
    max_wait_ms : longest the first image of a batch waits for company.
    wait_for_incoming_only : wait only while other requests are queued or announced with
        :meth:`incoming`; False always waits up to ``max_wait_ms``.
    """

    def __init__(self, predict_fn: Callable[[np.ndarray], np.ndarray], max_batch_size: int = 32,
                 max_wait_ms: float = 10.0, wait_for_incoming_only: bool = True):
        check_param("max_batch_size", max_batch_size, [Interval(int, 1, None)])
        check_param("max_wait_ms", max_wait_ms, [Interval(float, 0, None)])
        self.predict_fn = predict_fn
        self.max_batch_size = int(max_batch_size)
        self.max_wait_ms = float(max_wait_ms)
        self.wait_for_incoming_only = bool(wait_for_incoming_only)
        self._incoming = 0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._carry: _Job | None = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._task is not None and not self._task.done()

    async def start(self) -> MicroBatcher:
        """Start the batching loop on the running event loop."""
        if self.running:
            return self
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cvkit-model")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="cvkit-microbatcher")
        return self

    async def stop(self) -> None:
        """Stop the loop; requests still waiting get a ``RuntimeError``."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        pending = [self._carry] if self._carry is not None else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("the scoring service is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Announce a request that will :meth:`submit` soon (e.g. while its images decode).

        A batch waits for company only while some request is announced or queued; a lone request
        is scored at once instead of waiting ``max_wait_ms`` for nobody. Leave the block *before*
        calling :meth:`submit`.
        """
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """Score ``images`` (k, H, W, 3) as part of a shared batch; returns the k result rows."""
        if not self.running or self._queue is None:
            raise RuntimeError("MicroBatcher is not running: call await batcher.start() first")
        images = np.asarray(images)
        if len(images) == 0:
            raise ValueError("submit() needs at least one image")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(images, future))
        return await future

    # ------------------------------------------------------------------ internals
    async def _next_job(self, timeout: float | None) -> _Job | None:
        assert self._queue is not None
        if self._carry is not None:
            job, self._carry = self._carry, None
            return job
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _collect(self) -> list[_Job]:
        loop = asyncio.get_running_loop()
        first = await self._next_job(None)
        assert first is not None
        jobs, count = [first], len(first.images)
        deadline = loop.time() + self.max_wait_ms / 1000.0
        while count < self.max_batch_size:
            if self.wait_for_incoming_only and self._incoming == 0 and self._carry is None \
                    and self._queue is not None and self._queue.empty():
                break  # nobody else is on the way: do not make this batch wait
            job = await self._next_job(deadline - loop.time())
            if job is None:
                break
            if job.future.done():  # its client went away while queued
                continue
            if count + len(job.images) > self.max_batch_size:
                self._carry = job  # would overflow: first in line for the next batch
                break
            jobs.append(job)
            count += len(job.images)
        return jobs

    def _run(self, images: np.ndarray) -> np.ndarray:
        """Call the model in chunks of ``max_batch_size`` (only a single huge request needs more)."""
        parts = [np.asarray(self.predict_fn(images[i:i + self.max_batch_size]))
                 for i in range(0, len(images), self.max_batch_size)]
        out = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if len(out) != len(images):
            raise RuntimeError(f"model returned {len(out)} rows for {len(images)} images")
        return out

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            jobs = [j for j in jobs if not j.future.done()]
            if not jobs:
                continue
            batch = jobs[0].images if len(jobs) == 1 else np.concatenate([j.images for j in jobs])
            try:
                out = await loop.run_in_executor(self._executor, self._run, batch)
            except asyncio.CancelledError:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(RuntimeError("the scoring service is shutting down"))
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                self.stats.errors += 1
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.images += len(batch)
            self.stats.requests += len(jobs)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
            start = 0
            for job in jobs:
                stop = start + len(job.images)
                if not job.future.done():
                    job.future.set_result(out[start:stop])
                start = stop
