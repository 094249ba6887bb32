"""A private JupyterLab + headless Chromium session, for the browser test and the screenshot script.

Not part of the public API (it needs Playwright and a system Chromium, which cvkit itself does not).
``LabSession`` starts ``jupyter lab`` on a free local port with a random token and private config,
data, runtime and settings folders (nothing is read from or written to the user's ~/.jupyter), then
drives Debian's ``/usr/bin/chromium`` through Playwright. Playwright cannot download its own browser
offline, so it is given the system one.

Example:
    >>> with LabSession(root="/tmp/work") as lab:                              # doctest: +SKIP
    ...     page = lab.open_notebook("notebooks/00_annotate.ipynb")
    ...     lab.run_all(page)
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cvkit.serving._server import free_port

CHROMIUM = os.environ.get("CVKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


class LabSession:
    """Start JupyterLab serving ``root`` and a headless Chromium; stop both on exit.

    ``log`` collects the server's output (shown when something fails). ``timeout`` (seconds) bounds
    every wait. Pages come from :meth:`open_notebook`.
    """

    def __init__(self, root: str | os.PathLike, timeout: float = 120.0,
                 viewport: tuple[int, int] = (1280, 1000)):
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.viewport = viewport
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._home = Path(tempfile.mkdtemp(prefix="cvkit-lab-"))
        self._server: subprocess.Popen | None = None
        self._pw: Any = None
        self.context: Any = None

    # ------------------------------------------------------------------ server
    def _write_config(self) -> dict[str, str]:
        config, data, runtime, settings, workspaces = (self._home / d for d in
                                                       ("config", "data", "runtime", "settings", "ws"))
        for d in (config, data, runtime, settings, workspaces):
            d.mkdir(parents=True)
        (config / "jupyter_server_config.json").write_text(json.dumps({
            "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                       "expose_app_in_browser": True},
        }))
        notification = settings / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(data),
                   JUPYTER_RUNTIME_DIR=str(runtime), JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(workspaces), TF_CPP_MIN_LOG_LEVEL="2",
                   MPLBACKEND="module://matplotlib_inline.backend_inline")
        return env

    def start_server(self) -> None:
        env = self._write_config()
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}",
               "--ip=127.0.0.1", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}", "--ServerApp.port_retries=0"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self._log_path = self._home / "server.log"
        self._log = open(self._log_path, "wb")
        self._server = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self._server.returncode}:\n{self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer within {self.timeout:.0f} s:\n{self.log}")

    @property
    def log(self) -> str:
        """The server's output so far (its last 6000 characters)."""
        try:
            return self._log_path.read_text(errors="replace")[-6000:]
        except (AttributeError, OSError):
            return ""

    def stop_server(self) -> None:
        if self._server is None:
            return
        if self._server.poll() is None:
            try:  # a clean shutdown also stops the kernels it started
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except (urllib.error.URLError, OSError):
                pass
            try:
                self._server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._server.pid, signal.SIGTERM)
                try:
                    self._server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self._server.pid, signal.SIGKILL)
                    self._server.wait()
        self._log.close()
        self._server = None

    # ------------------------------------------------------------------ browser
    def start_browser(self) -> None:
        from playwright.sync_api import sync_playwright

        if not os.path.exists(CHROMIUM):
            raise FileNotFoundError(f"{CHROMIUM}: Chromium not found; install it with "
                                    "`apt-get install -y chromium chromium-driver`")
        self._pw = sync_playwright().start()
        profile = tempfile.mkdtemp(prefix="profile-", dir=self._home)  # a fresh --user-data-dir
        self.context = self._pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": self.viewport[0], "height": self.viewport[1]})
        self.context.set_default_timeout(self.timeout * 1000)

    def stop_browser(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None

    # ------------------------------------------------------------------ notebooks
    def open_notebook(self, relpath: str) -> Any:
        """Open ``relpath`` (relative to ``root``) in JupyterLab; returns the page once the kernel is idle."""
        page = self.context.new_page()
        page.goto(f"{self.url}/lab/tree/{relpath}?token={self.token}&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", state="attached")
        page.wait_for_function("() => window.jupyterapp !== undefined")
        self.wait_kernel_idle(page)
        return page

    def wait_kernel_idle(self, page: Any) -> None:
        """Wait until the current notebook's kernel is started and idle."""
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const k = w && w.sessionContext && w.sessionContext.session
                          && w.sessionContext.session.kernel;
                return k && k.status === 'idle' && !w.sessionContext.isRestarting;
            }""")

    def run_all(self, page: Any) -> None:
        """Clear all outputs, then run every cell (JupyterLab's "Run All Cells") and wait for the kernel.

        The command's promise resolves once the cells have run (or one failed: see
        :meth:`cell_errors`).
        """
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
        page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        self.wait_kernel_idle(page)

    def cell_errors(self, page: Any) -> list[str]:
        """Text of error outputs in the open notebook (empty when every cell ran cleanly)."""
        return page.evaluate(
            """() => {
                const nb = window.jupyterapp.shell.currentWidget.content;
                const found = [];
                for (const c of nb.widgets) {
                    if (c.model.type !== 'code') continue;
                    const outs = c.model.outputs;
                    for (let i = 0; i < outs.length; i++) {
                        const o = outs.get(i);
                        if (o.type === 'error') found.push(JSON.stringify(o.toJSON()));
                    }
                }
                return found;
            }""")

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> LabSession:
        try:
            self.start_server()
            self.start_browser()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop the browser and the server and remove the private folders."""
        try:
            self.stop_browser()
        finally:
            self.stop_server()
            shutil.rmtree(self._home, ignore_errors=True)

    def __exit__(self, *exc: Any) -> None:
        self.close()
