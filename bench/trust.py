#!/usr/bin/env python3
"""Benchmark: do the numbers cvkit reports hold? Interval coverage and calibration over many splits.

For each folder of class folders (``sample_data`` and the real-photo sets of ``bench/data``, built by
``scripts/build_bench_data.py``), ``--splits`` stratified splits (``test_size=0.34``, seeds 0..N-1),
all on the same cached EfficientNet-Lite0 features:

- **interval coverage**: how often the 95% accuracy interval of one split's report contains the
  mean test accuracy of all the other splits (target: at least 90%);
- **calibration**: top-label ECE (15 bins) of the test answers pooled over all splits (one split's
  34 photos alone put a calibrated model's ECE near 0.1 by chance), the mean per-split ECE, and
  log-loss, on the test photos of
  ``FeatureClassifier(calibration=None)`` (the baseline, in the same run) against the default
  ``calibration="temperature"`` and scikit-learn's ``"sigmoid"``/``"isotonic"``, with accuracy, as
  means over the splits, and each ECE as a ratio of the baseline's.

Prints JSON. About 2 s per split and method with warm features.

    python bench/trust.py [--splits 50] [--data sample_data bench/data/known_imbalanced_b ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from cvkit import FeatureClassifier, ImageDataset, evaluate
from cvkit.models._calibration import expected_calibration_error

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = [REPO / "sample_data", REPO / "bench/data/known_imbalanced_a", REPO / "bench/data/known_imbalanced_b",
                REPO / "bench/data/known_balanced_c"]
METHODS = [None, "temperature", "sigmoid", "isotonic"]


def one_folder(folder: Path, n_splits: int) -> dict:
    dataset = ImageDataset.from_directory(folder, verbose=False)
    rows: dict[str, dict[str, list]] = {str(m): {"ece": [], "log_loss": [], "accuracy": [], "proba": [], "y": []}
                                        for m in METHODS}
    intervals = []
    for seed in range(n_splits):
        train, test = dataset.split(test_size=0.34, random_state=seed)
        for method in METHODS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = FeatureClassifier(calibration=method, verbose=False, random_state=seed).fit(train)
                report = evaluate(clf, test)
            row = rows[str(method)]
            row["ece"].append(expected_calibration_error(report.proba, report.y_true))
            row["log_loss"].append(report.log_loss)
            row["accuracy"].append(report.accuracy)
            row["proba"].append(report.proba)
            row["y"].append(report.y_true)
            if method == "temperature":
                intervals.append(report.intervals()["accuracy"])
    accuracy = np.array(rows["temperature"]["accuracy"])
    covered = [low <= np.delete(accuracy, i).mean() <= high for i, (low, high) in enumerate(intervals)]
    pooled = {m: expected_calibration_error(np.concatenate(r["proba"]), np.concatenate(r["y"]))
              for m, r in rows.items()}
    return {
        "images": len(dataset), "classes": dataset.counts(), "splits": n_splits, "n_test": len(test),
        "interval_coverage": float(np.mean(covered)),
        "interval_mean_width": float(np.mean([high - low for low, high in intervals])),
        "calibration": {m: {"pooled_ece": pooled[m], "pooled_ece_ratio_to_none": pooled[m] / pooled["None"],
                            "mean_split_ece": float(np.mean(r["ece"])), "log_loss": float(np.mean(r["log_loss"])),
                            "accuracy": float(np.mean(r["accuracy"]))}
                        for m, r in rows.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=50, help="random splits per folder (default 50)")
    parser.add_argument("--data", nargs="*", default=[str(p) for p in DEFAULT_DATA], help="folders of class folders")
    args = parser.parse_args(argv)
    folders = [Path(p) for p in args.data if Path(p).is_dir()]
    missing = [p for p in args.data if not Path(p).is_dir()]
    if missing:
        print(f"skipped (not found; scripts/build_bench_data.py builds bench/data): {', '.join(missing)}",
              file=sys.stderr)
    out = {"baseline": "FeatureClassifier(calibration=None), same splits and features",
           "folders": {f.name: one_folder(f, args.splits) for f in folders}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
