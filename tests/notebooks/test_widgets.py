"""notebooks/00_annotate.ipynb runs headless under papermill and resumes from an existing TSV."""
from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.slow


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _text(nb: dict) -> str:
    parts = []
    for o in _outputs(nb):
        if o["output_type"] == "stream":
            parts.append("".join(o["text"]))
        elif "data" in o and "text/plain" in o["data"]:
            parts.append("".join(o["data"]["text/plain"]))
    return "\n".join(parts)


def test_annotate_notebook_creates_the_widget_and_loads_saved_labels(tmp_path, repo_dir, sample_dir):
    import papermill

    from cvkit.widgets import AnnotationWidget

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("owl.jpg", "crow.jpg", "duck.jpg"):
        shutil.copy(sample_dir / "bird" / name, photos / name)
    shutil.copy(sample_dir / "flower" / "daffodil.jpg", photos / "daffodil.jpg")
    output = tmp_path / "labels" / "labels.tsv"
    # a previous session: two labels and one exclusion, then the kernel went away
    before = AnnotationWidget(photos, labels=["bird", "flower"], output=output)
    before.label_buttons["bird"].click()        # crow.jpg
    before.label_buttons["flower"].click()      # daffodil.jpg
    before.exclude_button.value = True          # duck.jpg
    del before

    executed = tmp_path / "00_annotate.out.ipynb"
    papermill.execute_notebook(
        str(repo_dir / "notebooks" / "00_annotate.ipynb"), str(executed),
        parameters={"image_dir": str(photos), "labels": ["bird", "flower"], "output": str(output)},
        cwd=str(repo_dir / "notebooks"), kernel_name="python3", progress_bar=False)
    nb = json.loads(executed.read_text())
    assert not [o for o in _outputs(nb) if o["output_type"] == "error"]
    text = _text(nb)
    assert f"4 photos found in {photos}; labels: bird, flower" in text
    # the widget was displayed (a widget view, whose text is the resumed state)
    views = [o for o in _outputs(nb) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1
    assert "<AnnotationWidget: 2 labelled of 4 images, 2 labels, saving to labels.tsv>" in text
    assert "2 labelled photos, 1 excluded" in text and "{'bird': 1, 'flower': 1}" in text
    # the notebook read the file; nothing it did changed the labels
    from cvkit import ImageDataset
    assert ImageDataset.from_table(output).counts() == {"bird": 1, "flower": 1}
