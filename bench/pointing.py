#!/usr/bin/env python3
"""Benchmark: do cvkit's heat maps point at the object? The pointing game, and the cost of a map.

The pointing game (Zhang et al., "Top-down neural attention by excitation backprop", 2016): a
map scores a hit when its maximum lies inside the box of the object of the target class. The set is
built from real photos: a ``FeatureClassifier`` (EfficientNet-Lite0, the default head) is trained
on the training side of the sample photos (``test_size=0.34``, ``random_state=0``); each canvas is a
3x3 mosaic of held-out photos of the *other* classes (distractors the model knows), with one
held-out photo of the target class pasted on it at a random place, resized to ``--object-size`` of
the canvas side. The target of every map is the pasted photo's class.

Reported, over ``--canvases`` canvases drawn with ``--seed``:

- ``hit_rate`` per method (``cam``, ``gradcam``, ``occlusion``) with a 95% Wilson interval, and the
  centre-of-canvas baseline in the same run (a hit when the canvas's centre lies in the box: 0.25
  expected for an object a third of the side, placed uniformly);
- ``top1_on_canvas``: how often the model's top class on the canvas is the pasted object's;
- ``agreement_cam_gradcam``: share of canvases where both maps peak at the same pixel (they are
  equal on a linear head, up to float rounding: a check);
- ``seconds_per_image`` per method on 100 real photos (a map per photo at its own size), with the
  model's ``predict_proba`` time per image beside it.

Prints JSON. A few minutes on a laptop CPU (occlusion runs the model ~50 times per photo).

    python bench/pointing.py [--canvases 100] [--seed 0] [--object-size 0.333]
"""
from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np

from cvkit import FeatureClassifier, ImageDataset, explain, read_image

REPO = Path(__file__).resolve().parent.parent
METHODS = ["cam", "gradcam", "occlusion"]
TILE = 224  # side of one mosaic tile; the canvas is 3x3 tiles


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return [0.0, 1.0]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 3), round(centre + half, 3)]


def canvases(photos: list[str], labels: list[str], n: int, object_size: float, seed: int):
    """``n`` canvases: ``(pixels, target class, box (top, left, bottom, right))``."""
    rng = np.random.default_rng(seed)
    side = 3 * TILE
    obj = int(round(object_size * side))
    tiles = {p: read_image(p, size=TILE) for p in photos}
    out = []
    for _ in range(n):
        k = int(rng.integers(len(photos)))
        target = labels[k]
        others = [p for p, lab in zip(photos, labels) if lab != target]
        canvas = np.zeros((side, side, 3), np.uint8)
        for r in range(3):
            for c in range(3):
                canvas[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tiles[others[int(rng.integers(len(others)))]]
        top, left = int(rng.integers(side - obj + 1)), int(rng.integers(side - obj + 1))
        canvas[top:top + obj, left:left + obj] = read_image(photos[k], size=obj)
        out.append((canvas, target, (top, left, top + obj, left + obj)))
    return out


def inside(point: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    y, x = point
    top, left, bottom, right = box
    return top <= y < bottom and left <= x < right


def pointing(clf, sets, method: str) -> tuple[list[tuple[int, int]], list[str]]:
    """The peak ``(y, x)`` of each canvas's map for its target, and the model's top class."""
    pixels = [canvas for canvas, _, _ in sets]
    found = explain(clf, pixels, target=[t for _, t, _ in sets], method=method)
    peaks = [tuple(int(v) for v in np.unravel_index(int(np.argmax(m)), m.shape)) for m in found.maps]
    return peaks, found.predicted


def timing(clf, photos: list[str]) -> dict:
    """Seconds per image of each method (maps at the photos' own size) and of predict_proba."""
    explain(clf, photos[:4], method="cam")  # build the Keras graph once, outside the clock
    out = {}
    start = time.perf_counter()
    clf.predict_proba(photos)
    out["predict_proba"] = round((time.perf_counter() - start) / len(photos), 4)
    for method in METHODS:
        start = time.perf_counter()
        explain(clf, photos, method=method)
        out[method] = round((time.perf_counter() - start) / len(photos), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--object-size", type=float, default=1 / 3, help="pasted photo's side / canvas side")
    args = parser.parse_args()

    data = ImageDataset.from_directory(REPO / "sample_data", verbose=False)
    train, test = data.split(test_size=0.34, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = FeatureClassifier(verbose=False).fit(train)
    photos = list(test.paths)
    labels = list(test.image_labels)
    sets = canvases(photos, labels, args.canvases, args.object_size, args.seed)

    side = 3 * TILE
    result: dict = {"benchmark": "pointing game (Zhang et al. 2016)", "canvases": len(sets), "seed": args.seed,
                    "canvas": f"{side}x{side}, 3x3 mosaic of held-out photos of the other classes",
                    "object_size": round(args.object_size, 3), "model": "FeatureClassifier (efficientnet_lite0)",
                    "train_photos": len(train), "held_out_photos": len(photos), "hit_rate": {}}
    centre = (side // 2, side // 2)
    base = sum(inside(centre, box) for _, _, box in sets)
    result["hit_rate"]["centre_baseline"] = {"rate": round(base / len(sets), 3), "ci95": wilson(base, len(sets))}
    peaks = {}
    for method in METHODS:
        start = time.perf_counter()
        peaks[method], predicted = pointing(clf, sets, method)
        hits = sum(inside(p, box) for p, (_, _, box) in zip(peaks[method], sets))
        result["hit_rate"][method] = {"rate": round(hits / len(sets), 3), "ci95": wilson(hits, len(sets)),
                                      "seconds": round(time.perf_counter() - start, 1)}
        if method == "cam":
            result["top1_on_canvas"] = round(float(np.mean([p == t for p, (_, t, _) in zip(predicted, sets)])), 3)
    result["agreement_cam_gradcam"] = round(float(np.mean([a == b for a, b in zip(peaks["cam"], peaks["gradcam"])])), 3)
    every = [str(p) for p in data.paths][:100]
    result["seconds_per_image"] = {"photos": len(every), **timing(clf, every)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
