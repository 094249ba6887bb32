"""``cvkit explain``: overlay PNGs of the photos' own size and an index, never replacing files unasked."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from PIL import Image

import cvkit
from cvkit.cli._main import main
from tests.support.models import litert_only_copy


def _photos(tmp_path):
    """Three sample photos in two folders, one name in both (the PNG names must still differ)."""
    root = tmp_path / "photos"
    for folder, name, source in [("bird", "a.jpg", "bird/owl.jpg"), ("fruit", "a.jpg", "fruit/apple_fuji.jpg"),
                                 ("fruit", "b.jpg", "fruit/banana.jpg")]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(f"sample_data/{source}", root / folder / name)
    return root


@pytest.mark.slow
def test_explain_writes_an_overlay_per_photo_and_refuses_to_overwrite(model_dir, tmp_path, capsys):
    photos, out = _photos(tmp_path), tmp_path / "maps"
    assert main(["explain", str(model_dir), str(photos), "--out", str(out), "--quiet"]) == 0
    assert "wrote 3 heat-map overlay PNG(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["bird__a.png", "explain.csv", "fruit__a.png", "fruit__b.png"]
    for png, photo in [("bird__a.png", "bird/a.jpg"), ("fruit__b.png", "fruit/b.jpg")]:
        overlay = np.asarray(Image.open(out / png))
        assert overlay.shape == cvkit.read_image(photos / photo).shape  # the photo's own size, RGB
        assert not np.array_equal(overlay, cvkit.read_image(photos / photo))  # the map is on it
    with open(out / "explain.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["png"] for r in rows] == ["bird__a.png", "fruit__a.png", "fruit__b.png"]
    assert {r["method"] for r in rows} == {"cam"} and rows[0]["target"] == rows[0]["predicted"] == "bird"
    assert all(0.0 < float(r["probability"]) <= 1.0 for r in rows)

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["explain", str(model_dir), str(photos), "--out", str(out), "--target", "fruit", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cvkit explain: error:" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched

    assert main(["explain", str(model_dir), str(photos), "--out", str(out), "--target", "fruit", "--overwrite",
                 "--quiet"]) == 0
    with open(out / "explain.csv", newline="") as fh:
        assert {r["target"] for r in csv.DictReader(fh)} == {"fruit"}
    assert (out / "bird__a.png").read_bytes() != before["bird__a.png"]  # the map of another class


def test_explain_names_a_class_the_model_does_not_know_and_a_folder_without_keras(model_dir, tmp_path, capsys):
    photos = _photos(tmp_path)
    assert main(["explain", str(model_dir), str(photos), "--out", str(tmp_path / "m"), "--target", "cat"]) == 2
    assert "'cat' is not a class" in capsys.readouterr().err
    folder = litert_only_copy(model_dir, tmp_path / "litert-only")
    assert main(["explain", str(folder), str(photos), "--out", str(tmp_path / "m2"), "--quiet"]) == 2
    assert "only a LiteRT graph" in capsys.readouterr().err
    assert main(["explain", str(folder), str(photos / "bird"), "--out", str(tmp_path / "m3"), "--method",
                 "occlusion", "--quiet"]) == 0
    assert (tmp_path / "m3" / "a.png").is_file()
