"""Model folders on LiteRT: the saved ``model.tflite`` answers like Keras, old folders still load,
tampering is refused, loading never imports TensorFlow, and the int8 fast mode agrees with float32.

Uses the one trained model folder of the deploy tests (a real FeatureClassifier on the sample split).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cvkit.models._folder import ModelFormatError, load_model
from tests.support.models import test_split, trained_model_dir, trained_run_dir

REPO = Path(__file__).resolve().parents[2]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_saved_litert_graph_answers_like_keras(model_dir):
    meta = json.loads((model_dir / "metadata.json").read_text())
    tflite = (model_dir / "model.tflite").read_bytes()
    assert meta["files"]["model.tflite"] == hashlib.sha256(tflite).hexdigest()
    assert meta["litert"]["file"] == "model.tflite" and meta["litert"]["precision"] == "float32"
    assert meta["litert"]["max_abs_diff"] < 1e-4 and meta["litert"]["n_check"] >= 1
    test = test_split()
    lite, keras = load_model(model_dir), load_model(model_dir, runtime="keras")
    assert (lite.runtime_, keras.runtime_) == ("litert", "keras") and lite.keras_model_ is None
    assert "runs on litert" in repr(lite) and "runs on keras" in repr(keras)
    p_lite, p_keras = lite.predict_proba(test), keras.predict_proba(test)
    assert p_lite.shape == (len(test), 4) and np.isfinite(p_lite).all()
    assert np.abs(p_lite - p_keras).max() <= 1e-4
    assert list(lite.predict(test)) == list(keras.predict(test))
    answer, expected = lite.score_image(test.paths[0]), keras.score_image(test.paths[0])
    assert answer["label"] == expected["label"] and answer["score"] == pytest.approx(expected["score"], abs=1e-4)


def test_loading_and_scoring_on_litert_never_imports_tensorflow(model_dir):
    code = (
        "import sys, cvkit\n"
        f"m = cvkit.load_model({str(model_dir)!r})\n"
        f"print(m.runtime_, m.predict([{str(test_split().paths[0])!r}])[0], "
        f"m.score_image({str(test_split().paths[1])!r})['label'] in m.classes_)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first.startswith("litert ") and first.endswith(" True")
    assert second == "False False"
    assert "XNNPACK" not in out.stderr  # the interpreter's INFO line stays quiet


def test_tampered_litert_graph_is_refused(model_dir, tmp_path):
    folder = _copy(model_dir, tmp_path / "m")
    data = bytearray((folder / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=r"model\.tflite.*SHA-256"):
        load_model(folder)
    assert load_model(folder, runtime="keras").runtime_ == "keras"  # Keras never reads it
    (folder / "model.tflite").unlink()
    (folder / "model.tflite").symlink_to(model_dir / "model.tflite")  # right bytes, but not a file of the folder
    with pytest.raises(ModelFormatError, match="symbolic link"):
        load_model(folder)


@pytest.mark.slow
def test_folder_saved_before_litert_is_converted_once_into_the_cache(model_dir, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("CVKIT_CACHE_DIR", str(tmp_path / "cache"))
    folder = _copy(model_dir, tmp_path / "old")
    (folder / "model.tflite").unlink()
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["files"]["model.tflite"], meta["litert"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    model = load_model(folder)
    err = capfd.readouterr().err
    assert model.runtime_ == "litert" and "converting it for LiteRT once" in err and len(err.strip().splitlines()) == 1
    cached = list((tmp_path / "cache" / "models").glob("*.tflite"))
    keras_sha = hashlib.sha256((folder / "model.keras").read_bytes()).hexdigest()
    assert [p.name for p in cached] == [f"{keras_sha}.tflite"]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before  # folder untouched
    test = test_split()
    reference = load_model(model_dir).predict_proba(test)
    assert np.abs(model.predict_proba(test) - reference).max() <= 1e-4
    again = load_model(folder)  # from the cache: no notice
    assert again.runtime_ == "litert" and "converting" not in capfd.readouterr().err
    assert load_model(folder, runtime="keras").runtime_ == "keras"


def test_bad_runtime_and_precision_are_named(model_dir):
    with pytest.raises(ValueError, match="runtime must be one of.*'gpu'"):
        load_model(model_dir, runtime="gpu")
    with pytest.raises(ValueError, match="precision must be one of.*'int4'"):
        load_model(model_dir, precision="int4")
    with pytest.raises(ValueError, match="int8.*LiteRT"):
        load_model(model_dir, runtime="keras", precision="int8")


@pytest.mark.slow
def test_int8_fast_mode_agrees_with_float32(tmp_path):
    from cvkit.models import quantize_model

    folder = _copy(trained_model_dir(), tmp_path / "model")
    with pytest.raises(ModelFormatError, match="no int8 graph.*quantize_model"):
        load_model(folder, precision="int8")
    info = quantize_model(folder, images=trained_run_dir() / "split.json")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["litert_int8"] == info and info["precision"] == "int8"
    assert meta["files"]["model.int8.tflite"] == hashlib.sha256((folder / "model.int8.tflite").read_bytes()).hexdigest()
    assert "training-split images" in info["calibration"] and info["agreement"]["images"] == "test-split images"
    test = test_split()
    fast, exact = load_model(folder, precision="int8"), load_model(folder)
    assert fast.precision_ == "int8" and fast.graph_.precision == "int8" and "litert int8" in repr(fast)
    same = np.mean(fast.predict(test) == exact.predict(test))
    assert same >= 0.99 and info["agreement"]["top1_agreement"] >= 0.99
    assert info["agreement"]["n"] == len(test)
    # the novelty score runs on the int8 graph's features too: the same images are "unknown"
    noise = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    for model in (fast, exact):
        model.set_unknown_threshold(keep=0.95)
    assert fast.predict(noise).tolist() == exact.predict(noise).tolist() == ["unknown"] * 3
    assert np.mean(fast.predict(test) == exact.predict(test)) >= 0.95
    with pytest.raises(FileExistsError, match="overwrite=True"):
        quantize_model(folder, images=trained_run_dir() / "split.json")


def test_the_scoring_service_on_litert_never_imports_tensorflow(model_dir):
    """A real request through the service app (FastAPI's TestClient): LiteRT answers, TensorFlow stays out."""
    code = (
        "import sys, time, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from fastapi.testclient import TestClient\n"
        "from cvkit.serving._app import create_app\n"
        f"with TestClient(create_app({str(model_dir)!r})) as client:\n"
        "    for _ in range(300):\n"
        "        if client.get('/health').status_code == 200: break\n"
        "        time.sleep(0.1)\n"
        f"    with open({str(test_split().paths[0])!r}, 'rb') as f:\n"
        "        answer = client.post('/score', files={'image': f})\n"
        "    print(answer.status_code, client.get('/metadata').json()['runtime'])\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[:2] == ["200 litert", "False False"]
