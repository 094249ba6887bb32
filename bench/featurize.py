#!/usr/bin/env python3
"""Benchmark: images/s to featurize ~500 JPEGs with EfficientNet-Lite0, cvkit vs the ceiling and a naive recipe.

All measured in one run, on the same images (sample_data photos, augmented with random crops, flips
and brightness into a temporary folder, longest side <= 320 px like the originals):

- (a) ``ceiling``: the backbone alone on pre-decoded uint8 tensors (no I/O at all);
- (b) ``naive``: ``keras.utils.image_dataset_from_directory`` + ``model.predict``, what a Keras user writes;
- (b2) ``naive_pil``: the other common recipe, a PIL open+resize loop into one array, then
  ``model.predict`` on that NumPy array;
- (c) ``cvkit_cold``: :class:`cvkit.features.featurizer.ImageFeaturizer` from the JPEG files, empty cache;
- (d) ``cvkit_warm``: the same again, every image found in the cache.

Every method is warmed up once (graph tracing excluded), then timed in ``--repeats`` rounds of
a, b, c, d back to back. images/s is each method's best round; the ratios are the median over rounds
of the within-round ratios, which is robust to other processes' load changing between rounds. Also reports the backbone load time: build +
offline ImageNet weight conversion, the conversion alone, and loading a saved ``.weights.h5``.
Prints JSON with images/s and the ratios c/a (aim >= 0.85), c/b (aim >= 1.5) and d/c (aim >= 20).

    python bench/featurize.py [--images 500] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

from cvkit.data import ImageDataset, read_image  # noqa: E402

BATCH = 32


def make_images(out: Path, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` augmented copies of sample_data's photos into class folders under ``out``."""
    source = ImageDataset.from_directory(REPO / "sample_data", progress=False)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from cvkit import backbones
    from cvkit.backbones.efficientnet_lite import lite_weights_path
    from cvkit.backbones.torch_names import load_torch_weights
    from cvkit.features.featurizer import ImageFeaturizer

    work = Path(tempfile.mkdtemp(prefix="cvkit-bench-featurize-"))
    paths = make_images(work / "images", args.images)
    paths.sort()  # image_dataset_from_directory's order (class folder, then file name)

    # ---- backbone load time
    load_s = min(timed(lambda: backbones.get("efficientnet_lite0")) for _ in range(2))
    model = backbones.get("efficientnet_lite0")
    convert_s = min(timed(lambda: load_torch_weights(model, lite_weights_path("efficientnet_lite0")))
                    for _ in range(3))
    h5 = work / "lite0.weights.h5"
    model.save_weights(h5)
    h5_s = min(timed(lambda: model.load_weights(h5)) for _ in range(3))

    # ---- (a) ceiling: the same traced function the featurizer uses, on pre-decoded pixels
    featurizer = ImageFeaturizer(progress=False, cache_dir=work / "cache", batch_size=BATCH).fit()
    predict = featurizer._predict_fn()
    pixels = np.stack([read_image(p, size=224) for p in paths])
    predict(pixels[:BATCH])

    def ceiling():
        for s in range(0, len(pixels), BATCH):
            predict(pixels[s:s + BATCH]).numpy()

    # ---- (b) naive Keras recipe
    naive_model = featurizer.model_

    def naive():
        ds = keras.utils.image_dataset_from_directory(work / "images", labels=None, image_size=(224, 224),
                                                      batch_size=BATCH, shuffle=False, verbose=False)
        return naive_model.predict(ds, verbose=0)

    naive_features = naive()  # warm-up (traces predict)

    # ---- (b2) the other common naive recipe: a PIL loop into one array, then model.predict on it
    def naive_pil():
        arrays = np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
                           for p in paths])
        return naive_model.predict(arrays.astype(np.float32), batch_size=BATCH, verbose=0)

    naive_pil()  # warm-up

    # ---- (c) cold and (d) warm cache
    runs = {"cold": 0}

    def cold():  # a new featurizer on the same Keras model, with a new, empty cache folder
        runs["cold"] += 1
        fz = ImageFeaturizer(naive_model, progress=False, cache_dir=work / f"cache-cold{runs['cold']}",
                             batch_size=BATCH)
        return fz.transform(paths)

    cold_features = cold()  # warm-up (thread pool, the OS's file cache)
    warm_fz = ImageFeaturizer(naive_model, progress=False, cache_dir=work / "cache", batch_size=BATCH)
    warm_fz.transform(paths)

    load_before = os.getloadavg()[0]
    methods = {"a": ceiling, "b": naive, "b2": naive_pil, "c": cold, "d": lambda: warm_fz.transform(paths)}
    rounds = []  # per round: method -> (wall seconds, process CPU seconds)
    for _ in range(args.repeats):
        measured = {}
        for key, fn in methods.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            measured[key] = (time.perf_counter() - wall, time.process_time() - cpu)
        rounds.append(measured)
    n = args.images
    best = {k: n / min(r[k][0] for r in rounds) for k in methods}  # images/s, best round

    def median_ratio(top: str, bottom: str) -> float:
        # Ratio within each round (methods timed back to back), then the median over rounds:
        # robust to other processes' load changing between rounds.
        return float(np.median([r[bottom][0] / r[top][0] for r in rounds]))

    cpu_ms = {k: 1000 * float(np.median([r[k][1] for r in rounds])) / n for k in methods}
    warm_features = warm_fz.transform(paths)
    result = {
        "benchmark": "featurize",
        "backbone": "efficientnet_lite0",
        "input_size": 224,
        "batch_size": BATCH,
        "images": args.images,
        "cpus": os.cpu_count(),
        # Other processes share this machine; the ratios are measured interleaved in one run.
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backbone_load_s": round(load_s, 3),
        "weights_conversion_s": round(convert_s, 3),
        "weights_h5_load_s": round(h5_s, 3),
        "images_per_s": {
            "a_ceiling_model_only": round(best["a"], 1),
            "b_naive_keras": round(best["b"], 1),
            "b2_naive_pil_loop_predict_numpy": round(best["b2"], 1),
            "c_cvkit_cold_cache": round(best["c"], 1),
            "d_cvkit_warm_cache": round(best["d"], 1),
        },
        "ratios": {  # median over rounds of the within-round ratio of images/s
            "c_over_a": round(median_ratio("c", "a"), 3),
            "c_over_b": round(median_ratio("c", "b"), 3),
            "c_over_b2": round(median_ratio("c", "b2"), 3),
            "d_over_c": round(median_ratio("d", "c"), 1),
        },
        # This process's CPU time per image (median round): less sensitive to other processes' load.
        "cpu_ms_per_image": {k: round(v, 2) for k, v in cpu_ms.items()},
        "rounds": args.repeats,
        "targets": {"c_over_a": 0.85, "c_over_b": 1.5, "d_over_c": 20},
        # Sanity: all paths give the same features (naive uses TF's own JPEG decoder and resize).
        "max_abs_diff_cold_vs_warm": float(np.abs(cold_features - warm_features).max()),
        "max_abs_diff_cvkit_vs_naive": float(np.abs(cold_features - naive_features).max()),
        "mean_abs_feature": float(np.abs(cold_features).mean()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
