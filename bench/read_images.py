#!/usr/bin/env python3
"""Benchmark: images/s to read and resize images to 224x224, cvkit's reader vs a naive PIL loop.

Two sets, both measured in the same run:
- ``sample``: the 104 sample_data JPEGs as they are (longest side <= 320 px);
- ``photos``: the same images re-encoded at camera-like size (longest side 2000 px), written to a
  temporary folder, where cvkit's JPEG draft-mode decoding matters.

The baseline is what most code does: ``PIL.Image.open(p).convert("RGB").resize((224, 224))``.
Prints JSON with images/s for each reader and the ratio cvkit / naive.

    python bench/read_images.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cvkit.data import ImageDataset, read_image

REPO = Path(__file__).resolve().parent.parent

SIZE = (224, 224)


def naive(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize(SIZE))


def cvkit_reader(path: str) -> np.ndarray:
    return read_image(path, size=SIZE)


def rate(fn, paths: list[str], repeats: int) -> float:
    """Best-of-``repeats`` images/s (best-of filters out noise from other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for p in paths:
            fn(p)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def make_photos(paths: list[str], out: Path, side: int = 2000) -> list[str]:
    made = []
    for i, p in enumerate(paths):
        img = Image.open(p).convert("RGB")
        scale = side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
        dst = out / f"photo_{i:03d}.jpg"
        img.save(dst, "JPEG", quality=90)
        made.append(str(dst))
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sample = ImageDataset.from_directory(REPO / "sample_data").paths
    result = {"benchmark": "read_images", "target_size": list(SIZE), "repeats": args.repeats, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(sample[:40], Path(tmp))
        for name, paths in (("sample", sample), ("photos", photos)):
            for p in paths[:3]:  # warm the OS file cache for both readers alike
                naive(p), cvkit_reader(p)
            base = rate(naive, paths, args.repeats)
            ours = rate(cvkit_reader, paths, args.repeats)
            result["sets"][name] = {
                "images": len(paths),
                "typical_size": list(Image.open(paths[0]).size),
                "naive_pil_images_per_s": round(base, 1),
                "cvkit_read_image_images_per_s": round(ours, 1),
                "ratio_cvkit_over_naive": round(ours / base, 2),
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
