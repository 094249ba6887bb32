"""Run Python code in a fresh process where the training extra is "not installed".

``BLOCK_TRAINING`` is a prelude that puts a finder first on ``sys.meta_path`` which refuses to import
TensorFlow, Keras, imgaug and cleanlab (``ModuleNotFoundError`` naming the module, as when the package
is absent): the process sees the core install only, whatever this environment has installed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: What the core install lacks (top-level module names of the extra cvkit[train]).
TRAINING_MODULES = ("tensorflow", "keras", "imgaug", "cleanlab")

BLOCK_TRAINING = f"""
import sys
class _NotInstalled:
    names = {set(TRAINING_MODULES)!r}
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in cls.names:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled)
"""


def run_without_training(code: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> tuple:
    """Run ``code`` after :data:`BLOCK_TRAINING` in a fresh interpreter (cvkit importable from the
    repository); returns ``(completed_process, the JSON its last stdout line holds or None)``."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    run = subprocess.run([sys.executable, "-c", BLOCK_TRAINING + code], cwd=cwd, env=environment,
                         capture_output=True, text=True, timeout=timeout)
    lines = run.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    return run, result
