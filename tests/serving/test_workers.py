"""`cvkit serve --workers 2` for real: a BackgroundServer whose uvicorn supervisor runs two worker
processes, each loading its own copy of the model from the CVKIT_* environment.

Processes are found through /proc (Linux), so no extra dependency is needed.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.models import test_split, trained_model_dir

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")]


# ---------------------------------------------------------------------- /proc helpers
def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            found.update(int(x) for x in Path(path).read_text().split())
        except OSError:  # the task ended while we looked
            pass
    return found


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").partition("=")[::2] for item in raw if item)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by whoever adopted it) is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_all_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if _alive(pid)}
        if not left:
            return left
        time.sleep(0.1)
    return {pid for pid in pids if _alive(pid)}


# ---------------------------------------------------------------------- the test
def test_two_workers_both_serve_the_model_and_stop_without_leftovers():
    import cvkit
    from cvkit.serving import BackgroundServer

    model_dir = trained_model_dir()
    paths = test_split().paths[:8]
    expected = cvkit.load_model(model_dir).predict_proba(paths)
    classes = list(cvkit.load_model(model_dir).classes_)

    server = BackgroundServer(model_dir, workers=2, max_batch_size=4)
    leftovers: set[int] = set()
    try:
        server.start()
        health = server.wait_until_ready(timeout=240)
        assert health["ready"] is True
        # Ready means every worker is ready: sample /health until both pids answered.
        answers: dict[int, dict] = {}
        for _ in range(200):
            body = httpx.get(server.url + "/health", timeout=10).json()
            answers.setdefault(body["pid"], body)
            if len(answers) == 2:
                break
        assert len(answers) == 2 and all(a["ready"] for a in answers.values()), answers
        assert server.process.args[server.process.args.index("--workers") + 1] == "2"
        supervisor = server.process.pid

        # Two uvicorn worker processes (multiprocessing "spawn" children) under the supervisor.
        family = _descendants(supervisor)
        workers = {pid for pid in family if "spawn_main" in _cmdline(pid)}
        assert len(workers) == 2, {pid: _cmdline(pid) for pid in family}
        leftovers = family | {supervisor}
        for pid in workers:  # the settings travel to every worker through the environment
            env = _environ(pid)
            assert env["CVKIT_MODEL_DIR"] == os.path.abspath(model_dir)
            assert env["CVKIT_MAX_BATCH_SIZE"] == "4"

        # wait_until_ready waits for every worker: no request may meet one that is still loading.
        def score(path: str) -> list[float]:
            with open(path, "rb") as f:
                response = httpx.post(server.url + "/score", files=[("image", (Path(path).name, f))],
                                      timeout=120)
            assert response.status_code == 200, response.text
            answer = response.json()["predictions"][0]
            return [answer["scores"][c] for c in classes]

        sent = 0
        per_worker: dict[int, dict] = {}
        with ThreadPoolExecutor(8) as pool:
            for _ in range(5):  # bounded: the OS spreads connections over the workers, not evenly
                got = np.array(list(pool.map(score, paths * 2)))
                sent += len(got)
                np.testing.assert_allclose(got, np.concatenate([expected, expected]), atol=1e-5)
                # /health names the worker that answered; poll until both have reported
                # their counters since this burst.
                per_worker.clear()
                for _ in range(200):
                    body = httpx.get(server.url + "/health", timeout=10).json()
                    per_worker[body["pid"]] = body["batching"]
                    if len(per_worker) == 2:
                        break
                assert set(per_worker) == workers  # answers come from those two processes
                if all(stats["requests"] > 0 for stats in per_worker.values()):
                    break
        assert all(stats["requests"] > 0 for stats in per_worker.values()), per_worker
        assert sum(stats["requests"] for stats in per_worker.values()) == sent
        assert max(stats["largest_batch"] for stats in per_worker.values()) <= 4

        exit_code = server.stop(timeout=15)
        assert exit_code in (0, -signal.SIGTERM), server.logs()
        left = _wait_all_gone(leftovers, timeout=15)
        assert not left, {pid: _cmdline(pid) for pid in left}
        leftovers = set()
        assert server.logs().count("scoring service stopped after") == 2  # both shut down cleanly
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/health", timeout=2)
        with socket.socket() as sock:  # nothing listens on the port any more
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((server.host, server.port))
            sock.listen()
    finally:
        server.stop(timeout=15)
        for pid in leftovers:  # never leak processes from a failed test (ours, by pid)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_zero_workers_is_refused_clearly(tmp_path, monkeypatch):
    import uvicorn

    from cvkit.serving import BackgroundServer, serve

    model_dir = tmp_path / "model"  # only the folder check runs before the workers check
    model_dir.mkdir()
    (model_dir / "metadata.json").write_text(json.dumps({}))

    result = subprocess.run([sys.executable, "-m", "cvkit.cli", "serve", str(model_dir),
                             "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "cvkit serve: error:" in result.stderr and "--workers" in result.stderr
    assert "got '0'" in result.stderr

    def must_not_run(*args, **kwargs):
        raise AssertionError("serve() started uvicorn despite workers=0")

    monkeypatch.setattr(uvicorn, "run", must_not_run)
    before = dict(os.environ)
    with pytest.raises(ValueError, match=r"workers must be a positive int, got 0"):
        serve(model_dir, workers=0)
    assert dict(os.environ) == before  # refused before touching the environment
    with pytest.raises(ValueError, match="workers"):
        BackgroundServer(model_dir, workers=0)  # refused before any process starts


def test_ready_waits_until_every_worker_has_said_ready():
    """Deterministic check of the rule the real test above can only catch when load times differ:
    a /health that answers for two workers in turn, one still loading for its first 3 answers."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from cvkit.serving import ThreadedServer
    from cvkit.serving._server import _wait_for_health

    calls = {101: 0, 202: 0}
    app = FastAPI()

    @app.get("/health")
    async def health() -> JSONResponse:
        pid = 101 if sum(calls.values()) % 2 == 0 else 202
        calls[pid] += 1
        if pid == 202 and calls[pid] <= 3:
            return JSONResponse({"status": "loading", "ready": False, "pid": pid}, status_code=503)
        return JSONResponse({"status": "ok", "ready": True, "pid": pid})

    with ThreadedServer(app) as running:
        first = _wait_for_health(running.url, timeout=30, workers=1)
        assert first["pid"] == 101 and calls == {101: 1, 202: 0}  # one worker: first ready answer
        both = _wait_for_health(running.url, timeout=30, workers=2)
        assert both["ready"] and calls[202] == 4  # returned at worker 202's first ready answer
        with pytest.raises(TimeoutError, match="2 of 3 workers ready"):
            _wait_for_health(running.url, timeout=1.5, workers=3)
