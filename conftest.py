"""Process-wide pytest set-up, for the tests in ``tests/`` and the docstring examples in ``cvkit/``.

- TensorFlow is quiet and matplotlib headless in this process (not through ``MPLBACKEND``, which
  would reach the Jupyter kernels nbval and papermill start: notebooks show figures inline).
- One private feature cache for the whole run, never the user's ``~/.cache``.
- Docstring examples (``--doctest-modules`` over ``cvkit/``) find ready-made objects in their
  namespace: ``np``, ``cvkit``, ``ds`` (the sample dataset), ``train``/``test`` (its standard split),
  ``clf`` (a FeatureClassifier fitted on ``train``), ``model_dir`` (``clf`` saved), ``photo`` (one
  sample image) and ``tmp`` (a fresh folder per example, the only place an example writes).
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


@pytest.fixture(autouse=True)
def _close_figures():
    """Close matplotlib figures after each test so memory stays flat."""
    yield
    import sys
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def _doctest_objects(tmp_path_factory) -> dict:
    """The sample dataset, its split, a fitted classifier and its model folder: built once."""
    import numpy as np

    import cvkit

    ds = cvkit.ImageDataset.from_directory(REPO / "sample_data")
    train, test = ds.split(test_size=0.34, random_state=0)
    clf = cvkit.FeatureClassifier(random_state=0).fit(train)
    model_dir = str(tmp_path_factory.mktemp("doctest-model") / "model")
    clf.save(model_dir)
    return {"np": np, "cvkit": cvkit, "ds": ds, "train": train, "test": test, "clf": clf,
            "model_dir": model_dir, "photo": "sample_data/bird/adelaide-rosella.jpg"}


@pytest.fixture(autouse=True)
def _doctest_namespace(request, doctest_namespace, tmp_path, monkeypatch):
    """Fill a docstring example's namespace (only for doctests: unit tests never pay for it)."""
    if type(request.node).__name__ != "DoctestItem":
        return
    doctest_namespace.update(request.getfixturevalue("_doctest_objects"))
    doctest_namespace["tmp"] = str(tmp_path)
    monkeypatch.chdir(REPO)  # examples name sample_data/ relative to the repository root
