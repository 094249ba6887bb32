"""Model folders across versions: a folder from cvkit 0.1 (tests/fixtures/model_v0_1) loads in this
release and answers as it did; a folder from a newer cvkit is refused with both versions named."""
from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import cvkit
from cvkit.cli import main
from cvkit.models import load_model, read_metadata
from cvkit.models._folder import FORMAT_VERSION, ModelFormatError
from tests.support.extras import REPO, run_without_training

FIXTURE = REPO / "tests" / "fixtures" / "model_v0_1"
COLOURS = {"red": (220, 30, 40), "green": (20, 200, 60), "blue": (30, 50, 230)}


def load_fixture_script():
    spec = importlib.util.spec_from_file_location("make_model_fixture", REPO / "scripts" / "make_model_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def colour_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colours")
    paths = {}
    for name, rgb in COLOURS.items():
        paths[name] = folder / f"{name}.png"
        Image.new("RGB", (40, 30), rgb).save(paths[name])
    return paths


@pytest.mark.parametrize("runtime", ["litert", "keras"])
def test_a_folder_from_0_1_loads_and_answers(colour_images, runtime):
    meta = read_metadata(FIXTURE)
    assert meta["versions"]["cvkit"] == "0.1.0" and meta["format_version"] == 1
    model = load_model(FIXTURE, runtime=runtime)
    assert model.runtime_ == runtime and list(model.classes_) == ["blue", "green", "red"]
    names = list(colour_images)
    assert model.predict([str(colour_images[n]) for n in names]).tolist() == names
    proba = model.predict_proba([str(colour_images["red"])])
    assert proba.shape == (1, 3) and np.isclose(proba.sum(), 1, atol=1e-5) and proba[0].argmax() == 2


def test_a_folder_from_0_1_answers_in_the_core_install(colour_images, tmp_path):
    code = (f"import json, cvkit\nm = cvkit.load_model({str(FIXTURE)!r})\n"
            f"print(json.dumps([m.runtime_, m.predict([{str(colour_images['green'])!r}]).tolist()]))\n")
    run, result = run_without_training(code, cwd=tmp_path)
    assert result == ["litert", ["green"]], run.stderr[-2000:]


def newer_copy(tmp_path, **fields):
    copy = tmp_path / "from-the-future"
    shutil.copytree(FIXTURE, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta.update(fields)
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


def test_a_folder_from_a_newer_cvkit_is_refused_naming_both_versions(tmp_path, capsys):
    copy = newer_copy(tmp_path, format_version=FORMAT_VERSION + 1, versions={"cvkit": "9.1.0"})
    with pytest.raises(ModelFormatError) as info:
        load_model(copy)
    message = str(info.value)
    for part in ("metadata.json", "written by cvkit 9.1.0", f"model format {FORMAT_VERSION + 1}",
                 f"this cvkit {cvkit.__version__}", f"up to {FORMAT_VERSION}", "upgrade cvkit"):
        assert part in message, (part, message)
    assert main(["score", str(copy), str(tmp_path), "-o", str(tmp_path / "p.csv")]) == 2
    assert "written by cvkit 9.1.0" in capsys.readouterr().err
    # a newer folder that does not say who wrote it still gets a clear message
    bare = newer_copy(tmp_path / "bare", format_version=FORMAT_VERSION + 1, versions=None)
    newer = FORMAT_VERSION + 1
    with pytest.raises(ModelFormatError, match=f"written by cvkit an unknown version in model format {newer}"):
        load_model(bare)


def test_a_new_folder_keeps_the_fixture_fields_and_records_this_version(tmp_path):
    """Today's writer keeps every field of the 0.1 folder (a field is never dropped silently) and
    records this cvkit's version and format."""
    path = tmp_path / "new"
    assert load_fixture_script().main([str(path)]) == 0
    new, old = read_metadata(path), read_metadata(FIXTURE)
    assert set(old) <= set(new), f"fields the 0.1 folders have and new ones lack: {sorted(set(old) - set(new))}"
    assert new["versions"]["cvkit"] == cvkit.__version__ and new["format_version"] == FORMAT_VERSION
    assert set(old["files"]) == set(new["files"])
