#!/usr/bin/env python3
"""Regenerate the README's widget screenshots (docs/widget_*.png) in a real JupyterLab.

What it does:
1. trains the sample model (EfficientNet-Lite0 features + logistic regression) on the standard
   split of ``sample_data/`` and evaluates it on the 36 test photos, so the results and
   precision/recall widgets show real predictions;
2. writes a small notebook showing the widgets (the annotation widget twice: in folder order, and
   in uncertain-first order after 20 labels given from code; the cleaner on an audit of the
   training split, its duplicates/leaks and the evaluation's top losses) into a temporary folder, opens it in
   JupyterLab in headless Chromium (the same harness as ``tests/test_browser.py``), runs it, clicks
   two label buttons in the annotation widget like a user would; in the results widget it
   clicks the confusion matrix's biggest mistake; on the dataset map (``EmbeddingWidget``) it
   drags a box over the upper-left quarter and hovers a selected point, and
3. saves one screenshot per widget to ``docs/`` (or ``--out``; ``--only NAME...`` for some of them).

Nothing in ``sample_data/`` is written to: the annotations go to the temporary folder.

Usage:  .venv/bin/python scripts/make_widget_screenshots.py [--out docs]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType

import cvkit
from cvkit.classifiers import FeatureClassifier
from cvkit.evaluation import EvaluationReport

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHOTS = {  # css class of the widget -> file name
    "cvkit-annotation": "widget_annotation.png",
    "cvkit-results": "widget_results.png",
    "cvkit-precision-recall": "widget_precision_recall.png",
    "cvkit-uncertain-shot": "widget_annotation_uncertain.png",
    "cvkit-cleaner": "widget_cleaner.png",
    "cvkit-confusion-shot": "widget_confusion.png",
    "cvkit-embedding-shot": "widget_embedding.png",
    "cvkit-heatmap-shot": "widget_results_heatmap.png",
}


def sample_report(report_path: Path) -> None:
    """Fit the sample model and write its test-set EvaluationReport (absolute image paths)."""
    data = cvkit.ImageDataset.from_directory(REPO / "sample_data")
    train, test = data.split(test_size=0.34, random_state=0)
    clf = FeatureClassifier().fit(train)
    clf.save(report_path.with_name("model"))  # for the results widget's heat maps
    report = cvkit.evaluate(clf, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = EvaluationReport(report.y_true, report.proba, report.classes,
                                paths=[os.path.abspath(p) for p in report.paths])
    full.to_json(report_path)
    print(f"sample model: test accuracy {full.accuracy:.3f} on {len(full)} photos", flush=True)


def load_labsession() -> ModuleType:
    """The browser harness of the tests (``tests/support/labsession.py``), loaded from its file.

    Loaded by path, not by putting ``tests/`` on ``sys.path``: the script runs against the
    installed cvkit and borrows one file, without making every test module importable.
    """
    path = REPO / "tests" / "support" / "labsession.py"
    spec = importlib.util.spec_from_file_location("labsession", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the JupyterLab harness from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # for anything that looks its own module up (dataclasses)
    spec.loader.exec_module(module)
    return module


def tour_notebook(path: Path, report_path: Path, labels_path: Path) -> None:
    """A notebook that shows each widget in its own cell."""
    import nbformat

    code = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code('import os\nos.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"\n'
             "from cvkit.evaluation import EvaluationReport\n"
             "from cvkit.widgets import AnnotationWidget, PrecisionRecallWidget, ResultsWidget\n"
             f"report = EvaluationReport.from_json({str(report_path)!r})"),
        code(f"AnnotationWidget({str(REPO / 'sample_data')!r}, "
             "labels=['bird', 'flower', 'fruit', 'vegetable'], "
             f"output={str(labels_path)!r}, image_size=(400, 300))"),
        code("results = ResultsWidget(report)\n"
             "results.show.value = 'incorrect'\n"
             "results.sort.value = 'loss'\n"
             "results"),
        code("PrecisionRecallWidget(report, threshold=0.6)"),
        code("from pathlib import Path\n"
             f"uncertain = AnnotationWidget({str(REPO / 'sample_data')!r}, "
             "labels=['bird', 'flower', 'fruit', 'vegetable'], "
             f"output={str(labels_path.with_name('uncertain.tsv'))!r}, image_size=(400, 300), "
             "order='uncertain', refit_every=10)\n"
             "for _ in range(20):  # a labeller's first 20 answers (the folder name is the truth)\n"
             "    uncertain.label(Path(uncertain.current_path).parent.name)\n"
             "uncertain.widget.add_class('cvkit-uncertain-shot')\n"
             "uncertain"),
        code("import cvkit\n"
             "from cvkit.widgets import CleanerWidget\n"
             f"data = cvkit.ImageDataset.from_directory({str(REPO / 'sample_data')!r})\n"
             "train, test = data.split(test_size=0.34, random_state=0)\n"
             "issues = cvkit.find_label_issues(train, cv=3)\n"
             "CleanerWidget(issues, cvkit.find_duplicates(train, other=test), report, only_issues=False,\n"
             "              top_losses=5, image_size=(320, 240),\n"
             f"              output={str(labels_path.with_name('corrections.tsv'))!r})"),
        code("confusion = ResultsWidget(report)\n"
             "confusion.widget.add_class('cvkit-confusion-shot')\n"
             "confusion"),
        code(f"heat = ResultsWidget(report, heatmaps={str(report_path.with_name('model'))!r})\n"
             "heat.show.value = 'incorrect'\n"
             "heat.heatmap_toggle.checkbox.value = True  # the map of the class each photo was given\n"
             "heat.widget.add_class('cvkit-heatmap-shot')\n"
             "heat"),
        code("from cvkit.widgets import EmbeddingWidget\n"
             "emb = EmbeddingWidget(data, label_issues=issues, report=report,\n"
             f"                      output={str(labels_path.with_name('relabel.tsv'))!r})\n"
             "emb.widget.add_class('cvkit-embedding-shot')\n"
             "emb"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, str(path))


def click_worst_confusion_cell(page, report: EvaluationReport) -> None:
    """Click the confusion matrix's biggest mistake (true i, predicted j), as a user looking for why would."""
    import numpy as np

    counts = np.zeros((len(report.classes),) * 2, int)
    np.add.at(counts, (report.y_true, report.y_pred), 1)
    np.fill_diagonal(counts, 0)
    i, j = np.unravel_index(counts.argmax(), counts.shape)
    shot = page.locator(".cvkit-confusion-shot")
    shot.locator(f".cvkit-cell-{i}-{j}").click()
    shot.locator(".cvkit-cell-filter", has_text=f"predicted {report.classes[j]}").wait_for()


def select_on_the_map(page) -> None:
    """Drag a box over the map's upper-left quarter, then hover a point inside it (its photo shows)."""
    shot = page.locator(".cvkit-embedding-shot")
    shot.scroll_into_view_if_needed()
    box = shot.locator(".cvkit-scatter svg").bounding_box()
    page.mouse.move(box["x"] + 3, box["y"] + 3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    shot.locator(".cvkit-embedding-count", has_text="selected").wait_for()
    shot.locator(".cvkit-point-selected").first.hover()
    shot.locator(".cvkit-embedding-details b").first.wait_for()
    page.wait_for_timeout(500)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for the PNG files")
    parser.add_argument("--only", nargs="+", choices=sorted(SHOTS.values()), help="write only these files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    LabSession = load_labsession().LabSession

    with tempfile.TemporaryDirectory(prefix="cvkit-shots-") as tmp:
        tmp = Path(tmp)
        report_path = tmp / "report.json"
        labels_path = tmp / "labels.tsv"
        start = time.perf_counter()
        sample_report(report_path)
        tour_notebook(tmp / "widgets.ipynb", report_path, labels_path)
        with LabSession(tmp, viewport=(1200, 1000)) as lab:
            page = lab.open_notebook("widgets.ipynb")
            lab.run_all(page)
            errors = lab.cell_errors(page)
            if errors:
                print("the widget notebook failed:\n" + "\n".join(errors), file=sys.stderr)
                return 1
            # a user's first two clicks: the first photo is a bird, so is the second
            annotation = page.locator(".cvkit-annotation").first
            annotation.wait_for(state="visible")
            for _ in range(2):
                before = labels_path.stat().st_mtime_ns if labels_path.exists() else 0
                annotation.locator(".cvkit-label-button", has_text="bird").click()
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and (
                        not labels_path.exists() or labels_path.stat().st_mtime_ns == before):
                    time.sleep(0.1)
            page.locator(".cvkit-progress", has_text="2 labelled of").first.wait_for()
            click_worst_confusion_cell(page, EvaluationReport.from_json(report_path))
            select_on_the_map(page)
            page.mouse.move(0, 0)  # no hover highlight in the pictures
            for css, name in SHOTS.items():
                if args.only and name not in args.only:
                    continue
                element = page.locator(f".{css}").first
                element.scroll_into_view_if_needed()
                page.wait_for_timeout(300)  # let images finish painting
                element.screenshot(path=str(out / name))
                print(f"wrote {out / name}", flush=True)
        print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
