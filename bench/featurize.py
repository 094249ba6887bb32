#!/usr/bin/env python3
"""Benchmark: images/s to featurize JPEGs with EfficientNet-Lite0 on every route, against the machine's peak.

All measured in one run, on the same images (sample_data photos, augmented with random crops, flips
and brightness into a temporary folder, longest side <= 320 px like the originals), batch 32:

- ``peak``: the physical float32 limit, *measured*: the best FMA rate of a float32 NumPy matmul
  (BLAS sgemm, all cores) in GFLOP/s, divided by EfficientNet-Lite0's 0.768 GFLOP per 224 px image;
- ``ceiling_litert`` / ``ceiling_keras``: the backbone alone on pre-decoded uint8 pixels (no I/O),
  LiteRT float32 with XNNPACK / the traced Keras function cvkit's Keras runtime uses;
- ``naive_keras`` (the baseline): ``keras.utils.image_dataset_from_directory`` + ``model.predict``;
- ``cvkit_keras``, ``cvkit_litert``, ``cvkit_litert_int8``: :class:`ImageFeaturizer` from the JPEG
  files with an empty feature cache (cold), per runtime and precision (graphs already converted);
- ``cvkit_warm``: the LiteRT featurizer again, every image found in the feature cache.

Every route is warmed up once, then timed in ``--repeats`` interleaved rounds; images/s is each
route's median round, ratios are medians of the within-round ratios (robust to other processes'
load changing between rounds). Peak memory: a fresh process featurizing the images cold per runtime
(``ru_maxrss``), which also says whether it imported TensorFlow. Prints JSON.

    python bench/featurize.py [--images 320] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

from cvkit.data import ImageDataset, read_image  # noqa: E402

BATCH = 32
GFLOP_PER_IMAGE = 0.768  # EfficientNet-Lite0 at 224 px (multiply-adds x 2)


def make_images(out: Path, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` augmented copies of sample_data's photos into class folders under ``out``."""
    source = ImageDataset.from_directory(REPO / "sample_data", verbose=False)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        i = k % len(source)
        img = Image.open(source.paths[i]).convert("RGB")
        w, h = img.size
        scale = rng.uniform(0.75, 1.0)
        cw, ch = int(w * scale), int(h * scale)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        img = img.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
        img.thumbnail((320, 320))
        folder = out / source.image_labels[i]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{k:04d}.jpg"
        img.save(path, quality=88)
        paths.append(str(path))
    return paths


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measured_peak_gflops(n: int = 1536, repeats: int = 7) -> float:
    """Best float32 FMA rate of this machine as NumPy's BLAS reaches it: 2 n^3 FLOP per n x n matmul."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    a @ b  # warm-up (threads, pages)
    return max(2 * n ** 3 / timed(lambda: a @ b) for _ in range(repeats)) / 1e9


_RSS_CODE = """
import json, sys
from cvkit.features._featurizer import ImageFeaturizer
paths = json.loads(sys.argv[1])
fz = ImageFeaturizer(verbose=False, runtime=sys.argv[2], cache_dir=sys.argv[3])
fz.fit_transform(paths)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"peak_rss_mb": int(hwm.split()[1]) / 1024, "imported_tensorflow": "tensorflow" in sys.modules}))
"""


def peak_memory(paths: list[str], runtime: str, graphs: Path, cache: Path) -> dict:
    """A fresh process featurizing ``paths`` cold with ``runtime``: its peak RSS, and whether it imported TensorFlow."""
    cache.mkdir(parents=True)
    if (graphs / "backbones").is_dir():  # the converted graph is cached; the feature cache is empty
        os.symlink(graphs / "backbones", cache / "backbones")
    out = subprocess.run([sys.executable, "-c", _RSS_CODE, json.dumps(paths), runtime, str(cache)],
                         capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    return {"peak_rss_mb": round(found["peak_rss_mb"], 1), "imported_tensorflow": found["imported_tensorflow"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from cvkit._console import import_keras
    from cvkit._litert import LiteRTModel, agreement
    from cvkit.features._featurizer import ImageFeaturizer
    from cvkit.options import default_threads

    keras = import_keras()
    work = Path(tempfile.mkdtemp(prefix="cvkit-bench-featurize-"))
    paths = make_images(work / "images", args.images)
    paths.sort()  # image_dataset_from_directory's order (class folder, then file name)
    graphs = work / "graphs"  # converted backbones, shared by the cold runs (conversion is not featurizing)

    start = time.perf_counter()
    lite = ImageFeaturizer(verbose=False, cache_dir=graphs, batch_size=BATCH).fit()
    convert_s = time.perf_counter() - start
    start = time.perf_counter()
    int8 = ImageFeaturizer(verbose=False, cache_dir=graphs, batch_size=BATCH, precision="int8").fit(paths[:100])
    convert_int8_s = time.perf_counter() - start
    keras_fz = ImageFeaturizer(verbose=False, cache_dir=graphs, batch_size=BATCH, runtime="keras").fit()
    model = keras_fz.model_

    pixels = np.stack([read_image(p, size=224) for p in paths])
    graph = LiteRTModel(lite.graph_)
    keras_predict = keras_fz._predict_fn()

    def ceiling_litert():
        return graph.predict(pixels, batch_size=BATCH)

    def ceiling_keras():
        return np.concatenate([keras_predict(pixels[s:s + BATCH]) for s in range(0, len(pixels), BATCH)])

    def naive_keras():
        ds = keras.utils.image_dataset_from_directory(work / "images", labels=None, image_size=(224, 224),
                                                      batch_size=BATCH, shuffle=False, verbose=False)
        return model.predict(ds, verbose=0)

    runs = {"n": 0}

    def cold(**params):
        """A fitted featurizer with an empty feature cache (graphs cached): made before the clock starts."""
        def prepare():
            runs["n"] += 1
            folder = work / f"cold{runs['n']}"
            folder.mkdir()
            os.symlink(graphs / "backbones", folder / "backbones")  # graphs cached, features not
            fz = ImageFeaturizer(model if params.get("runtime") == "keras" else "efficientnet_lite0",
                                 verbose=False, cache_dir=folder, batch_size=BATCH, **params)
            fz.fit(paths[:100])  # int8: calibration (its graph is cached); float32: nothing learned
            return lambda: fz.transform(paths)
        return prepare

    warm = ImageFeaturizer(verbose=False, cache_dir=graphs, batch_size=BATCH)
    def ready(fn):
        return lambda: fn

    # each route: prepare() -> the call that is timed
    routes = {"ceiling_litert": ready(ceiling_litert), "ceiling_keras": ready(ceiling_keras),
              "naive_keras": ready(naive_keras), "cvkit_keras": cold(runtime="keras"), "cvkit_litert": cold(),
              "cvkit_litert_int8": cold(precision="int8"), "cvkit_warm": ready(lambda: warm.transform(paths))}
    outputs = {name: prepare()() for name, prepare in routes.items()}  # warm-up round (traces, file cache)
    load_before = os.getloadavg()[0]
    rounds = []
    for _ in range(args.repeats):
        rounds.append({name: timed(prepare()) for name, prepare in routes.items()})
    n = len(paths)
    ips = {name: n / float(np.median([r[name] for r in rounds])) for name in routes}

    def ratio(top: str, bottom: str) -> float:
        return round(float(np.median([r[bottom] / r[top] for r in rounds])), 3)

    peak_gflops = measured_peak_gflops()
    peak_ips = peak_gflops / GFLOP_PER_IMAGE
    result = {
        "benchmark": "featurize",
        "backbone": "efficientnet_lite0", "input_size": 224, "batch_size": BATCH, "images": n,
        "rounds": args.repeats, "cpus": os.cpu_count(), "litert_threads": default_threads(),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "keras": keras.__version__,
        "conversion_s": {"float32": round(convert_s, 1), "int8_with_calibration_on_100": round(convert_int8_s, 1)},
        "peak": {"how": "measured: best float32 NumPy matmul (BLAS sgemm, 1536^2, all cores), 2 n^3 FLOP",
                 "gflops": round(peak_gflops, 1), "gflop_per_image": GFLOP_PER_IMAGE,
                 "images_per_s": round(peak_ips, 1)},
        "images_per_s": {k: round(v, 1) for k, v in ips.items()},
        "share_of_float32_peak": {k: round(v / peak_ips, 3) for k, v in ips.items() if k != "cvkit_warm"},
        "ratios": {
            "cvkit_litert_over_naive_keras": ratio("cvkit_litert", "naive_keras"),
            "cvkit_litert_over_ceiling_litert": ratio("cvkit_litert", "ceiling_litert"),
            "cvkit_litert_int8_over_naive_keras": ratio("cvkit_litert_int8", "naive_keras"),
            "cvkit_keras_over_naive_keras": ratio("cvkit_keras", "naive_keras"),
            "cvkit_litert_over_cvkit_keras": ratio("cvkit_litert", "cvkit_keras"),
            "ceiling_litert_over_ceiling_keras": ratio("ceiling_litert", "ceiling_keras"),
            "cvkit_warm_over_cvkit_litert": round(ratio("cvkit_warm", "cvkit_litert"), 1),
        },
        "targets": {"cvkit_litert_over_naive_keras": 1.45, "cvkit_litert_over_ceiling_litert": 0.85,
                    "cvkit_litert_int8_over_naive_keras": 3.0},
        "agreement": {
            "litert_vs_keras_features": agreement(outputs["cvkit_keras"], outputs["cvkit_litert"]),
            "litert_vs_naive_keras_features": agreement(outputs["naive_keras"], outputs["cvkit_litert"]),
            "int8_vs_float32_features": agreement(outputs["cvkit_litert"], outputs["cvkit_litert_int8"]),
            "int8_fit_agreement_": int8.agreement_,
        },
        "peak_memory_fresh_process": {
            "litert": peak_memory(paths, "litert", graphs, work / "rss-litert"),
            "keras": peak_memory(paths, "keras", graphs, work / "rss-keras"),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
