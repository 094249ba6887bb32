"""cvkit._litert: the LiteRT runtime knob, LiteRTModel (XNNPACK, thread-safe, picklable), Keras conversion.

Real conversions and a real interpreter throughout; one test checks EfficientNet-Lite0 on real photos.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cvkit import _litert as litert
from cvkit._console import import_keras

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny():
    """A small Keras model on 24x24 pixels and its .tflite bytes."""
    keras = import_keras()
    rng = np.random.default_rng(0)
    inputs = keras.Input((24, 24, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(6, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model, litert.convert_keras(model)


def _pixels(n, size=24, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_resolve_runtime_and_precision_name_bad_values(monkeypatch):
    from cvkit import options
    assert options.resolve_runtime("auto") == "litert" and options.resolve_runtime("keras") == "keras"
    with pytest.raises(ValueError, match="runtime must be one of 'auto', 'litert', 'keras', got 'gpu'"):
        options.resolve_runtime("gpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        options.check_precision("float16")
    monkeypatch.setattr(options, "litert_available", lambda: False)  # as on a machine without the package
    assert options.resolve_runtime("auto") == "keras"
    with pytest.raises(ImportError, match=r"pip install ai-edge-litert==2\.3\.0"):
        options.resolve_runtime("litert")
    assert options.default_threads() >= 1


def test_converted_graph_matches_keras_for_any_batch(tiny):
    model, content = tiny
    graph = litert.LiteRTModel(content, num_threads=1)
    assert graph.input_shape == (-1, 24, 24, 3) and graph.output_shape == (-1, 5)
    assert graph.n_outputs == 5 and graph.precision == "float32" and graph.num_threads == 1
    pixels = _pixels(11)
    reference = np.asarray(model.predict_on_batch(pixels.astype(np.float32)))
    for batch_size in (1, 4, 32):  # 4 leaves a last, shorter batch: the interpreter is resized
        out = graph.predict(pixels, batch_size=batch_size)
        assert out.dtype == np.float32 and out.shape == (11, 5)
        np.testing.assert_allclose(out, reference, atol=1e-4)
    np.testing.assert_allclose(graph.predict(pixels.astype(np.float64)), reference, atol=1e-4)
    assert graph.predict(pixels[:0]).shape == (0, 5)


def test_bad_inputs_get_clear_errors(tiny, tmp_path):
    graph = litert.LiteRTModel(tiny[1])
    with pytest.raises(ValueError, match=r"images must be \(n, 24, 24, 3\).*got shape \(2, 20, 24, 3\)"):
        graph.predict(np.zeros((2, 20, 24, 3), np.uint8))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        graph.predict(_pixels(2), batch_size=0)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match="bad.tflite: not a valid .tflite graph"):
        litert.LiteRTModel(bad)
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        litert.LiteRTModel(tmp_path / "missing.tflite")
    with pytest.raises(ValueError, match="num_threads"):
        litert.LiteRTModel(tiny[1], num_threads=0)


def test_path_pickle_and_threads_give_the_same_answers(tiny, tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny[1])
    graph = litert.LiteRTModel(path)
    pixels = _pixels(40)
    expected = graph.predict(pixels, batch_size=8)
    copy = pickle.loads(pickle.dumps(graph))
    assert copy.source == str(path)
    np.testing.assert_array_equal(copy.predict(pixels, batch_size=8), expected)

    results, errors = {}, []

    def work(k):
        try:
            for _ in range(5):  # each thread its own interpreter; shared, they would corrupt each other
                results[k] = graph.predict(pixels, batch_size=3 + k)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        np.testing.assert_allclose(results[k], expected, atol=1e-5)


def test_int8_needs_calibration_and_reports_agreement(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="precision='int8' needs calibration images"):
        litert.convert_keras(model, precision="int8")
    with pytest.raises(ValueError, match=r"calibration must be .*\(n, 24, 24, 3\)"):
        litert.convert_keras(model, precision="int8", calibration=np.zeros((4, 8, 8, 3), np.uint8))
    graph = litert.LiteRTModel(litert.convert_keras(model, "int8", calibration=_pixels(32, seed=2)))
    assert graph.precision == "int8" and graph.input_shape == (-1, 24, 24, 3)
    pixels = _pixels(20, seed=3)
    found = litert.agreement(model.predict_on_batch(pixels.astype(np.float32)), graph.predict(pixels))
    assert set(found) == {"n", "top1_agreement", "cosine_min", "cosine_mean", "max_abs_diff"}
    assert found["n"] == 20 and found["cosine_mean"] > 0.95 and found["max_abs_diff"] > 0  # quantized: close, not equal


def test_agreement_counts_only_finite_rows():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 1.0]])
    b = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    found = litert.agreement(a, b)
    assert found == {"n": 2, "top1_agreement": 0.5, "cosine_min": 0.0, "cosine_mean": 0.5, "max_abs_diff": 1.0}
    with pytest.raises(ValueError, match="same shape"):
        litert.agreement(a, b[:2])


def test_conversion_and_inference_print_nothing():
    """Keras' "Saved artifact" listing, converter passes and the XNNPACK notice all stay hidden."""
    code = ("import numpy as np\n"
            "from cvkit import litert\n"
            "from cvkit._console import import_keras\n"
            "keras = import_keras()\n"
            "i = keras.Input((8, 8, 3))\n"
            "m = keras.Model(i, keras.layers.Flatten()(i))\n"
            "g = litert.LiteRTModel(litert.convert_keras(m))\n"
            "assert g.predict(np.ones((2, 8, 8, 3), np.uint8)).shape == (2, 192)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", (out.stdout, out.stderr)


def test_running_a_graph_does_not_import_tensorflow(tiny, tmp_path):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny[1])
    code = ("import sys, numpy as np\n"
            "from cvkit._litert import LiteRTModel\n"
            f"out = LiteRTModel({str(path)!r}).predict(np.zeros((3, 24, 24, 3), np.uint8))\n"
            "print(out.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(3, 5) False False" and out.stderr == ""


def test_efficientnet_lite0_features_match_keras_on_real_photos():
    from cvkit import backbones
    from cvkit.data import ImageDataset
    from cvkit.data._images import read_image

    paths = ImageDataset.from_directory(REPO / "sample_data").paths[::6][:16]
    pixels = np.stack([read_image(p, size=224) for p in paths])
    model = backbones.get("efficientnet_lite0")
    graph = litert.LiteRTModel(litert.convert_keras(model))
    keras_features = np.asarray(model.predict_on_batch(pixels.astype(np.float32)))
    found = litert.agreement(keras_features, graph.predict(pixels))
    assert found["n"] == len(paths) >= 10
    assert found["max_abs_diff"] < 1e-4 and found["cosine_min"] > 0.99999, found


# ---------------------------------------------------------------------- the featurizer on LiteRT
def _sample_photos(n=8):
    from cvkit.data import ImageDataset

    return list(ImageDataset.from_directory(REPO / "sample_data").paths[::7][:n])


def test_featurizer_runtimes_agree_and_keep_separate_feature_caches(tmp_path):
    from cvkit.features._featurizer import ImageFeaturizer

    photos = _sample_photos()
    lite = ImageFeaturizer(cache_dir=tmp_path, verbose=False)
    features = lite.fit_transform(photos)
    assert lite.runtime_ == "litert" and lite.graph_ is not None and "runtime_='litert', float32" in repr(lite)
    keras = ImageFeaturizer(cache_dir=tmp_path, verbose=False, runtime="keras")
    reference = keras.fit_transform(photos)
    assert keras.runtime_ == "keras" and keras.graph_ is None and "runtime_='keras'" in repr(keras)
    assert np.abs(features - reference).max() < 1e-4
    assert lite.cache_path_ != keras.cache_path_  # each runtime its own features
    # A named backbone and the same backbone as a Keras model share the converted graph and features.
    same = ImageFeaturizer(keras.model_, cache_dir=tmp_path, verbose=False).fit()
    assert same.cache_path_ == lite.cache_path_ and same.graph_ == lite.graph_
    assert [p.suffix for p in sorted((tmp_path / "backbones").iterdir())] == [".json", ".tflite"]
    with pytest.raises(ValueError, match="runtime must be one of"):
        ImageFeaturizer(runtime="tflite").fit()
    with pytest.raises(ValueError, match="precision='int8' runs on LiteRT"):
        ImageFeaturizer(runtime="keras", precision="int8").fit(photos)


def test_a_cached_graph_is_not_converted_again_and_a_damaged_one_is(tmp_path, monkeypatch):
    from cvkit.features import _compiled as compiled
    from cvkit.features._featurizer import ImageFeaturizer

    photos = _sample_photos(3)
    first = ImageFeaturizer(cache_dir=tmp_path, verbose=False).fit()
    graph = next((tmp_path / "backbones").glob("*.tflite"))
    monkeypatch.setattr(compiled, "_graphs", compiled.OrderedDict())  # as a new process: nothing in memory
    monkeypatch.setattr(litert, "convert_keras", lambda *a, **k: pytest.fail("converted again"))
    again = ImageFeaturizer(cache_dir=tmp_path, verbose=False, cache_max_mb=0)
    np.testing.assert_array_equal(again.fit_transform(photos), first.transform(photos))
    graph.write_bytes(b"damaged")
    monkeypatch.setattr(compiled, "_graphs", compiled.OrderedDict())
    calls = []
    monkeypatch.setattr(litert, "convert_keras", lambda *a, **k: calls.append(1) or first.graph_)
    ImageFeaturizer(cache_dir=tmp_path, verbose=False).fit()
    assert calls == [1] and graph.read_bytes() == first.graph_


def test_featurizing_with_a_cached_graph_never_imports_tensorflow():
    """conftest gives the run one cache folder ($CVKIT_CACHE_DIR), which the subprocess inherits."""
    from cvkit.features._featurizer import ImageFeaturizer

    photos = _sample_photos(4)
    expected = ImageFeaturizer(verbose=False, cache=True).fit()  # converts once if not cached yet
    code = ("import sys, json\n"
            "from cvkit.features._featurizer import ImageFeaturizer\n"
            f"fz = ImageFeaturizer(verbose=False, cache_max_mb=0)\n"
            f"X = fz.fit_transform({photos!r})\n"
            "print(json.dumps([fz.runtime_, 'tensorflow' in sys.modules, 'keras' in sys.modules, X.tolist()]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    import json
    runtime, tf_imported, keras_imported, features = json.loads(out.stdout)
    assert (runtime, tf_imported, keras_imported) == ("litert", False, False)
    assert out.stderr == ""
    np.testing.assert_allclose(np.asarray(features, np.float32), expected.transform(photos), atol=1e-6)


@pytest.mark.slow
def test_int8_featurizer_is_calibrated_on_fit_images_and_reports_agreement(tmp_path):
    from cvkit import backbones
    from cvkit.features._featurizer import ImageFeaturizer

    photos = _sample_photos(12)
    small = backbones.get("efficientnet_lite0", input_shape=(96, 96, 3))  # ImageNet weights, small images
    with pytest.raises(ValueError, match=r"calibrated on the images passed to fit: call fit\(images\)"):
        ImageFeaturizer(small, precision="int8", verbose=False).transform(photos)
    fz = ImageFeaturizer(small, precision="int8", cache_dir=tmp_path, verbose=False).fit(photos)
    assert fz.runtime_ == "litert" and litert.LiteRTModel(fz.graph_).precision == "int8"
    found = fz.agreement_
    assert found["n"] == len(photos) and 0.9 < found["cosine_mean"] <= 1.0 and found["max_abs_diff"] > 0
    names = sorted(p.name for p in (tmp_path / "backbones").glob("*.tflite"))
    assert len(names) == 2 and "-int8-" in names[1] and "-float32-" in names[0]
    float32 = ImageFeaturizer(small, cache_dir=tmp_path, verbose=False)
    X8, X32 = fz.transform(photos), float32.fit_transform(photos)
    assert fz.cache_path_ != float32.cache_path_
    assert litert.agreement(X32, X8)["cosine_mean"] > 0.9 and not np.allclose(X8, X32, atol=1e-4)
    copy = pickle.loads(pickle.dumps(fz))  # the int8 graph travels with the copy (it needs the images)
    np.testing.assert_array_equal(copy.transform(photos), X8)
