"""Process-wide pytest set-up, for the tests in ``tests/`` and the docstring examples in ``cvkit/``.

- TensorFlow is quiet and matplotlib headless in this process (not through ``MPLBACKEND``, which
  would reach the Jupyter kernels nbval and papermill start: notebooks show figures inline).
- One private feature cache for the whole run, never the user's ``~/.cache``.
- Docstring examples (``--doctest-modules`` over ``cvkit/``) run from the repository root and
  stand alone: nothing is injected into their namespace.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports TensorFlow or matplotlib.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests that featurize the same sample images share the cache, which keeps the suite fast; tests
# of the cache itself use their own folders.
os.environ["CVKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="cvkit-test-cache-")

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Notebook cells (nbval) belong to the slow lane: ``-m "not slow"`` leaves the notebooks out."""
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close matplotlib figures after each test so memory stays flat."""
    yield
    import sys
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(autouse=True)
def _doctest_folder(request, monkeypatch):
    """Docstring examples run from the repository root (they name ``sample_data/`` relative to it);
    each example makes everything else it uses, so a reader can paste it as it is."""
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(REPO)
