#!/usr/bin/env python3
"""Benchmark: does the data audit find label mistakes, duplicates and leaks, and is it fast?

(a) label mistakes: sample_data with 10% of its labels flipped (to another class, seeded, several
    seeds). Recall = flipped images among ``find_label_issues(...).is_issue``, precision = flipped
    among the flagged. Then test accuracy of a ``FeatureClassifier`` trained on the standard split's
    training side with the noisy labels, and after accepting the suggested label of every flagged
    training image (the test side keeps its true labels); baseline: the clean labels.
(b) duplicates: an exact copy, a JPEG re-encode (quality 60), a 50% resize and a 10% crop of 20
    photos, the copies of every other photo put on the other side of the standard split. Pair
    recall per kind (copy and original reported as a pair, within a side or as a train/test leak)
    and by group (``duplicate_groups`` puts them together), false pairs, and sample_data's most
    similar distinct photos.
(c) timing: both functions on 1,000 images (sample_data copies with small perturbations) with warm
    features (second call in the process).

Prints JSON. Takes about 2-3 minutes on 2 CPU cores (the first featurizing of 1,000 images).

    python bench/audit.py [--seeds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from cvkit import FeatureClassifier, ImageDataset, duplicate_groups, find_duplicates, find_label_issues
from cvkit.evaluation._audit import default_featurizer
from cvkit.evaluation._duplicates import DEFAULT_THRESHOLD

REPO = Path(__file__).resolve().parent.parent
KINDS = ("exact", "jpeg60", "resize50", "crop10")


def flip_labels(dataset: ImageDataset, fraction: float, seed: int) -> tuple[ImageDataset, np.ndarray]:
    """A copy of ``dataset`` with ``fraction`` of its labels moved to another class at random."""
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(dataset), int(round(fraction * len(dataset))), replace=False)
    targets = dataset.targets.copy()
    k = len(dataset.labels)
    targets[flip] = (targets[flip] + rng.integers(1, k, len(flip))) % k
    return ImageDataset(dataset.paths, targets, dataset.labels, root=dataset.root), np.sort(flip)


def accuracy(train: ImageDataset, test: ImageDataset) -> float:
    return float(FeatureClassifier(verbose=False).fit(train).score(test))


def label_mistakes(dataset: ImageDataset, seeds: int) -> dict:
    train, test = dataset.split(test_size=0.34, random_state=0)
    train_pos = {p: i for i, p in enumerate(train.paths)}
    runs = []
    for seed in range(seeds):
        noisy, flipped = flip_labels(dataset, 0.10, seed)
        issues = find_label_issues(noisy, random_state=seed)
        flagged = issues.index[issues.is_issue].to_numpy()
        hits = len(np.intersect1d(flagged, flipped))
        noisy_labels = noisy.image_labels
        by_path = dict(zip(noisy.paths, noisy_labels))
        train_noisy = [by_path[p] for p in train.paths]
        fixed = list(train_noisy)
        for _, row in issues[issues.is_issue].iterrows():
            if row.path in train_pos:
                fixed[train_pos[row.path]] = row.suggested_label
        runs.append({"seed": seed, "flipped": int(len(flipped)), "flagged": int(len(flagged)), "hits": hits,
                     "recall": hits / len(flipped), "precision": hits / max(1, len(flagged)),
                     "outliers": int(issues.is_outlier.sum()),
                     "train_labels_wrong_noisy": int(sum(a != b for a, b in zip(train_noisy, train.image_labels))),
                     "train_labels_wrong_fixed": int(sum(a != b for a, b in zip(fixed, train.image_labels))),
                     "test_accuracy_noisy": accuracy(ImageDataset.from_paths(train.paths, train_noisy, check=False),
                                                     test),
                     "test_accuracy_fixed": accuracy(ImageDataset.from_paths(train.paths, fixed, check=False), test)})
    mean = {k: float(np.mean([r[k] for r in runs])) for k in
            ("recall", "precision", "test_accuracy_noisy", "test_accuracy_fixed")}
    return {"runs": runs, "mean": mean, "test_accuracy_clean": accuracy(train, test),
            "targets": {"recall": 0.8, "precision": 0.5}}


def make_copies(dataset: ImageDataset, folder: Path, n: int, seed: int = 0) -> list[tuple[int, str, str]]:
    """``(original index, kind, path)`` for 4 copies of each of ``n`` random photos."""
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(dataset), n, replace=False).tolist():
        src = dataset.paths[i]
        img = Image.open(src).convert("RGB")
        w, h = img.size
        stem = folder / f"{i:03d}_{Path(src).stem}"
        shutil.copyfile(src, f"{stem}_exact{Path(src).suffix}")
        img.save(f"{stem}_q60.jpg", quality=60)
        img.resize((max(1, w // 2), max(1, h // 2)), Image.BILINEAR).save(f"{stem}_half.png")
        dx, dy = round(0.1 * w), round(0.1 * h)
        x0, y0 = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
        img.crop((x0, y0, x0 + w - dx, y0 + h - dy)).save(f"{stem}_crop.png")
        out += [(i, kind, f"{stem}_{suffix}") for kind, suffix in
                zip(KINDS, (f"exact{Path(src).suffix}", "q60.jpg", "half.png", "crop.png"))]
    return out


def duplicates(dataset: ImageDataset, folder: Path) -> dict:
    train, test = dataset.split(test_size=0.34, random_state=0)
    side = dict.fromkeys(train.paths, "train") | dict.fromkeys(test.paths, "test")
    copies = make_copies(dataset, folder, 20)
    origin = {p: p for p in dataset.paths} | {path: dataset.paths[i] for i, _, path in copies}
    sides = {"train": (list(train.paths), train.image_labels), "test": (list(test.paths), test.image_labels)}
    labels = dict(zip(dataset.paths, dataset.image_labels))
    for n, (i, _, path) in enumerate(copies):  # photo by photo, copies alternate: the other side, the same side
        home = side[dataset.paths[i]]
        where = home if (n // 4) % 2 else ("test" if home == "train" else "train")
        sides[where][0].append(path)
        sides[where][1].append(labels[dataset.paths[i]])
    tr = ImageDataset.from_paths(*sides["train"], check=False)
    te = ImageDataset.from_paths(*sides["test"], check=False)
    tables = [find_duplicates(tr), find_duplicates(te), find_duplicates(tr, other=te)]
    found = set()
    false_pairs = []
    for t in tables:
        for a, b, sim in zip(t.path_a, t.path_b, t.similarity):
            found |= {(a, b), (b, a)}
            if origin[a] != origin[b]:
                false_pairs.append((a, b, round(float(sim), 4)))
    per_kind = {k: [(path, dataset.paths[i]) in found for i, kind, path in copies if kind == k] for k in KINDS}
    union = ImageDataset.from_paths(tr.paths + te.paths, tr.image_labels + te.image_labels, check=False)
    groups = dict(zip(union.paths, duplicate_groups(union).tolist()))
    grouped = [groups[path] == groups[dataset.paths[i]] for i, _, path in copies]
    leaks = tables[2]
    originals = find_duplicates(dataset, threshold=0.5)   # the most similar distinct photos, for a look
    return {"threshold": DEFAULT_THRESHOLD, "n_copies": len(copies),
            "pair_recall": float(np.mean([h for v in per_kind.values() for h in v])),
            "pair_recall_per_kind": {k: float(np.mean(v)) for k, v in per_kind.items()},
            "group_recall": float(np.mean(grouped)), "false_pairs": false_pairs,
            "leaks_reported": int(len(leaks)), "leak_kinds": leaks.kind.value_counts().to_dict(),
            "false_pairs_among_originals": int(len(find_duplicates(dataset))),
            "most_similar_originals": [(Path(a).name, Path(b).name, round(float(s), 3)) for a, b, s in
                                       zip(originals.path_a[:5], originals.path_b[:5], originals.similarity[:5])],
            "target": {"pair_recall": 0.95, "false_pairs_among_originals": 0}}


def thousand_images(dataset: ImageDataset, folder: Path, n: int = 1000, seed: int = 0) -> ImageDataset:
    """``n`` images: copies of the sample photos, each brightened/darkened, mirrored and cropped a little."""
    rng = np.random.default_rng(seed)
    paths, labels = [], []
    for k in range(n):
        i = k % len(dataset)
        img = Image.open(dataset.paths[i]).convert("RGB")
        w, h = img.size
        img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(0.8, 1.2)))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        dx, dy = int(rng.integers(0, max(1, w // 20) + 1)), int(rng.integers(0, max(1, h // 20) + 1))
        img = img.crop((dx, dy, w, h))
        path = folder / f"{k:04d}.jpg"
        img.save(path, quality=90)
        paths.append(str(path))
        labels.append(dataset.image_labels[i])
    return ImageDataset.from_paths(paths, labels, check=False)


def timing(dataset: ImageDataset, folder: Path) -> dict:
    big = thousand_images(dataset, folder)
    start = time.perf_counter()
    default_featurizer().transform(big.paths)   # cold: computes and caches the features
    cold = time.perf_counter() - start
    out = {"n_images": len(big), "featurize_cold_s": round(cold, 2), "target_s": 5.0}
    for name, run in (("find_label_issues", lambda: find_label_issues(big)),
                      ("find_duplicates", lambda: find_duplicates(big))):
        start = time.perf_counter()
        result = run()
        out[f"{name}_s"] = round(time.perf_counter() - start, 2)
        out[f"{name}_rows"] = int(len(result))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="label-flip seeds (default 5)")
    parser.add_argument("--data", default=str(REPO / "sample_data"), help="folder of class folders")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning)
    dataset = ImageDataset.from_directory(args.data, verbose=False)
    with tempfile.TemporaryDirectory(prefix="cvkit-bench-audit-") as tmp:
        (Path(tmp) / "copies").mkdir()
        (Path(tmp) / "thousand").mkdir()
        result = {"label_mistakes": label_mistakes(dataset, args.seeds),
                  "duplicates": duplicates(dataset, Path(tmp) / "copies"),
                  "timing": timing(dataset, Path(tmp) / "thousand")}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
