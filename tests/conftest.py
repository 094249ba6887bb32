"""Fixtures shared by the tests: paths, the sample dataset and split.

The process-wide set-up (quiet TensorFlow, headless matplotlib, a private feature cache) is in the
repository's root ``conftest.py``, which also serves the docstring examples under ``cvkit/``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

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
def sample_split():
    """The standard split used in the notebooks and the README: test_size=0.34, random_state=0."""
    from tests.support.models import standard_split
    return standard_split()


@pytest.fixture(scope="session")
def fitted():
    """The default FeatureClassifier fitted on the standard training split, once per run. Do not change it."""
    from tests.support.models import fitted_classifier
    return fitted_classifier()


@pytest.fixture(scope="session")
def model_dir():
    """``fitted`` saved as a model folder, once per run. Read only: copy it to change it."""
    from tests.support.models import trained_model_dir
    return trained_model_dir()


@pytest.fixture(scope="session")
def model(model_dir):
    """The model folder loaded with ``cvkit.load_model`` (LiteRT), once per run."""
    import cvkit
    return cvkit.load_model(model_dir)


