#!/usr/bin/env python3
"""Benchmark: how long does the dataset map take, and does it keep neighbours together?

Features: the real backbone features of ``sample_data`` (104 photos, EfficientNet-Lite0, 1280
dimensions, from the feature cache), repeated with Gaussian noise (0.3 x each feature's standard
deviation across the set) to 1,000, 3,000 and 10,000 points: cached-feature-like points with the
photos' real class structure. For each size, :func:`cvkit.embedding_coordinates` with the default
``method="auto"`` (PCA to 50 dimensions, t-SNE; beyond 3,000 points t-SNE of a 3,000 sample and the
others placed by their 5 nearest sampled neighbours) is timed, and the map is scored by
scikit-learn's trustworthiness (10 neighbours; 1.0 = every point's map neighbours are its feature
neighbours) on 2,000 random points and by the share of points whose 10 nearest map neighbours are
mostly of their own class. On sample_data itself, PCA only is scored beside it.

Prints JSON. Takes about two minutes on 2 CPU cores.

    python bench/embedding.py [--sizes 1000 3000 10000]
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

from cvkit import ImageDataset
from cvkit.evaluation._audit import image_features
from cvkit.evaluation._embedding import embedding_coordinates

REPO = Path(__file__).resolve().parent.parent


def class_agreement(xy: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Share of points most of whose ``k`` nearest map neighbours share their label."""
    _, nearest = NearestNeighbors(n_neighbors=k + 1).fit(xy).kneighbors(xy)
    same = (labels[nearest[:, 1:]] == labels[:, None]).mean(axis=1)
    return float((same > 0.5).mean())


def score(features: np.ndarray, labels: np.ndarray, method: str, seed: int = 0) -> dict:
    start = time.perf_counter()
    xy = embedding_coordinates(features, list(labels), method=method)
    seconds = time.perf_counter() - start
    points = xy[["x", "y"]].to_numpy()
    rows = np.random.default_rng(seed).choice(len(points), min(2000, len(points)), replace=False)
    return {"points": len(points), "method": xy.attrs["method"], "seconds": round(seconds, 1),
            "trustworthiness_10": round(float(trustworthiness(features[rows], points[rows], n_neighbors=10)), 3),
            "class_agreement_10": round(class_agreement(points, labels), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000], help="points per run")
    parser.add_argument("--data", default=str(REPO / "sample_data"), help="folder of class folders")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning)
    dataset = ImageDataset.from_directory(args.data, verbose=False)
    features, ok = image_features(dataset)
    features, labels = features[ok].astype(np.float64), np.asarray(dataset.image_labels, dtype=object)[ok]
    where = Path(args.data).resolve()
    result = {"data": str(where.relative_to(REPO)) if where.is_relative_to(REPO) else str(where),
              "photos": int(len(features)), "feature_dimensions": int(features.shape[1]),
              "photos_themselves": [score(features, labels, "auto"), score(features, labels, "pca")], "runs": []}
    rng = np.random.default_rng(0)
    spread = features.std(axis=0, keepdims=True)
    for n in args.sizes:
        pick = rng.integers(0, len(features), n)
        noisy = features[pick] + 0.3 * spread * rng.normal(size=(n, features.shape[1]))
        result["runs"].append(score(noisy, labels[pick], "auto"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
