#!/usr/bin/env python3
"""Benchmark: which head on the cached features, on balanced and imbalanced real folders.

For each folder and each of ``--seeds`` stratified, duplicate-aware splits (``ImageDataset.split``,
``test_size=0.34``, ``random_state`` 0..N-1), every head below is fitted on the training side's
features exactly as ``FeatureClassifier.fit`` fits it (``fit_calibrated_head``: the head, its class
weights and its calibration temperature) and scored on the test side: accuracy, balanced accuracy
(the mean recall over classes), the recall of the folder's smallest class, log-loss and the ECE
of the top probability. The features are computed once per folder (EfficientNet-Lite0, cached).

Heads (the baseline is the first, the default before ``head="auto"``):

- ``before``: ``head="logistic", class_weight=None``;
- ``default``: ``FeatureClassifier()`` (``head="auto"``, ``class_weight="auto"``);
- ``logistic_balanced``, ``svm``, ``svm_balanced``: one head, named.

Folders: ``sample_data`` (balanced, 104 photos) and three built from Debian's packages by
``scripts/build_bench_data.py``: ``known_imbalanced_a`` (6:1) and ``known_balanced_c`` were used
while choosing the candidates and the SVM's ``C``; ``known_imbalanced_b`` (7:1) was kept out of
every choice and is reported apart (``held_out``). ``--fit-images 1000`` also times a whole
``FeatureClassifier().fit`` on 1,000 photos with warm features (the photos of
``bench/cross_validate.py``), against ``head="logistic"`` in the same run.

Prints JSON.

    python bench/heads.py [--seeds 8] [--fit-images 1000]
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

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TUNED = ("sample_data", "known_imbalanced_a", "known_balanced_c")
HELD_OUT = ("known_imbalanced_b",)
HEADS = {
    "before": {"head": "logistic", "class_weight": None},
    "default": {},
    "logistic_balanced": {"head": "logistic", "class_weight": "balanced"},
    "svm": {"head": "svm", "class_weight": None},
    "svm_balanced": {"head": "svm", "class_weight": "balanced"},
}


def _folder(name: str) -> Path:
    return REPO / name if name == "sample_data" else REPO / "bench" / "data" / name


def _scores(proba: np.ndarray, y: np.ndarray, smallest: int) -> dict[str, float]:
    from sklearn.metrics import balanced_accuracy_score, log_loss

    from cvkit.models._calibration import expected_calibration_error

    pred = proba.argmax(axis=1)
    return {"accuracy": float(np.mean(pred == y)), "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "smallest_recall": float(np.mean(pred[y == smallest] == smallest)),
            "log_loss": float(log_loss(y, proba, labels=np.arange(proba.shape[1]))),
            "ece": float(expected_calibration_error(proba, y))}


def _one_split(F: np.ndarray, y: np.ndarray, classes: list[str], train: np.ndarray, test: np.ndarray,
               smallest: int, seed: int) -> dict:
    import cvkit
    from cvkit.models._calibration import tempered

    row = {"seed": seed}
    for name, params in HEADS.items():
        clf = cvkit.FeatureClassifier(verbose=False, random_state=seed, **params)
        chosen = clf.fit_calibrated_head(F[train], y[train], classes)
        proba = tempered(chosen.head.predict_proba(F[test]), float(chosen.calibration.get("temperature", 1.0)))
        row[name] = _scores(np.asarray(proba, np.float64), y[test], smallest)
        row[name]["head"] = chosen.name
    return row


def run_folder(name: str, seeds: int) -> dict:
    import cvkit

    ds = cvkit.ImageDataset.from_directory(_folder(name))
    F = cvkit.FeatureClassifier(verbose=False).make_featurizer().transform(ds.paths)
    y, classes = np.asarray(ds.targets), list(ds.labels)
    smallest = int(np.argmin(np.bincount(y)))
    index = {p: i for i, p in enumerate(ds.paths)}
    rows = []
    for seed in range(seeds):
        train, test = ds.split(test_size=0.34, random_state=seed)
        rows.append(_one_split(F, y, classes, np.array([index[p] for p in train.paths]),
                               np.array([index[p] for p in test.paths]), smallest, seed))
    mean = {h: {k: round(float(np.mean([r[h][k] for r in rows])), 4) for k in rows[0][h] if k != "head"}
            for h in HEADS}
    for h in HEADS:
        mean[h]["smallest_recall_worst"] = round(float(min(r[h]["smallest_recall"] for r in rows)), 4)
        chosen = [r[h]["head"] for r in rows]
        mean[h]["heads_chosen"] = {c: chosen.count(c) for c in sorted(set(chosen))}
    gain = {k: round(mean["default"][k] - mean["before"][k], 4) for k in ("balanced_accuracy", "smallest_recall",
                                                                          "accuracy")}
    return {"folder": name, "counts": ds.counts(), "smallest_class": classes[smallest], "splits": seeds,
            "mean": mean, "default_minus_before": gain}


def time_fit(n_images: int, rounds: int = 3) -> dict:
    """Whole ``fit`` on ``n_images`` photos, warm features: the new default against ``head="logistic"``."""
    sys.path.insert(0, str(REPO / "bench"))
    from cross_validate import build_folder

    import cvkit

    with tempfile.TemporaryDirectory() as tmp:
        written = build_folder(Path(tmp), n_images)
        cvkit.FeatureClassifier(verbose=False).make_featurizer().transform(cvkit.ImageDataset.from_directory(tmp).paths)
        times: dict[str, list[float]] = {"default": [], "before": []}
        for _ in range(rounds):  # interleaved rounds: both see the same machine load
            for name in times:
                clf = cvkit.FeatureClassifier(verbose=False, **HEADS[name])
                start = time.perf_counter()
                clf.fit(tmp)
                times[name].append(time.perf_counter() - start)
    best = {k: round(min(v), 3) for k, v in times.items()}
    return {"images": written, "rounds": rounds, "fit_seconds_best": best,
            "ratio_default_to_before": round(best["default"] / best["before"], 3), "target_seconds": 5.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="random splits per folder (default 8)")
    parser.add_argument("--fit-images", type=int, default=1000, help="photos for the fit timing (0: skip)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    missing = [n for n in TUNED + HELD_OUT if not _folder(n).is_dir()]
    if missing:
        parser.error(f"missing folders {missing}: build them with scripts/build_bench_data.py (see bench/data)")
    out = {"benchmark": "heads", "baseline": "before (head='logistic', class_weight=None)",
           "tuned_on": [run_folder(n, args.seeds) for n in TUNED],
           "held_out": [run_folder(n, args.seeds) for n in HELD_OUT]}
    if args.fit_images:
        out["fit_time"] = time_fit(args.fit_images)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
