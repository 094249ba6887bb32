"""ImageFeaturizer: correct features from files and arrays, bad images skipped and reported, the
content-keyed cache (hits, one edited image recomputed alone), bounded read-ahead, sklearn habits,
and the linear-probe sanity check on sample_data.

Every cache here lives in a pytest temp folder. Speed is measured in bench/featurize.py, not here;
these tests count model calls instead of timing them.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from cvkit.data import BadImageWarning, ImageDataset, read_image
from cvkit.features import _featurizer as featurize
from cvkit.features import _store as store
from cvkit.features._featurizer import ImageFeaturizer
from cvkit.features._store import FeatureCache


@pytest.fixture(scope="module")
def lite0():
    """One Lite0 feature backbone for the module (featurizers share its traced function)."""
    from cvkit import backbones
    return backbones.get("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos (scikit-image) and variants: 7 JPEG/PNG files of different sizes."""
    import skimage.data
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, name in enumerate(["chelsea", "coffee", "astronaut", "rocket"]):
        img = Image.fromarray(getattr(skimage.data, name)())
        paths.append(folder / f"{name}.jpg")
        img.save(paths[-1], quality=90)
        if i < 3:
            paths.append(folder / f"{name}_small.png")
            img.resize((150 + 20 * i, 120)).save(paths[-1])
    return [str(p) for p in paths]


def _direct(model, paths, size=224):
    """Reference features: read_image at the input size, then the model, one image at a time."""
    return np.concatenate([model.predict_on_batch(read_image(p, size=size)[None].astype(np.float32))
                           for p in paths])


class CountingPredict:
    """Wraps the featurizer's traced function and counts the images it is given."""

    def __init__(self, featurizer):
        self.inner = featurizer._predict_fn()
        self.images = 0
        self.calls = 0
        featurizer._predict = self

    def __call__(self, batch):
        self.calls += 1
        self.images += len(batch)
        return self.inner(batch)


def test_features_match_the_model_on_read_image(lite0, photos, tmp_path):
    fz = ImageFeaturizer(lite0, batch_size=3, cache_dir=tmp_path, verbose=False)
    X = fz.transform(photos)
    assert X.shape == (len(photos), 1280) and X.dtype == np.float32
    assert np.abs(X - _direct(lite0, photos)).max() < 1e-4
    assert fz.skipped_ == [] and fz.input_size_ == (224, 224) and fz.n_features_out_ == 1280
    # Different photos give clearly different features; the same photo at two sizes similar ones.
    cos = (X @ X.T) / np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(X, axis=1))
    assert cos[0, 1] > cos[0, 2]  # chelsea.jpg vs chelsea_small.png more alike than vs coffee.jpg


def test_default_featurizer_by_name_and_env_cache_dir(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("CVKIT_CACHE_DIR", str(tmp_path / "env-cache"))
    fz = ImageFeaturizer(verbose=False)
    X = fz.transform(photos[:2])
    assert X.shape == (2, 1280) and np.isfinite(X).all()
    assert fz.model_.name == "efficientnet_lite0"
    assert fz.cache_path_.parent == tmp_path / "env-cache" and fz.cache_path_.is_file()
    assert store.default_cache_dir() == tmp_path / "env-cache"


def test_arrays_dataset_and_mixed_lists(lite0, photos, tmp_path):
    fz = ImageFeaturizer(lite0, cache_dir=tmp_path, verbose=False)
    from_files = fz.transform(photos)
    pixels = np.stack([read_image(p, size=224) for p in photos])
    assert np.abs(fz.transform(pixels) - from_files).max() < 1e-4
    # Arrays of another size are resized exactly as files are: same pixels saved losslessly agree.
    big = np.stack([read_image(p, size=(300, 260)) for p in photos[:2]])
    pngs = [str(tmp_path / f"big{i}.png") for i in range(2)]
    for img, path in zip(big, pngs):
        Image.fromarray(img).save(path)
    assert np.abs(fz.transform(big) - fz.transform(pngs)).max() < 1e-4
    ds = ImageDataset.from_paths(photos, verbose=False)
    assert np.array_equal(fz.transform(ds), from_files)
    mixed = fz.transform([photos[0], pixels[1], photos[2]])
    assert np.abs(mixed - from_files[:3]).max() < 1e-4


def test_bad_images_are_nan_rows_with_one_warning(lite0, photos, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(open(photos[0], "rb").read()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    missing = str(tmp_path / "missing.png")
    items = [photos[0], str(corrupt), photos[1], missing, str(text), photos[2]]
    before = {p: open(p, "rb").read() for p in (corrupt, text)}
    fz = ImageFeaturizer(lite0, batch_size=2, cache_dir=tmp_path / "cache", verbose=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, ok = fz.transform(items, return_mask=True)
    ours = [w for w in caught if issubclass(w.category, BadImageWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "3 of 6" in message and "corrupt.jpg" in message and "missing.png" in message and "notes.jpg" in message
    assert ok.tolist() == [True, False, True, False, False, True]
    assert np.isnan(X[~ok]).all() and np.isfinite(X[ok]).all()
    assert np.abs(X[ok] - _direct(lite0, [photos[0], photos[1], photos[2]])).max() < 1e-4
    reasons = dict(fz.skipped_)
    assert set(reasons) == {str(corrupt), missing, str(text)}
    assert reasons[missing] == "file not found" and "not an image" in reasons[str(text)]
    assert {p: open(p, "rb").read() for p in (corrupt, text)} == before  # user files untouched
    # All bad: still no crash, all rows NaN.
    with pytest.warns(BadImageWarning):
        assert np.isnan(fz.transform([missing])).all()


def test_cache_hits_and_one_edited_image_is_recomputed_alone(lite0, photos, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    paths = []
    for p in photos:
        shutil.copy(p, folder)
        paths.append(str(folder / p.split("/")[-1]))
    fz = ImageFeaturizer(lite0, batch_size=4, cache_dir=tmp_path / "cache", verbose=False)
    counter = CountingPredict(fz.fit())
    cold = fz.transform(paths)
    assert counter.images == len(paths)
    assert len(FeatureCache(fz.cache_path_, 1280)) == len(paths)

    warm = fz.transform(paths)
    assert counter.images == len(paths), "warm cache must not run the model"
    assert np.array_equal(warm, cold)

    # Edit one image (new content, same path): only that one is recomputed.
    edited = np.asarray(Image.open(paths[2]).convert("RGB"))[::-1]
    Image.fromarray(edited).save(paths[2])
    again = fz.transform(paths)
    assert counter.images == len(paths) + 1
    assert np.array_equal(np.delete(again, 2, axis=0), np.delete(cold, 2, axis=0))
    assert np.abs(again[2] - _direct(lite0, [paths[2]])[0]).max() < 1e-4
    assert not np.allclose(again[2], cold[2])

    # Keyed by content, not path: a copy under a new name is a hit.
    shutil.copy(paths[0], folder / "copy_of_first.jpg")
    fz.transform([str(folder / "copy_of_first.jpg")])
    assert counter.images == len(paths) + 1

    # Arrays are never cached, and a cache-less featurizer writes nothing.
    fz.transform(np.stack([read_image(p, size=224) for p in photos[:2]]))
    assert counter.images == len(paths) + 3
    plain = ImageFeaturizer(lite0, cache=False, cache_dir=tmp_path / "nocache", verbose=False)
    plain.transform(paths[:2])
    assert plain.cache_path_ is None and not (tmp_path / "nocache").exists()


@pytest.mark.slow
def test_cache_file_per_backbone_weights_and_size(lite0, photos, tmp_path):
    a = ImageFeaturizer(lite0, cache_dir=tmp_path, verbose=False).fit()
    b = ImageFeaturizer("efficientnet_lite0", cache_dir=tmp_path, verbose=False).fit()
    assert a.cache_path_ == b.cache_path_  # same architecture and weights -> same cache
    c = ImageFeaturizer("efficientnet_lite0", input_size=192, cache_dir=tmp_path, verbose=False).fit()
    d = ImageFeaturizer("efficientnet_lite0", pooling="max", cache_dir=tmp_path, verbose=False).fit()
    assert len({a.cache_path_, c.cache_path_, d.cache_path_}) == 3
    assert c.transform(photos[:1]).shape == (1, 1280) and c.model_.input_shape == (None, 192, 192, 3)
    # A model passed in is identified by its architecture too: max pooling shares avg's weights.
    from cvkit import backbones
    max_model = backbones.get("efficientnet_lite0", pooling="max")
    e = ImageFeaturizer(max_model, cache_dir=tmp_path, verbose=False).fit()
    assert e.cache_path_ != a.cache_path_
    assert not np.allclose(e.transform(photos[:1]), a.transform(photos[:1]))
    # ... while the same architecture and weights built twice (Keras numbers auto-named layers
    # differently each time) share one cache.
    m1, m2 = (backbones.get("mobilenet_v3_small", weights=None) for _ in range(2))
    m2.set_weights(m1.get_weights())
    assert [layer.name for layer in m1.layers] != [layer.name for layer in m2.layers]
    assert (ImageFeaturizer(m1, cache_dir=tmp_path).fit().cache_path_
            == ImageFeaturizer(m2, cache_dir=tmp_path).fit().cache_path_)
    random = ImageFeaturizer("efficientnet_lite0", weights=None, cache_dir=tmp_path, verbose=False).fit()
    assert random.cache_path_ is None  # random weights are never cached


def test_read_ahead_is_bounded(lite0, photos, tmp_path, monkeypatch):
    """10 000 images must never all be held: decoded-but-unused images stay under a few batches.

    The featurizer decodes through ImageSource.batches (cvkit's one decode loop), so counting its
    decode_item calls counts every image the featurizer decodes."""
    from cvkit.data import _source
    loads = {"n": 0}
    real_load = _source.decode_item

    def counting_load(item, size, *args, **kwargs):
        loads["n"] += 1
        return real_load(item, size, *args, **kwargs)

    monkeypatch.setattr(_source, "decode_item", counting_load)
    items = [photos[1]] * 120
    fz = ImageFeaturizer(lite0, batch_size=8, cache=False, verbose=False)
    inner = fz.fit()._predict_fn()
    seen = {"rows": 0, "max_ahead": 0}

    def predict(batch):
        seen["rows"] += len(batch)
        seen["max_ahead"] = max(seen["max_ahead"], loads["n"] - seen["rows"])
        return inner(batch)

    fz._predict = predict
    X = fz.transform(items)
    assert np.isfinite(X).all() and seen["rows"] == 120 and loads["n"] == 120
    assert seen["max_ahead"] <= 4 * 8, seen


def test_the_featurizer_decodes_through_the_one_decode_loop(lite0, photos, tmp_path, monkeypatch):
    """No thread pool of its own: images are decoded by ImageSource.batches, files keyed by content_key."""
    import inspect

    from cvkit.data._source import ImageSource
    assert "ThreadPoolExecutor" not in inspect.getsource(featurize)
    calls = []
    real = ImageSource.batches

    def spy(self, size, batch_size=32, **kwargs):
        calls.append((tuple(size), batch_size, kwargs["keys"], list(kwargs["indices"]), kwargs["threads"]))
        return real(self, size, batch_size, **kwargs)

    monkeypatch.setattr(ImageSource, "batches", spy)
    fz = ImageFeaturizer(lite0, batch_size=3, cache_dir=tmp_path, verbose=False, decode_threads=2)
    cold = fz.transform(photos[:4] + [np.zeros((8, 8, 3), np.uint8)])
    assert calls == [((224, 224), 3, True, [0, 1, 2, 3, 4], 2)]
    warm = fz.transform(photos[:4] + [np.zeros((8, 8, 3), np.uint8)])
    assert calls[1] == ((224, 224), 3, True, [4], 2)  # only the array: the files were cache hits
    assert np.array_equal(warm, cold)


def test_content_key_is_the_key_of_the_decode_loop(photos, tmp_path):
    import hashlib

    from cvkit.data._source import ImageSource, content_key
    source = ImageSource.resolve(photos[:3] + [str(tmp_path / "missing.jpg")])
    keys = [k for batch in source.batches(32, batch_size=2, keys=True) for k in batch.keys]
    expected = [hashlib.sha1(open(p, "rb").read()).hexdigest() for p in photos[:3]]
    assert keys == expected + [None]
    assert source.content_keys() == [(k, None) for k in expected] + [(None, "file not found")]
    assert [content_key(p) for p in source.items] == source.content_keys(threads=1)
    with pytest.raises(TypeError, match="only image files"):
        ImageSource.resolve([np.zeros((4, 4, 3), np.uint8)]).content_keys()


def test_input_size_is_width_height_and_a_pair_gives_non_square_images(photos, tmp_path):
    from cvkit import backbones
    from cvkit.features import cache_info
    wide = ImageFeaturizer("efficientnet_lite0", input_size=(256, 192), cache_dir=tmp_path, verbose=False)
    X = wide.fit_transform(photos[:2])
    assert wide.input_size_ == (256, 192) and "-256x192px-" in wide.cache_path_.name
    assert wide.model_.input_shape == (None, 192, 256, 3)
    assert np.abs(X - _direct(wide.model_, photos[:2], size=(256, 192))).max() < 1e-4
    assert cache_info(tmp_path).total_entries == 2  # the cache admin knows the (width, height) file name
    assert ImageFeaturizer("efficientnet_lite0", input_size=[256, 192]).get_params()["input_size"] == [256, 192]
    # a Keras model of a fixed non-square input: its size is read as (width, height)
    model = backbones.get("efficientnet_lite0", weights=None, input_shape=(96, 128, 3))
    fz = ImageFeaturizer(model, cache=False, runtime="keras", verbose=False).fit()
    assert fz.input_size_ == (128, 96) and fz.transform(photos[:1]).shape == (1, 1280)
    assert ImageFeaturizer(model, input_size=(128, 96), cache=False, runtime="keras").fit().input_size_ == (128, 96)
    with pytest.raises(ValueError, match=r"input_size=\(96, 128\) does not match the model's input shape"):
        ImageFeaturizer(model, input_size=(96, 128), cache=False, runtime="keras").fit()


def test_progress_bar_shows_images_per_second(lite0, photos, tmp_path, capsys):
    ImageFeaturizer(lite0, cache_dir=tmp_path, verbose=True).transform(photos[:3])
    err = capsys.readouterr().err
    assert "Featurizing (efficientnet_lite0, litert)" in err and "img/s" in err and "3/3" in err


def test_input_errors_are_clear(lite0, photos):
    fz = ImageFeaturizer(lite0, cache=False, verbose=False)
    # one image file is a one-image input (as everywhere ImageSource reads images), not an error
    assert np.abs(fz.transform(photos[0]) - fz.transform([photos[0]])).max() == 0
    assert fz.transform(photos[0]).shape == (1, 1280)
    with pytest.raises(TypeError, match="cannot read images from a int"):
        fz.transform(42)
    with pytest.raises(TypeError, match="uint8"):
        fz.transform(np.zeros((2, 224, 224, 3), np.float32))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        fz.transform(np.zeros((224, 224, 3), np.uint8))
    with pytest.raises(TypeError, match="item 1"):
        fz.transform([photos[0], 42])
    with pytest.raises(ValueError, match="batch_size"):
        ImageFeaturizer(batch_size=0).fit()
    with pytest.raises(ValueError, match="pooled"):
        from cvkit import backbones
        ImageFeaturizer(backbones.get("efficientnet_lite0", weights=None, pooling=None)).fit()
    assert fz.transform([]).shape == (0, 1280)


def test_sklearn_habits(lite0, photos, tmp_path):
    from sklearn.base import clone
    fz = ImageFeaturizer("efficientnet_lite0", batch_size=8, cache_dir=tmp_path)
    assert not hasattr(fz, "model_")  # nothing heavy in __init__
    params = fz.get_params()
    assert params["batch_size"] == 8 and params["backbone"] == "efficientnet_lite0"
    twin = clone(fz)
    assert twin.get_params() == params and not hasattr(twin, "model_")
    assert fz.fit() is fz and hasattr(fz, "model_")
    assert fz.get_feature_names_out()[:2].tolist() == ["efficientnet_lite0_0", "efficientnet_lite0_1"]
    # A copy holds parameters only (the named backbone is rebuilt on use) and gives the same features.
    import pickle
    blob = pickle.dumps(fz)
    assert len(blob) < 20_000
    copy = pickle.loads(blob)
    assert not hasattr(copy, "model_")
    assert np.array_equal(copy.transform(photos[:2]), fz.transform(photos[:2]))


def test_import_featurize_does_not_import_tensorflow():
    code = "import sys, cvkit.features._featurizer; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_linear_probe_on_sample_data_reaches_94_percent(sample_split):
    """Done-when check of issue 4: logistic regression on Lite0 features, split 0.34 / seed 0.

    Uses the test run's shared feature cache (conftest sets CVKIT_CACHE_DIR to a temp folder).
    """
    from sklearn.linear_model import LogisticRegression
    train, test = sample_split
    assert (len(train), len(test)) == (68, 36)
    fz = ImageFeaturizer(verbose=False)
    X_train, X_test = fz.transform(train), fz.transform(test)
    probe = LogisticRegression(max_iter=2000).fit(X_train, train.targets)
    accuracy = probe.score(X_test, test.targets)
    print(f"linear probe test accuracy: {accuracy:.3f}")
    assert accuracy >= 0.94


# ---------------------------------------------------------------------- scikit-learn's estimator contract
def test_clone_gives_an_unfitted_copy_with_equal_parameters(lite0, tmp_path):
    from sklearn.base import clone
    fz = ImageFeaturizer("efficientnet_lite0", batch_size=8, cache_dir=tmp_path, input_size=192, pooling="max",
                         decode_threads=2, cache_max_mb=5, verbose=False)
    twin = clone(fz)
    assert twin is not fz and twin.get_params() == fz.get_params() and not hasattr(twin, "model_")
    fitted = ImageFeaturizer(lite0, cache=False, verbose=False).fit()
    again = clone(fitted)
    assert not hasattr(again, "model_") and not hasattr(again, "n_features_out_")
    assert set(again.get_params()) == set(fitted.get_params())


def test_check_is_fitted_fails_before_fit_and_passes_after(lite0, photos):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    fz = ImageFeaturizer(lite0, cache=False, verbose=False)
    with pytest.raises(NotFittedError):
        check_is_fitted(fz)
    check_is_fitted(fz.fit())
    # transform on a featurizer never fitted builds the same fitted state first
    fresh = ImageFeaturizer(lite0, cache=False, verbose=False)
    assert fresh.transform(photos[:1]).shape == (1, 1280)
    check_is_fitted(fresh)
    assert fresh.n_features_out_ == fz.n_features_out_ and fresh.input_size_ == fz.input_size_


def test_get_params_round_trips_and_fit_changes_no_parameter(lite0, photos, tmp_path):
    fz = ImageFeaturizer(lite0, batch_size=4, cache_dir=tmp_path, verbose=False, decode_threads=2)
    params = fz.get_params()
    rebuilt = ImageFeaturizer(**params)
    assert rebuilt.get_params() == params
    assert ImageFeaturizer().set_params(**params).get_params() == params
    fz.fit()
    fz.transform(photos[:2], verbose=True)  # a per-call override, not a parameter change
    after = fz.get_params()
    assert after.keys() == params.keys()
    assert all(after[k] is params[k] or after[k] == params[k] for k in params)
    assert fz.backbone is lite0 and fz.verbose is False


def test_transform_verbose_argument_overrides_the_parameter(lite0, photos, tmp_path, capsys):
    fz = ImageFeaturizer(lite0, cache_dir=tmp_path, verbose=True)
    fz.transform(photos[:2], verbose=False)
    assert "Featurizing" not in capsys.readouterr().err
    fz.set_params(verbose=False).transform(photos[:2], verbose=True)
    assert "Featurizing" in capsys.readouterr().err and fz.verbose is False


def test_former_parameter_names_still_work_with_a_future_warning(lite0, photos, tmp_path, capsys):
    """n_workers -> decode_threads and progress -> verbose: kept one minor version (cvkit._validation's rule)."""
    fz = ImageFeaturizer(lite0, cache_dir=tmp_path, progress=True, n_workers=2)
    with pytest.warns(FutureWarning) as caught:
        fz.fit()
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["n_workers", "progress"]
    assert fz.progress is True and fz.verbose is True and fz._threads() == 2  # parameters untouched
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        fz.transform(photos[:2], progress=False)  # the transform argument too
    assert "Featurizing" not in capsys.readouterr().err
    fz.set_params(progress=False).transform(photos[:2])  # the old parameter's value is the one in effect
    assert "Featurizing" not in capsys.readouterr().err
    fz.transform(photos[:2], verbose=True)
    assert "Featurizing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="give verbose= only"):
        fz.transform(photos[:2], verbose=False, progress=False)
    with pytest.raises(ValueError, match="give decode_threads= only"):
        ImageFeaturizer(lite0, cache=False, decode_threads=3, n_workers=2).fit()
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="decode_threads must be a positive int or None"):
        ImageFeaturizer(lite0, cache=False, n_workers=0).fit()  # an old name's bad value names the new one


@pytest.mark.parametrize("params, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
    ({"batch_size": 2.5}, ValueError, "batch_size must be a positive int"),
    ({"batch_size": True}, ValueError, "batch_size must be a positive int"),
    ({"input_size": -1}, ValueError, "input_size must be a positive int or a (width, height) pair of positive ints "
                                     "or None, got -1"),
    ({"input_size": (224, 0)}, ValueError, "input_size must be a positive int or a (width, height) pair"),
    ({"input_size": (1, 2, 3)}, ValueError, "input_size must be a positive int or a (width, height) pair"),
    ({"decode_threads": 0}, ValueError, "decode_threads must be a positive int or None, got 0"),
    ({"pooling": "mean"}, ValueError, "pooling must be one of 'avg', 'max', got 'mean'"),
    ({"cache": "yes"}, ValueError, "cache must be True or False"),
    ({"verbose": None}, ValueError, "verbose must be True or False"),
    ({"cache_dir": 3}, TypeError, "cache_dir must be a path or None"),
    ({"weights": 1}, TypeError, "weights must be a path or None"),
    ({"cache_max_mb": -1}, ValueError, "cache_max_mb must be a number >= 0 or None, got -1"),
    ({"backbone": 42}, TypeError, "backbone must be a name"),
    ({"runtime": "tflite"}, ValueError, "runtime must be one of 'auto', 'litert', 'keras', got 'tflite'"),
    ({"precision": "int4"}, ValueError, "precision must be one of 'float32', 'int8', got 'int4'"),
])
def test_bad_parameters_fail_in_fit_naming_the_parameter(params, error, message):
    fz = ImageFeaturizer(**params)  # __init__ only stores them
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        fz.fit()
    assert not hasattr(fz, "model_")
