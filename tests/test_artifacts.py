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
from cvkit.models.folder import ModelFormatError, load_model, read_metadata
from cvkit.classifiers import FeatureClassifier
from cvkit.data import read_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clf(sample_split):
    return FeatureClassifier(progress=False).fit(sample_split[0])


@pytest.fixture(scope="module")
def saved(clf, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "sample"
    returned = clf.save(path, metrics={"test_accuracy": 0.5})
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


def test_linear_head_is_folded_into_one_keras_graph(saved, clf):
    assert sorted(p.name for p in saved.iterdir()) == ["metadata.json", "model.keras"]
    import keras
    graph = keras.saving.load_model(saved / "model.keras", safe_mode=True, compile=False)
    assert graph.input_shape == (None, 224, 224, 3) and graph.output_shape == (None, 4)
    assert not [layer for layer in graph.layers if type(layer).__name__ == "Lambda"]


def test_reloaded_model_gives_the_same_probabilities(saved, clf, sample_split):
    _, test = sample_split
    model = load_model(saved)
    expected = clf.predict_proba(test)
    got = model.predict_proba(test)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5
    assert list(model.predict(test)) == list(clf.predict(test))
    assert model.score(test) == clf.score(test)
    # the bare Keras graph on raw float32 pixels gives the same numbers: the contract other tools rely on
    pixels = np.stack([read_image(p, size=(224, 224)) for p in test.paths[:6]]).astype(np.float32)
    assert np.abs(model.keras_model_.predict_on_batch(pixels) - expected[:6]).max() <= 1e-5


def test_loaded_model_api_and_metadata(saved, clf):
    model = cvkit.load_model(saved)
    assert model.classes_ == clf.classes_ and model.input_size_ == (224, 224)
    assert model.backbone == "efficientnet_lite0" and model.path_ == saved
    meta = model.metadata_
    assert meta["format"] == "cvkit-model" and meta["format_version"] == 1
    assert meta["classes"] == ["bird", "flower", "fruit", "vegetable"] and meta["input_size"] == [224, 224]
    assert meta["method"] == "features" and meta["head"] == "keras" and meta["backbone"] == "efficientnet_lite0"
    assert "224x224" in meta["preprocessing"] and "(x - 127) / 128" in meta["preprocessing"]
    assert meta["metrics"]["test_accuracy"] == 0.5 and meta["metrics"]["n_train"] == 68
    assert meta["versions"]["keras"] == __import__("keras").__version__ and "scikit-learn" in meta["versions"]
    created = dt.datetime.fromisoformat(meta["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 3600
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


def test_nonlinear_head_is_stored_with_skops_and_round_trips(sample_split, tmp_path):
    from sklearn.ensemble import RandomForestClassifier
    train, test = sample_split
    forest = FeatureClassifier(estimator=RandomForestClassifier(n_estimators=20, random_state=0),
                               progress=False).fit(train)
    forest.save(tmp_path / "forest")
    assert (tmp_path / "forest" / "head.skops").is_file()
    model = load_model(tmp_path / "forest")
    assert model.metadata_["head"] == "skops" and model.metadata_["output"] == "features"
    assert model.keras_model_.output_shape == (None, 1280)
    assert type(model.head_).__name__ == "RandomForestClassifier"
    assert np.abs(model.predict_proba(test) - forest.predict_proba(test)).max() <= 1e-5
    # both binary files are zip archives (Keras' and skops' formats), not pickles
    assert [(tmp_path / "forest" / n).read_bytes()[:2] for n in ("model.keras", "head.skops")] == [b"PK", b"PK"]


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
    (_scaled_logistic_regression, "keras"),  # scaler + logistic regression folds exactly into Dense
])
def test_head_is_folded_only_when_exact(sample_split, tmp_path, make_estimator, head):
    train, test = sample_split
    clf = FeatureClassifier(estimator=make_estimator(), progress=False).fit(train)
    clf.save(tmp_path / "model")
    model = load_model(tmp_path / "model")
    assert model.metadata_["head"] == head
    assert np.abs(model.predict_proba(test) - clf.predict_proba(test)).max() <= 1e-5


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


def test_existing_folders_are_never_clobbered(clf, saved, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite=True"):
        clf.save(saved)
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="not a cvkit model folder"):
        clf.save(other, overwrite=True)
    assert (other / "holiday.jpg").read_bytes() == b"precious"
    copy = _copy(saved, tmp_path)
    before = read_metadata(copy)["model_version"]
    clf.save(copy, overwrite=True, model_version="v2")
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
        load_model(copy2)
    _edit_metadata(copy2, files={})  # without the hash the damaged zip itself must fail cleanly
    with pytest.raises(ModelFormatError, match="model.keras"):
        load_model(copy2)


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
    _edit_metadata(folder, files={})  # no hash: the Keras loader itself must refuse
    with pytest.raises(ModelFormatError, match="model.keras"):
        load_model(folder)
    assert not marker.exists()


def test_a_skops_head_with_foreign_types_is_refused(clf, sample_split, tmp_path):
    import os

    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    train, _ = sample_split
    folder = tmp_path / "m"
    FeatureClassifier(estimator=RandomForestClassifier(n_estimators=5, random_state=0),
                      progress=False).fit(train).save(folder)
    # never fitted or called: a head that would run an arbitrary function from the file
    sio.dump(make_pipeline(FunctionTransformer(os.getpid), LogisticRegression()), folder / "head.skops")
    _edit_metadata(folder, files={})
    with pytest.raises(ModelFormatError, match="outside scikit-learn.*getpid"):
        load_model(folder)
