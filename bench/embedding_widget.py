#!/usr/bin/env python3
"""Benchmark: what the interactive dataset map (``cvkit.EmbeddingWidget``) costs beside the static one.

For 1,000 and 10,000 points (the map's coordinates are given, so t-SNE is not timed: see
``bench/embedding.py`` for that), each point one of the real ``sample_data`` photos in turn, placed
in four label clusters, this times in the same run:

- the baseline: :func:`cvkit.plot_embedding` drawing the same coordinates and saving a PNG;
- building the widget (its points, legend and controls) and the size of the points it sends to
  the browser (JSON, as the widget's comm sends it);
- a box selection of a quarter of the map (the Python side of a drag), and a hover (the photo
  read, scaled and encoded for the panel beside the map).

Prints JSON, with the widget's build time as a ratio of the static plot's. Takes under a minute.

    python bench/embedding_widget.py [--sizes 1000 10000]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def coordinates(n: int, paths: list[str], labels: list[str], seed: int = 0) -> pd.DataFrame:
    """``n`` map points in four clusters (by label), cycling through the real photos."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n) % len(paths)
    names = sorted(set(labels))
    centre = np.array([[0, 0], [30, 0], [0, 30], [30, 30]], float)
    which = np.array([names.index(labels[i]) % 4 for i in idx])
    xy = centre[which] + rng.normal(scale=5.0, size=(n, 2))
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": [labels[i] for i in idx],
                          "path": [paths[i] for i in idx]}, index=pd.Index(np.arange(n), name="index"))
    table.attrs.update(method="given", n_input=n)
    return table


def run(n: int, paths: list[str], labels: list[str], out: str) -> dict:
    import matplotlib.pyplot as plt

    import cvkit
    from cvkit.widgets import EmbeddingWidget

    table = coordinates(n, paths, labels)
    start = time.perf_counter()
    fig = cvkit.plot_embedding(None, coordinates=table)
    fig.savefig(io.BytesIO(), format="png")
    static = time.perf_counter() - start
    plt.close(fig)
    start = time.perf_counter()
    widget = EmbeddingWidget(None, coordinates=table, output=os.path.join(out, f"relabel_{n}.tsv"))
    build = time.perf_counter() - start
    payload = len(json.dumps(widget.plot.points))
    start = time.perf_counter()
    widget.select_box((table.x.min(), table.x.median()), (table.y.min(), table.y.median()))
    select = time.perf_counter() - start
    start = time.perf_counter()
    widget.plot.emit("hover", n - 1)
    hover = time.perf_counter() - start
    return {"points": n, "static_plot_seconds": round(static, 3), "widget_build_seconds": round(build, 3),
            "widget_over_static": round(build / static, 2), "points_json_bytes": payload,
            "bytes_per_point": round(payload / n, 1), "box_select_seconds": round(select, 4),
            "selected": len(widget.selected), "hover_seconds": round(hover, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="points per run")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning)
    import matplotlib
    matplotlib.use("Agg")
    from cvkit import ImageDataset

    data = ImageDataset.from_directory(REPO / "sample_data", verbose=False)
    with tempfile.TemporaryDirectory() as out:
        runs = [run(n, list(data.paths), data.image_labels, out) for n in args.sizes]
    print(json.dumps({"photos": len(data), "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
