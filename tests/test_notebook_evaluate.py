"""notebooks/02_evaluate.ipynb under papermill, on a model folder and split made as 01 makes them.

The test trains the real default model on the standard sample split, saves the model folder and the
split manifest into a temporary "run" folder, runs the notebook there with papermill (from the
notebooks/ folder, as in JupyterLab) and checks what it printed, drew and saved against
``cvkit.evaluate`` run here in the test.
"""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(sample_split, tmp_path_factory):
    """What 01_train leaves behind: ``model/`` and ``split.json``."""
    from cvkit import FeatureClassifier
    from cvkit.data import save_split
    train, test = sample_split
    run = tmp_path_factory.mktemp("run")
    clf = FeatureClassifier(progress=False).fit(train)
    clf.save(run / "model")
    save_split(run / "split.json", train, test)
    return run


@pytest.fixture(scope="module")
def executed(run_dir, repo_dir):
    """The notebook executed by papermill with the run folder as parameters."""
    import papermill
    import nbformat
    out = run_dir / "02_evaluate.out.ipynb"
    # the kernel inherits our environment: draw figures inline as in JupyterLab, not with the tests' Agg
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        papermill.execute_notebook(
            str(repo_dir / "notebooks" / "02_evaluate.ipynb"), str(out),
            parameters={"model_dir": str(run_dir / "model"), "split_path": str(run_dir / "split.json"),
                        "report_path": str(run_dir / "eval" / "report.json"), "n_examples": 8, "top_k": 4},
            cwd=str(repo_dir / "notebooks"), kernel_name="python3", progress_bar=False)
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved
    return nbformat.read(out, as_version=4)


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                yield cell, output


def _stdout(nb) -> str:
    return "".join(o.text for _, o in _outputs(nb) if o.output_type == "stream" and o.name == "stdout")


def test_notebook_saves_the_same_report_as_evaluate(executed, run_dir, sample_split):
    import cvkit
    from cvkit.evaluation import EvaluationReport
    _, test = sample_split
    assert not [o for _, o in _outputs(executed) if o.output_type == "error"]
    saved = EvaluationReport.from_json(run_dir / "eval" / "report.json")
    expected = cvkit.evaluate(cvkit.load_model(run_dir / "model"), test)
    assert len(saved) == len(test) == 36
    assert saved.summary() == pytest.approx(expected.summary(), rel=1e-5)
    assert saved.per_class_log_loss == pytest.approx(expected.per_class_log_loss, rel=1e-5)
    doc = json.loads((run_dir / "eval" / "report.json").read_text())
    assert doc["info"]["model_path"].endswith("model")
    # the printed metrics table is the report's own text
    text = _stdout(executed)
    assert f"accuracy                  {expected.accuracy:.3f}" in text
    assert f"log_loss                  {expected.log_loss:.3f}" in text
    assert "test:  {'bird': 12, 'flower': 9, 'fruit': 9, 'vegetable': 6}" in text


def test_notebook_draws_the_plots(executed):
    figures = [o for _, o in _outputs(executed) if "image/png" in o.get("data", {})]
    sizes = [o.data["text/plain"] for o in figures]
    # summary (3 panels), prediction grid (8 images), top losses (4 images), thresholds
    assert any("with 3 Axes" in s for s in sizes), sizes
    assert len(figures) == 4, sizes
    sources = [c.source for c, o in _outputs(executed) if "image/png" in o.get("data", {})]
    assert any("plot_summary" in s for s in sources) and any("plot_top_losses" in s for s in sources)
    assert any("plot_predictions" in s for s in sources) and any("plot_thresholds" in s for s in sources)


def test_notebook_tables(executed):
    tables = {c.source.splitlines()[-1]: o.data["text/plain"] for c, o in _outputs(executed)
              if o.output_type == "execute_result" and "text/html" in o.get("data", {})}
    assert any("most_confused" in k for k in tables)
    losses = next(v for k, v in tables.items() if "top_losses" in k)
    assert "p_true" in losses and "loss" in losses
    hard = next(v for k, v in tables.items() if "hard" in k)
    assert "confidence" in hard
