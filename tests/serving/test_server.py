"""The service as users start it: a separate `cvkit serve` process (what BackgroundServer and
notebook 03 run), on a free loopback port, stopped by the test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.models import test_split, trained_model_dir

pytestmark = pytest.mark.slow


def test_background_server_process_scores_and_stops_cleanly():
    from cvkit.serving import BackgroundServer, Client
    paths = test_split().paths[:3]
    server = BackgroundServer(trained_model_dir(), api_key="process-test-key", max_batch_size=8,
                              runtime="keras")  # not the default: it must reach the process
    assert server.host == "127.0.0.1"
    with server:
        health = server.wait_until_ready(timeout=240)
        assert health["ready"] is True
        assert server.process.args[1:4] == ["-m", "cvkit.cli", "serve"]
        assert "--api-key" not in " ".join(server.process.args)  # the key travels in the environment
        with Client(server.url, api_key="process-test-key") as client:
            answers = client.score(paths)
            meta = client.metadata()
        assert httpx.post(server.url + "/score", files=[("image", open(paths[0], "rb"))]).status_code == 401
        pid = server.process.pid
    assert not server.running
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: exit status 0 or -SIGTERM
    assert server.process.returncode in (0, -signal.SIGTERM), server.logs()
    assert "scoring service stopped after 1 scored request(s), 3 image(s)" in server.logs()
    assert meta["limits"]["max_batch_size"] == 8
    assert (meta["runtime"], meta["precision"]) == ("keras", "float32")
    import cvkit
    assert [a["label"] for a in answers] == list(cvkit.load_model(trained_model_dir()).predict(paths))
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server process is gone


def test_serve_command_reports_a_missing_model_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cvkit.cli", "serve", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "cvkit serve: error:" in result.stderr and "model folder not found" in result.stderr
    direct = subprocess.run([sys.executable, "-m", "cvkit.cli", "serve", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert direct.returncode == 2 and "no metadata.json" in direct.stderr


def test_background_server_exits_when_its_parent_dies():
    """A crashed notebook kernel must not leave a server running: the server watches its parent."""
    code = ("import os, sys\n"
            "from cvkit.serving import BackgroundServer\n"
            "server = BackgroundServer(sys.argv[1]).start()\n"
            "server.wait_until_ready(timeout=240)\n"
            "print(server.process.pid, server.url, flush=True)\n"
            "os._exit(0)  # die without atexit handlers, like a killed kernel\n")
    parent = subprocess.run([sys.executable, "-c", code, str(trained_model_dir())],
                            capture_output=True, text=True, timeout=300)
    assert parent.returncode == 0, parent.stderr[-2000:]
    pid_text, url = parent.stdout.split()
    pid = int(pid_text)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the server outlived its parent by 30 s")
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)
