"""``cvkit score``: every image of a folder or table into one row, through the saved model.

A thin front for :func:`cvkit.models.batch_score` (this machine, one CSV) and, with
``--engine ray``, for :func:`cvkit.scale.score_images` (a Ray cluster, Parquet parts or a CSV,
resumable). Unreadable images get a row with their ``error``; the summary is printed at the end.

What runs the model is ``--runtime``/``--precision``/``--num-threads``, else ``$CVKIT_RUNTIME``,
``$CVKIT_PRECISION``, ``$CVKIT_NUM_THREADS``, else the defaults (:class:`cvkit.options.RunOptions`).
``--decode-threads`` threads decode the images (default :func:`cvkit.options.decode_threads`);
``--workers`` are Ray worker processes (``--engine ray``).

Example (shell)::

    cvkit score models/sample sample_data -o predictions.csv
    cvkit score models/sample tags.tsv -o predictions.tsv --batch-size 64 --quiet
    CVKIT_RUNTIME=keras cvkit score models/sample sample_data -o keras.csv
    cvkit score models/sample /archive -o preds.parquet --engine ray --address auto

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit score")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "sample_data", "--no-progress"])
    >>> args.output, args.verbose, args.runtime
    ('predictions.csv', False, None)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cvkit.cli._main import add_verbose_argument
from cvkit.options import RunOptions, decode_threads, describe_runtime

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
    parser.add_argument("--decode-threads", type=int, default=None, metavar="N",
                        help="threads that decode images (default: 2 to 8 by the cores this process may use for "
                             "`cvkit score --engine local`, else 1 per worker)")


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
                        help="with --engine ray: Ray workers, each loading the model once (default: one per "
                             "CPU of the cluster); with --engine local: deprecated, use --decode-threads")
    add_engine_arguments(parser)
    RunOptions.add_arguments(parser)
    add_verbose_argument(parser)
    return parser


def _local_decode_threads(args: argparse.Namespace) -> int:
    """``--decode-threads``, else the deprecated ``--workers`` of ``--engine local`` (with a warning)."""
    if args.decode_threads is None and args.workers is not None:
        print("cvkit score: warning: --workers with --engine local is deprecated (workers are processes); "
              f"use --decode-threads {args.workers}", file=sys.stderr)
        return decode_threads(args.workers)
    return decode_threads(args.decode_threads)


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit score`` for parsed ``args``: score every image, print the summary. Returns 0."""
    missing = ray_missing(args)
    if missing:
        print(f"cvkit score: error: {missing}", file=sys.stderr)
        return 2
    options = RunOptions.from_args(args)  # flags, else $CVKIT_RUNTIME ..., else the defaults
    if args.engine == "ray":
        from cvkit.scale._score import score_images
        threads = {} if args.decode_threads is None else {"decode_threads": decode_threads(args.decode_threads)}
        summary = score_images(args.model_dir, args.images, args.output, engine="ray", address=args.address,
                               workers=args.workers, batch_size=args.batch_size, chunk_size=args.chunk_size,
                               verbose=args.verbose, overwrite=args.overwrite,
                               runtime=options.runtime, precision=options.precision, **threads)
        ran = f"{options.runtime} {options.precision}" if options.runtime != "auto" else None
    else:
        if Path(args.output).suffix.lower() == ".parquet":
            raise ValueError(f"{args.output}: --engine local writes a .csv or .tsv table; use --engine ray "
                             "for a Parquet output")
        from cvkit.models import batch_score
        from cvkit.models._folder import load_model
        model = load_model(args.model_dir, runtime=options.runtime, precision=options.precision,
                           num_threads=options.num_threads)
        summary = batch_score(model, args.images, args.output, batch_size=args.batch_size,
                              decode_threads=_local_decode_threads(args), verbose=args.verbose)
        ran = describe_runtime(model)
    print(summary)
    if ran:
        print(f"model: {args.model_dir} (ran on {ran})")
    return 0

