"""Connecting to Ray, quietly, and keeping each worker to its share of the CPUs.

Why a module of its own: every scale-out job starts the same way (import Ray only when asked,
with a clear message when the extra is missing; start a local Ray or join a cluster; keep Ray's
own logs out of the user's terminal) and every worker limits its threads the same way.

- :func:`import_ray` imports Ray, or says to ``pip install 'cvkit[ray]'``.
- :func:`ray_session` is a context manager: joins the cluster at ``address`` (``"auto"`` = the one
  ``ray start --head`` started on this machine) or starts a local Ray with ``num_cpus`` CPUs, and
  shuts down only what it started.
- :func:`limit_threads` sets the thread counts of OpenMP and TensorFlow and the run options
  (:class:`cvkit.options.RunOptions`, through its environment variables) in a worker process.
- :func:`node_id` names the machine a worker runs on (Ray's node id, or ``"local"``).

Example:
    >>> import_ray().__name__, node_id()  # outside a Ray worker
    ('ray', 'local')
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Iterator
from types import ModuleType

from cvkit._console import quiet_stderr
from cvkit._validation import Interval, check_param
from cvkit.options import RunOptions

__all__ = ["import_ray", "ray_session", "limit_threads", "thread_environment", "node_id", "RAY_MISSING"]

#: The message when ``engine="ray"`` is asked for and Ray is not installed.
RAY_MISSING = ("the Ray engine needs Ray Data, an optional extra: pip install 'cvkit[ray]' "
               "(or use engine='local')")

#: Loggers of Ray that speak at INFO on every run ("Starting execution of Dataset ..."): WARNING only.
_RAY_LOGGERS = ("ray", "ray.data", "ray._private", "ray.util")


def import_ray() -> ModuleType:
    """``import ray`` (with Ray Data and pyarrow), or an ``ImportError`` saying how to install them."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{RAY_MISSING} ({exc})") from None
    return ray


def _quiet_ray_data() -> None:
    """Ray Data's own progress bars and statistics off: cvkit shows one bar of images."""
    import ray.data
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_auto_log_stats = False
    for name in _RAY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Progress bars disabled. To enable ...": that is the point
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Ray, connected, for the block; yields ``{"started": bool, "seconds": float, "nodes": int}``.

    ``address=None`` uses the Ray this process already joined, else starts a local one with
    ``num_cpus`` CPUs (default: all). ``address="auto"`` joins the cluster started on this machine
    with ``ray start --head``; ``"ray://host:10001"`` or ``"host:6379"`` join a remote one. What this
    function started (or joined) it shuts down at the end; a Ray the caller started stays up.

    Example:
        >>> with ray_session(num_cpus=1) as ray_info:      # doctest: +SKIP
        ...     ray_info["nodes"]
        1
    """
    ray = import_ray()
    start = time.perf_counter()
    started = False
    if not ray.is_initialized():
        kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING,
                        "log_to_driver": False, "configure_logging": True}
        if address is None:
            kwargs["num_cpus"] = num_cpus
        with _no_ray_banner(), quiet_stderr():  # native start-up lines; shown after all if init fails
            ray.init(address=address, **kwargs)
        started = True
    _quiet_ray_data()
    info = {"started": started, "seconds": time.perf_counter() - start,
            "nodes": sum(1 for n in ray.nodes() if n.get("Alive"))}
    try:
        yield info
    finally:
        if started:
            ray.shutdown()


@contextlib.contextmanager
def _no_ray_banner() -> Iterator[None]:
    """Keep ``ray.init``'s start-up lines ("Started a local Ray instance", advice) off the terminal."""
    levels = {name: logging.getLogger(name).level for name in _RAY_LOGGERS}
    for name in _RAY_LOGGERS:  # ERROR: also hides the advice about token authentication on each start
        logging.getLogger(name).setLevel(logging.ERROR)
    # The driver's C++ core reads this once, at ray.init: without it, every Ray Data actor pool
    # logs an "E core_worker.cc" line about restartable actors (ray-project/ray#53727). A level the
    # caller set wins; Ray's log files keep everything.
    saved = os.environ.get("RAY_BACKEND_LOG_LEVEL")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(max(level, logging.WARNING) if level else logging.WARNING)


def limit_threads(n: int = 1, options: RunOptions | None = None) -> dict[str, str]:
    """Limit this process to ``n`` compute threads and give it the run ``options``; returns the variables set.

    Why: a Ray worker is given ``num_cpus`` CPUs, but TensorFlow would otherwise start one thread
    per core of the machine in every worker and they would fight over the cores. The variables are
    OpenMP's and TensorFlow's thread counts plus ``options.to_env()`` with ``num_threads=n``
    (``CVKIT_RUNTIME``, ``CVKIT_PRECISION``, ``CVKIT_NUM_THREADS``: the one mapping of
    :class:`cvkit.options.RunOptions`), so LiteRT's interpreters and anything the worker loads read
    the same settings. Call it before the model is loaded: TensorFlow reads these variables when it
    starts (it is not imported here, so a model that runs without it does not pay for it); if it
    already started, its thread pools are set too, when that is still possible.

    Example:
        >>> env = thread_environment(2, RunOptions(precision="int8"))
        >>> env["OMP_NUM_THREADS"], env["CVKIT_NUM_THREADS"], env["CVKIT_PRECISION"]
        ('2', '2', 'int8')
    """
    n = check_param("n", n, [Interval(int, 1, None)])
    env = thread_environment(n, options)
    os.environ.update(env)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        with contextlib.suppress(RuntimeError, AttributeError):  # already initialised: too late to change
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    return env


def thread_environment(n: int, options: RunOptions | None = None) -> dict[str, str]:
    """The environment of a worker limited to ``n`` threads running ``options`` (nothing is set here).

    Example:
        >>> thread_environment(1)["CVKIT_RUNTIME"], thread_environment(1)["TF_NUM_INTEROP_THREADS"]
        ('auto', '1')
    """
    run = dataclasses.replace(options if options is not None else RunOptions(), num_threads=int(n))
    return {"OMP_NUM_THREADS": str(n), "TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": "1",
            **run.to_env()}


def node_id() -> str:
    """The id of the Ray node this process runs on, or ``"local"`` outside a Ray worker."""
    try:
        import ray
        if ray.is_initialized():
            return str(ray.get_runtime_context().get_node_id())
    except ImportError:
        pass
    return "local"
