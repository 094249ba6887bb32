"""notebooks/03_deploy.ipynb run end to end by papermill on a freshly trained model, into tmp."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.support.models import REPO, trained_run_dir

pytestmark = pytest.mark.slow


def _stream_text(nb) -> str:
    texts = [out.get("text", "") for cell in nb["cells"] if cell["cell_type"] == "code"
             for out in cell.get("outputs", []) if out.get("output_type") == "stream"]
    return "\n".join("".join(t) if isinstance(t, list) else t for t in texts)


def test_deploy_notebook_runs_with_small_parameters(tmp_path):
    import papermill

    from cvkit.data import load_split, save_split

    run = tmp_path / "run"
    shutil.copytree(trained_run_dir() / "model", run / "model")
    save_split(run / "split.json", *load_split(trained_run_dir() / "split.json"))
    out = tmp_path / "03_out.ipynb"
    papermill.execute_notebook(
        str(REPO / "notebooks" / "03_deploy.ipynb"), str(out), cwd=str(REPO / "notebooks"),
        parameters={"model_dir": str(run / "model"), "split_path": str(run / "split.json"),
                    "output_dir": str(run), "port": 0, "n_images": 8, "quantize": "float16"},
        kernel_name="python3", progress_bar=False)
    nb = json.loads(out.read_text())
    text = _stream_text(nb)
    assert "service status: ok" in text
    assert "base64 JSON gives the same labels as multipart: True" in text
    assert "item 1: images[1]: not an image file" in text
    assert "36 images scored, 0 errors" in text
    assert "TFLite (float16) agrees with Keras on" in text
    assert "service running: False" in text
    assert (run / "predictions.csv").is_file()
    assert (run / "model" / "export" / "model_float16.tflite").is_file()
    figures = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
               if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert len(figures) == 1  # the prediction grid
