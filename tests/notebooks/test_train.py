"""notebooks/01_train.ipynb run end to end by papermill (into tmp), with both training methods.

The committed notebook itself also runs under nbval (``pytest`` collects ``notebooks/``).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_train.ipynb"


def _run(tmp_path: Path, **parameters) -> tuple[dict, str]:
    import papermill
    out = tmp_path / "01_out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent), parameters=parameters,
                               kernel_name="python3", progress_bar=False)
    nb = json.loads(out.read_text())
    texts = ["".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
             for o in c.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    return nb, "\n".join(texts)


def _figures(nb: dict) -> int:
    """Figures drawn (the notebooks draw JPEG, which keeps photo grids small; PNG counts too)."""
    return sum(bool({"image/png", "image/jpeg"} & set(o.get("data", {}))) for c in nb["cells"]
               if c["cell_type"] == "code" for o in c.get("outputs", []))


def test_notebook_has_the_documented_parameters():
    nb = json.loads(NOTEBOOK.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"])
    for name in ("data_dir", "backbone", "method", "epochs", "augment", "test_size", "random_state", "output_dir",
                 "flip", "class_weight", "overwrite"):
        assert f"\n{name} = " in f"\n{source}"
    for other in sorted(NOTEBOOK.parent.glob("*.ipynb")):  # cvkit quiets TensorFlow itself; notebooks set nothing
        code = "".join("".join(c["source"]) for c in json.loads(other.read_text())["cells"] if c["cell_type"] == "code")
        assert "os.environ" not in code and "TF_CPP_MIN_LOG_LEVEL" not in code, other.name
        assert not re.search(r"\bcvkit(\.\w+)*\._\w+", code), f"{other.name} imports a private cvkit module"
    assert "/work/" not in NOTEBOOK.read_text() and "/tmp/" not in NOTEBOOK.read_text()


def test_features_method_reaches_97_percent_and_saves_the_model(sample_dir, tmp_path):
    out = tmp_path / "run"
    nb, text = _run(tmp_path, data_dir=str(sample_dir), output_dir=str(out))
    assert "104 images in 4 classes" in text
    assert "35 of 36 test images right" in text and "accuracy 0.972 (0.858–1.000)" in text
    assert re.search(r"cross-validated on all images: accuracy 0\.\d{3} \(0\.\d{3}–[01]\.\d{3}\), balanced accuracy "
                     r".* over 5 folds × 3 repeats, 104 images", text), text
    assert "reloaded model gives the same probabilities: True" in text
    assert _figures(nb) == 2  # the image grid and the augmentation preview
    import cvkit
    from cvkit.data import load_split
    train, test = load_split(out / "split.json")
    assert (len(train), len(test)) == (68, 36)
    model = cvkit.load_model(out / "model")
    assert model.metadata_["metrics"]["test_accuracy"] == pytest.approx(35 / 36)


def test_finetune_method_with_small_parameters(sample_dir, tmp_path):
    data = tmp_path / "data"
    for folder in sorted(p for p in sample_dir.iterdir() if p.is_dir()):
        (data / folder.name).mkdir(parents=True)
        for p in sorted(folder.glob("*.jpg"))[:5]:
            shutil.copy2(p, data / folder.name / p.name)
    out = tmp_path / "run"
    nb, text = _run(tmp_path, data_dir=str(data), method="finetune", epochs=1, augment=False,
                    output_dir=str(out))
    assert "20 images in 4 classes" in text and "augmentation is off" in text
    assert "test images right" in text and "accuracy " in text and "cross-validated" not in text
    assert _figures(nb) == 2  # the image grid and the training curves
    import cvkit
    model = cvkit.load_model(out / "model")
    assert model.metadata_["method"] == "finetune"
    assert model.metadata_["metrics"]["epochs_run"]["fine_tune"] == 1


def test_imbalanced_data_shows_the_weak_classes(sample_dir, tmp_path):
    """On imbalanced data 01 ends with balanced accuracy, a per-class table and the balance warning."""
    data = tmp_path / "photos"
    for folder in sorted(p for p in sample_dir.iterdir() if p.is_dir()):
        (data / folder.name).mkdir(parents=True)
        for p in sorted(folder.glob("*.jpg"))[:None if folder.name == "bird" else 8]:
            shutil.copy2(p, data / folder.name / p.name)
    out = tmp_path / "run"
    nb, text = _run(tmp_path, data_dir=str(data), class_weight="balanced", flip=False, output_dir=str(out))
    assert "59 images in 4 classes" in text
    assert "balanced accuracy " in text and "on 21 test images" in text
    assert "warning: classes differ in size by" in text and "class_weight='balanced'" in text
    assert "fewer than 10 training images" in text
    tables = ["".join(o["data"]["text/plain"]) for c in nb["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "execute_result"]
    table = next(t for t in tables if "recall" in t)
    assert "precision" in table and "support" in table and "flower" in table
    preview = next(c for c in nb["cells"] if "aug.preview" in "".join(c["source"]))
    assert "default_pipeline(flip=flip)" in "".join(preview["source"])
    import cvkit
    model = cvkit.load_model(out / "model")
    assert "test_balanced_accuracy" in model.metadata_["metrics"]
