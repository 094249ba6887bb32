#!/usr/bin/env python3
"""Benchmark: does ``class_weight="balanced"`` help a FeatureClassifier when one class is scarce?

For each seed (``random_state`` 0..N-1 of the standard stratified split, ``test_size=0.34``) and
each class of the data in turn, the training side keeps only ``--keep`` images of that class
(the others keep all theirs), so the largest class has several times the images of the smallest.
The same ``FeatureClassifier`` is fitted with ``class_weight=None`` and with
``class_weight="balanced"`` and evaluated on the untouched test side: balanced accuracy (the mean
of per-class recalls), accuracy, and the recall of the scarce class. Baseline: ``class_weight=None``
in the same run; ``gain`` is balanced minus baseline.

Prints JSON. Takes about 1 s per fit on 2 CPU cores once the features are cached (the first run
featurizes the 104 sample images, about 20 s).

    python bench/class_weight.py [--seeds 5] [--keep 3] [--data sample_data]
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

REPO = Path(__file__).resolve().parent.parent


def _scores(report, minority: str) -> dict:
    recall = dict(zip(report.classes, report.recall))
    return {"balanced_accuracy": round(float(report.balanced_accuracy), 4),
            "accuracy": round(float(report.accuracy), 4),
            "minority_recall": round(float(recall[minority]), 4)}


def _one(ds, seed: int, minority: str, keep: int) -> dict:
    import cvkit

    train, test = ds.split(test_size=0.34, random_state=seed)
    rng = np.random.RandomState(seed)
    members = [i for i, lab in enumerate(train.image_labels) if lab == minority]
    dropped = set(rng.choice(members, size=max(0, len(members) - keep), replace=False).tolist())
    small = train.subset([i for i in range(len(train)) if i not in dropped])
    row = {"seed": seed, "minority": minority, "train_counts": small.counts()}
    for name, weight in (("none", None), ("balanced", "balanced")):
        clf = cvkit.FeatureClassifier(class_weight=weight, verbose=False, random_state=seed).fit(small)
        row[name] = _scores(cvkit.evaluate(clf, test), minority)
        row[name]["C"] = round(clf.metrics_.get("C", float("nan")), 4)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of random splits (default 5)")
    parser.add_argument("--keep", type=int, default=3, help="training images kept of the scarce class (default 3)")
    parser.add_argument("--data", default=str(REPO / "sample_data"), help="folder of class folders")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.keep < 2:
        parser.error("--seeds must be at least 1 and --keep at least 2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    import cvkit

    ds = cvkit.ImageDataset.from_directory(args.data)
    start = time.perf_counter()
    runs = [_one(ds, seed, minority, args.keep) for seed in range(args.seeds) for minority in ds.labels]
    summary = {}
    for name in ("none", "balanced"):
        summary[name] = {key: round(float(np.mean([r[name][key] for r in runs])), 4)
                         for key in ("balanced_accuracy", "accuracy", "minority_recall")}
    gains = [r["balanced"]["balanced_accuracy"] - r["none"]["balanced_accuracy"] for r in runs]
    out = {
        "benchmark": "class_weight", "data": os.path.relpath(args.data, REPO), "seeds": args.seeds,
        "kept_of_scarce_class": args.keep, "n_runs": len(runs), "mean": summary,
        "gain_balanced_accuracy": {"mean": round(float(np.mean(gains)), 4),
                                   "better": int(sum(g > 1e-9 for g in gains)),
                                   "same": int(sum(abs(g) <= 1e-9 for g in gains)),
                                   "worse": int(sum(g < -1e-9 for g in gains))},
        "seconds": round(time.perf_counter() - start, 1), "runs": runs,
    }
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
