"""``cvkit serve``: serve a model folder over HTTP (uvicorn) until interrupted.

A thin front for :func:`cvkit.serving._server.serve`. It is also what
:class:`~cvkit.serving._server.BackgroundServer` starts as a subprocess (``python -m cvkit.cli serve
...``); that parent passes its process id in ``CVKIT_EXIT_WITH_PARENT`` so the server stops when the
notebook or script that started it dies, instead of being left running.

Example (shell)::

    cvkit serve models/sample --port 8000
    CVKIT_API_KEY=secret cvkit serve models/sample --host 0.0.0.0 --workers 2
    cvkit serve models/sample --precision int8      # the folder's int8 fast mode

Every setting not given on the command line is read from the environment (``CVKIT_API_KEY``,
``CVKIT_RUNTIME``, ``CVKIT_MAX_REQUEST_BYTES``, ...: :meth:`cvkit.serving.ServiceConfig.from_env`),
so the options default to None here and a command-line default never hides a variable.

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit serve")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "--workers", "2", "--runtime", "keras"])
    >>> args.workers, args.host, args.max_request_mb, args.runtime
    (2, '127.0.0.1', None, 'keras')
"""
from __future__ import annotations

import argparse
import os
import signal
import threading
import time

from cvkit._validation import check_param, describe
from cvkit.options import RunOptions
from cvkit.serving._config import DEFAULT_MAX_REQUEST_BYTES
from cvkit.serving._server import WORKERS, serve

__all__ = ["add_arguments", "run", "workers_argument", "exit_with_parent"]



def workers_argument(text: str) -> int:
    """``--workers`` value: a positive int (:data:`cvkit.serving._server.WORKERS`, the constraint
    ``serve`` checks too), refused by argparse (exit 2) otherwise.

    Example:
        >>> workers_argument("3")
        3
        >>> workers_argument("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: must be a positive int, got '0'
    """
    try:
        return check_param("workers", int(text), WORKERS)
    except ValueError:  # not a number, or not a positive one
        raise argparse.ArgumentTypeError(f"must be {describe(WORKERS)}, got {text!r}") from None


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
    parser.add_argument("--max-request-mb", type=float, default=None,
                        help=f"largest request body in MB (default $CVKIT_MAX_REQUEST_BYTES, else "
                             f"{DEFAULT_MAX_REQUEST_BYTES / 2**20:g})")
    parser.add_argument("--max-request-mp", type=float, default=None,
                        help="most megapixels the images of one request may hold together, read "
                             "from their headers before decoding (default 100; 413 beyond)")
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help="most images per model call (default 32)")
    parser.add_argument("--max-wait-ms", type=float, default=None,
                        help="longest a request waits for others to batch with (default 10)")
    RunOptions.add_arguments(parser)
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug"])
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit serve`` for parsed ``args``: serve until interrupted. Returns 0."""
    parent = os.environ.pop("CVKIT_EXIT_WITH_PARENT", "")
    if parent.isdigit():  # started by BackgroundServer: stop when that process goes away
        exit_with_parent(int(parent))
    options = RunOptions.from_args(args)
    serve(args.model_dir, host=args.host, port=args.port, api_key=args.api_key,
          workers=args.workers, log_level=args.log_level,
          max_request_bytes=None if args.max_request_mb is None else int(args.max_request_mb * 2**20),
          max_request_pixels=None if args.max_request_mp is None else int(args.max_request_mp * 1e6),
          max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
          runtime=options.runtime, precision=options.precision, num_threads=options.num_threads)
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
