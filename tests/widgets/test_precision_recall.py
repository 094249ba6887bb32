"""PrecisionRecallWidget driven through its slider and class selector, against EvaluationReport."""
from __future__ import annotations

import numpy as np
import pytest

from cvkit.evaluation import EvaluationReport
from cvkit.widgets import PrecisionRecallWidget


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(3)
    classes = ["bird", "flower", "fruit", "vegetable"]
    y = rng.integers(0, 4, 60)
    logits = rng.normal(size=(60, 4))
    logits[np.arange(60), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return EvaluationReport(y, proba, classes)


def _svg_size(data: bytes) -> tuple[str, str]:
    """The width and height an SVG declares (matplotlib writes points: 72 per inch)."""
    import xml.etree.ElementTree as ET
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root.get("width"), root.get("height")


def test_numbers_follow_the_slider(report):
    w = PrecisionRecallWidget(report)
    for t in (0.3, 0.55, 0.8):
        w.threshold.value = t
        expected = report.at_threshold(t)
        assert w.values == expected
        kept = int((report.proba.max(axis=1) >= t).sum())
        assert expected["n_covered"] == kept
        assert f"kept {kept} of 60 images ({kept / 60:.1%})" in w.numbers.value
        assert f"<b>{expected['precision']:.1%}</b>" in w.numbers.value
        assert f"<b>{expected['recall']:.1%}</b>" in w.numbers.value


def test_curve_has_the_current_point_marked(report):
    w = PrecisionRecallWidget(report, threshold=0.5)
    png_before = w.plot.value
    # vector, not a scaled-up raster: sharp on any screen, shown at 720 x 288 CSS pixels as before
    assert w.plot.format == "svg+xml" and _svg_size(png_before) == ("648pt", "259.2pt")
    assert (w.plot.layout.width, w.plot.layout.height) == ("720px", "288px")
    x, y = w._marker.get_data()
    assert (x[0], y[0]) == (w.values["recall"], w.values["precision"])
    w.threshold.value = 0.7
    x, y = w._marker.get_data()
    assert (x[0], y[0]) == (report.at_threshold(0.7)["recall"], report.at_threshold(0.7)["precision"])
    assert w.plot.value != png_before, "the picture is redrawn"
    assert list(w._vline.get_xdata()) == [0.7, 0.7]
    # the marked point lies on the drawn curve
    pr_line = w.figure.axes[0].lines[0]
    pts = set(zip(np.round(pr_line.get_xdata(), 9), np.round(pr_line.get_ydata(), 9)))
    assert (round(x[0], 9), round(y[0], 9)) in pts


def test_one_class_vs_rest(report):
    w = PrecisionRecallWidget(report)
    w.threshold.value = 0.4
    w.class_selector.value = "fruit"
    assert w.class_name == "fruit"
    v = report.at_threshold(0.4, "fruit")
    assert w.values == v
    assert "fruit vs rest" in w.numbers.value and f"flagged as <b>fruit</b>: {v['n_covered']} of 60" \
        in w.numbers.value
    assert w.figure.axes[0].get_title() == "fruit vs rest"
    # one-vs-rest points are the report's PR curve for that class (scikit-learn's)
    precision, recall, _ = report.pr_curves()["fruit"]
    on_curve = set(zip(np.round(recall, 9), np.round(precision, 9)))
    assert (round(v["recall"], 9), round(v["precision"], 9)) in on_curve
    w.class_selector.value = "(all classes)"
    assert w.class_name is None and w.figure.axes[0].get_title() == "all classes (top score)"


def test_threshold_nobody_reaches(report):
    w = PrecisionRecallWidget(report, threshold=1.0)
    assert w.values["n_covered"] == 0
    assert "n/a" in w.numbers.value and "kept 0 of 60" in w.numbers.value
    assert w._empty_note.get_visible() and w._marker.get_data()[0] == []
    w.threshold.value = 0.0
    assert not w._empty_note.get_visible()
    assert w.values["coverage"] == 1.0


def test_bad_input(report):
    with pytest.raises(TypeError, match="EvaluationReport"):
        PrecisionRecallWidget(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\], got 1.5"):
        PrecisionRecallWidget(report, threshold=1.5)
    with pytest.raises(ValueError, match="'cat' is not one of the classes"):
        PrecisionRecallWidget(report, class_name="cat")


def test_notebook_display(report):
    w = PrecisionRecallWidget(report, threshold=0.25, class_name="bird")
    bundle = w._repr_mimebundle_()
    assert bundle["text/plain"] == "<PrecisionRecallWidget: 60 images, 4 classes, threshold 0.25>"
    assert w.class_selector.value == "bird"
