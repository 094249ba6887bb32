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

from tests.support.labsession import CHROMIUM, LabSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]

N_PER_CLASS = 3


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def project(tmp_path_factory, repo_dir, sample_dir):
    """A small copy of the project: the committed notebook plus 2 x 3 sample photos."""
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(repo_dir / "notebooks" / "00_annotate.ipynb", root / "notebooks")
    for cls in ("bird", "fruit"):
        (root / "sample_data" / cls).mkdir(parents=True)
        for src in sorted((sample_dir / cls).glob("*.jpg"))[:N_PER_CLASS]:
            shutil.copy(src, root / "sample_data" / cls)
    return root


@pytest.fixture(scope="module")
def lab(project):
    """One JupyterLab server and one headless Chromium for the module."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium chromium-driver`")
    with LabSession(project) as session:
        yield session


@pytest.fixture(scope="module")
def artifacts(repo_dir):
    folder = repo_dir / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


def _write_notebook(path: Path, *sources: str) -> None:
    """A notebook at ``path`` with one code cell per source, on the python3 kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def _six_photo_report(path: Path) -> tuple[list[Path], list[str]]:
    """The project's six photos (3 bird, 3 fruit), scored so the third bird is called a fruit, as a
    report at ``path``; returns ``(photos, true classes)``."""
    import numpy as np

    from cvkit.evaluation import EvaluationReport

    images = sorted((path.parent / "sample_data").rglob("*.jpg"))
    truth = [p.parent.name for p in images]
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8], [0.4, 0.6], [0.1, 0.9]])
    EvaluationReport(truth, proba, ["bird", "fruit"], paths=images).to_json(path)
    return images, truth


def _read_rows(tsv: Path) -> list[list[str]]:
    if not tsv.exists():
        return []
    return [line.split("\t") for line in tsv.read_text().splitlines()
            if line and not line.startswith("#") and line != "path\tlabel"]


def test_click_label_in_jupyterlab_writes_tsv(project, lab, artifacts):
    images = sorted((project / "sample_data").rglob("*.jpg"))
    before = {p: _sha(p) for p in images}
    tsv = project / "runs" / "annotate" / "labels.tsv"
    first = images[0]
    page = lab.open_notebook("notebooks/00_annotate.ipynb")
    try:
        lab.run_all(page)
        assert lab.cell_errors(page) == [], lab.log
        widget = page.locator(".cvkit-annotation")
        widget.wait_for(state="visible")
        # the first photo is shown as a real image, with its name and the progress line
        assert first.name in widget.inner_text()
        assert "0 labelled of 6" in page.locator(".cvkit-progress").inner_text()
        assert widget.locator("img").first.evaluate("el => el.complete && el.naturalWidth > 0")
        assert _read_rows(tsv) == []  # the notebook's to_dataset() wrote the empty file

        widget.locator(".cvkit-label-button", has_text="flower").click()

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _read_rows(tsv):
            time.sleep(0.2)
        assert _read_rows(tsv) == [["../../sample_data/bird/" + first.name, "flower"]], tsv.read_text()
        # the widget moved on and counts the label
        page.locator(".cvkit-progress", has_text="1 labelled of 6").wait_for()
        assert images[1].name in widget.inner_text()
    finally:
        _screenshots(page, ".cvkit-annotation", artifacts / "browser_annotate")
        page.close()

    # the TSV is a dataset, and no photo was touched
    from cvkit import ImageDataset
    ds = ImageDataset.from_table(tsv)
    assert ds.image_labels == ["flower"] and Path(ds.paths[0]).name == first.name
    assert {p: _sha(p) for p in images} == before
    assert sorted(p.name for p in (project / "runs" / "annotate").iterdir()) == ["labels.tsv"]


def _screenshots(page, css: str, stem: Path) -> None:
    """The page as it was, and the widget alone when it rendered."""
    page.screenshot(path=f"{stem}.png")
    if page.locator(css).count():
        page.locator(css).screenshot(path=f"{stem}_widget.png")


def test_results_and_precision_recall_widgets_render_and_respond(project, lab, artifacts):
    """Both evaluation widgets render from a report; a click and a dropdown change reach the kernel."""
    images, _ = _six_photo_report(project / "report.json")
    _write_notebook(
        project / "evaluate_widgets.ipynb",
        "from cvkit.evaluation import EvaluationReport\n"
        "from cvkit.widgets import PrecisionRecallWidget, ResultsWidget\n"
        "report = EvaluationReport.from_json('report.json')",
        "ResultsWidget(report)",
        "PrecisionRecallWidget(report, threshold=0.75)")

    page = lab.open_notebook("evaluate_widgets.ipynb")
    try:
        lab.run_all(page)
        assert lab.cell_errors(page) == [], lab.log
        results = page.locator(".cvkit-results")
        results.wait_for(state="visible")
        assert "1 of 6 shown" in results.locator(".cvkit-position").inner_text()
        assert "true: bird" in results.locator(".cvkit-verdict").inner_text()
        assert results.locator("img").first.evaluate("el => el.complete && el.naturalWidth > 0")
        assert results.locator(".cvkit-bars .progress-bar").count() == 2   # one bar per class
        results.get_by_role("button", name="incorrect").click()
        results.locator(".cvkit-position", has_text="1 of 1 shown").wait_for()
        verdict = results.locator(".cvkit-verdict")
        verdict.filter(has_text="wrong").wait_for()
        assert images[2].name in results.inner_text()

        pr = page.locator(".cvkit-precision-recall")
        pr.wait_for(state="visible")
        numbers = pr.locator(".cvkit-pr-numbers")
        assert "kept 4 of 6 images" in numbers.inner_text()      # top scores >= 0.75: 0.9 .8 .8 .9
        assert pr.locator("img").first.evaluate("el => el.complete && el.naturalWidth > 0")
        pr.locator("select").select_option("fruit")
        numbers.filter(has_text="fruit vs rest").wait_for()
        assert "flagged as fruit: 2 of 6 images" in numbers.inner_text()   # fruit >= 0.75: .8 .9
    finally:
        _screenshots(page, ".cvkit-results", artifacts / "browser_results")
        if page.locator(".cvkit-precision-recall").count():
            page.locator(".cvkit-precision-recall").screenshot(
                path=str(artifacts / "browser_precision_recall_widget.png"))
        page.close()


def test_key_press_in_annotation_and_cleaner_click_land_in_their_files(project, lab, artifacts):
    """Issue 16: a KEY PRESS in the annotation widget writes the labels file (JupyterLab's own
    shortcuts, e.g. "2" = heading, do not fire), and a relabel click in the CleanerWidget writes the
    corrections file."""
    images = sorted((project / "sample_data").rglob("*.jpg"))
    labels_tsv = project / "keys" / "labels.tsv"
    corrections = project / "keys" / "corrections.tsv"
    _write_notebook(
        project / "keys.ipynb",
        "import pandas as pd\n"
        "from cvkit.widgets import AnnotationWidget, CleanerWidget\n"
        "paths = sorted(str(p) for p in __import__('pathlib').Path('sample_data').rglob('*.jpg'))",
        "AnnotationWidget('sample_data', labels='bird,fruit', output='keys/labels.tsv')",
        "issues = pd.DataFrame({'path': paths[:1], 'given_label': ['bird'], 'suggested_label': ['fruit'],\n"
        "                       'label_quality': [0.1], 'is_issue': [True], 'ood_score': [0.5],\n"
        "                       'is_outlier': [False], 'p_bird': [0.1], 'p_fruit': [0.9]})\n"
        "CleanerWidget(issues, output='keys/corrections.tsv')")

    page = lab.open_notebook("keys.ipynb")
    try:
        lab.run_all(page)
        assert lab.cell_errors(page) == [], lab.log
        widget = page.locator(".cvkit-annotation")
        widget.wait_for(state="visible")
        keys = widget.locator(".cvkit-keys")
        keys.wait_for(state="visible")
        assert "Backspace" in keys.inner_text() and "2 fruit" in " ".join(keys.inner_text().split())
        keys.click()                                   # give the widget the keyboard
        page.keyboard.press("2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _read_rows(labels_tsv):
            time.sleep(0.2)
        assert _read_rows(labels_tsv) == [["../sample_data/bird/" + images[0].name, "fruit"]]
        page.locator(".cvkit-progress", has_text="1 labelled of 6").wait_for()
        page.keyboard.press("Backspace")               # undo, from the keyboard too
        page.locator(".cvkit-progress", has_text="0 labelled of 6").wait_for()
        assert _read_rows(labels_tsv) == []
        page.keyboard.press("ArrowRight")
        page.keyboard.press("1")
        page.locator(".cvkit-progress", has_text="1 labelled of 6").wait_for()
        assert _read_rows(labels_tsv) == [["../sample_data/bird/" + images[1].name, "bird"]]
        # the notebook did not take the keys: the cells are still code cells
        assert page.locator(".jp-MarkdownCell").count() == 0

        cleaner = page.locator(".cvkit-cleaner")
        cleaner.wait_for(state="visible")
        assert "suggested: fruit" in cleaner.locator(".cvkit-cleaner-verdict").first.inner_text()
        cleaner.locator(".cvkit-relabel-button", has_text="fruit").first.click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _read_rows(corrections):
            time.sleep(0.2)
        assert _read_rows(corrections)[-1] == ["../sample_data/bird/" + images[0].name, "relabel", "fruit"]
        cleaner.locator(".cvkit-decision", has_text="relabel").first.wait_for()
    finally:
        _screenshots(page, ".cvkit-annotation", artifacts / "browser_keys")
        if page.locator(".cvkit-cleaner").count():
            page.locator(".cvkit-cleaner").screenshot(path=str(artifacts / "browser_cleaner_widget.png"))
        page.close()
    from cvkit import ImageDataset
    fixed = ImageDataset.from_directory(project / "sample_data").with_corrections(corrections)
    assert fixed.image_labels[0] == "fruit"


def test_confusion_cell_click_and_dataset_map_selection_reach_the_kernel(project, lab, artifacts):
    """Issue 27: a click on a confusion-matrix cell filters the ResultsWidget's photos; on the
    EmbeddingWidget, hovering shows a photo, a dragged box selects the points inside it, and "send to
    annotation" opens the annotation widget on them, whose click lands in its own labels file."""
    images, truth = _six_photo_report(project / "map_report.json")
    before = {p: _sha(p) for p in images}
    relabel = project / "map" / "relabel.tsv"
    _write_notebook(
        project / "map.ipynb",
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from cvkit.evaluation import EvaluationReport\n"
        "from cvkit.widgets import EmbeddingWidget, ResultsWidget\n"
        "report = EvaluationReport.from_json('map_report.json')\n"
        "paths = sorted(str(p) for p in Path('sample_data').rglob('*.jpg'))\n"
        "labels = [Path(p).parent.name for p in paths]\n"
        "features = np.array([[0, 0], [1, 0], [0, 1], [9, 9], [10, 9], [9, 10]], float)",
        "ResultsWidget(report)",
        "EmbeddingWidget(features, labels=labels, paths=paths, report=report, method='pca',\n"
        "                output='map/relabel.tsv')")

    page = lab.open_notebook("map.ipynb")
    try:
        lab.run_all(page)
        assert lab.cell_errors(page) == [], lab.log
        results = page.locator(".cvkit-results")
        results.wait_for(state="visible")
        assert "1 of 6 shown" in results.locator(".cvkit-position").inner_text()
        cells = results.locator(".cvkit-confusion-cell")
        assert [cells.nth(k).inner_text() for k in range(4)] == ["2", "1", "0", "3"]
        results.locator(".cvkit-cell-0-1").click()                 # true bird, predicted fruit
        results.locator(".cvkit-cell-filter", has_text="showing: true bird, predicted fruit (1)").wait_for()
        results.locator(".cvkit-position", has_text="1 of 1 shown").wait_for()
        assert images[2].name in results.inner_text()
        results.locator(".cvkit-cell-0-1").scroll_into_view_if_needed()
        page.mouse.move(0, 0)
        results.screenshot(path=str(artifacts / "browser_confusion_widget.png"))
        results.locator(".cvkit-show-all").click()
        results.locator(".cvkit-position", has_text="1 of 6 shown").wait_for()

        emap = page.locator(".cvkit-embedding")
        emap.wait_for(state="visible")
        emap.scroll_into_view_if_needed()
        points = emap.locator(".cvkit-point")
        assert points.count() == 6
        points.nth(4).hover()                                     # the tip, and the photo beside the map
        tip = emap.locator(".cvkit-scatter-tip")
        tip.wait_for(state="visible")
        assert tip.inner_text() == f"fruit · {Path('sample_data', 'fruit', images[4].name)}"
        emap.locator(".cvkit-embedding-details", has_text=images[4].name).wait_for()
        assert emap.locator("img").first.evaluate("el => el.complete && el.naturalWidth > 0")
        # drag a box over the left half of the plot: the points drawn there are selected
        svg = emap.locator(".cvkit-scatter svg").bounding_box()
        middle = svg["x"] + svg["width"] / 2
        inside = sorted(int(points.nth(k).get_attribute("data-index")) for k in range(6)
                        if points.nth(k).locator("circle").first.bounding_box()["x"] + 5 < middle)
        assert 0 < len(inside) < 6
        page.mouse.move(svg["x"] + 3, svg["y"] + 3)
        page.mouse.down()
        page.mouse.move(middle, svg["y"] + svg["height"] - 3, steps=8)
        page.mouse.up()
        emap.locator(".cvkit-embedding-count", has_text=f"{len(inside)} selected").wait_for()
        listed = emap.locator(".cvkit-embedding-list").inner_text()
        assert all(images[i].name in listed for i in inside)
        assert emap.locator(".cvkit-point-selected").count() == len(inside)
        page.mouse.move(0, 0)
        emap.screenshot(path=str(artifacts / "browser_embedding_widget.png"))
        emap.locator(".cvkit-send-annotation").click()
        annotation = emap.locator(".cvkit-annotation")
        annotation.wait_for(state="visible")
        annotation.locator(".cvkit-progress", has_text=f"0 labelled of {len(inside)}").wait_for()
        annotation.locator(".cvkit-label-button", has_text="fruit").click()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _read_rows(relabel):
            time.sleep(0.2)
        assert _read_rows(relabel) == [[f"../sample_data/{truth[inside[0]]}/{images[inside[0]].name}", "fruit"]]
    finally:
        _screenshots(page, ".cvkit-embedding", artifacts / "browser_map")
        page.close()
    assert {p: _sha(p) for p in images} == before
