"""MicroBatcher on its own: bounded batches, bounded waits, errors and shutdown."""
from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from cvkit.serving._microbatch import MicroBatcher


class Recorder:
    """A predict function that records each call's batch size and thread, and returns row sums."""

    def __init__(self, delay: float = 0.0):
        self.sizes: list[int] = []
        self.threads: set[str] = set()
        self.delay = delay

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.sizes.append(len(images))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return images.reshape(len(images), -1).sum(axis=1, keepdims=True)


def images(k: int, start: int) -> np.ndarray:
    return np.arange(start, start + k, dtype=np.int64).reshape(k, 1, 1, 1)


async def _gather(batcher: MicroBatcher, jobs: list[np.ndarray]) -> list[np.ndarray]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(j) for j in jobs))
    finally:
        await batcher.stop()


def test_concurrent_submits_share_calls_and_get_their_own_rows():
    record = Recorder()
    batcher = MicroBatcher(record, max_batch_size=32, max_wait_ms=100)
    jobs = [images(1, i * 10) for i in range(8)] + [images(3, 100)]
    results = asyncio.run(_gather(batcher, jobs))
    for job, rows in zip(jobs, results):
        np.testing.assert_array_equal(rows.ravel(), job.ravel())
    assert sum(record.sizes) == 11 and len(record.sizes) < 9
    assert batcher.stats.requests == 9 and batcher.stats.images == 11
    assert record.threads == {"cvkit-model_0"}  # always the one model thread


def test_batches_never_exceed_the_bound_and_big_requests_are_split():
    record = Recorder()
    batcher = MicroBatcher(record, max_batch_size=4, max_wait_ms=50)
    jobs = [images(3, 0), images(3, 10), images(10, 100), images(1, 500)]
    results = asyncio.run(_gather(batcher, jobs))
    assert max(record.sizes) <= 4
    assert sum(record.sizes) == 17
    for job, rows in zip(jobs, results):
        np.testing.assert_array_equal(rows.ravel(), job.ravel())


def test_a_lone_request_is_scored_at_once_unless_told_to_wait():
    async def timed(**options) -> float:
        batcher = await MicroBatcher(Recorder(), **options).start()
        start = time.perf_counter()
        await batcher.submit(images(1, 0))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return elapsed

    assert asyncio.run(timed(max_wait_ms=3000)) < 1.5  # nobody announced: no 3 s wait
    assert asyncio.run(timed(max_wait_ms=200, wait_for_incoming_only=False)) >= 0.19


def test_a_batch_waits_for_announced_requests():
    record = Recorder()

    async def scenario():
        batcher = await MicroBatcher(record, max_wait_ms=3000).start()
        with batcher.incoming():  # a second request is decoding its images
            first = asyncio.create_task(batcher.submit(images(1, 0)))
            await asyncio.sleep(0.2)
            assert record.sizes == []  # the first is held for it
        second = asyncio.create_task(batcher.submit(images(2, 1)))
        rows = await asyncio.gather(first, second)
        await batcher.stop()
        return rows

    first, second = asyncio.run(scenario())
    assert record.sizes == [3]
    np.testing.assert_array_equal(first.ravel(), [0])
    np.testing.assert_array_equal(second.ravel(), [1, 2])


def test_model_errors_reach_every_request_of_the_batch_and_the_loop_survives():
    calls = []

    def flaky(batch: np.ndarray) -> np.ndarray:
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return batch.reshape(len(batch), -1)

    async def scenario():
        batcher = await MicroBatcher(flaky, max_wait_ms=50).start()
        first = await asyncio.gather(batcher.submit(images(1, 0)), batcher.submit(images(1, 1)),
                                     return_exceptions=True)
        second = await batcher.submit(images(2, 5))
        await batcher.stop()
        return first, second, batcher.stats

    first, second, stats = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in first)
    np.testing.assert_array_equal(second.ravel(), [5, 6])
    assert stats.errors == 1 and stats.batches == 1


def test_stop_fails_waiting_requests_and_submit_needs_start():
    async def scenario():
        batcher = await MicroBatcher(Recorder(delay=0.3), max_batch_size=1, max_wait_ms=0).start()
        tasks = [asyncio.create_task(batcher.submit(images(1, i))) for i in range(3)]
        await asyncio.sleep(0.1)
        await batcher.stop()
        return await asyncio.gather(*tasks, return_exceptions=True)

    outcomes = asyncio.run(scenario())
    assert any(isinstance(o, RuntimeError) and "shutting down" in str(o) for o in outcomes)
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(MicroBatcher(Recorder()).submit(images(1, 0)))
    with pytest.raises(ValueError, match="max_batch_size"):
        MicroBatcher(Recorder(), max_batch_size=0)
