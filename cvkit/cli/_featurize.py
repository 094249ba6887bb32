"""``cvkit featurize``: the features of every image of a folder or table, into a Parquet table.

A thin front for :func:`cvkit.scale.featurize_images`: one row per image (path, content key,
feature vector, error), one Parquet part per chunk, resumable. ``--engine ray`` runs on a Ray
cluster; ``--engine local`` in this process. Load the table into the feature cache with
:func:`cvkit.features._tables.cache_features` (or ``--into-cache``), and a later training run on
those images reuses the features.

Example (shell)::

    cvkit featurize efficientnet_lite0 /archive -o features.parquet --engine ray --address auto
    cvkit featurize efficientnet_lite0 sample_data -o features.parquet --into-cache

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit featurize")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["efficientnet_lite0", "sample_data", "-o", "f.parquet", "--engine", "ray"])
    >>> args.engine, args.workers
    ('ray', None)
"""
from __future__ import annotations

import argparse
import sys

from cvkit.cli._main import add_verbose_argument
from cvkit.cli._score import add_engine_arguments, ray_missing
from cvkit.options import decode_threads

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit featurize``'s arguments to ``parser``; returns it."""
    parser.add_argument("backbone", help="backbone name, e.g. efficientnet_lite0 (see cvkit.backbones.available())")
    parser.add_argument("images", help="a folder of images (searched recursively), a .csv/.tsv table of image "
                                       "paths, or a quoted glob such as 'photos/*.jpg'")
    parser.add_argument("-o", "--output", required=True,
                        help="the Parquet folder to write (e.g. features.parquet), one file per chunk")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --engine ray: Ray workers, each building the backbone once (default: one "
                             "per CPU of the cluster)")
    parser.add_argument("--input-size", type=int, default=None, help="square input side (default: the backbone's)")
    add_engine_arguments(parser)
    parser.add_argument("--into-cache", action="store_true",
                        help="afterwards load the features into this machine's feature cache")
    add_verbose_argument(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit featurize`` for parsed ``args``; prints the summary. Returns 0."""
    missing = ray_missing(args)
    if missing:
        print(f"cvkit featurize: error: {missing}", file=sys.stderr)
        return 2
    from cvkit.scale._featurize import featurize_images
    threads = {} if args.decode_threads is None else {"decode_threads": decode_threads(args.decode_threads)}
    summary = featurize_images(args.backbone, args.images, args.output, engine=args.engine, address=args.address,
                               workers=args.workers, batch_size=args.batch_size, chunk_size=args.chunk_size,
                               input_size=args.input_size, verbose=args.verbose, overwrite=args.overwrite,
                               **threads)
    print(summary)
    if args.into_cache:
        from cvkit.features._tables import cache_features
        n = cache_features(args.output)
        print(f"loaded {n} feature vectors into the feature cache")
    return 0
