"""Model folders: save/load round trips, metadata, safe loading, refusing bad or unsafe folders."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import cvkit
from cvkit.classifiers import FeatureClassifier
from cvkit.data import read_image
from cvkit.models._folder import ModelFormatError, load_model, read_metadata
from cvkit.models._trusted import check_savable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "sample"
    returned = fitted.save(path, metrics={"test_accuracy": 0.5})
    assert returned == str(path)
    return path


def _copy(saved: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(saved, dest)
    return dest


def _edit_metadata(folder: Path, **changes) -> None:
    meta_file = folder / "metadata.json"
    meta = json.loads(meta_file.read_text())
    for key, value in changes.items():
        if value is KeyError:
            meta.pop(key)
        else:
            meta[key] = value
    meta_file.write_text(json.dumps(meta))


def _rehash(folder: Path, *names: str) -> None:
    """Record the current SHA-256 of the folder's files (and ``names``), as an attacker could."""
    meta = json.loads((folder / "metadata.json").read_text())
    files = sorted(set(meta["files"]) | set(names))
    meta["files"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in files}
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_linear_head_is_saved_as_arrays_beside_the_features_graph(saved, fitted):
    assert sorted(p.name for p in saved.iterdir()) == ["head.npz", "metadata.json", "model.keras", "model.tflite",
                                                       "novelty.npz"]
    import keras
    graph = keras.saving.load_model(saved / "model.keras", safe_mode=True, compile=False)
    assert graph.input_shape == (None, 224, 224, 3) and graph.output_shape == (None, 1280)  # features
    assert not [layer for layer in graph.layers if type(layer).__name__ == "Lambda"]
    from cvkit.models._export import keras_probability_model
    whole = keras_probability_model(load_model(saved, runtime="keras"))  # what cvkit export writes
    assert whole.output_shape == (None, 4)


def test_reloaded_model_gives_the_same_probabilities(saved, fitted, sample_split):
    _, test = sample_split
    model = load_model(saved)
    expected = fitted.predict_proba(test)
    got = model.predict_proba(test)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5
    assert list(model.predict(test)) == list(fitted.predict(test))
    assert model.score(test) == fitted.score(test)
    # the one Keras graph export writes, on raw float32 pixels, gives the same numbers: what other tools run
    from cvkit.models._export import keras_probability_model
    pixels = np.stack([read_image(p, size=(224, 224)) for p in test.paths[:6]]).astype(np.float32)
    keras_graph = keras_probability_model(load_model(saved, runtime="keras"))
    assert np.abs(keras_graph.predict_on_batch(pixels) - expected[:6]).max() <= 1e-5


def test_loaded_model_api_and_metadata(saved, fitted):
    model = cvkit.load_model(saved)
    assert model.classes_ == fitted.classes_ and model.input_size_ == (224, 224)
    assert model.backbone == "efficientnet_lite0" and model.path_ == saved
    meta = model.metadata_
    assert meta["format"] == "cvkit-model" and meta["format_version"] == 2
    assert meta["classes"] == ["bird", "flower", "fruit", "vegetable"] and meta["input_size"] == [224, 224]
    assert meta["method"] == "features" and meta["head"] == "linear" and meta["backbone"] == "efficientnet_lite0"
    assert meta["output"] == "features" and meta["novelty"] == {"method": "mahalanobis", "k": 5,
                                                                "file": "novelty.npz", "n_train": 68}
    for name in ("head.npz", "novelty.npz"):
        assert meta["files"][name] == hashlib.sha256((saved / name).read_bytes()).hexdigest()
    assert "224x224" in meta["preprocessing"] and "(x - 127) / 128" in meta["preprocessing"]
    assert meta["metrics"]["test_accuracy"] == 0.5 and meta["metrics"]["n_train"] == 68
    assert meta["versions"]["keras"] == __import__("keras").__version__ and "scikit-learn" in meta["versions"]
    created = dt.datetime.fromisoformat(meta["created"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 3600
    assert isinstance(meta["model_version"], str) and meta["model_version"]
    assert meta["files"]["model.keras"] == hashlib.sha256((saved / "model.keras").read_bytes()).hexdigest()
    assert json.loads((saved / "metadata.json").read_text()) == meta


def test_score_image_goes_through_the_shared_scoring_path(saved, sample_split):
    _, test = sample_split
    model = load_model(saved)
    answer = model.score_image(test.paths[0], top_k=2)
    proba = model.predict_proba([test.paths[0]])[0]
    assert answer["label"] == model.classes_[int(np.argmax(proba))]
    assert answer["score"] == pytest.approx(float(proba.max()), abs=1e-6)
    assert len(answer["top_k"]) == 2


def test_loaded_model_takes_any_image_input(saved, sample_dir, tmp_path):
    """A folder, a table, a glob, one image path: the same answers as the listed paths."""
    import warnings

    from cvkit.data import ImageDataset
    model = load_model(saved)
    bird = sorted(str(p) for p in (sample_dir / "bird").glob("*.jpg"))
    expected = model.predict(bird)
    assert len(expected) == len(bird) > 10
    assert list(model.predict(str(sample_dir / "bird"))) == list(expected)
    assert list(model.predict(sample_dir / "bird")) == list(expected)  # a Path too
    assert list(model.predict(str(sample_dir / "bird" / "*.jpg"))) == list(expected)
    assert list(model.predict(bird[0])) == list(expected[:1])
    np.testing.assert_array_equal(model.predict_proba(str(sample_dir / "bird")), model.predict_proba(bird))
    table = tmp_path / "to_score.csv"
    table.write_text("path,label\n" + "".join(f"{p},bird\n" for p in bird[:5]))
    assert list(model.predict(table)) == list(expected[:5])
    labelled = ImageDataset.from_directory(sample_dir)
    assert model.score(str(sample_dir)) == model.score(labelled)
    assert model.score(table) == model.score(bird[:5], ["bird"] * 5)
    with pytest.raises(ValueError, match="labels are missing"):
        model.score(str(sample_dir / "bird"))  # a folder of photos: no labels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the renamed attribute: verbose, formerly progress
        model.verbose = False
        assert model.predict(bird[:2]).shape == (2,)
    with pytest.warns(FutureWarning, match="'progress' was renamed 'verbose'"):
        model.progress = True
    assert model.verbose is True


def test_save_assembles_aside_and_leaves_nothing_when_it_fails(fitted, tmp_path, monkeypatch):
    from cvkit.models import _folder
    target = tmp_path / "model"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_folder, "build_litert", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        fitted.save(target)
    assert list(tmp_path.iterdir()) == [], "no half-written folder and no temporary one"


def test_nonlinear_head_is_stored_with_skops_and_round_trips(sample_split, tmp_path):
    from sklearn.ensemble import RandomForestClassifier
    train, test = sample_split
    forest = FeatureClassifier(head=RandomForestClassifier(n_estimators=20, random_state=0),
                               verbose=False).fit(train)
    forest.save(tmp_path / "forest")
    assert (tmp_path / "forest" / "head.skops").is_file()
    model = load_model(tmp_path / "forest")
    assert model.metadata_["head"] == "skops" and model.metadata_["output"] == "features"
    assert model.graph_.output_shape == (-1, 1280) and model.runtime_ == "litert"
    assert type(model.head_).__name__ == "RandomForestClassifier"
    assert np.abs(model.predict_proba(test) - forest.predict_proba(test)).max() <= 1e-5
    # both binary files are zip archives (Keras' and skops' formats), not pickles
    assert [(tmp_path / "forest" / n).read_bytes()[:2] for n in ("model.keras", "head.skops")] == [b"PK", b"PK"]
    assert np.abs(load_model(tmp_path / "forest", runtime="keras").predict_proba(test)
                  - forest.predict_proba(test)).max() <= 1e-5


def _linear_svc():
    from sklearn.svm import LinearSVC
    return LinearSVC()


def _scaled_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))


@pytest.mark.parametrize("make_estimator, head", [
    (_linear_svc, "skops"),                  # calibrated SVM: not a softmax of a linear map, not folded
    (_scaled_logistic_regression, "linear"),  # scaler + logistic regression folds exactly into arrays
])
def test_head_is_folded_only_when_exact(sample_split, tmp_path, make_estimator, head):
    train, test = sample_split
    fitted = FeatureClassifier(head=make_estimator(), verbose=False).fit(train)
    fitted.save(tmp_path / "model")
    model = load_model(tmp_path / "model")
    assert model.metadata_["head"] == head
    assert np.abs(model.predict_proba(test) - fitted.predict_proba(test)).max() <= 1e-5


def test_finetuned_model_round_trips(sample_split, tmp_path):
    from cvkit.classifiers import FineTuneClassifier
    train, test = sample_split
    small = train.subset(np.arange(0, len(train), 4))
    ft = FineTuneClassifier(epochs=0, head_epochs=2, verbose=0, validation_fraction=0).fit(small)
    ft.save(tmp_path / "ft")
    model = load_model(tmp_path / "ft")
    assert model.metadata_["method"] == "finetune" and model.metadata_["head"] == "keras"
    assert model.metadata_["metrics"]["epochs_run"] == {"head": 1, "fine_tune": 0}
    assert np.abs(model.predict_proba(test) - ft.predict_proba(test)).max() <= 1e-5


def test_existing_folders_are_never_clobbered(fitted, saved, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fitted.save(saved)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="not a cvkit model folder"):
        fitted.save(other, overwrite=True)
    assert (other / "holiday.jpg").read_bytes() == b"precious"
    copy = _copy(saved, tmp_path)
    before = read_metadata(copy)["model_version"]
    fitted.save(copy, overwrite=True, model_version="v2")
    assert read_metadata(copy)["model_version"] == "v2" != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


@pytest.mark.parametrize("change, match", [
    ({"classes": KeyError}, "'classes' is missing"),
    ({"input_size": [224]}, "input_size"),
    ({"head": "pickle"}, "head"),
    ({"format": "other"}, "format"),
    ({"format_version": 99}, "newer"),
    ({"classes": ["bird", "bird", "fruit", "x"]}, "distinct"),
])
def test_bad_metadata_is_reported_with_file_and_field(saved, tmp_path, change, match):
    copy = _copy(saved, tmp_path)
    _edit_metadata(copy, **change)
    with pytest.raises(ModelFormatError, match=match) as info:
        load_model(copy)
    assert "metadata.json" in str(info.value)


def test_missing_or_broken_files(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(tmp_path / "nope")
    copy = _copy(saved, tmp_path)
    (copy / "metadata.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(copy)
    copy2 = tmp_path / "copy2"
    shutil.copytree(saved, copy2)
    with open(copy2 / "model.keras", "r+b") as fh:  # flip some bytes in the middle
        fh.seek(5000)
        fh.write(b"\x00" * 16)
    with pytest.raises(ModelFormatError, match="SHA-256"):
        load_model(copy2, runtime="keras")  # the LiteRT runtime never reads model.keras
    _rehash(copy2)  # with a matching hash the damaged zip itself must fail cleanly
    with pytest.raises(ModelFormatError, match="model.keras"):
        load_model(copy2, runtime="keras")


def test_a_lambda_layer_is_refused_without_running_it(saved, tmp_path):
    import keras
    marker = tmp_path / "code_ran"
    # a function with a side effect: it creates ``marker`` whenever Keras calls it
    touch = eval(f"lambda t: (__import__('pathlib').Path({str(marker)!r}).touch(), t)[1]")  # noqa: S307
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Lambda(touch, output_shape=(3,), name="evil")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    folder = _copy(saved, tmp_path)
    keras.Model(inputs, outputs).save(folder / "model.keras")
    marker.unlink(missing_ok=True)  # building the model above ran it once
    _rehash(folder)  # a matching hash: the Keras loader itself must refuse
    with pytest.raises(ModelFormatError, match="model.keras"):
        load_model(folder, runtime="keras")
    assert not marker.exists()


def test_a_skops_head_with_foreign_types_is_refused(fitted, sample_split, tmp_path):
    import os

    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    train, _ = sample_split
    folder = tmp_path / "m"
    FeatureClassifier(head=RandomForestClassifier(n_estimators=5, random_state=0),
                      verbose=False).fit(train).save(folder)
    # never fitted or called: a head that would run an arbitrary function from the file
    sio.dump(make_pipeline(FunctionTransformer(os.getpid), LogisticRegression()), folder / "head.skops")
    _rehash(folder)
    with pytest.raises(ModelFormatError, match="outside scikit-learn.*getpid"):
        load_model(folder)


def _malicious_folder(saved: Path, tmp_path: Path, target: Path) -> Path:
    """A copy of ``saved`` whose skops head writes ``target`` on its first prediction, hashes updated.

    Every type in it is from scikit-learn: a FunctionTransformer calling
    ``sklearn.datasets.dump_svmlight_file`` with the path in its ``kw_args``, before a real head.
    """
    import skops.io as sio
    from sklearn.datasets import dump_svmlight_file
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    head = LogisticRegression().fit(rng.random((8, 4)), [0, 1, 2, 3] * 2)
    writer = FunctionTransformer(dump_svmlight_file, kw_args={"y": [0], "f": str(target)})
    folder = _copy(saved, tmp_path)
    sio.dump(Pipeline([("w", writer), ("h", head)]), folder / "head.skops")
    _edit_metadata(folder, head="skops")
    _rehash(folder, "head.skops")
    return folder


def test_a_head_that_calls_a_scikit_learn_function_is_refused(saved, tmp_path, sample_split):
    target = tmp_path / "written-by-the-model"
    folder = _malicious_folder(saved, tmp_path, target)
    with pytest.raises(ModelFormatError, match="head.skops") as info:
        model = load_model(folder)
        model.predict_proba(sample_split[1].paths[:1])  # before the fix: this wrote ``target``
    assert "FunctionTransformer" in str(info.value) and "dump_svmlight_file" in str(info.value)
    assert not target.exists()


def test_saving_a_head_that_loading_would_refuse_is_an_error():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    with pytest.raises(TypeError, match="FunctionTransformer"):
        check_savable(make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()))


@pytest.mark.parametrize("change, match", [
    ({"files": KeyError}, "'files'"),
    ({"files": {}}, "no SHA-256 for head.npz"),  # the first file read
    ({"files": {"model.keras": "0" * 63}}, "no SHA-256 for head.npz"),
])
def test_hashes_are_required(saved, tmp_path, change, match):
    copy = _copy(saved, tmp_path)
    _edit_metadata(copy, **change)
    with pytest.raises(ModelFormatError, match=match) as info:
        load_model(copy)
    assert "metadata.json" in str(info.value)


def test_a_skops_head_needs_its_own_hash(saved, tmp_path):
    target = tmp_path / "never"
    folder = _malicious_folder(saved, tmp_path, target)
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["files"]["head.skops"]
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="no SHA-256 for head.skops"):
        load_model(folder)


@pytest.mark.parametrize("name,runtime", [("model.keras", "keras"), ("model.tflite", "litert"),
                                          ("metadata.json", "auto")])
def test_a_symbolic_link_is_refused_even_to_identical_bytes(saved, tmp_path, name, runtime):
    copy = _copy(saved, tmp_path)
    outside = tmp_path / f"outside-{name}"
    shutil.move(copy / name, outside)
    (copy / name).symlink_to(outside)
    with pytest.raises(ModelFormatError, match="symbolic link") as info:
        load_model(copy, runtime=runtime)
    assert name in str(info.value)


def test_a_model_folder_reached_through_a_link_loads(saved, tmp_path):
    link = tmp_path / "current"
    link.symlink_to(saved, target_is_directory=True)
    assert load_model(link).classes_ == ["bird", "flower", "fruit", "vegetable"]


def test_deeply_nested_metadata_is_a_format_error(saved, tmp_path):
    copy = _copy(saved, tmp_path)
    text = (copy / "metadata.json").read_text()
    deep = "[" * 5000 + "]" * 5000
    (copy / "metadata.json").write_text(text.replace('"metrics": {', f'"metrics": {{"deep": {deep}, ', 1))
    with pytest.raises(ModelFormatError, match="'metrics' is nested more than") as info:
        load_model(copy)
    assert "metadata.json" in str(info.value)


def test_a_huge_integer_in_metadata_is_a_format_error(saved, tmp_path):
    copy = _copy(saved, tmp_path)
    text = (copy / "metadata.json").read_text()
    (copy / "metadata.json").write_text(text.replace('"format_version": 2', '"format_version": ' + "9" * 5000))
    with pytest.raises(ModelFormatError, match="'format_version'") as info:
        load_model(copy)
    assert "metadata.json" in str(info.value)


@pytest.mark.parametrize("old_form", [224, [None, 224, 224, 3], [224, 224]])
def test_older_input_size_forms_still_load(saved, tmp_path, old_form):
    copy = _copy(saved, tmp_path)
    _edit_metadata(copy, input_size=old_form)  # metadata.json itself is not hashed
    model = load_model(copy)
    assert model.input_size_ == (224, 224) and model.metadata_["input_size"] == [224, 224]


def test_input_size_reads_width_then_height(saved, tmp_path):
    copy = _copy(saved, tmp_path)
    _edit_metadata(copy, input_size=[None, 240, 320, 3])
    assert read_metadata(copy)["input_size"] == [320, 240]
    with pytest.raises(ModelFormatError, match="does not match input_size"):
        load_model(copy)
