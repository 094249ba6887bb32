#!/usr/bin/env python3
"""Benchmark: what last-used tracking and the size limit cost the feature cache, measured in one run.

On a FeatureCache of ``--entries`` random 1280-float vectors (EfficientNet-Lite0's width):

- ``get``: a warm lookup of every key, which also records last-used times (one batched write),
  against the baseline ``get_untracked``: the same lookup with the recording switched off;
- ``put_limited``: storing batches of 32 vectors with a size limit that is never reached (the
  per-put check alone), against ``put_unlimited``: the same with no limit;
- ``put_evicting``: the same batches into a cache capped at half of what they need (eviction
  included), against ``put_unlimited``.

Each is timed ``--repeats`` times on fresh files; the best round counts. Prints JSON with times
and the ratios get/get_untracked (aim <= 1.5), put_limited/put_unlimited (aim <= 1.2) and
put_evicting/put_unlimited (aim <= 2).

    python bench/cache.py [--entries 5000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

from cvkit.features._store import FeatureCache  # noqa: E402

DIM = 1280
BATCH = 32


def _items(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"{i:040x}": rng.standard_normal(DIM).astype(np.float32) for i in range(n)}


def _fill(cache: FeatureCache, items: dict[str, np.ndarray]) -> float:
    keys = list(items)
    start = time.perf_counter()
    for s in range(0, len(keys), BATCH):
        cache.put({k: items[k] for k in keys[s:s + BATCH]})
    return time.perf_counter() - start


def run(entries: int, repeats: int) -> dict:
    items = _items(entries)
    keys = list(items)
    best: dict[str, float] = {}

    def record(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, float("inf")), seconds)

    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            base = Path(tmp) / f"r{r}"
            base.mkdir()
            unlimited = FeatureCache(base / "unlimited.sqlite", DIM)
            record("put_unlimited", _fill(unlimited, items))
            limited = FeatureCache(base / "limited.sqlite", DIM, max_bytes=10 * 2**30)
            record("put_limited", _fill(limited, items))
            half = int(entries * 5800 / 2)
            evicting = FeatureCache(base / "evicting.sqlite", DIM, max_bytes=half)
            record("put_evicting", _fill(evicting, items))
            assert len(evicting) < entries and evicting.size_bytes() <= half + BATCH * 6000

            start = time.perf_counter()
            found = unlimited.get(keys)
            record("get", time.perf_counter() - start)
            assert len(found) == entries
            untracked = FeatureCache(base / "unlimited.sqlite", DIM)
            untracked._touch = lambda keys, now: None  # the baseline: lookup without recording use
            start = time.perf_counter()
            found = untracked.get(keys)
            record("get_untracked", time.perf_counter() - start)
            assert len(found) == entries
            for cache in (unlimited, limited, evicting, untracked):
                cache.close()
    return {
        "entries": entries, "dim": DIM, "batch": BATCH, "repeats": repeats,
        "seconds": {k: round(v, 4) for k, v in sorted(best.items())},
        "get_per_1000_ms": round(1000 * best["get"] / entries * 1000, 2),
        "ratios": {
            "get/get_untracked": round(best["get"] / best["get_untracked"], 3),
            "put_limited/put_unlimited": round(best["put_limited"] / best["put_unlimited"], 3),
            "put_evicting/put_unlimited": round(best["put_evicting"] / best["put_unlimited"], 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.entries, args.repeats), indent=2))


if __name__ == "__main__":
    main()
