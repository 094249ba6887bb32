"""Running the scoring service: in the foreground (``cvkit serve``), in a background process
(notebooks, benchmarks) or on a thread of the current process (tests).

Every way runs uvicorn with :mod:`cvkit.serving._connections`' protocol, so slow clients cannot
hold sockets: request headers must arrive within ``header_timeout`` seconds (default 10; 408 and
closed after), at most ``max_connections`` sockets are open per process (default 512; more are
answered 503 and closed), idle keep-alive connections close after 5 s, and the app gives a request
body ``body_timeout`` seconds (default 30; 408 after).

Settings reach the service as :class:`~cvkit.serving.ServiceConfig` fields: keywords of
:func:`serve` and :class:`BackgroundServer`, else the ``CVKIT_*`` environment
(:meth:`ServiceConfig.from_env <cvkit.serving.ServiceConfig.from_env>`), which is also how they
travel to uvicorn's worker processes and to a background server (:meth:`ServiceConfig.to_env
<cvkit.serving.ServiceConfig.to_env>`): one set of names, so a command-line default never hides
``CVKIT_RUNTIME`` or any other variable.

Example (any ASGI app; :func:`cvkit.serving.create_app` makes the scoring one):
    >>> import httpx
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> _ = app.get("/hello")(lambda: {"hello": "world"})
    >>> with ThreadedServer(app, header_timeout=5) as server:
    ...     httpx.get(server.url + "/hello").json()
    {'hello': 'world'}
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cvkit._validation import Interval, check_param
from cvkit.options import default_threads
from cvkit.serving._config import ServiceConfig
from cvkit.serving._connections import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, guarded_protocol

__all__ = ["serve", "free_port", "worker_threads", "BackgroundServer", "ThreadedServer", "WORKERS"]

#: What ``workers`` may be: uvicorn worker processes, each loading its own copy of the model.
WORKERS = [Interval(int, 1, None)]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it); the one helper for this.

    Example:
        >>> 0 < free_port() < 65536
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def worker_threads(workers: int) -> int:
    """Inference threads per worker process when ``workers`` processes serve: an even share of the cores.

    One process uses every core it may; several share them, so their interpreters do not fight
    over the same cores.

    Example:
        >>> worker_threads(1) >= worker_threads(64) == 1
        True
    """
    return max(1, default_threads() // max(1, int(workers)))


def _check_model_dir(model_dir: str | os.PathLike) -> str:
    path = Path(model_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model folder not found")
    if not (path / "metadata.json").is_file():
        raise FileNotFoundError(f"{path}: not a cvkit model folder (no metadata.json); "
                                "save one with clf.save(path)")
    return os.fspath(path)


def serve(model_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000,
          api_key: str | None = None, workers: int = 1, log_level: str = "info",
          header_timeout: float = DEFAULT_HEADER_TIMEOUT,
          max_connections: int = DEFAULT_MAX_CONNECTIONS, **service_options: Any) -> None:
    """Serve a model folder over HTTP until interrupted (what ``cvkit serve`` runs).

    Binds ``127.0.0.1`` unless told otherwise. ``workers`` (a positive int) uvicorn processes
    serve, each with its own copy of the model and, unless ``num_threads`` says otherwise, an even
    share of the cores (:func:`worker_threads`). ``api_key`` and ``service_options`` are
    :class:`~cvkit.serving.ServiceConfig` fields (``max_request_bytes``, ``max_batch_size``,
    ``runtime``, ...); those not given (or None) come from the ``CVKIT_*`` environment, so the API
    key can stay out of the process list in ``CVKIT_API_KEY``. ``header_timeout`` and
    ``max_connections`` guard against slow clients (see the module docstring).

    Example (it serves until interrupted):
        >>> serve("runs/sample/model", port=8000, max_batch_size=16)   # doctest: +SKIP
    """
    import uvicorn

    model_dir = _check_model_dir(model_dir)
    check_param("workers", workers, WORKERS)
    protocol = guarded_protocol(header_timeout, max_connections)
    ServiceConfig.check_fields(service_options, owner="serve")
    config = ServiceConfig.from_env(api_key=api_key, **service_options)
    if workers > 1 and config.num_threads is None:
        config = dataclasses.replace(config, num_threads=worker_threads(workers))
    # The app is built in each worker from these variables (uvicorn needs an import string for
    # several workers), so one code path serves both cases.
    os.environ.update(config.to_env())
    os.environ["CVKIT_MODEL_DIR"] = os.path.abspath(model_dir)
    print(f"cvkit: serving {model_dir} at http://{host}:{port} (POST /score, GET /health, "
          f"GET /metadata){' with an API key' if config.api_key else ''}", flush=True)
    uvicorn.run("cvkit.serving._app:create_app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, timeout_graceful_shutdown=10, http=protocol)


class ThreadedServer:
    """A real uvicorn server for an app, on a thread of this process (for tests and quick demos).

    ``header_timeout`` and ``max_connections`` are as for :func:`serve`.

    Example:
        >>> import cvkit, httpx
        >>> from cvkit.serving import create_app
        >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> with ThreadedServer(create_app(clf)) as server:
        ...     _ = server.wait_until_ready()
        ...     with open("sample_data/bird/owl.jpg", "rb") as image:
        ...         answer = httpx.post(server.url + "/score", files={"image": image}).json()
        >>> answer["predictions"][0]["label"]
        'bird'
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None,
                 log_level: str = "warning", header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS):
        self.app, self.host = app, host
        self.port = port or free_port(host)
        self.log_level = log_level
        self.protocol = guarded_protocol(header_timeout, max_connections)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ThreadedServer:
        """Start serving; returns once the socket accepts connections."""
        import uvicorn

        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level=self.log_level,
                                lifespan="on", http=self.protocol)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="cvkit-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn failed to start on {self.url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start on {self.url} within {timeout}s")
            time.sleep(0.02)
        return self

    def wait_until_ready(self, timeout: float = 120.0) -> ThreadedServer:
        """Block until ``GET /health`` says the model is loaded."""
        _wait_for_health(self.url, timeout, alive=lambda: self._thread is not None
                         and self._thread.is_alive())
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to shut down and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _wait_for_health(url: str, timeout: float, alive: Any = None, workers: int = 1) -> dict:
    """Poll ``/health`` until ``workers`` distinct worker processes (its ``pid``) have said ready.

    Each poll is a new connection, which the OS hands to any worker; with one ready answer only, a
    multi-worker server would still answer 503 from the workers that are loading their model.
    """
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer yet"
    ready_pids: set = set()
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the scoring service at {url} stopped before it was ready ({last})")
        try:
            response = httpx.get(url + "/health", timeout=2.0)
            body = response.json()
            if response.status_code == 200 and body.get("ready"):
                ready_pids.add(body.get("pid"))
                if len(ready_pids) >= workers or body.get("pid") is None:
                    return body
                last = f"{len(ready_pids)} of {workers} workers ready"
                time.sleep(0.05)
                continue
            if body.get("status") == "error":
                raise RuntimeError(f"the scoring service could not load its model: {body.get('detail')}")
            last = f"HTTP {response.status_code}: {body.get('status')}"
        except (httpx.TransportError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise TimeoutError(f"the scoring service at {url} was not ready within {timeout}s ({last})")


class BackgroundServer:
    """The scoring service in a separate process on a free loopback port (notebooks, benchmarks).

    Start it, wait for ``/health``, talk HTTP to :attr:`url`, then :meth:`stop` it (or use
    ``with``). Its output goes to a log file (:attr:`log_path`, :meth:`logs`) so nothing blocks.

    Parameters
    ----------
    model_dir : the model folder to serve.
    port : ``None`` picks a free port.
    host : ``127.0.0.1`` by default: only this machine can connect.
    api_key : passed through the environment, not the command line.
    workers : uvicorn worker processes, each loading the model; :meth:`wait_until_ready` waits
        for all of them.
    service_options : :class:`~cvkit.serving.ServiceConfig` fields, checked here; with those not
        given, they reach the process through the environment (:meth:`ServiceConfig.to_env
        <cvkit.serving.ServiceConfig.to_env>`), never on its command line.

    Example (it starts a process that loads the model, which takes a few seconds):
        >>> with BackgroundServer("runs/sample/model", max_batch_size=8) as server:   # doctest: +SKIP
        ...     server.wait_until_ready()["ready"]
        True
    """

    def __init__(self, model_dir: str | os.PathLike, port: int | None = None,
                 host: str = "127.0.0.1", api_key: str | None = None, workers: int = 1,
                 python: str | None = None, **service_options: Any):
        self.model_dir = _check_model_dir(model_dir)
        self.host = host
        self.port = port or free_port(host)
        self.api_key = api_key
        self.workers = check_param("workers", workers, WORKERS)
        self.python = python or sys.executable
        ServiceConfig.check_fields(service_options, owner="BackgroundServer")
        ServiceConfig(**{k: v for k, v in service_options.items() if v is not None})  # refused here, not in the child
        self.service_options = service_options
        self.process: subprocess.Popen | None = None
        self.log_path: str | None = None
        self._log = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Launch ``cvkit serve MODEL_DIR --port PORT`` (as ``python -m cvkit.cli``) in the background."""
        if self.process is not None and self.process.poll() is None:
            return self
        env = dict(os.environ)
        env.pop("CVKIT_API_KEY", None)  # only the key given here guards this server
        env.update(ServiceConfig.from_env(env, api_key=self.api_key, **self.service_options).to_env())
        fd, self.log_path = tempfile.mkstemp(prefix="cvkit-serve-", suffix=".log")
        self._log = os.fdopen(fd, "w")
        cmd = [self.python, "-m", "cvkit.cli", "serve", self.model_dir, "--host", self.host,
               "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning"]
        env["CVKIT_EXIT_WITH_PARENT"] = str(os.getpid())  # no orphan if this process dies
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        return self

    def wait_until_ready(self, timeout: float = 180.0) -> dict:
        """Block until ``/health`` reports the model loaded (in every worker process); returns its
        JSON. Raises with the logs if the process dies or the timeout passes."""
        if self.process is None:
            raise RuntimeError("call start() first")
        try:
            return _wait_for_health(self.url, timeout, alive=lambda: self.process.poll() is None,
                                    workers=self.workers)
        except (RuntimeError, TimeoutError) as exc:
            raise type(exc)(f"{exc}\n--- server log ---\n{self.logs()[-4000:]}") from None

    def logs(self) -> str:
        """Everything the server process printed so far."""
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        return Path(self.log_path).read_text(errors="replace")

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); returns its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError, AttributeError):
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError, AttributeError):
                    self.process.kill()
                self.process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)
        return self.process.returncode

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BackgroundServer {self.url} serving {self.model_dir!r} ({state})>"
