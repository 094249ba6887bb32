"""The "unknown" answer: images of none of a model's classes are recognised, the same way in every path.

The session's model (4 classes of sample_data) is given an unknown cut and thresholds; its test
photos plus constructed unknowns (noise, a flat grey image, photos of other things from
``skimage.data``) are answered through ``predict`` (LiteRT and Keras), ``score_image``,
``batch_score``, ``cvkit score``, the service in each protocol (a real server started here) and the
Azure ML entry script: all must give the labels worked out here by hand from the probabilities and
novelty scores. A class left out of training is mostly rejected. Malformed, oversized or mismatched
arrays in a folder are refused naming the file; folders saved before novelty existed answer as before.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cvkit.models import ModelFormatError, load_model, read_metadata, save_thresholds, save_unknown_threshold
from tests.support.models import SAMPLE_DATA, older_format_copy, test_split, trained_model_dir


@pytest.fixture(scope="module")
def unknown_images(tmp_path_factory) -> list[str]:
    """Images of no class of the model: noise, a flat grey image, and photos of other things."""
    import skimage.data

    root = tmp_path_factory.mktemp("unknown")
    rng = np.random.default_rng(0)
    arrays = {"noise_a.png": rng.integers(0, 256, (200, 240, 3), dtype=np.uint8),
              "noise_b.png": rng.integers(0, 256, (180, 180, 3), dtype=np.uint8),
              "grey.png": np.full((160, 160, 3), 128, np.uint8)}
    for name in ("camera", "brick", "rocket", "coins", "text"):
        image = getattr(skimage.data, name)()
        arrays[f"{name}.jpg"] = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
    for name, array in arrays.items():
        Image.fromarray(array).save(root / name)
    return sorted(str(p) for p in root.iterdir())


@pytest.fixture(scope="module")
def paths(unknown_images) -> list[str]:
    return [str(p) for p in test_split().paths] + unknown_images


@pytest.fixture(scope="module")
def scores(paths):
    model = load_model(trained_model_dir())
    proba, novelty = model._predict_outputs(paths)
    return proba, novelty


@pytest.fixture(scope="module")
def cut(scores):
    """The default cut (keeping 95% of the training photos), moved to the middle of the gap between
    the test scores around it, so no image sits near enough to flip between runtimes."""
    novelty = np.sort(scores[1])
    default = load_model(trained_model_dir()).novelty_.cut(0.95)
    above = int(np.searchsorted(novelty, default))
    assert 0 < above < len(novelty)
    return float((novelty[above - 1] + novelty[above]) / 2)


@pytest.fixture(scope="module")
def expected(scores, cut):
    """The labels the rule must give, worked out here: unknown above the cut wins over a threshold."""
    proba, novelty = scores
    classes = load_model(trained_model_dir()).classes_
    out = []
    for row, value in zip(proba, novelty):
        out.append("unknown" if value > cut else "no decision" if row.max() < 0.9 else classes[int(row.argmax())])
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory, cut):
    folder = tmp_path_factory.mktemp("unknown-model") / "model"
    shutil.copytree(trained_model_dir(), folder)
    save_thresholds(folder, 0.9)
    rule = save_unknown_threshold(folder, cut=cut)
    assert rule.unknown_cut == cut and rule.thresholds == 0.9
    return folder


def test_constructed_unknowns_are_rejected_and_known_photos_mostly_not(expected, unknown_images):
    known, unknown = expected[:-len(unknown_images)], expected[-len(unknown_images):]
    assert unknown == ["unknown"] * len(unknown_images), dict(zip(unknown_images, unknown))
    assert known.count("unknown") <= 0.1 * len(known)


def test_a_class_left_out_of_training_is_mostly_rejected(tmp_path):
    from cvkit import FeatureClassifier, ImageDataset, unknown_report

    ds = ImageDataset.from_directory(SAMPLE_DATA)
    keep = np.array([label != "bird" for label in ds.image_labels])
    train, test = ds.subset(np.flatnonzero(keep)).split(test_size=0.34, random_state=0)
    clf = FeatureClassifier(verbose=False).fit(train)
    birds = [p for p, k in zip(ds.paths, keep) if not k]
    found = unknown_report(clf, test, birds)
    assert found.unknown_rejected >= 0.8 and found.known_rejected <= 0.15, found.summary()
    assert found.auroc >= 0.95 and found.auroc > found.baseline_auroc - 0.02
    clf.set_unknown_threshold(keep=0.95)
    answers = clf.predict(birds)
    assert np.mean(answers == "unknown") == pytest.approx(found.unknown_rejected)
    assert "AUROC" in found.summary() and found.plot().axes


@pytest.mark.parametrize("runtime", ["litert", "keras"])
def test_the_folder_answers_alike_on_each_runtime(folder, paths, expected, runtime):
    model = load_model(folder, runtime=runtime)
    assert model.predict(paths).tolist() == expected
    answers = [model.score_image(p) for p in paths]
    assert [a["label"] for a in answers] == expected
    assert {a["decision"] for a in answers} == {"label", "no_decision", "unknown"}
    assert all("unknown above novelty" in a["rule"] and a["novelty"] > 0 for a in answers)


def test_batch_score_and_the_cli_write_the_same_labels(folder, paths, expected, scores, tmp_path):
    from cvkit.cli._main import main
    from cvkit.models import batch_score

    batch_score(folder, paths, tmp_path / "local.csv", verbose=False)
    with open(tmp_path / "local.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == expected
    np.testing.assert_allclose([float(r["novelty"]) for r in rows], scores[1], rtol=1e-5)
    table = tmp_path / "images.tsv"
    table.write_text("path\n" + "\n".join(paths) + "\n")
    assert main(["score", str(folder), str(table), "-o", str(tmp_path / "cli.csv"), "--no-progress"]) == 0
    with open(tmp_path / "cli.csv", newline="") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == expected


def test_the_service_answers_alike_in_every_protocol(folder, paths, expected):
    from cvkit.serving import BackgroundServer, Client

    with BackgroundServer(folder) as server, Client(server.url) as client:
        server.wait_until_ready(timeout=300)
        meta = client.metadata()
        assert meta["novelty"]["method"] == "mahalanobis" and meta["decision"]["unknown_cut"] is not None
        for protocol in ("cvkit", "cvtk", "azureml", "tfserving"):
            answers = client.score(paths, protocol=protocol)
            assert [a["label"] for a in answers] == expected, protocol
            assert all(isinstance(a["novelty"], float) for a in answers), protocol
        raw = client._http.post("/v1/models/model:predict", json={"instances": [
            {"b64": base64.b64encode(Path(paths[-1]).read_bytes()).decode()}]}).json()
        assert set(raw["predictions"][0]) == {"probabilities", "novelty"}  # TF Serving's named outputs


def test_the_azureml_entry_script_answers_alike(folder, paths, expected, monkeypatch):
    from cvkit.serving import azureml_entry

    monkeypatch.setattr(azureml_entry, "model", load_model(folder))
    body = {"images": [{"image_in_base64": base64.b64encode(Path(p).read_bytes()).decode()} for p in paths]}
    answers = azureml_entry.run(json.dumps(body))["predictions"]
    assert [a["label"] for a in answers] == expected


def test_evaluate_reports_the_price_and_the_catch(folder, unknown_images):
    from cvkit import evaluate

    report = evaluate(folder, test_split(), unknown=unknown_images)
    figures = report.info["unknown"]
    assert figures["cut_from"] == "the model's cut" and figures["n_unknown"] == len(unknown_images)
    assert figures["unknown_rejected"] == 1.0 and figures["known_rejected"] <= 0.1
    assert "'unknown' answer (the model's cut)" in report.to_text()


def test_set_unknown_threshold_keeps_the_share_asked_of_the_training_photos(fitted):
    from sklearn.base import clone

    model = load_model(trained_model_dir())
    train_scores = model.novelty_.train_scores_
    assert len(train_scores) == 68 and np.all(np.diff(train_scores) >= 0)
    model.set_unknown_threshold(keep=0.9)
    assert np.mean(train_scores <= model.decision_rule_.unknown_cut) == pytest.approx(0.9, abs=0.02)
    assert model.decision_rule_.unknown_info == {"method": "mahalanobis", "keep": 0.9}
    assert model.set_unknown_threshold(None).decision_rule_.is_argmax
    with pytest.raises(ValueError, match="keep must be a share in"):
        model.set_unknown_threshold(keep=1.5)
    with pytest.raises(ValueError, match="'bird' is also a class name"):
        model.set_unknown_threshold(unknown_label="bird")
    assert clone(fitted).get_params()["novelty_method"] == "mahalanobis"


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _replaced(tmp_path, name: str, data: bytes, **fields) -> Path:
    """A copy of the session's folder with file ``name`` replaced by ``data`` and rehashed (as an
    attacker who can write the folder could), and metadata ``fields`` set."""
    import hashlib

    folder = shutil.copytree(trained_model_dir(), tmp_path / "model")
    (folder / name).write_bytes(data)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["files"][name] = hashlib.sha256(data).hexdigest()
    meta.update(fields)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("name, data, message, fields", [
    ("novelty.npz", b"PK\x03\x04 not a zip", "novelty.npz: not a novelty file", {}),
    ("novelty.npz", _npz(means=np.zeros((4, 100), np.float32), precision=np.eye(100, dtype=np.float32)),
     "novelty.npz: Mahalanobis arrays do not fit 1280 features", {}),
    ("novelty.npz", _npz(means=np.zeros((4, 1280), np.float32), precision=np.eye(1280, dtype=np.float32),
                         code=np.zeros(1)), "novelty.npz: holds arrays", {}),
    ("novelty.npz", _npz(means=np.full((4, 1280), np.nan, np.float32), precision=np.eye(1280, dtype=np.float32)),
     "novelty.npz: array 'means' must hold finite floats", {}),
    ("novelty.npz", _npz(means=np.zeros((4, 1280), np.float32), precision=np.eye(1280, dtype=np.float32),
                         train_scores=np.zeros((300_000,), np.float32)), "'train_scores' must be one row", {}),
    ("novelty.npz", _npz(means=np.zeros((4, 1280), object), precision=np.eye(1280, dtype=np.float32)),
     "novelty.npz: not a novelty file", {}),  # objects would need pickle: refused
    ("head.npz", _npz(weights=np.zeros((1280, 3), np.float32), bias=np.zeros(3, np.float32),
                      normalize=np.array(False)), "head.npz: scores 3 classes but metadata.json lists 4", {}),
    ("head.npz", _npz(weights=np.zeros((640, 4), np.float32), bias=np.zeros(4, np.float32),
                      normalize=np.array(False)), "novelty.npz: Mahalanobis arrays do not fit 640 features", {}),
    ("head.npz", _npz(weights=np.zeros((640, 4), np.float32), bias=np.zeros(4, np.float32),
                      normalize=np.array(False)), "the graph gives 1280 features but the head takes 640",
     {"novelty": None, "decision": None}),
])
def test_a_malformed_oversized_or_mismatched_array_is_refused_naming_the_file(tmp_path, name, data, message, fields):
    folder = _replaced(tmp_path, name, data, **fields)
    with pytest.raises(ValueError, match=message):
        load_model(folder)


@pytest.mark.parametrize("novelty, message", [
    ({"method": "pickle", "k": 5, "file": "novelty.npz", "n_train": 68}, "'novelty.method' must be one of"),
    ({"method": "knn", "k": -1, "file": "novelty.npz", "n_train": 68}, "'novelty.k' must be an integer"),
    ({"method": "knn", "k": 5, "file": "../../etc/passwd", "n_train": 68}, "'novelty.file' must be 'novelty.npz'"),
    ({"method": "knn", "k": 5, "file": "novelty.npz", "n_train": 68, "run": "x"}, "'novelty.run' is not a field"),
    ("mahalanobis", "field 'novelty' must be an object"),
])
def test_a_malformed_novelty_field_is_refused_naming_the_field(tmp_path, novelty, message):
    folder = shutil.copytree(trained_model_dir(), tmp_path / "model")
    meta = json.loads((folder / "metadata.json").read_text())
    meta["novelty"] = novelty
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match=message):
        read_metadata(folder)


def test_a_folder_from_before_novelty_loads_and_answers_as_before(tmp_path, paths, unknown_images):
    folder = older_format_copy(tmp_path / "old")
    model = load_model(folder)  # LiteRT: its Keras graph converted once, as for folders saved before LiteRT
    keras = load_model(folder, runtime="keras")
    assert model.novelty_ is None and model.metadata_["head"] == "keras"
    np.testing.assert_allclose(model.predict_proba(paths), keras.predict_proba(paths), atol=1e-4)
    answers = model.predict(paths)
    assert "unknown" not in answers.tolist(), "a folder without a novelty score never answers unknown"
    assert answers.tolist() == [model.classes_[i] for i in model.predict_proba(paths).argmax(1)]
    assert sorted(model.score_image(paths[0])) == ["label", "score", "scores", "top_k"]
    with pytest.raises(ValueError, match="has no novelty scorer"):
        model.novelty(paths)
    with pytest.raises(ValueError, match="has no novelty scorer"):
        model.set_unknown_threshold(keep=0.95)
