"""Benchmark ``cvkit score`` (batch_score) on LiteRT against Keras (cvkit before LiteRT), in one run.

Each route scores the same N photos (sample_data's photos, repeated to N) into a CSV in a fresh
subprocess that loads the model itself, exactly like ``cvkit score MODEL IMAGES -o out.csv
--runtime R``; the subprocess reports its wall time (load + score), images/s, its own peak RSS
(``ru_maxrss``) and whether TensorFlow was imported. Routes alternate round by round (keras,
litert, keras, ...), and the medians are compared. Targets: LiteRT >= 1.4x Keras images/s, and a
LiteRT scoring process's peak memory at most half of Keras'.

Usage:
    python bench/score.py [--model-dir runs/sample/model] [--images 2000] [--rounds 3]

Without ``--model-dir`` it fits a ``FeatureClassifier`` on sample_data into a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
SPEED_TARGET, MEMORY_TARGET = 1.4, 0.5

_CHILD = r"""
import json, resource, sys, time
start = time.perf_counter()
import cvkit
from cvkit.models import batch_score
model_dir, paths_file, output, runtime = sys.argv[1:5]
paths = open(paths_file).read().splitlines()
model = cvkit.load_model(model_dir, runtime=runtime)
loaded = time.perf_counter()
summary = batch_score(model, paths, output, verbose=False)
end = time.perf_counter()
print(json.dumps({"runtime": model.runtime_, "images": len(paths), "seconds": end - start,
                  "load_seconds": loaded - start, "images_per_s": len(paths) / (end - start),
                  "score_images_per_s": len(paths) / (end - loaded),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def _model_dir(given: str | None, tmp: Path) -> Path:
    if given:
        return Path(given)
    import cvkit
    train = cvkit.ImageDataset.from_directory(REPO / "sample_data")
    folder = tmp / "model"
    cvkit.FeatureClassifier(verbose=False).fit(train).save(folder)
    return folder


def _run(model_dir: Path, paths_file: Path, output: Path, runtime: str) -> dict:
    output.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(model_dir), str(paths_file), str(output), runtime],
                         capture_output=True, text=True, cwd=REPO, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{runtime} route failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from cvkit.data import list_images

    with tempfile.TemporaryDirectory(prefix="cvkit-bench-score-") as name:
        tmp = Path(name)
        model_dir = _model_dir(args.model_dir, tmp)
        photos = list_images(REPO / "sample_data")
        paths = [photos[i % len(photos)] for i in range(args.images)]
        paths_file = tmp / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        runs: dict[str, list[dict]] = {"keras": [], "litert": []}
        for _ in range(args.rounds):
            for runtime in ("keras", "litert"):
                runs[runtime].append(_run(model_dir, paths_file, tmp / f"{runtime}.csv", runtime))
        rows_equal = (tmp / "keras.csv").read_text().count("\n") == (tmp / "litert.csv").read_text().count("\n")

    def median(runtime: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[runtime])

    speed = median("litert", "images_per_s") / median("keras", "images_per_s")
    memory = median("litert", "peak_rss_mb") / median("keras", "peak_rss_mb")
    print(json.dumps({
        "images": args.images, "rounds": args.rounds, "same_row_count": rows_equal,
        "routes": {rt: {"images_per_s": round(median(rt, "images_per_s"), 1),
                        "score_images_per_s": round(median(rt, "score_images_per_s"), 1),
                        "load_seconds": round(median(rt, "load_seconds"), 2),
                        "peak_rss_mb": round(median(rt, "peak_rss_mb"), 1),
                        "tensorflow_imported": runs[rt][-1]["tensorflow_imported"],
                        "per_round_images_per_s": [round(r["images_per_s"], 1) for r in runs[rt]]}
                   for rt in runs},
        "litert_vs_keras_speed": round(speed, 3), "speed_target": SPEED_TARGET,
        "litert_vs_keras_peak_memory": round(memory, 3), "memory_target": MEMORY_TARGET,
        "meets_targets": bool(speed >= SPEED_TARGET and memory <= MEMORY_TARGET)}, indent=1))


if __name__ == "__main__":
    main()
