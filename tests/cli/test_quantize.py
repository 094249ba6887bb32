"""``cvkit quantize``: builds the int8 graph of a real trained model folder, prints the agreement that
metadata.json records, says how to use it, and refuses to replace it without ``--overwrite``.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest

from cvkit.cli._main import main
from tests.support.models import trained_model_dir, trained_run_dir


@pytest.mark.slow
def test_quantize_prints_the_recorded_agreement_and_keeps_an_existing_graph(tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(trained_model_dir(), folder)  # never the shared fixture itself
    split = str(trained_run_dir() / "split.json")

    assert main(["quantize", str(folder), "--images", split]) == 0
    out = capsys.readouterr().out
    meta = json.loads((folder / "metadata.json").read_text())
    found = meta["litert_int8"]["agreement"]
    assert f"written to {folder / 'model.int8.tflite'}" in out and (folder / "model.int8.tflite").is_file()
    top1 = re.search(r"on (\d+) test-split images: top-1 ([\d.]+)% \((\d+)/(\d+)\)", out)
    assert top1, out
    assert int(top1[1]) == found["n"] == int(top1[4])
    assert float(top1[2]) == round(100 * found["top1_agreement"], 1)
    assert int(top1[3]) == round(found["top1_agreement"] * found["n"])
    cosine = re.search(r"cosine mean ([\d.]+), min ([\d.]+)", out)
    assert (float(cosine[1]), float(cosine[2])) == (round(found["cosine_mean"], 4), round(found["cosine_min"], 4))
    assert "--precision int8" in out and 'precision="int8"' in out

    graph = (folder / "model.int8.tflite").read_bytes()
    assert main(["quantize", str(folder), "--images", split]) == 2
    captured = capsys.readouterr()
    assert "cvkit quantize: error:" in captured.err and "already exists" in captured.err
    assert "--overwrite" in captured.err and "overwrite=True" not in captured.err
    assert (folder / "model.int8.tflite").read_bytes() == graph  # untouched
    assert json.loads((folder / "metadata.json").read_text()) == meta


def test_quantize_names_a_missing_folder(tmp_path, capsys):
    assert main(["quantize", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "cvkit quantize: error:" in err and "nope" in err
