"""``cvkit score``: every image of a folder or table into one row, through the saved model.

A thin front for :func:`cvkit.models.batch_score` (this machine, one CSV) and, with
``--engine ray``, for :func:`cvkit.scale.score_images` (a Ray cluster, Parquet parts or a CSV,
resumable). Unreadable images get a row with their ``error``; the summary is printed at the end.

Example (shell)::

    cvkit score models/sample sample_data -o predictions.csv
    cvkit score models/sample tags.tsv -o predictions.tsv --batch-size 64 --no-progress
    cvkit score models/sample /archive -o preds.parquet --engine ray --address auto

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit score")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["models/sample", "sample_data"]).output
    'predictions.csv'
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cvkit.cli._runtime import add_runtime_arguments, runs_on

__all__ = ["add_arguments", "run", "add_engine_arguments", "ray_missing"]


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``cvkit score`` and ``cvkit featurize`` for scaling out on Ray."""
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: this machine (default); ray: a Ray cluster (pip install 'cvkit[ray]'), "
                             "resumable: run the same command again to finish a stopped job")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the cluster to join ('auto' = the one `ray start --head` runs "
                             "here; host:6379 or ray://host:10001); default: start a local Ray")
    parser.add_argument("--chunk-size", type=int, default=256,
                        help="images per Parquet part, the unit of resuming (default 256; not used by "
                             "`cvkit score --engine local`)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a finished output, or start an unfinished one over (not used by "
                             "`cvkit score --engine local`, which replaces its CSV)")


def ray_missing(args: argparse.Namespace) -> str | None:
    """With ``--engine ray`` and no Ray installed, the message saying how to install it; else None."""
    if args.engine != "ray":
        return None
    from cvkit.scale._cluster import import_ray
    try:
        import_ray()
    except ImportError as exc:
        return str(exc)
    return None


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit score``'s arguments to ``parser``; returns it."""
    parser.add_argument("model_dir", help="model folder written by clf.save() or `cvkit train`")
    parser.add_argument("images", help="a folder of images (searched recursively), a .csv/.tsv table of image "
                                       "paths (optionally with labels), or a quoted glob such as 'photos/*.jpg'")
    parser.add_argument("-o", "--output", default="predictions.csv",
                        help="CSV (or .tsv) to write, one row per image (default predictions.csv); with "
                             "--engine ray also a .parquet folder (one file per chunk), for big jobs")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call")
    parser.add_argument("--workers", type=int, default=None,
                        help="local: image-decoding threads (default 2); ray: Ray workers, each loading the "
                             "model once (default: one per CPU of the cluster)")
    add_engine_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit score`` for parsed ``args``: score every image, print the summary. Returns 0."""
    missing = ray_missing(args)
    if missing:
        print(f"cvkit score: error: {missing}", file=sys.stderr)
        return 2
    if args.engine == "ray":
        from cvkit.scale._score import score_images
        summary = score_images(args.model_dir, args.images, args.output, engine="ray", address=args.address,
                               workers=args.workers, batch_size=args.batch_size, chunk_size=args.chunk_size,
                               verbose=not args.no_progress, overwrite=args.overwrite,
                               runtime=args.runtime, precision=args.precision)
        ran = f"{args.runtime} {args.precision}" if args.runtime != "auto" else None
    else:
        if Path(args.output).suffix.lower() == ".parquet":
            raise ValueError(f"{args.output}: --engine local writes a .csv or .tsv table; use --engine ray "
                             "for a Parquet output")
        from cvkit.models import batch_score
        from cvkit.models._folder import load_model
        model = load_model(args.model_dir, runtime=args.runtime, precision=args.precision)
        summary = batch_score(model, args.images, args.output, batch_size=args.batch_size,
                              decode_threads=args.workers, verbose=not args.no_progress)
        ran = runs_on(model)
    print(summary)
    if ran:
        print(f"model: {args.model_dir} (ran on {ran})")
    return 0

