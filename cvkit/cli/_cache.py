"""``cvkit cache``: see (``info``, the default) or clear (``clear [--older-than DAYS]``) the feature cache.

A thin front for :func:`cvkit.features._admin.cache_info` and :func:`~cvkit.features._admin.clear_cache`,
which only ever touch cvkit's own cache files.

Example (shell)::

    cvkit cache info
    cvkit cache info --json
    cvkit cache clear --older-than 30

Example (Python):
    >>> import tempfile
    >>> from cvkit.cli import main
    >>> main(["cache", "info", "--cache-dir", tempfile.mkdtemp()])  # doctest: +ELLIPSIS
    cvkit feature cache in ...
      empty
    0
"""
from __future__ import annotations

import argparse
import json
import os

from cvkit.features._admin import cache_info, clear_cache, human_size

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit cache``'s arguments (``info``, ``clear [--older-than DAYS]``) to ``parser``; returns it."""
    parser.description = (
        "See or clear the feature cache: one SQLite file of image features per backbone, weights and\n"
        "input size, in $CVKIT_CACHE_DIR (default ~/.cache/cvkit). Only cvkit's own cache files are\n"
        "touched. Each file is capped at $CVKIT_CACHE_MAX_MB (default 1024; 0 = no limit): beyond it\n"
        "the least recently used features are evicted.")
    parser.epilog = ("examples:\n  cvkit cache info\n  cvkit cache clear --older-than 30\n"
                     "  cvkit cache clear --cache-dir /data/cvkit-cache")
    help_dir = "cache folder (default $CVKIT_CACHE_DIR or ~/.cache/cvkit)"
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help=help_dir)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    info = actions.add_parser("info", help="list the cache files: images, size, last use (default action)")
    info.add_argument("--cache-dir", default=argparse.SUPPRESS, metavar="DIR", help=help_dir)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    clear = actions.add_parser("clear", help="delete cached features (all, or those unused for DAYS)")
    clear.add_argument("--cache-dir", default=argparse.SUPPRESS, metavar="DIR", help=help_dir)
    clear.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                       help="remove only features not used for DAYS days (default: remove everything)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit cache`` for parsed ``args``: print the report, or clear and say what was freed. Returns 0."""
    action = getattr(args, "action", None) or "info"
    if action == "info":
        info = cache_info(args.cache_dir)
        print(json.dumps(info.to_dict(), indent=2) if getattr(args, "json", False) else info)
        return 0
    if args.older_than is not None and not 0 <= args.older_than < float("inf"):
        raise ValueError(f"--older-than must be a number of days >= 0, got {args.older_than:g}")
    freed = clear_cache(args.cache_dir, older_than_days=args.older_than)
    folder = cache_info(args.cache_dir).folder
    what = "all cached features" if args.older_than is None else f"features unused for {args.older_than:g} days"
    print(f"cleared {what}: freed {human_size(freed)} in {os.fspath(folder)}")
    return 0
