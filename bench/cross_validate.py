#!/usr/bin/env python3
"""Benchmark: ``cvkit.cross_validate``, 5 folds × 3 repeats on 1,000 photos with warm features (target: < 10 s).

The 1,000 photos are made from ``sample_data``'s 104: each photo and its variants (a mirror, crops
of 90% and 80% at the corners and centre, a smaller copy, a slight rotation), written as JPEGs to
a temporary folder, so every file differs and the four classes keep their shares. Features are
computed once first (cold, timed apart), then the cross-validation is timed on the warm feature
cache, once with the default (calibrated) ``FeatureClassifier`` and once with
``calibration=None`` (the baseline in the same run: what the per-fold calibration costs). Wall
seconds and CPU seconds (all threads) are both reported: on a shared machine the wall time also
counts the other processes. Most of the time is the default head's own choice of ``C`` in each
fold (``LogisticRegressionCV``: 5 inner folds × 9 values, 45 small fits). The variants of one photo
are not grouped, so the accuracy here is optimistic: this measures time, not accuracy.

Prints JSON.

    python bench/cross_validate.py [--images 1000] [--cv 5] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_VARIANTS = ("original", "mirror", "crop90_tl", "crop90_br", "crop80_centre", "crop80_tr", "small", "rotate5",
             "mirror_crop90", "rotate-5")


def _variant(image, name: str):
    from PIL import Image, ImageOps

    w, h = image.size
    if name == "original":
        return image
    if name == "mirror":
        return ImageOps.mirror(image)
    if name == "small":
        return image.resize((max(32, w // 2), max(32, h // 2)))
    if name.startswith("rotate"):
        return image.rotate(float(name[6:]), resample=Image.BILINEAR, expand=False)
    if name == "mirror_crop90":
        return ImageOps.mirror(image).crop((0, 0, int(w * 0.9), int(h * 0.9)))
    share = 0.9 if "90" in name else 0.8
    cw, ch = int(w * share), int(h * share)
    x = {"tl": 0, "br": w - cw, "tr": w - cw, "centre": (w - cw) // 2}[name.split("_")[1]]
    y = {"tl": 0, "br": h - ch, "tr": 0, "centre": (h - ch) // 2}[name.split("_")[1]]
    return image.crop((x, y, x + cw, y + ch))


def build_folder(dest: Path, n_images: int) -> int:
    """``n_images`` JPEGs in class folders under ``dest``, made from sample_data; returns the count."""
    from PIL import Image

    originals = sorted((REPO / "sample_data").glob("*/*.jpg"))
    written = 0
    for name in _VARIANTS:
        for path in originals:
            if written >= n_images:
                return written
            with Image.open(path) as image:
                out = _variant(image.convert("RGB"), name)
            folder = dest / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            out.save(folder / f"{path.stem}_{name}.jpg", quality=90)
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="photos to make (default 1000, at most 1040)")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="cvkit-bench-cv-") as tmp:
        os.environ["CVKIT_CACHE_DIR"] = str(Path(tmp) / "cache")  # cold at first, warm after the first pass
        from cvkit import FeatureClassifier, ImageDataset, cross_validate

        n = build_folder(Path(tmp) / "photos", args.images)
        dataset = ImageDataset.from_directory(Path(tmp) / "photos", verbose=False)
        start = time.perf_counter()
        FeatureClassifier(verbose=False).make_featurizer().transform(dataset.paths)
        cold = time.perf_counter() - start
        out = {"images": n, "classes": dataset.counts(), "cv": args.cv, "repeats": args.repeats,
               "featurize_cold_seconds": round(cold, 1), "target_seconds": 10}
        for label, calibration in (("calibrated", "temperature"), ("uncalibrated_baseline", None)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start, cpu = time.perf_counter(), time.process_time()
                result = cross_validate(FeatureClassifier(calibration=calibration, verbose=False), dataset,
                                        cv=args.cv, repeats=args.repeats, verbose=False)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            out[label] = {"seconds_warm": round(seconds, 2), "cpu_seconds": round(cpu, 2), "summary": result.summary(),
                          "mean_fold_seconds": round(float(result.scores["fit_time"].mean()), 3)}
        out["calibration_cost_ratio"] = round(out["calibrated"]["seconds_warm"]
                                              / out["uncalibrated_baseline"]["seconds_warm"], 2)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"cross_validate {args.cv}x{args.repeats} on {n} images, warm: {out['calibrated']['seconds_warm']} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
