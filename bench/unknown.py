#!/usr/bin/env python3
"""Benchmark: does the "unknown" answer recognise images of none of a model's classes?

Known classes come from one folder of class folders, unknown images from others (built from real
photos by ``scripts/build_bench_data.py``: ``unknown_far``, objects unlike any known class, and
``unknown_near``, animals, plants and mushrooms near the known ones), plus sample_data class-out
(train on three of its classes, the fourth is the unknown, each in turn). For each case and each
novelty method (``"mahalanobis"``, the default, ``"knn"`` and ``"combined"``), over ``--splits``
stratified splits (``test_size=0.34``) on the same cached EfficientNet-Lite0 features:

- ``auroc``: AUROC of the novelty score, unknown against the known test photos, beside the usual
  baseline in the same run (one minus the top class probability);
- ``rejected_at_95``: the share of unknown images rejected by the cut that keeps 95% of the known
  test photos, for the novelty score and the baseline;
- with the default cut (keeping 95% of the training photos' out-of-fold scores): the share of
  unknown images answered "unknown", of known test photos lost, and the known accuracy with the
  unknown answer on against off.

And the cost: ``predict``'s time per image on LiteRT with the novelty score against without it (the
same loaded model, rounds interleaved in one process), for this model and for a simulated model of
100 classes trained on 100,000 images (the score's cost does not grow with the training photos:
class means and one shared precision matrix; kNN keeps at most 5,000 reference rows).

Prints JSON. About a minute with warm features.

    python bench/unknown.py [--splits 5]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from cvkit import FeatureClassifier, ImageDataset, load_model, unknown_report
from cvkit.models._novelty import NoveltyScorer

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / "data"
METHODS = ["mahalanobis", "knn", "combined"]


def _images(folder: Path) -> list[str]:
    return [str(p) for p in ImageDataset.from_directory(folder, verbose=False).paths]


def one_case(known: ImageDataset, unknown: list[str], n_splits: int) -> dict:
    """The figures of one known set against one unknown set, mean over splits, per method."""
    rows: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    for seed in range(n_splits):
        train, test = known.split(test_size=0.34, random_state=seed)
        for method in METHODS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = FeatureClassifier(novelty_method=method, verbose=False, random_state=seed).fit(train)
                found = unknown_report(clf, test, unknown)
                plain = clf.score(test)
                clf.set_unknown_threshold(keep=0.95)
                with_unknown = clf.score(test)
            at95 = found.rejected_at(0.95)
            for key, value in (("auroc", found.auroc), ("baseline_auroc", found.baseline_auroc),
                               ("rejected_at_95", at95["novelty"]),
                               ("baseline_rejected_at_95", at95["top_probability"]),
                               ("default_cut_unknown_rejected", found.unknown_rejected),
                               ("default_cut_known_lost", found.known_rejected),
                               ("accuracy_without_unknown", plain), ("accuracy_with_unknown", with_unknown)):
                rows[method].setdefault(key, []).append(float(value))
    return {"n_known": len(known), "n_unknown": len(unknown), "splits": n_splits,
            "methods": {m: {k: round(float(np.mean(v)), 4) for k, v in r.items()} for m, r in rows.items()}}


def cost(model_dir: Path, images: list[str], rounds: int = 5) -> dict:
    """Seconds per image of ``predict`` on LiteRT with and without the novelty score, interleaved."""
    model = load_model(model_dir, runtime="litert")
    scorer = model.novelty_
    times: dict[str, list[float]] = {"with": [], "without": []}
    model.predict(images[:8])  # warm up
    for _ in range(rounds):
        for name, value in (("without", None), ("with", scorer)):
            model.novelty_ = value
            start = time.perf_counter()
            model.predict(images)
            times[name].append((time.perf_counter() - start) / len(images))
    model.novelty_ = scorer
    return {name: float(np.median(v)) for name, v in times.items()} | {
        "ratio": float(np.median(times["with"]) / np.median(times["without"])), "images": len(images)}


def large_model_cost(n_classes: int = 100, n_train: int = 100_000, d: int = 1280, batch: int = 32) -> dict:
    """Seconds per image of the novelty score alone for a model of ``n_classes`` trained on ``n_train``
    images (random features: the cost depends on the shapes only), per method."""
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(n_train, d))).astype(np.float32)
    y = rng.integers(0, n_classes, n_train)
    query = np.abs(rng.normal(size=(batch, d))).astype(np.float32)
    out = {}
    for method in ("mahalanobis", "knn"):
        scorer = NoveltyScorer(method).fit(X, y)
        scorer.score(query)
        start = time.perf_counter()
        for _ in range(20):
            scorer.score(query)
        out[method] = (time.perf_counter() - start) / (20 * batch)
    return {"classes": n_classes, "training_images": n_train, "seconds_per_image": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5, help="random splits per case (default 5)")
    args = parser.parse_args(argv)
    if not (DATA / "unknown_far").is_dir():
        print(f"{DATA} is missing: build it with scripts/build_bench_data.py", file=sys.stderr)
        return 2
    far, near = _images(DATA / "unknown_far"), _images(DATA / "unknown_near")
    result: dict = {"cases": {}}
    for name in ("sample_data", "known_imbalanced_a", "known_balanced_c"):
        folder = REPO / name if name == "sample_data" else DATA / name
        known = ImageDataset.from_directory(folder, verbose=False)
        for kind, unknown in (("far", far), ("near", near)):
            result["cases"][f"{name} vs unknown_{kind}"] = one_case(known, unknown, args.splits)
    sample = ImageDataset.from_directory(REPO / "sample_data", verbose=False)
    for left_out in sorted(set(sample.image_labels)):
        keep = np.array([label != left_out for label in sample.image_labels])
        unknown = [p for p, k in zip(sample.paths, keep) if not k]
        result["cases"][f"sample_data without {left_out}"] = one_case(sample.subset(np.flatnonzero(keep)), unknown,
                                                                      args.splits)
    train, _ = sample.split(test_size=0.34, random_state=0)
    folder = Path(FeatureClassifier(verbose=False).fit(train).save(REPO / "runs" / "bench-unknown" / "model",
                                                                      overwrite=True))
    result["cost"] = {"sample_model_litert": cost(folder, [str(p) for p in sample.paths]),
                      "novelty_only_large_model": large_model_cost()}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
