#!/usr/bin/env python3
"""Benchmark: do cvkit's heat maps point at the object? The pointing game, and the cost of a map.

The pointing game (Zhang et al., "Top-down neural attention by excitation backprop", 2016): a
map scores a hit when its maximum lies inside the box of the object of the target class. The set is
built from real photos: a ``FeatureClassifier`` (EfficientNet-Lite0, the default head) is trained
on the training side of the sample photos (``test_size=0.34``, ``random_state=0``); each canvas
(672x672) is a 3x3 mosaic of distractor photos with one held-out photo of the target class pasted on
it at a random place, its side ``--object-sizes`` of the canvas's. The target of every map is the
pasted photo's class. Two kinds of distractors, each in its own game:

- ``known_classes``: held-out sample photos of the model's *other* classes (the map must tell the
  target class from classes the model knows);
- ``unrelated_photos``: photos of ``bench/data/unknown_far`` (objects of none of the model's classes).

Reported per game, over ``--canvases`` canvases drawn with ``--seed``:

- ``hit_rate`` per method (``cam``, ``gradcam``, ``occlusion``) with a 95% Wilson interval, and the
  centre-of-canvas baseline on the same canvases (a hit when the canvas's centre lies in the box:
  0.25 expected for an object a third of the side placed uniformly, 0.44 at 0.4); the same with
  Zhang et al.'s 15-pixel tolerance. A map's maximum is its peak pixel; where the maximum is a
  plateau (a border cell reaches the edge after the bilinear resize: half a cell of equal values) the
  plateau's centre; an empty map (no positive evidence) is a miss;
- ``top1_on_canvas``: how often the model's top class on the canvas is the pasted photo's, and
  ``cam_hit_rate_when_top1_right``: CAM's hit rate on those canvases;
- ``cam_hit_rate_per_target`` and ``agreement_cam_gradcam`` (share of canvases where both peak at
  the same pixel: they are equal on a linear head, a check);
- ``seconds_per_image`` per method on 100 real photos (a map per photo at its own size, decoding
  included), with the model's ``predict_proba`` time per image on the same photos as arrays.

Prints JSON. About 8 minutes on a 2-core CPU (occlusion runs the model ~50 times per photo).

    python bench/pointing.py [--canvases 100] [--seed 0] [--object-sizes 0.333 0.4]
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


def canvases(photos: list[str], labels: list[str], distractors: dict[str, list[str]] | list[str], n: int,
             object_size: float, seed: int):
    """``n`` canvases: ``(pixels, target class, box (top, left, bottom, right))``. ``distractors``: the
    photos that may fill the mosaic behind a target class (per class), or one list for every class."""
    rng = np.random.default_rng(seed)
    side = 3 * TILE
    obj = int(round(object_size * side))
    tiles: dict[str, np.ndarray] = {}
    out = []
    for _ in range(n):
        k = int(rng.integers(len(photos)))
        target = labels[k]
        others = distractors[target] if isinstance(distractors, dict) else distractors
        canvas = np.zeros((side, side, 3), np.uint8)
        for r in range(3):
            for c in range(3):
                path = others[int(rng.integers(len(others)))]
                if path not in tiles:
                    tiles[path] = read_image(path, size=TILE)
                canvas[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE] = tiles[path]
        top, left = int(rng.integers(side - obj + 1)), int(rng.integers(side - obj + 1))
        canvas[top:top + obj, left:left + obj] = read_image(photos[k], size=obj)
        out.append((canvas, target, (top, left, top + obj, left + obj)))
    return out


def inside(point: tuple[int, int] | None, box: tuple[int, int, int, int], tolerance: int = 0) -> bool:
    """Whether ``point`` lies in ``box``, or within ``tolerance`` pixels of it (Zhang et al. use 15)."""
    if point is None:
        return False
    y, x = point
    top, left, bottom, right = box
    return top - tolerance <= y < bottom + tolerance and left - tolerance <= x < right + tolerance


def pointing(clf, sets, method: str) -> tuple[list[tuple[int, int]], list[str]]:
    """The peak ``(y, x)`` of each canvas's map for its target, and the model's top class."""
    pixels = [canvas for canvas, _, _ in sets]
    found = explain(clf, pixels, target=[t for _, t, _ in sets], method=method)
    return [peak(m) for m in found.maps], found.predicted


def peak(heat: np.ndarray) -> tuple[int, int] | None:
    """The map's maximum ``(y, x)``; where it is a plateau (a border cell's value reaches the edge after the
    bilinear resize, half a cell of ties), the plateau's centre; None for an empty map (a miss)."""
    top = float(heat.max())
    if top <= 0:
        return None
    ys, xs = np.nonzero(heat >= top - 1e-6)
    return int(round(ys.mean())), int(round(xs.mean()))


def timing(clf, photos: list[str]) -> dict:
    """Seconds per image of each method (maps at the photos' own size) and of predict_proba on the same
    photos decoded to arrays (arrays are never served from the feature cache)."""
    explain(clf, photos[:4], method="cam")  # build the Keras graph once, outside the clock
    arrays = [read_image(p) for p in photos]
    start = time.perf_counter()
    clf.predict_proba(arrays)
    out = {"predict_proba": round((time.perf_counter() - start) / len(photos), 4)}
    for method in METHODS:
        start = time.perf_counter()
        explain(clf, photos, method=method)
        out[method] = round((time.perf_counter() - start) / len(photos), 4)
    return out


def play(clf, sets: list, tolerance: int) -> dict:
    """Hit rates of every method and of the centre baseline on one set of canvases."""
    side = 3 * TILE
    n = len(sets)
    hits = {"centre_baseline": [inside((side // 2, side // 2), box) for _, _, box in sets]}
    tolerant = {"centre_baseline": [inside((side // 2, side // 2), box, tolerance) for _, _, box in sets]}
    out: dict = {"canvases": n}
    peaks = {}
    for method in METHODS:
        start = time.perf_counter()
        peaks[method], predicted = pointing(clf, sets, method)
        hits[method] = [inside(p, box) for p, (_, _, box) in zip(peaks[method], sets)]
        tolerant[method] = [inside(p, box, tolerance) for p, (_, _, box) in zip(peaks[method], sets)]
        out.setdefault("seconds", {})[method] = round(time.perf_counter() - start, 1)
        if method == "cam":
            right = [p == t for p, (_, t, _) in zip(predicted, sets)]
            out["top1_on_canvas"] = round(float(np.mean(right)), 3)
            out["cam_hit_rate_when_top1_right"] = round(float(np.mean([h for h, r in zip(hits["cam"], right) if r]))
                                                        if any(right) else float("nan"), 3)
    out["hit_rate"] = {m: {"rate": round(sum(h) / n, 3), "ci95": wilson(sum(h), n)} for m, h in hits.items()}
    out[f"hit_rate_within_{tolerance}px"] = {m: round(sum(h) / n, 3) for m, h in tolerant.items()}
    targets = sorted({t for _, t, _ in sets})
    out["cam_hit_rate_per_target"] = {t: round(float(np.mean([h for h, (_, tt, _) in zip(hits["cam"], sets)
                                                              if tt == t])), 3) for t in targets}
    out["agreement_cam_gradcam"] = round(float(np.mean([a == b for a, b in zip(peaks["cam"], peaks["gradcam"])])), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canvases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--object-sizes", type=float, nargs="+", default=[1 / 3, 0.4],
                        help="pasted photo's side / canvas side (the first is the headline)")
    parser.add_argument("--tolerance", type=int, default=15, help="pixels of tolerance for the second hit rate")
    args = parser.parse_args()

    data = ImageDataset.from_directory(REPO / "sample_data", verbose=False)
    train, test = data.split(test_size=0.34, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = FeatureClassifier(verbose=False).fit(train)
    photos = list(test.paths)
    labels = list(test.image_labels)
    known = {c: [p for p, lab in zip(photos, labels) if lab != c] for c in set(labels)}
    backgrounds = {"known_classes": known}
    far = REPO / "bench" / "data" / "unknown_far"
    if far.is_dir():
        backgrounds["unrelated_photos"] = [str(p) for p in ImageDataset.from_directory(far, verbose=False).paths]

    side = 3 * TILE
    result: dict = {
        "benchmark": "pointing game (Zhang et al. 2016)", "seed": args.seed,
        "canvas": f"{side}x{side}: a 3x3 mosaic of distractor photos, one held-out photo of the target class pasted "
                  "at a random place; the model sees it squashed to 224x224 like any photo",
        "model": "FeatureClassifier (efficientnet_lite0, default head) on the sample split's 68 training photos",
        "distractors": {"known_classes": "held-out sample photos of the model's other classes",
                        "unrelated_photos": "bench/data/unknown_far photos (none of the model's classes)"},
        "held_out_photos": len(photos), "games": {}}
    for name, distractors in backgrounds.items():
        for size in args.object_sizes:
            sets = canvases(photos, labels, distractors, args.canvases, size, args.seed)
            result["games"][f"{name}, object {size:.2f} of the side"] = play(clf, sets, args.tolerance)
    every = [str(p) for p in data.paths][:100]
    result["seconds_per_image"] = {"photos": len(every), **timing(clf, every)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
