#!/usr/bin/env python3
"""Benchmark: training on sample_data (stratified split test_size=0.34, random_state=0), wall time and accuracy.

All measured in one run, each step in a fresh Python process so "cold" really is cold:

- ``baseline``: the plain recipe a Keras + scikit-learn user writes: build the backbone, load the
  training photos with PIL into one array, ``model.predict``, ``StandardScaler`` +
  ``LogisticRegression()`` with default settings. Its time and test accuracy are the reference.
- ``features_cold``: ``cvkit.FeatureClassifier().fit(train)`` with an empty feature cache
  (backbone build + offline weight conversion + features + cross-validated head); aim <= 30 s.
- ``features_warm``: the same in a new process with the cache filled (a second session), and
  ``refit_same_process_seconds``: a second fit in the same process (backbone built, features
  cached), the "warm" case of the aim <= 5 s. A new process pays TensorFlow's import and the
  backbone build (weights conversion) before any cached feature can be used.
- ``cv5``: 5-fold stratified cross-validated accuracy of FeatureClassifier on all 104 images.
- ``finetune``: ``cvkit.FineTuneClassifier()`` with default settings: wall time and test accuracy
  (aim >= 95%); skipped with ``--no-finetune``.

Prints JSON: seconds and test accuracy of each, and the ratios cold/baseline and warm/baseline.

    python bench/train.py [--no-finetune]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_PRELUDE = """
import json, os, time, warnings
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
warnings.simplefilter("ignore")
start = time.perf_counter()
from cvkit.data import ImageDataset
train, test = ImageDataset.from_directory({data!r}, verbose=False).split(test_size=0.34, random_state=0)
"""

_STEPS = {
    "baseline": """
import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from cvkit import backbones
t = time.perf_counter()
model = backbones.get("efficientnet_lite0")
def load(paths):
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR), np.float32)
                     for p in paths])
X = model.predict(load(train.paths), batch_size=32, verbose=0)
clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, train.targets)
fit = time.perf_counter() - t
acc = float(np.mean(clf.predict(model.predict(load(test.paths), batch_size=32, verbose=0)) == test.targets))
print(json.dumps({{"fit_seconds": fit, "test_accuracy": acc}}))
""",
    "features": """
from cvkit.classifiers import FeatureClassifier
t = time.perf_counter()
clf = FeatureClassifier(verbose=False).fit(train)
fit = time.perf_counter() - t
process = time.perf_counter() - start
t = time.perf_counter()
FeatureClassifier(verbose=False).fit(train)  # refit in the same session: backbone built, features cached
refit = time.perf_counter() - t
print(json.dumps({{"fit_seconds": fit, "test_accuracy": clf.score(test), "C": clf.metrics_["C"],
                  "process_seconds": process, "refit_same_process_seconds": refit}}))
""",
    "cv5": """
from cvkit import FeatureClassifier, cross_validate
cv = cross_validate(FeatureClassifier(verbose=False), ImageDataset.from_directory({data!r}, verbose=False), cv=5)
acc = cv.scores["test_accuracy"]
print(json.dumps({{"cv5_mean": float(acc.mean()), "cv5_std": float(acc.std()), "cv5_scores": acc.tolist(),
                  "cv5_oof_accuracy": cv.report.accuracy, "cv5_oof_interval": cv.report.intervals()["accuracy"]}}))
""",
    "finetune": """
from cvkit.classifiers import FineTuneClassifier
t = time.perf_counter()
clf = FineTuneClassifier(verbose=0).fit(train)
fit = time.perf_counter() - t
print(json.dumps({{"fit_seconds": fit, "test_accuracy": clf.score(test), "epochs_run": clf.metrics_["epochs_run"]}}))
""",
}


def run_step(name: str, cache_dir: str) -> dict:
    code = _PRELUDE.format(data=str(REPO / "sample_data")) + _STEPS[name].format(
        data=str(REPO / "sample_data"))
    env = dict(os.environ, CVKIT_CACHE_DIR=cache_dir, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"step {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-finetune", action="store_true", help="skip the FineTuneClassifier run (minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvkit-bench-train-") as cache:
        baseline = run_step("baseline", cache)
        cold = run_step("features", cache)   # empty cache
        warm = run_step("features", cache)   # new process, cache filled by the cold run
        cv5 = run_step("cv5", cache)
        finetune = None if args.no_finetune else run_step("finetune", cache)
    result = {
        "benchmark": "train",
        "data": "sample_data, stratified split test_size=0.34 random_state=0 (68 train / 36 test)",
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "baseline_scaler_logreg": baseline,
        "features_cold": cold,
        "features_warm": warm,
        "features_cv5": cv5,
        "finetune": finetune,
        "ratios": {
            "cold_fit_vs_baseline": cold["fit_seconds"] / baseline["fit_seconds"],
            "warm_fit_vs_baseline": warm["fit_seconds"] / baseline["fit_seconds"],
        },
        "targets": {
            "features_test_accuracy>=0.97": cold["test_accuracy"] >= 0.97,
            "features_cold_fit<=30s": cold["fit_seconds"] <= 30,
            "features_warm_refit<=5s": warm["refit_same_process_seconds"] <= 5,
            "finetune_test_accuracy>=0.95": None if finetune is None else finetune["test_accuracy"] >= 0.95,
        },
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
