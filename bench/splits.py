#!/usr/bin/env python3
"""Benchmark: how much of a test accuracy on sample_data is the method, and how much the split?

With 36 test images one image is 2.8 points, so one split cannot tell two methods apart by less
than that. This runs both classifiers with default settings on several stratified splits
(``test_size=0.34``, ``random_state`` 0..N-1) of the same photos and reports, per method, the
number of test images right on each split, the mean and spread of accuracy, and the per-split
difference between the methods. Baseline: ``FeatureClassifier`` (the linear probe) in the same run;
the ratio is fine-tuning's mean accuracy over the probe's.

Prints JSON. Takes about 45 s per split on 2 CPU cores.

    python bench/splits.py [--splits 5] [--data sample_data] [--backbone efficientnet_lite0]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from cvkit import FeatureClassifier, FineTuneClassifier, ImageDataset, backbones

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=5, help="number of random splits (default 5)")
    parser.add_argument("--data", default=str(REPO / "sample_data"), help="folder of class folders")
    parser.add_argument("--backbone", default="efficientnet_lite0",
                        help="backbone of both classifiers (default efficientnet_lite0)")
    args = parser.parse_args(argv)
    if args.splits < 1:
        parser.error("--splits must be at least 1")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import
    try:
        backbones.info(args.backbone)
    except ValueError as exc:
        parser.error(f"--backbone: {exc}")
    dataset = ImageDataset.from_directory(args.data, verbose=False)
    methods = {"features": lambda: FeatureClassifier(backbone=args.backbone, verbose=False),
               "finetune": lambda: FineTuneClassifier(backbone=args.backbone, verbose=0)}
    right: dict[str, list[int]] = {m: [] for m in methods}
    seconds: dict[str, list[float]] = {m: [] for m in methods}
    n_test = 0
    for seed in range(args.splits):
        train, test = dataset.split(test_size=0.34, random_state=seed)
        n_test = len(test)
        for name, make in methods.items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = make().fit(train)
            seconds[name].append(round(time.perf_counter() - start, 1))
            right[name].append(int(round(clf.score(test) * len(test))))
        print(f"split {seed}: " + ", ".join(f"{m} {right[m][-1]}/{n_test}" for m in methods),
              file=sys.stderr, flush=True)

    out: dict = {"data": os.path.relpath(args.data, REPO) if args.data.startswith(str(REPO)) else args.data,
                 "backbone": args.backbone, "test_images": n_test, "splits": args.splits,
                 "one_image": round(1 / n_test, 4)}
    for name in methods:
        acc = np.array(right[name]) / n_test
        out[name] = {"right_per_split": right[name], "mean_accuracy": round(float(acc.mean()), 4),
                     "std_accuracy": round(float(acc.std(ddof=1)), 4) if len(acc) > 1 else None,
                     "mean_fit_seconds": round(float(np.mean(seconds[name])), 1)}
    diff = np.array(right["finetune"]) - np.array(right["features"])
    out["finetune_minus_features_images"] = diff.tolist()
    out["ratio_finetune_over_features_accuracy"] = round(out["finetune"]["mean_accuracy"]
                                                         / out["features"]["mean_accuracy"], 4)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
