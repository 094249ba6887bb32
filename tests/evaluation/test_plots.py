"""Evaluation plots: each returns a Figure that draws exactly the report's numbers.

The tests read the drawn artists back (line data, cell texts, tick labels, title colours) and
compare them with the report, so a plot that shows the wrong thing fails.
"""
from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from cvkit.evaluation import EvaluationReport, EvaluationWarning, plots

CLASSES = ["bird", "flower", "fruit", "vegetable"]


def make_report(seed=0, n=48, paths=None, drop_class=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    y[:4] = np.arange(4)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 1.8
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    if drop_class is not None:
        keep = y != drop_class
        y, p = y[keep], p[keep]
        paths = None if paths is None else [q for q, k in zip(paths, keep) if k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        return EvaluationReport(y, p, CLASSES, paths=paths)


@pytest.fixture(scope="module")
def image_report(sample_split):
    """A report over real sample images (hand-made probabilities, so some are wrong)."""
    _, test = sample_split
    n = len(test)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), test.targets] += 2.0
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    return EvaluationReport(test.image_labels, p, test.labels, paths=test.paths)


def test_confusion_matrix_cells_ticks_and_ax():
    r = make_report()
    fig = plots.plot_confusion_matrix(r)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    for i in range(4):
        for j in range(4):
            assert cells[(i, j)] == str(r.confusion_matrix[i, j])
    np.testing.assert_array_equal(ax.images[0].get_array(), r.confusion_matrix)
    # normalised, into a caller's Axes
    import matplotlib.pyplot as plt
    outer, axes = plt.subplots(1, 2)
    got = r.plot_confusion_matrix(ax=axes[1], normalize=True)
    assert got is outer and axes[1].images and not axes[0].images
    np.testing.assert_allclose(axes[1].images[0].get_array(), r.confusion_matrix_normalized)
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in axes[1].texts}
    i = 0
    assert texts[(i, i)] == f"{r.confusion_matrix_normalized[i, i]:.2f}\n({r.confusion_matrix[i, i]})"
    # a raw matrix works too; a wrong shape is a clear error
    fig2 = plots.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), classes=["x", "y"])
    assert [t.get_text() for t in fig2.axes[0].get_xticklabels()] == ["x", "y"]
    with pytest.raises(ValueError, match="square confusion matrix"):
        plots.plot_confusion_matrix(np.ones((2, 3)), classes=["x", "y"])


def test_roc_lines_are_the_report_curves():
    r = make_report(seed=2)
    fig = plots.plot_roc(r)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    curves = r.roc_curves()
    for name in CLASSES:
        label = f"{name} (AUC {curves[name][2]:.3f})"
        np.testing.assert_allclose(lines[label].get_xdata(), curves[name][0])
        np.testing.assert_allclose(lines[label].get_ydata(), curves[name][1])
    micro = f"micro average (AUC {r.auc['micro']:.3f})"
    macro = f"macro average (AUC {r.auc['macro']:.3f})"
    np.testing.assert_allclose(lines[micro].get_ydata(), curves["micro"][1])
    np.testing.assert_allclose(lines[macro].get_xdata(), curves["macro"][0])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert micro in legend and macro in legend and ax.get_xlabel() == "False positive rate"


def test_pr_lines_are_the_report_curves():
    r = make_report(seed=3)
    ax = plots.plot_pr(r).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    curves = r.pr_curves()
    for name in CLASSES:
        line = lines[f"{name} (AP {curves[name][2]:.3f})"]
        np.testing.assert_allclose(line.get_xdata(), curves[name][1])  # recall on x
        np.testing.assert_allclose(line.get_ydata(), curves[name][0])
    assert f"macro AP {r.average_precision['macro']:.3f}" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_absent_class_is_listed_as_undefined():
    r = make_report(seed=4, drop_class=2)
    fig = plots.plot_summary(r)
    roc_legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    pr_legend = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert "fruit (undefined)" in roc_legend and "fruit (undefined)" in pr_legend


def test_summary_has_three_panels_and_the_headline():
    r = make_report(seed=5)
    fig = r.plot_summary()
    assert len(fig.axes) == 3
    assert [a.get_title() for a in fig.axes] == ["Confusion matrix (share of true class)",
                                                 "ROC curves (one vs rest)", "Precision-recall curves"]
    assert f"accuracy {r.accuracy:.3f}" in fig._suptitle.get_text()
    assert f"log-loss {r.log_loss:.3f}" in fig._suptitle.get_text()


def test_thresholds_plot_matches_threshold_curve():
    r = make_report(seed=6)
    ax = plots.plot_thresholds(r, class_name="flower").axes[0]
    curve = r.threshold_curve("flower")
    lines = {line.get_label(): line for line in ax.get_lines()}
    for column in ("precision", "recall", "coverage"):
        np.testing.assert_allclose(lines[column].get_ydata(), curve[column], equal_nan=True)


class FakeHistoryHolder:
    """Something with a ``history`` dict attribute, the shape of a Keras ``History``."""

    def __init__(self, history):
        self.history = history


def test_history_panels_and_values():
    hist = {"loss": [1.2, 0.8, 0.5], "val_loss": [1.3, 1.0, 0.9], "accuracy": [0.5, 0.7, 0.85],
            "val_accuracy": [0.4, 0.6, 0.7], "learning_rate": [1e-3, 1e-3, 1e-4]}
    fig = plots.plot_history(FakeHistoryHolder(hist))
    assert [a.get_title() for a in fig.axes] == ["loss", "accuracy"]  # no learning-rate panel
    for ax, metric in zip(fig.axes, ("loss", "accuracy")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        np.testing.assert_allclose(lines["training"].get_ydata(), hist[metric])
        np.testing.assert_allclose(lines["validation"].get_ydata(), hist[f"val_{metric}"])
        np.testing.assert_array_equal(lines["training"].get_xdata(), [1, 2, 3])
    import matplotlib.pyplot as plt
    import pandas as pd
    _, one = plt.subplots()
    got = plots.plot_history(pd.DataFrame(hist), ax=one, metrics=["loss"])
    assert got is one.figure and len(one.get_lines()) == 2
    with pytest.raises(ValueError, match=r"draws 2 panel\(s\)"):
        plots.plot_history(hist, ax=one)
    with pytest.raises(ValueError, match="not in the history"):
        plots.plot_history(hist, metrics=["auc"])
    with pytest.raises(ValueError, match="Keras History"):
        plots.plot_history([1, 2, 3])


def test_prediction_grid_marks_mistakes_in_red(image_report):
    r = image_report
    fig = plots.plot_predictions(r, n=12, random_state=None, errors_first=False)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 12
    for i, ax in enumerate(titled):
        true, pred = r.classes[r.y_true[i]], r.classes[r.y_pred[i]]
        assert ax.get_title().startswith(f"true: {true}\npred: {pred} (")
        expected = "red" if true != pred else "tab:green"
        assert matplotlib.colors.same_color(ax.title.get_color(), expected)
        assert ax.images and ax.images[0].get_array().shape == (128, 128, 3)
    assert (r.y_pred != r.y_true).any()  # the fixture has mistakes to show
    only = plots.plot_predictions(r, n=50, only_errors=True)
    red = [ax for ax in only.axes if ax.get_title()]
    assert len(red) == int((r.y_pred != r.y_true).sum())
    assert all(matplotlib.colors.same_color(ax.title.get_color(), "red") for ax in red)


def test_prediction_grid_shows_mistakes_first(image_report):
    """A grid smaller than the test set never hides a mistake behind correct answers."""
    r = image_report
    wrong = np.flatnonzero(r.y_pred != r.y_true)
    assert 0 < len(wrong) < 6
    for random_state in (0, None):
        fig = plots.plot_predictions(r, n=6, random_state=random_state)
        titled = [ax for ax in fig.axes if ax.get_title()]
        reds = [matplotlib.colors.same_color(ax.title.get_color(), "red") for ax in titled]
        assert reds == [True] * len(wrong) + [False] * (6 - len(wrong))
        text = " ".join(fig._suptitle.get_text().split())  # long titles are wrapped
        assert f"6 of {len(r)} test images, {len(wrong)} misclassified (red, first)" in text
    few = " ".join(plots.plot_predictions(r, n=1)._suptitle.get_text().split())
    assert f"1 misclassified (red, first); {len(wrong) - 1} more misclassified not shown" in few


def test_grid_titles_never_overlap_the_row_above(image_report):
    """Two-line panel titles sit between the rows, and the figure title above them all."""
    figs = [plots.plot_predictions(image_report, n=12), image_report.plot_top_losses(k=9, ncols=3)]
    for fig in figs:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels = [(ax.get_window_extent(renderer), ax.title.get_window_extent(renderer))
                  for ax in fig.axes if ax.images]
        for _, title in panels:
            for image, _ in panels:
                if image.y0 > title.y0:  # an image of a row above this title
                    assert title.y1 <= image.y0 + 1, (title, image)
        assert fig._suptitle.get_window_extent(renderer).y0 >= max(t.y1 for _, t in panels) - 1


def test_top_losses_grid_order(image_report):
    r = image_report
    fig = r.plot_top_losses(k=6)
    table = r.top_losses(6)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"{row.predicted} / {row.true}\nloss {row.loss:.2f}, p {row.p_true:.2f}"
                      for row in table.itertuples()]


def test_image_plots_need_paths():
    with pytest.raises(ValueError, match="no image paths"):
        plots.plot_top_losses(make_report())


def test_history_of_a_two_phase_fine_tune():
    """cvkit's FineTuneClassifier.history_ form: epoch and phase lists, NaN where there is no validation."""
    nan = float("nan")
    hist = {"phase": ["head", "head", "fine_tune", "fine_tune"], "epoch": [1, 2, 3, 4],
            "loss": [1.0, 0.6, 0.4, 0.3], "accuracy": [0.6, 0.8, 0.9, 0.95],
            "val_loss": [nan, nan, nan, nan], "val_accuracy": [nan, nan, nan, nan]}
    fig = plots.plot_history(FakeHistoryHolder(hist))
    assert [a.get_title() for a in fig.axes] == ["loss", "accuracy"]
    loss_ax = fig.axes[0]
    drawn = [line for line in loss_ax.get_lines() if line.get_label() == "training"]
    np.testing.assert_allclose(drawn[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(drawn[0].get_ydata(), hist["loss"])
    assert not [line for line in loss_ax.get_lines() if line.get_label() == "validation"]  # all NaN
    marks = [line for line in loss_ax.get_lines() if line.get_linestyle() == ":"]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == pytest.approx(2.5)
    assert "fine tune" in [t.get_text() for t in loss_ax.texts]
