"""notebooks/02_evaluate.ipynb under papermill, after 01_train.ipynb, in a temporary run folder.

The test runs 01 (default model, standard split) with papermill into a temporary ``output_dir``,
then 02 on the model folder and split manifest 01 wrote (both from the notebooks/ folder, as in
JupyterLab), and checks what 02 printed, drew and saved against ``cvkit.evaluate`` run here.
"""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


def _papermill(repo_dir, name, out, parameters):
    import papermill
    # the kernel inherits our environment: draw figures inline as in JupyterLab, not with the tests' Agg
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        papermill.execute_notebook(str(repo_dir / "notebooks" / name), str(out), parameters=parameters,
                                   cwd=str(repo_dir / "notebooks"), kernel_name="python3", progress_bar=False)
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved


@pytest.fixture(scope="module")
def run_dir(repo_dir, tmp_path_factory):
    """What 01_train leaves behind (``model/`` and ``split.json``), made by running 01."""
    run = tmp_path_factory.mktemp("run")
    _papermill(repo_dir, "01_train.ipynb", run / "01_train.out.ipynb", {"output_dir": str(run)})
    assert (run / "model" / "metadata.json").is_file() and (run / "split.json").is_file()
    return run


@pytest.fixture(scope="module")
def executed(run_dir, repo_dir):
    """The notebook executed by papermill with the run folder as parameters."""
    import nbformat
    out = run_dir / "02_evaluate.out.ipynb"
    _papermill(repo_dir, "02_evaluate.ipynb", out,
               {"model_dir": str(run_dir / "model"), "split_path": str(run_dir / "split.json"),
                "report_path": str(run_dir / "eval" / "report.json"), "n_examples": 8, "top_k": 4})
    return nbformat.read(out, as_version=4)


def _outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                yield cell, output


def _stdout(nb) -> str:
    return "".join(o.text for _, o in _outputs(nb) if o.output_type == "stream" and o.name == "stdout")


def test_notebook_saves_the_same_report_as_evaluate(executed, run_dir):
    import cvkit
    from cvkit.evaluation import EvaluationReport
    _, test = cvkit.load_split(run_dir / "split.json")  # the very test images 01 held out
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


def test_notebook_saves_an_operating_point_that_the_model_then_answers_by(executed, run_dir):
    import numpy as np

    import cvkit
    _, test = cvkit.load_split(run_dir / "split.json")
    model = cvkit.load_model(run_dir / "model")
    rule = model.decision_rule_
    assert not rule.is_argmax and set(rule.thresholds) == set(model.classes_)
    answers = model.predict(test)
    truth = np.array([str(v) for v in test.image_labels], dtype=object)
    answered = answers != "no decision"
    assert answered.any() and np.mean(answers[answered] == truth[answered]) >= 0.95  # the notebook's target
    assert f"{int((~answered).sum())} of 36 test photos now get 'no decision'" in _stdout(executed)


def _is_figure(output) -> bool:
    return bool({"image/png", "image/jpeg"} & set(output.get("data", {})))  # the notebooks draw JPEG


def test_notebook_draws_the_plots(executed):
    figures = [o for _, o in _outputs(executed) if _is_figure(o)]
    sizes = [o.data["text/plain"] for o in figures]
    # summary (3 panels), prediction grid (8 images), top losses (4 images), thresholds, reliability
    # diagram, novelty histogram, photos of other things, learning curve, heat maps (8 images)
    assert any("with 3 Axes" in s for s in sizes), sizes
    assert len(figures) == 9, sizes
    sources = [c.source for c, o in _outputs(executed) if _is_figure(o)]
    assert any("plot_summary" in s for s in sources) and any("plot_top_losses" in s for s in sources)
    assert any("plot_predictions" in s for s in sources) and any("plot_thresholds" in s for s in sources)
    assert any("plot_calibration" in s for s in sources) and any("learning_curve" in s for s in sources)
    assert any("unknown_report" in s for s in sources) and any("save_unknown_threshold" in s for s in sources)
    assert any("cvkit.explain" in s for s in sources)


def test_notebook_shows_photos_of_other_things_answered_unknown(executed):
    text = _stdout(executed)
    assert "100.0% of 4 unknown images answered 'unknown'" in text, text
    assert "unknown above novelty" in text


def test_notebook_shows_the_learning_curves_advice(executed):
    text = _stdout(executed)
    assert "More photos would help '" in text or "Recall has levelled off for every class" in text


def test_notebook_tables(executed):
    tables = {c.source.splitlines()[-1]: o.data["text/plain"] for c, o in _outputs(executed)
              if o.output_type == "execute_result" and "text/html" in o.get("data", {})}
    assert any("most_confused" in k for k in tables)
    losses = next(v for k, v in tables.items() if "top_losses" in k)
    assert "p_true" in losses and "loss" in losses
    hard = next(v for k, v in tables.items() if "hard" in k)
    assert "confidence" in hard
