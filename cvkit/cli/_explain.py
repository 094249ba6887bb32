"""``cvkit explain``: a heat-map overlay PNG per image, of where the model found its evidence.

A thin front for :func:`cvkit.explain`: each image gets ``DIR/<name>.png``, the photo at its own
size with the map of the class explained blended on (red: most evidence), and ``DIR/explain.csv``
lists image, class explained, its probability, the model's top class, the method and the PNG.
Files already in ``DIR`` are never replaced without ``--overwrite`` (checked before any work); each
file is written atomically. Images are explained a chunk at a time, so memory stays bounded.

Example (shell)::

    cvkit explain runs/sample/model sample_data/bird --out heatmaps/
    cvkit explain runs/sample/model photos/ --out heatmaps/ --target bird --method occlusion

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit explain")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "photos", "--out", "maps"])
    >>> args.method, args.target, args.overwrite
    ('auto', None, False)
    >>> output_names(["a/bird/owl.jpg", "a/fruit/owl.jpg", "a/fruit/fig.png"])
    ['bird__owl.png', 'fruit__owl.png', 'fruit__fig.png']
"""
from __future__ import annotations

import argparse
import csv
import io
import os
from pathlib import Path

from cvkit.cli._main import add_verbose_argument

__all__ = ["add_arguments", "run", "output_names"]

#: Images explained per call (the maps of one chunk are in memory at once).
CHUNK = 32
INDEX_FILE = "explain.csv"

_EPILOG = """\
examples:
  cvkit explain runs/sample/model sample_data/bird --out heatmaps/
  cvkit explain runs/sample/model photos/ --out heatmaps/ --target bird
  cvkit explain runs/sample/model photos/ --out heatmaps/ --method occlusion   # also for LiteRT-only folders
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit explain``'s arguments to ``parser``; returns it."""
    parser.epilog = _EPILOG
    parser.add_argument("model_dir", metavar="MODEL", help="model folder written by clf.save() or `cvkit train`")
    parser.add_argument("images", metavar="IMAGES", help="an image, a folder of images, a .csv/.tsv table of "
                                                         "paths or a quoted glob")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the overlay PNGs (made if missing)")
    parser.add_argument("--target", default=None, metavar="NAME",
                        help="the class to explain in every image (default: each image's top class)")
    parser.add_argument("--method", default="auto", choices=["auto", "cam", "gradcam", "occlusion"],
                        help="auto (default): CAM when exact (cvkit's linear heads), else Grad-CAM; occlusion "
                             "needs no Keras graph")
    parser.add_argument("--alpha", type=float, default=0.45, help="weight of the map's colours (default 0.45)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--overwrite", action="store_true", help="replace PNGs (and explain.csv) already in DIR")
    add_verbose_argument(parser)
    return parser


def output_names(names: list[str]) -> list[str]:
    """A PNG name per image: its path below the images' common folder, ``/`` as ``__`` (see the module)."""
    paths = [Path(n) for n in names]
    parents = [str(p.parent) for p in paths]
    root = os.path.commonpath(parents) if parents and all(os.path.isabs(p) == os.path.isabs(parents[0])
                                                          for p in parents) else ""
    out = []
    for path in paths:
        relative = os.path.relpath(path.with_suffix(""), root) if root else path.stem
        out.append(relative.replace(os.sep, "__").replace("..", "_") + ".png")
    return out


def _png(pixels) -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit explain`` for parsed ``args``: write the overlays and ``explain.csv``. Returns 0."""
    from cvkit._io import atomic_open, atomic_write
    from cvkit.data import ImageSource
    from cvkit.evaluation import explain
    from cvkit.models import load_model

    source = ImageSource.resolve(args.images)
    if not len(source):
        raise ValueError(f"{args.images}: no images found")
    out = Path(args.out)
    names = output_names([source.name(i) for i in range(len(source))])
    if len(set(names)) != len(names):
        raise ValueError(f"{args.images}: two images would get the same PNG name; explain them in two runs")
    existing = [n for n in [*names, INDEX_FILE] if (out / n).exists()]
    if existing and not args.overwrite:  # before any work
        raise FileExistsError(f"{out}: already holds {len(existing)} of the files to write ({', '.join(existing[:3])}"
                              f"{', ...' if len(existing) > 3 else ''}); pass --overwrite to replace them")
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    model = load_model(args.model_dir)
    if args.target is not None and args.target not in model.classes_:
        raise ValueError(f"--target {args.target!r} is not a class of {args.model_dir} "
                         f"(classes: {', '.join(model.classes_)})")
    out.mkdir(parents=True, exist_ok=True)
    rows, written, method = [], 0, args.method
    from cvkit._console import progress_bar

    with progress_bar(total=len(source), desc="Heat maps", unit="img", disable=not args.verbose) as bar:
        for start in range(0, len(source), CHUNK):
            chunk = source.items[start:start + CHUNK]
            found = explain(model, chunk, target=args.target, method=args.method, batch_size=args.batch_size)
            method = found.method
            for j, (overlay, name) in enumerate(zip(found.overlays(alpha=args.alpha), names[start:start + CHUNK])):
                if overlay is not None:
                    atomic_write(out / name, _png(overlay))
                    written += 1
                score = found.scores[j]
                rows.append([found.names[j], found.targets[j] or "", "" if score != score else f"{score:.4f}",
                             found.predicted[j] or "", found.method, name if overlay is not None else ""])
            bar.update(len(chunk))
    with atomic_open(out / INDEX_FILE, "w") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "target", "probability", "predicted", "method", "png"])
        writer.writerows(rows)
    unreadable = len(source) - written
    print(f"wrote {written} heat-map overlay PNG(s) and {INDEX_FILE} to {out} (method {method})"
          + (f"; {unreadable} image(s) could not be read" if unreadable else ""))
    return 0
