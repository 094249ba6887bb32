"""The trained models the tests share: one fitted classifier and one saved model folder per test run.

The model is a real ``FeatureClassifier`` (EfficientNet-Lite0 features + the default head) fitted on
the standard sample split, built once per process (these functions are cached) and saved once with
``clf.save``. ``tests/conftest.py`` hands them to tests as the session fixtures ``sample_split``,
``fitted``, ``model`` and ``model_dir``; module-level helpers (``test_split``) read them directly.
Tests must not change them: a test that needs to change a model copies the folder or clones the
classifier.
"""
from __future__ import annotations

import atexit
import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "sample_data"


@functools.cache
def standard_split() -> tuple:
    """``(train, test)``: the sample photos split as the notebooks and the README split them."""
    from cvkit.data import ImageDataset

    return ImageDataset.from_directory(SAMPLE_DATA).split(test_size=0.34, stratify=True, random_state=0)


@functools.cache
def fitted_classifier():
    """The default ``FeatureClassifier`` fitted on the standard training split (once per run)."""
    from cvkit.classifiers import FeatureClassifier

    return FeatureClassifier(verbose=False).fit(standard_split()[0])


@functools.cache
def trained_run_dir() -> Path:
    """A folder laid out like notebook 01's output: ``model/`` (the saved model) and ``split.json``."""
    from cvkit.data import save_split

    train, test = standard_split()
    root = Path(tempfile.mkdtemp(prefix="cvkit-deploy-tests-"))
    atexit.register(shutil.rmtree, root, True)
    fitted_classifier().save(root / "model")
    save_split(root / "split.json", train, test)
    return root


def trained_model_dir() -> Path:
    """The saved model folder (see :func:`trained_run_dir`)."""
    return trained_run_dir() / "model"


def test_split():
    """The held-out images of the standard split, as an ImageDataset."""
    from cvkit.data import load_split
    return load_split(trained_run_dir() / "split.json")[1]


test_split.__test__ = False  # not a test, despite the name

_DROP = object()


def edited_model_copy(folder: Path, **fields) -> Path:
    """A copy of the session's model folder at ``folder`` whose ``metadata.json`` has ``fields`` set
    (a field given as ``edited_model_copy.DROP`` is removed, as in a folder from before it existed)."""
    import json
    shutil.copytree(trained_model_dir(), folder)
    meta = json.loads((folder / "metadata.json").read_text())
    for name, value in fields.items():
        if value is _DROP:
            meta.pop(name, None)
        else:
            meta[name] = value
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


edited_model_copy.DROP = _DROP


def older_format_copy(folder: Path) -> Path:
    """The session's model as cvkit 0.1 saved it, at ``folder``: format 1, one Keras graph from pixels
    to probabilities (``"head": "keras"``), no ``model.tflite`` (so LiteRT converts it once, as for
    folders saved before LiteRT), no calibration, decision rule or novelty scorer."""
    import hashlib
    import json

    from cvkit.models import load_model
    from cvkit.models._export import keras_probability_model

    source = trained_model_dir()
    loaded = load_model(source, runtime="keras")
    loaded.temperature_ = 1.0  # cvkit 0.1 did not calibrate
    folder.mkdir(parents=True)
    keras_probability_model(loaded).save(folder / "model.keras")
    meta = json.loads((source / "metadata.json").read_text())
    for name in ("calibration", "decision", "novelty", "litert"):
        meta.pop(name, None)
    meta.update(format_version=1, head="keras", output="probabilities", estimator=None,
                files={"model.keras": hashlib.sha256((folder / "model.keras").read_bytes()).hexdigest()})
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


class CountingHTTPServer:
    """A loopback HTTP server that serves one body and counts every request it gets.

    Used to prove the scoring service never fetches URLs named in a request, and to give
    ``score_image`` a real URL to fetch on the client side.
    """

    def __init__(self, body: bytes, content_type: str = "image/jpeg"):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CountingHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def litert_only_copy(model_dir: Path, folder: Path) -> Path:
    """A copy of the model folder ``model_dir`` at ``folder`` without its Keras graph (``model.keras``
    removed, and from the hashed file list): a folder that holds only LiteRT, as a small server keeps it."""
    import json

    shutil.copytree(model_dir, folder)
    (folder / "model.keras").unlink()
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["files"]["model.keras"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder
