"""Export to SavedModel and TFLite (float32, float16, int8), checked against the Keras model."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.support.models import test_split, trained_model_dir, trained_run_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A private copy of the trained run (model/ + split.json), since exports write into it; the
    model answers "no decision" below 0.9 (the rule its exports' sidecar must carry)."""
    root = tmp_path_factory.mktemp("export_run")
    from cvkit.data import load_split, save_split
    from cvkit.models import save_thresholds
    shutil.copytree(trained_model_dir(), root / "model")
    save_thresholds(root / "model", 0.9)
    save_split(root / "split.json", *load_split(trained_run_dir() / "split.json"))
    return root / "model"


@pytest.fixture(scope="module")
def model(model_dir):
    import cvkit
    return cvkit.load_model(model_dir)


@pytest.fixture(scope="module")
def pixels(model):
    from cvkit.data import read_image
    return np.stack([read_image(p, size=model.input_size_) for p in test_split().paths[:12]])


@pytest.fixture(scope="module")
def tflite_float32(model_dir):
    """Exported by `cvkit export`, checked on the split next to the model."""
    from cvkit.cli import main
    assert main(["export", str(model_dir), "--format", "tflite"]) == 0
    return model_dir / "export" / "model.tflite"


def test_savedmodel_agrees_exactly_and_loads_with_tensorflow(model, model_dir, pixels):
    import tensorflow as tf

    from cvkit.models._export import export_model
    result = export_model(model, "savedmodel", images=test_split())
    assert result.path == str(model_dir / "export" / "saved_model")
    assert result.n_images == len(test_split()) and result.images == "images"
    assert result.agreement == 1.0 and result.max_abs_diff < 1e-4
    assert result.size_bytes > 1_000_000
    loaded = tf.saved_model.load(result.path)
    proba = np.asarray(loaded.serve(tf.constant(pixels, tf.float32)))
    np.testing.assert_allclose(proba, model.predict_proba(pixels), atol=1e-4)
    labels = (model_dir / "export" / "saved_model" / "labels.txt").read_text().split()
    assert labels == list(model.classes_)
    saved = json.loads((model_dir / "export" / "saved_model" / "export.json").read_text())
    assert saved["agreement"] == 1.0 and saved["format"] == "savedmodel"


def test_tflite_float32_from_the_command_line_uses_split_json(tflite_float32, model, pixels, capsys):
    from cvkit.models._export import TFLiteModel
    report = json.loads(tflite_float32.with_name("model.export.json").read_text())
    assert report["images"] == "test-split images" and report["n_images"] == 36
    assert report["agreement"] == 1.0 and report["max_abs_diff"] < 1e-4
    proba = TFLiteModel(tflite_float32).predict_proba(pixels)
    np.testing.assert_allclose(proba, model.predict_proba(pixels), atol=1e-4)
    assert (tflite_float32.parent / "labels.txt").read_text().split() == list(model.classes_)
    # the sidecar carries the model's decision rule: an app applying it answers as cvkit does
    from cvkit.models._decision import DecisionRule
    assert report["decision"]["thresholds"] == 0.9 and report["classes"] == list(model.classes_)
    labels, _ = DecisionRule.from_metadata(report["decision"], report["classes"]).decide(proba, report["classes"])
    assert labels.tolist() == model.predict(pixels).tolist()


def test_float16_halves_the_file_and_agrees(model, model_dir, tflite_float32):
    from cvkit.models._export import export_model
    result = export_model(model, "tflite", quantize="float16")
    assert result.path.endswith("model_float16.tflite")
    assert result.images == "test-split images"
    assert result.size_bytes < 0.6 * tflite_float32.stat().st_size
    assert result.agreement >= 0.97 and result.max_abs_diff < 0.05
    assert "agrees with Keras" in str(result)


def test_int8_quarters_the_weights_and_mostly_agrees(model, model_dir, tflite_float32):
    from cvkit.models._export import export_model
    result = export_model(model_dir, "tflite", quantize="int8", output=model_dir.parent / "q" / "m8.tflite")
    assert result.size_bytes < 0.4 * tflite_float32.stat().st_size
    assert result.calibration == "training-split images"  # checked on test images it never saw
    assert result.images == "test-split images"
    assert result.agreement >= 0.85, str(result)
    assert (model_dir.parent / "q" / "m8.export.json").is_file()


def test_bad_arguments_are_clear_errors(model):
    from cvkit.models._export import export_model
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(model, "onnx")
    with pytest.raises(ValueError, match="quantize applies to format='tflite' only"):
        export_model(model, "savedmodel", quantize="int8")
    with pytest.raises(ValueError, match="quantize must be one of"):
        export_model(model, "tflite", quantize="int4")


def test_an_existing_export_is_refused_by_default_before_any_work(model, tmp_path):
    from cvkit.models._export import export_model
    existing = tmp_path / "mine.tflite"
    existing.write_bytes(b"the user's file")
    with pytest.raises(FileExistsError, match="mine.tflite exists; pass overwrite=True"):
        export_model(model, "tflite", output=existing, n_check=2)
    (tmp_path / "sm").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_model(model, "savedmodel", output=tmp_path / "sm", n_check=2)
    assert existing.read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.tflite", "sm"]


def test_overwrite_replaces_an_export_atomically(model, tmp_path):
    from cvkit.models._export import export_model
    out = tmp_path / "sm"
    out.mkdir()
    (out / "old.txt").write_text("an older export")
    result = export_model(model, "savedmodel", output=out, images=test_split(), n_check=4, overwrite=True)
    assert result.agreement == 1.0 and not (out / "old.txt").exists()
    assert (out / "labels.txt").read_text().split() == list(model.classes_) and (out / "export.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"], "no temporary folder left"


def test_export_finds_split_json_inside_the_model_folder(model_dir, tmp_path):
    """`cvkit train` writes split.json inside the model folder; export checks on its test images."""
    from cvkit.cli import main
    from cvkit.data import load_split, save_split
    inside = tmp_path / "model"
    shutil.copytree(model_dir, inside, ignore=shutil.ignore_patterns("export"))
    save_split(inside / "split.json", *load_split(model_dir.parent / "split.json"))
    assert main(["export", str(inside), "--format", "savedmodel", "-o", str(tmp_path / "sm"),
                 "--n-check", "8"]) == 0
    report = json.loads((tmp_path / "sm" / "export.json").read_text())
    assert report["images"] == "test-split images" and report["n_images"] == 8
    assert main(["export", str(tmp_path / "missing")]) == 2
