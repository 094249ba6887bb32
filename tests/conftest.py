"""Shared pytest set-up: quiet TensorFlow, headless matplotlib, a private feature cache, paths."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports TensorFlow or matplotlib.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One feature cache for the whole run (never the user's ~/.cache): tests that featurize the same
# sample images share it, which keeps the suite fast; tests of the cache itself use their own.
_CACHE = tempfile.mkdtemp(prefix="cvkit-test-cache-")
os.environ["CVKIT_CACHE_DIR"] = _CACHE

import matplotlib  # noqa: E402
import pytest  # noqa: E402

# Headless figures in this process only. Not through MPLBACKEND: that would reach the Jupyter
# kernels nbval and papermill start, and notebooks must show their figures inline.
matplotlib.use("Agg")

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    """The project's root folder."""
    return REPO


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """``sample_data/``: 104 real photos in 4 class folders, plus tags.tsv."""
    assert (SAMPLE_DATA / "tags.tsv").is_file(), "sample_data/ is missing: run scripts/build_sample_data.py"
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def sample_dataset(sample_dir):
    """The sample dataset, built once per test run."""
    from cvkit import ImageDataset
    return ImageDataset.from_directory(sample_dir)


@pytest.fixture(scope="session")
def sample_split(sample_dataset):
    """The standard split used in the notebooks and the README: test_size=0.34, random_state=0."""
    return sample_dataset.split(test_size=0.34, stratify=True, random_state=0)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close matplotlib figures after each test so memory stays flat."""
    yield
    import sys
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
