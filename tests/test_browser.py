"""End to end in a real browser: JupyterLab + headless Chromium run 00_annotate.ipynb and a click
on a rendered label button lands in the TSV on disk.

The test starts everything itself (JupyterLab on a free port with a token, Debian's Chromium via
Playwright) in a temporary project folder laid out like the repo (``notebooks/`` next to
``sample_data/``), so the notebook runs exactly as committed, with its default parameters.
A screenshot is saved to ``test-artifacts/`` (gitignored).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from cvkit.widgets._labsession import CHROMIUM, LabSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_PER_CLASS = 3


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def project(tmp_path, repo_dir, sample_dir):
    """A small copy of the project: the committed notebook plus 2 x 3 sample photos."""
    (tmp_path / "notebooks").mkdir()
    shutil.copy(repo_dir / "notebooks" / "00_annotate.ipynb", tmp_path / "notebooks")
    for cls in ("bird", "fruit"):
        (tmp_path / "sample_data" / cls).mkdir(parents=True)
        for src in sorted((sample_dir / cls).glob("*.jpg"))[:N_PER_CLASS]:
            shutil.copy(src, tmp_path / "sample_data" / cls)
    return tmp_path


def _read_rows(tsv: Path) -> list[list[str]]:
    if not tsv.exists():
        return []
    return [line.split("\t") for line in tsv.read_text().splitlines()
            if line and not line.startswith("#") and line != "path\tlabel"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: apt-get install chromium")
def test_click_label_in_jupyterlab_writes_tsv(project, repo_dir):
    images = sorted((project / "sample_data").rglob("*.jpg"))
    before = {p: _sha(p) for p in images}
    tsv = project / "runs" / "annotate" / "labels.tsv"
    artifacts = repo_dir / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    with LabSession(project) as lab:
        page = lab.open_notebook("notebooks/00_annotate.ipynb")
        try:
            lab.run_all(page)
            assert lab.cell_errors(page) == [], lab.log
            widget = page.locator(".cvkit-annotation")
            widget.wait_for(state="visible")
            # the first photo is shown as a real image, with its name and the progress line
            first = images[0]
            assert first.name in widget.inner_text()
            assert "0 labelled of 6" in page.locator(".cvkit-progress").inner_text()
            img = widget.locator("img").first
            assert img.evaluate("el => el.naturalWidth") > 0
            assert _read_rows(tsv) == []  # to_dataset() wrote the empty file

            button = widget.locator(".cvkit-label-button", has_text="flower")
            button.click()

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not _read_rows(tsv):
                time.sleep(0.2)
            rows = _read_rows(tsv)
            assert rows == [["../../sample_data/bird/" + first.name, "flower"]], tsv.read_text()
            # the widget moved on and counts the label
            page.locator(".cvkit-progress", has_text="1 labelled of 6").wait_for()
            assert images[1].name in widget.inner_text()
        finally:
            page.screenshot(path=str(artifacts / "browser_annotate.png"), full_page=True)

    # the TSV is a dataset, and no photo was touched
    from cvkit import ImageDataset
    ds = ImageDataset.from_table(tsv)
    assert ds.image_labels == ["flower"] and Path(ds.paths[0]).name == first.name
    assert {p: _sha(p) for p in images} == before
    assert sorted(p.name for p in (project / "runs" / "annotate").iterdir()) == ["labels.tsv"]

