"""Benchmark the scoring service on LiteRT against direct batched prediction and against Keras, in one run.

Starts two real services (uvicorn, ``cvkit serve`` in background processes on free loopback ports):
one with ``runtime="litert"``, one with ``runtime="keras"`` (the service before LiteRT). Then, in
``--rounds`` interleaved rounds, each round measures on the same photos:

- ``direct``: the LiteRT-loaded model's ``predict_proba`` on the photos decoded beforehand (the
  model alone, no HTTP, no decoding), best of batch sizes 8 and 32; beside it the bare graph
  (``model.graph_.predict``) for reference;
- the LiteRT service with 8 concurrent clients, then with 1 client (one-image multipart requests);
- the Keras service with 1 client, then with 8.

Images/s per round are compared within the round (robust to other processes' load changing between
rounds) and the medians reported; latencies are pooled over the rounds. Errors are counted.
Targets (issue 18): zero errors; the LiteRT service at 8 clients >= 0.8x direct batched prediction
on LiteRT; single-image latency (1 client: p50 and p95) on LiteRT no worse than on Keras.

Usage:
    python bench/serve.py [--model-dir runs/sample/model] [--rounds 5] [--requests 128]

Without ``--model-dir`` it uses ``runs/sample/model`` (from ``make demo``) if it holds a
``model.tflite``, else fits a ``FeatureClassifier`` on sample_data into a temporary folder first.
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
TARGET_RATIO = 0.8


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
    if (demo / "model.tflite").is_file():  # saved since LiteRT: no conversion on load
        return demo, None
    from cvkit import ImageDataset
    from cvkit.classifiers import FeatureClassifier
    train, _ = ImageDataset.from_directory(REPO / "sample_data").split(test_size=0.34, random_state=0)
    tmp = Path(tempfile.mkdtemp(prefix="cvkit-bench-serve-"))
    FeatureClassifier().fit(train).save(tmp / "model")
    return tmp / "model", tmp


def images_per_s(predict, pixels, batch_size: int = 32, min_seconds: float = 2.0) -> float:
    """``predict`` on pre-decoded pixels in batches of ``batch_size``, after one warm-up call."""
    predict(pixels[:batch_size])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or done < len(pixels):
        for i in range(0, len(pixels), batch_size):
            predict(pixels[i:i + batch_size])
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
        "latencies": ms,
    }


def service_run(server, client, payloads, concurrency: int, n_requests: int, timeout: float) -> dict:
    """One client run against a started service, with the service's own batching counters for it."""
    before = client.health()["batching"]
    result = run_clients(server.url, server.api_key, payloads, concurrency, n_requests, timeout)
    after = client.health()["batching"]
    calls = after["batches"] - before["batches"]
    result["model_calls"] = calls
    result["mean_batch"] = round((after["images"] - before["images"]) / calls, 2) if calls else None
    return result


def pooled(runs: list[dict]) -> dict:
    """Latency percentiles over every request of several runs, with the runs' images/s and errors."""
    ms = [v for r in runs for v in r["latencies"]]
    return {"requests": len(ms), "errors": sum(r["errors"] for r in runs),
            "error_examples": [e for r in runs for e in r["error_examples"]][:3],
            "latency_ms": {"p50": round(percentile(ms, 50), 1), "p95": round(percentile(ms, 95), 1),
                           "p99": round(percentile(ms, 99), 1)},
            "images_per_s_median": round(statistics.median(r["images_per_s"] for r in runs), 2),
            "images_per_s_per_round": [r["images_per_s"] for r in runs],
            "mean_batch_per_round": [r["mean_batch"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--requests", type=int, default=128, help="requests per client run at 8 clients")
    parser.add_argument("--single-requests", type=int, default=48, help="requests per run at 1 client")
    parser.add_argument("--direct-seconds", type=float, default=2.0, help="seconds per direct measurement")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--num-threads", type=int, default=None,
                        help="LiteRT threads of the services (default: theirs, every core)")
    parser.add_argument("--max-wait-ms", type=float, default=None, help="the services' micro-batching wait")
    args = parser.parse_args(argv)

    import numpy as np

    import cvkit
    from cvkit.data import read_image
    from cvkit.options import default_threads
    from cvkit.serving import BackgroundServer, Client

    model_dir, scratch = model_folder(args.model_dir)
    images = sorted((REPO / "sample_data").rglob("*.jpg"))[:64]
    payloads = [(p.name, p.read_bytes()) for p in images]
    model = cvkit.load_model(model_dir, runtime="litert")
    pixels = np.stack([read_image(p, size=model.input_size_) for p in images])

    def direct() -> dict[str, float]:
        """Best images/s over batch sizes 8 and 32: predict_proba, and the bare LiteRT graph."""
        graph = model.graph_.predict
        return {"predict_proba": max(images_per_s(model.predict_proba, pixels, bs, args.direct_seconds)
                                     for bs in (8, 32)),
                "bare_graph": max(images_per_s(lambda x: graph(x, batch_size=len(x)), pixels, bs,
                                               args.direct_seconds) for bs in (8, 32))}

    api_key = "bench-" + os.urandom(8).hex()
    options = {"num_threads": args.num_threads, "max_wait_ms": args.max_wait_ms}
    servers = {rt: BackgroundServer(model_dir, api_key=api_key, runtime=rt, **options) for rt in ("litert", "keras")}
    runs: dict[str, list] = {"direct": [], "litert_8": [], "litert_1": [], "keras_1": [], "keras_8": []}
    try:
        clients = {}
        for server in servers.values():
            server.start()
        for rt, server in servers.items():
            server.wait_until_ready(timeout=300)
            clients[rt] = Client(server.url, api_key=api_key)
            for n in (1, 2, 4, 8):  # warm up the batch sizes used below
                clients[rt].score([data for _, data in payloads[:n]])
        metadata = {rt: clients[rt].metadata() for rt in servers}
        for rt, meta in metadata.items():
            if meta.get("runtime") != rt:
                raise RuntimeError(f"the {rt} service runs on {meta.get('runtime')}")
        for _ in range(args.rounds):
            runs["direct"].append(direct())
            for rt, level in (("litert", 8), ("litert", 1), ("keras", 1), ("keras", 8)):
                n = args.requests if level > 1 else args.single_requests
                runs[f"{rt}_{level}"].append(service_run(servers[rt], clients[rt], payloads, level, n,
                                                         args.timeout))
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.stop()
        if scratch is not None:
            import shutil
            shutil.rmtree(scratch, ignore_errors=True)

    direct_pp = [d["predict_proba"] for d in runs["direct"]]
    vs_direct = {name: round(statistics.median(r["images_per_s"] / d for r, d in zip(runs[name], direct_pp)), 3)
                 for name in ("litert_8", "litert_1")}
    vs_keras = round(statistics.median(a["images_per_s"] / b["images_per_s"]
                                       for a, b in zip(runs["litert_8"], runs["keras_8"])), 3)
    service = {name: pooled(runs[name]) for name in ("litert_8", "litert_1", "keras_1", "keras_8")}
    lat_lite, lat_keras = service["litert_1"]["latency_ms"], service["keras_1"]["latency_ms"]
    errors = sum(s["errors"] for s in service.values())
    meets = {
        "zero_errors": errors == 0,
        "litert_service_8_clients_vs_direct": vs_direct["litert_8"],
        "litert_service_8_clients_vs_direct_target": TARGET_RATIO,
        "litert_service_8_clients_meets": vs_direct["litert_8"] >= TARGET_RATIO,
        "single_image_latency_p50_litert_vs_keras": round(lat_lite["p50"] / lat_keras["p50"], 3),
        "single_image_latency_p95_litert_vs_keras": round(lat_lite["p95"] / lat_keras["p95"], 3),
        "single_image_latency_no_worse": lat_lite["p50"] <= lat_keras["p50"] and lat_lite["p95"] <= lat_keras["p95"],
    }
    meets["all"] = bool(meets["zero_errors"] and meets["litert_service_8_clients_meets"]
                        and meets["single_image_latency_no_worse"])
    report = {
        "benchmark": "serve",
        "model_dir": os.path.relpath(model_dir, REPO) if scratch is None else "<trained for this run>",
        "host": "127.0.0.1 (loopback), clients in the benchmark process (they share the cores)",
        "cpu_count": os.cpu_count(), "litert_threads": default_threads(), "rounds": args.rounds,
        "service_options": {k: v for k, v in options.items() if v is not None} or "defaults",
        "requests_per_run": {"8_clients": args.requests, "1_client": args.single_requests},
        "runs_on": {rt: f"{m.get('runtime')} {m.get('precision')}" for rt, m in metadata.items()},
        "direct_litert_images_per_s": {
            "predict_proba_median": round(statistics.median(direct_pp), 2),
            "bare_graph_median": round(statistics.median(d["bare_graph"] for d in runs["direct"]), 2),
            "predict_proba_per_round": [round(v, 2) for v in direct_pp]},
        "service": service,
        "ratios": {"litert_service_8_clients_vs_direct": vs_direct["litert_8"],
                   "litert_service_1_client_vs_direct": vs_direct["litert_1"],
                   "litert_vs_keras_service_8_clients": vs_keras},
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "meets_targets": meets,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
