"""Benchmark the scoring service against direct batched prediction, in the same run.

Starts the service in a background process on a free loopback port, sends a fixed number of
one-image multipart requests from N concurrent clients, and prints JSON: latency percentiles,
requests/s, images/s and errors per concurrency level, beside ``model.predict_proba`` images/s on
the same images (decoded beforehand, so the baseline is the model alone), and the bare Keras
graph's ``predict_on_batch`` as a second baseline. Each baseline is the best of batch sizes 8 and
32, measured before and after the service run, so a busy machine cannot flatter the service.
Target: zero errors, and at concurrency 8 the service's images/s >= 0.7x the direct figure.

Usage:
    python bench/serve.py [--model-dir runs/sample/model] [--concurrency 1,8] [--requests 96]

Without ``--model-dir`` it uses ``runs/sample/model`` (from ``make demo``) if present, else fits
a ``FeatureClassifier`` on sample_data into a temporary folder first.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.7


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def model_folder(given: str | None) -> tuple[Path, Path | None]:
    """The model to serve, training a quick one on sample_data when none is available."""
    if given:
        return Path(given), None
    demo = REPO / "runs" / "sample" / "model"
    if (demo / "metadata.json").is_file():
        return demo, None
    from cvkit import ImageDataset
    from cvkit.classifiers import FeatureClassifier
    train, _ = ImageDataset.from_directory(REPO / "sample_data").split(test_size=0.34, random_state=0)
    tmp = Path(tempfile.mkdtemp(prefix="cvkit-bench-serve-"))
    FeatureClassifier().fit(train).save(tmp / "model")
    return tmp / "model", tmp


def direct_images_per_s(model, pixels, batch_size: int = 32, min_seconds: float = 5.0) -> float:
    """``model.predict_proba`` on pre-decoded pixels in batches, after one warm-up pass."""
    model.predict_proba(pixels[:batch_size])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or done < len(pixels):
        for i in range(0, len(pixels), batch_size):
            model.predict_proba(pixels[i:i + batch_size])
            done += len(pixels[i:i + batch_size])
    return done / (time.perf_counter() - start)


def run_clients(url: str, api_key: str, payloads: list[tuple[str, bytes]], concurrency: int,
                n_requests: int, timeout: float) -> dict:
    """``n_requests`` one-image requests spread over ``concurrency`` client threads."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n_requests))

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"},
                          timeout=timeout) as client:
            while True:
                with lock:
                    k = next(counter, None)
                if k is None:
                    return
                name, data = payloads[k % len(payloads)]
                start = time.perf_counter()
                try:
                    response = client.post("/score", files=[("image", (name, data, "image/jpeg"))])
                    ok = response.status_code == 200 and "label" in response.json()["predictions"][0]
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = [v * 1000 for v in latencies]
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "latency_ms": {"p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
                       "p99": round(percentile(ms, 99), 1), "mean": round(statistics.fmean(ms), 1)},
        "requests_per_s": round(len(latencies) / wall, 2),
        "images_per_s": round(len(latencies) / wall, 2),
        "seconds": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=96, help="requests per concurrency level")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]

    import cvkit
    from cvkit.data import read_image
    from cvkit.serving import BackgroundServer, Client

    model_dir, scratch = model_folder(args.model_dir)
    images = sorted((REPO / "sample_data").rglob("*.jpg"))[:64]
    payloads = [(p.name, p.read_bytes()) for p in images]

    model = cvkit.load_model(model_dir)
    import numpy as np
    pixels = np.stack([read_image(p, size=model.input_size_) for p in images])

    class _Graph:  # the bare pixel graph (LiteRT or Keras, as loaded), no predict() set-up: a stricter baseline
        def predict_proba(self, x):
            return model.graph_.predict(x, batch_size=len(x))

    has_graph = (getattr(model, "metadata_", None) or {}).get("head") == "keras"

    def baselines() -> dict[str, float]:
        """Best images/s over batch sizes 8 and 32, for predict_proba and the bare graph."""
        out = {"predict_proba": max(direct_images_per_s(model, pixels, bs, 5.0) for bs in (8, 32))}
        if has_graph:
            out["bare_graph"] = max(direct_images_per_s(_Graph(), pixels, bs, 5.0) for bs in (8, 32))
        return out

    before = baselines()

    api_key = "bench-" + os.urandom(8).hex()
    results = []
    with BackgroundServer(model_dir, api_key=api_key) as server:
        server.wait_until_ready(timeout=300)
        client = Client(server.url, api_key=api_key)
        for n in (1, 2, 4, 8):  # warm up the batch sizes used below
            client.score([data for _, data in payloads[:n]])
        for level in levels:
            stats_before = client.health()["batching"]
            result = run_clients(server.url, api_key, payloads, level, args.requests, args.timeout)
            stats_after = client.health()["batching"]
            calls = stats_after["batches"] - stats_before["batches"]
            result["model_calls"] = calls
            result["mean_batch"] = round((stats_after["images"] - stats_before["images"]) / calls, 2) \
                if calls else None
            results.append(result)
        health = client.health()
        client.close()
    after = baselines()  # measured again: the machine's load may have changed meanwhile
    direct = max(before["predict_proba"], after["predict_proba"])
    graph = max(before.get("bare_graph", 0.0), after.get("bare_graph", 0.0)) or None
    for result in results:
        result["ratio_vs_direct"] = round(result["images_per_s"] / direct, 3)
        if graph:
            result["ratio_vs_bare_graph"] = round(result["images_per_s"] / graph, 3)
    if scratch is not None:
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)

    by_level = {r["concurrency"]: r for r in results}
    headline = by_level.get(8, results[-1])
    report = {
        "benchmark": "serve",
        "model_dir": os.path.relpath(model_dir, REPO) if scratch is None else "<trained for this run>",
        "host": "127.0.0.1 (loopback)",
        "cpu_count": os.cpu_count(),
        "direct_predict_images_per_s": round(direct, 2),
        "direct_measurements": {"before": {k: round(v, 2) for k, v in before.items()},
                                "after": {k: round(v, 2) for k, v in after.items()}},
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "bare_graph_predict_on_batch_images_per_s": round(graph, 2) if graph else None,
        "service": results,
        "batching": health.get("batching"),
        "target": f"errors == 0 and images/s at concurrency {headline['concurrency']} >= "
                  f"{TARGET_RATIO} x direct",
        "ratio_vs_direct": headline["ratio_vs_direct"],
        "meets_target": all(r["errors"] == 0 for r in results)
        and headline["ratio_vs_direct"] >= TARGET_RATIO,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
