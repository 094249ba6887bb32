"""``cvkit score``: every image of a folder or table into one CSV row, through the saved model.

A thin front for :func:`cvkit.serving.batch_score.batch_score`: images stream through in chunks,
unreadable ones get a row with their ``error``, and the summary is printed at the end.

Example (shell)::

    cvkit score models/sample sample_data -o predictions.csv
    cvkit score models/sample tags.tsv -o predictions.tsv --batch-size 64 --no-progress

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit score")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["models/sample", "sample_data"]).output
    'predictions.csv'
"""
from __future__ import annotations

import argparse

from cvkit.serving.batch_score import batch_score

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit score``'s arguments to ``parser``; returns it."""
    parser.add_argument("model_dir", help="model folder written by clf.save() or `cvkit train`")
    parser.add_argument("images", help="a folder of images (searched recursively) or a .csv/.tsv "
                                       "table of image paths (optionally with labels)")
    parser.add_argument("-o", "--output", default="predictions.csv",
                        help="CSV (or .tsv) to write, one row per image (default predictions.csv)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call")
    parser.add_argument("--workers", type=int, default=2, help="image-decoding threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit score`` for parsed ``args``: score every image, print the summary. Returns 0."""
    summary = batch_score(args.model_dir, args.images, args.output, batch_size=args.batch_size,
                          workers=args.workers, progress=not args.no_progress)
    print(summary)
    return 0
