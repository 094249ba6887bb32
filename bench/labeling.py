#!/usr/bin/env python3
"""Benchmark: does labelling the most uncertain photos first reach a good model with fewer labels?

A simulated labeller works through the training side of sample_data's standard split
(``test_size=0.34, random_state=0``), answering every request with the true label; the model is
scored on the fixed test side. Both orders start from the same 10 random photos; then, every 10
labels, the head a ``FeatureClassifier`` would fit (``make_head``: logistic regression with its
regularisation chosen by cross-validation) is refitted on the cached backbone features of the
labelled photos, and the next 10 photos are

- ``random``: drawn at random from the unlabelled ones;
- ``uncertain`` (``margin``, and ``entropy`` for comparison): the unlabelled photos the current
  model is least sure of (:func:`cvkit.evaluation._active.uncertainty_order`).

Reports the mean test accuracy (over seeds) after 10, 20, ... labels, the accuracy with all the
training labels, and the number of labels each order needs to reach 95% of it (on the mean curve,
and per seed). Prints JSON. Takes about 2 minutes on 2 CPU cores (features are cached).

    python bench/labeling.py [--seeds 5] [--step 10]
"""
from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import numpy as np

from cvkit import FeatureClassifier, ImageDataset
from cvkit.evaluation._active import uncertainty_order
from cvkit.evaluation._audit import image_features

REPO = Path(__file__).resolve().parent.parent
ORDERS = ("random", "margin", "entropy")
TARGET_SHARE = 0.95


def test_accuracy(features: np.ndarray, targets: np.ndarray, test_f: np.ndarray, test_y: np.ndarray):
    """``(accuracy, model)`` of the FeatureClassifier head fitted on the labelled rows (None if one class)."""
    if len(np.unique(targets)) < 2:  # one class so far: every test photo gets that class
        return float(np.mean(test_y == targets[0])), None
    head = FeatureClassifier(verbose=False).make_head(targets).fit(features, targets)
    return float(np.mean(head.predict(test_f) == test_y)), head


def simulate(order: str, seed: int, train_f, train_y, test_f, test_y, step: int) -> list[tuple[int, float]]:
    """``(labels, test accuracy)`` after each batch of ``step`` labels, for one order and seed."""
    rng = np.random.default_rng(seed)
    n = len(train_y)
    labelled = list(rng.permutation(n)[:step])  # the same first batch for every order of this seed
    curve = []
    while True:
        acc, head = test_accuracy(train_f[labelled], train_y[labelled], test_f, test_y)
        curve.append((len(labelled), acc))
        pool = np.setdiff1d(np.arange(n), labelled)
        if not len(pool):
            return curve
        if order == "random" or head is None:
            batch = rng.permutation(pool)[:step]
        else:
            batch = pool[uncertainty_order(head.predict_proba(train_f[pool]), method=order)[:step]]
        labelled += batch.tolist()


def labels_needed(curve: list[tuple[int, float]], target: float) -> int | None:
    """The fewest labels at which ``curve`` reaches ``target`` (None if it never does)."""
    return next((n for n, acc in curve if acc >= target - 1e-9), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the random draws (default 5)")
    parser.add_argument("--step", type=int, default=10, help="labels between refits (default 10)")
    parser.add_argument("--data", default=str(REPO / "sample_data"), help="folder of class folders")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.step < 1:
        parser.error("--seeds and --step must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    train, test = ImageDataset.from_directory(args.data, verbose=False).split(test_size=0.34, random_state=0)
    train_f, _ = image_features(train)
    test_f, _ = image_features(test)
    all_acc, _ = test_accuracy(train_f, train.targets, test_f, test.targets)
    target = TARGET_SHARE * all_acc
    result = {"data": os.path.relpath(args.data, REPO), "n_train": len(train), "n_test": len(test),
              "step": args.step, "seeds": args.seeds, "all_labels_accuracy": round(all_acc, 4),
              "target_accuracy": round(target, 4), "orders": {}}
    for order in ORDERS:
        runs = [simulate(order, seed, train_f, train.targets, test_f, test.targets, args.step)
                for seed in range(args.seeds)]
        sizes = [n for n, _ in runs[0]]
        mean = [float(np.mean([dict(run)[n] for run in runs])) for n in sizes]
        result["orders"][order] = {
            "labels": sizes, "mean_accuracy": [round(a, 4) for a in mean],
            "min_accuracy": [round(float(min(dict(run)[n] for run in runs)), 4) for n in sizes],
            "labels_to_target_mean_curve": labels_needed(list(zip(sizes, mean)), target),
            "labels_to_target_per_seed": [labels_needed(run, target) for run in runs]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
