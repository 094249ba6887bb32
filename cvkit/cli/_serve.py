"""``cvkit serve``: serve a model folder over HTTP (uvicorn) until interrupted.

A thin front for :func:`cvkit.serving._server.serve`. It is also what
:class:`~cvkit.serving._server.BackgroundServer` starts as a subprocess (``python -m cvkit.cli serve
...``); that parent passes its process id in ``CVKIT_EXIT_WITH_PARENT`` so the server stops when the
notebook or script that started it dies, instead of being left running.

Example (shell)::

    cvkit serve models/sample --port 8000
    CVKIT_API_KEY=secret cvkit serve models/sample --host 0.0.0.0 --workers 2
    cvkit serve models/sample --precision int8      # the folder's int8 fast mode

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit serve")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "--workers", "2"])
    >>> args.workers, args.host, args.max_request_mb
    (2, '127.0.0.1', 10.0)
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from cvkit.cli._runtime import add_runtime_arguments
from cvkit.serving._app import DEFAULT_MAX_REQUEST_BYTES
from cvkit.serving._server import serve

__all__ = ["add_arguments", "run", "workers_argument", "exit_with_parent"]



def workers_argument(text: str) -> int:
    """``--workers`` value: a whole number >= 1, refused by argparse (exit 2) otherwise.

    Example:
        >>> workers_argument("3")
        3
        >>> workers_argument("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a whole number >= 1, got '0'
    """
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return workers


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit serve``'s arguments to ``parser``; returns it."""
    parser.add_argument("model_dir", help="model folder written by clf.save() or `cvkit train`")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' (or set CVKIT_API_KEY)")
    parser.add_argument("--workers", type=workers_argument, default=1,
                        help="worker processes, each with its own copy of the model (default 1)")
    parser.add_argument("--max-request-mb", type=float, default=DEFAULT_MAX_REQUEST_BYTES / 2**20,
                        help="largest request body in MB (default 10)")
    parser.add_argument("--max-request-mp", type=float, default=None,
                        help="most megapixels the images of one request may hold together, read "
                             "from their headers before decoding (default 100; 413 beyond)")
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help="most images per model call (default 32)")
    parser.add_argument("--max-wait-ms", type=float, default=None,
                        help="longest a request waits for others to batch with (default 10)")
    add_runtime_arguments(parser)
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit serve`` for parsed ``args``: serve until interrupted. Returns 0."""
    parent = os.environ.pop("CVKIT_EXIT_WITH_PARENT", "")
    if parent.isdigit():  # started by BackgroundServer: stop when that process goes away
        exit_with_parent(int(parent))
    serve(args.model_dir, host=args.host, port=args.port, api_key=args.api_key,
          workers=args.workers, log_level=args.log_level,
          max_request_bytes=int(args.max_request_mb * 2**20),
          max_request_pixels=None if args.max_request_mp is None else int(args.max_request_mp * 1e6),
          max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
          runtime=args.runtime, precision=args.precision)
    return 0


def exit_with_parent(parent_pid: int, interval: float = 1.0) -> threading.Thread:
    """Stop this server (gracefully, via SIGTERM) once process ``parent_pid`` is gone.

    Watches from a daemon thread, checking every ``interval`` seconds; returns the thread.

    Example:
        >>> exit_with_parent(os.getpid(), interval=3600.0).daemon   # watches this very process: harmless
        True
    """
    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except PermissionError:
                pass
    thread = threading.Thread(target=watch, name="cvkit-parent-watch", daemon=True)
    thread.start()
    return thread
