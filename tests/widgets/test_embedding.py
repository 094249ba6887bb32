"""EmbeddingWidget: points on the map, hover/click/box events, marks, and relabelling a selection."""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cvkit
from cvkit.evaluation import EvaluationReport
from cvkit.widgets import AnnotationWidget, EmbeddingWidget
from cvkit.widgets._scatter import ScatterPlot


@pytest.fixture()
def photos(sample_dataset):
    """12 real photos (3 per class) and features that put each class in its own corner of the map."""
    picked = [i for c in range(4) for i in np.flatnonzero(sample_dataset.targets == c)[:3]]
    paths = [sample_dataset.paths[i] for i in picked]
    labels = [sample_dataset.image_labels[i] for i in picked]
    corners = {"bird": (0, 0), "flower": (10, 0), "fruit": (0, 10), "vegetable": (10, 10)}
    rng = np.random.default_rng(0)
    features = np.array([corners[lab] for lab in labels], float) + rng.normal(scale=0.3, size=(12, 2))
    return features, paths, labels


def _sha(paths) -> dict[str, str]:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def _widget(photos, tmp_path, **kwargs) -> EmbeddingWidget:
    features, paths, labels = photos
    return EmbeddingWidget(features, labels=labels, paths=paths, method="pca",
                           output=tmp_path / "relabel.tsv", **kwargs)


def test_points_are_the_maps_coordinates_coloured_by_label(photos, tmp_path):
    features, paths, labels = photos
    w = _widget(photos, tmp_path)
    xy = cvkit.embedding_coordinates(features, labels, method="pca")
    np.testing.assert_allclose(w.table[["x", "y"]], xy[["x", "y"]])
    assert list(w.table.path) == paths and w.classes == ["bird", "flower", "fruit", "vegetable"]
    points = w.plot.points
    assert len(points) == 12
    u, v = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    assert u.min() == 0 and u.max() == 1 and v.min() == 0 and v.max() == 1
    # the unit square keeps the order of the map
    assert np.array_equal(np.argsort(u), np.argsort(xy.x.to_numpy()))
    colours = {lab: {p[2] for p, q in zip(points, labels) if q == lab} for lab in set(labels)}
    assert all(len(c) == 1 for c in colours.values()) and len({c.pop() for c in colours.values()}) == 4
    assert all(p[5] == f"{lab} · {path}" for p, lab, path in zip(points, labels, paths))   # the hover text
    assert repr(w) == "<EmbeddingWidget: 12 photos, 4 labels, 0 selected>"
    assert w.send_button.disabled and "nothing selected" in w.count.value


def test_hover_and_click_show_the_photo_path_and_label(photos, tmp_path):
    _, paths, labels = photos
    w = _widget(photos, tmp_path)
    w.plot.emit("hover", 4)
    assert w.shown == 4 and w.selected == [] and w.image.value[:2] == b"\xff\xd8"
    assert paths[4] in w.details.value and f"label: <b>{labels[4]}</b>" in w.details.value
    w.plot._on_message(w.plot, {"click": 7}, None)     # the message a click in the browser sends
    assert w.selected == [7] and w.plot.selected == [7] and w.shown == 7
    assert paths[7] in w.details.value and paths[7] in w.listing.value and "1 selected" in w.count.value
    w.plot._on_message(w.plot, {"nonsense": 1}, None)  # ignored
    assert w.selected == [7]
    with pytest.raises(IndexError, match="point 12 out of range"):
        w.select_point(12)


def test_a_box_selects_the_photos_inside_it(photos, tmp_path):
    _, paths, labels = photos
    w = _widget(photos, tmp_path)
    t = w.table
    # the map's box around the points of one class selects exactly that class
    for cls in w.classes:
        inside = t[t.label == cls]
        w.select_box((inside.x.min(), inside.x.max()), (inside.y.min(), inside.y.max()))
        assert w.selected_paths == [p for p, lab in zip(paths, labels) if lab == cls]
    # the same box dragged in the browser (in the plot's unit square) selects the same photos
    u = np.array([p[0] for p in w.plot.points])
    v = np.array([p[1] for p in w.plot.points])
    rows = np.flatnonzero(np.array(labels) == "fruit")
    box = [u[rows].min() - 1e-6, u[rows].max() + 1e-6, v[rows].min() - 1e-6, v[rows].max() + 1e-6]
    w.plot._on_message(w.plot, {"box": box}, None)
    assert w.selected == rows.tolist() and w.plot.selected == rows.tolist()
    assert all(paths[i] in w.listing.value for i in rows) and f"{len(rows)} selected" in w.count.value
    w.select_box((t.x.max() + 1, t.x.max() + 2), (t.y.min(), t.y.max()))   # an empty region
    assert w.selected == [] and w.send_button.disabled
    w.select_point(0)
    w.clear_button.click()
    assert w.selected == [] and w.plot.selected == []


def test_send_to_annotation_relabels_exactly_the_selection_in_its_own_file(photos, tmp_path):
    _, paths, labels = photos
    before = _sha(paths)
    w = _widget(photos, tmp_path)
    with pytest.raises(ValueError, match="select photos first"):
        w.send_to_annotation()
    t = w.table[w.table.label == "flower"]
    w.select_box((t.x.min(), t.x.max()), (t.y.min(), t.y.max()))
    w.send_button.click()
    a = w.annotation
    assert isinstance(a, AnnotationWidget) and a.paths == [p for p, lab in zip(paths, labels) if lab == "flower"]
    assert a.labels == w.classes and a.widget in w.annotation_area.children
    a.label_buttons["fruit"].click()               # relabel the first selected flower
    relabelled = cvkit.ImageDataset.from_table(tmp_path / "relabel.tsv")
    assert relabelled.image_labels == ["fruit"]
    assert Path(relabelled.paths[0]).resolve() == Path(a.paths[0]).resolve()
    assert _sha(paths) == before and sorted(p.name for p in tmp_path.iterdir()) == ["relabel.tsv"]
    # sending again resumes from the same file
    w.select_point(int(np.flatnonzero(np.array(paths) == a.paths[0])[0]))
    assert w.send_to_annotation().annotations == {a.paths[0]: "fruit"}


def test_marks_for_label_issues_duplicates_and_wrong_answers(photos, tmp_path):
    _, paths, labels = photos
    issues = pd.DataFrame({"path": paths[:2], "is_issue": [True, False]})
    dups = pd.DataFrame({"path_a": [paths[3]], "path_b": [paths[4]]})
    classes = sorted(set(labels))
    proba = np.full((12, 4), 0.1)
    predicted = [classes.index(lab) for lab in labels]
    predicted[5] = (predicted[5] + 1) % 4                   # one wrong answer
    proba[np.arange(12), predicted] = 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = EvaluationReport(labels, proba, classes, paths=paths)
    w = _widget(photos, tmp_path, label_issues=issues, duplicates=dups, report=report)
    assert np.flatnonzero(w.table.label_issue).tolist() == [0]
    assert np.flatnonzero(w.table.duplicate).tolist() == [3, 4]
    assert np.flatnonzero(w.table.wrong).tolist() == [5]
    points = w.plot.points
    assert points[0][3] == "#000000" and points[5][3] == "#d62728" and points[1][3] == ""
    assert [p[4] for p in points] == [i in (3, 4) for i in range(12)]
    w.select_point(5)
    assert f"wrong answer (predicted {classes[predicted[5]]})" in w.details.value
    w.select_point(3)
    assert "duplicate" in w.details.value and "wrong answer" not in w.details.value


@pytest.mark.slow
def test_two_photos_of_one_class_with_the_real_featurizer(sample_dataset, tmp_path):
    ds = cvkit.ImageDataset(sample_dataset.paths[:2], [0, 0], ["bird"])
    w = EmbeddingWidget(ds, output=tmp_path / "relabel.tsv")
    assert len(w.table) == 2 and w.classes == ["bird"] and w.table.attrs["method"] == "PCA"
    w.plot.emit("box", [0.0, 1.0, 0.0, 1.0])
    assert w.selected_paths == list(ds.paths)
    a = w.send_to_annotation()
    assert a.paths == list(ds.paths) and a.labels == ["bird"]


def test_bad_input_is_named(photos, tmp_path):
    features, paths, labels = photos
    with pytest.raises(ValueError, match="11 paths for 12 feature rows"):
        EmbeddingWidget(features, labels=labels, paths=paths[:11], method="pca")
    w = EmbeddingWidget(features, labels=labels, method="pca", output=tmp_path / "r.tsv")
    w.select_point(0)
    assert "no photo path" in w.placeholder.value
    with pytest.raises(ValueError, match="no photo paths: pass paths="):
        w.send_to_annotation()
    with pytest.raises(ValueError, match="unknown event 'drag'"):
        ScatterPlot().emit("drag", None)


def test_notebook_display(photos, tmp_path):
    w = _widget(photos, tmp_path)
    bundle = w._repr_mimebundle_()
    assert bundle["text/plain"] == repr(w)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.widget.model_id
    assert cvkit.EmbeddingWidget is EmbeddingWidget


def test_ten_thousand_points_from_a_map_already_made(sample_dataset, tmp_path):
    """The issue's size: 10,000 points (coordinates given, so no t-SNE here); a box and the list."""
    rng = np.random.default_rng(1)
    n = 10_000
    xy = rng.uniform(-50, 50, size=(n, 2))
    paths = [sample_dataset.paths[i % len(sample_dataset)] for i in range(n)]
    table = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "label": [f"c{i % 7}" for i in range(n)], "path": paths},
                         index=pd.Index(np.arange(n), name="index"))
    table.attrs.update(method="given", n_input=n)
    w = EmbeddingWidget(None, coordinates=table, output=tmp_path / "relabel.tsv")
    assert len(w.plot.points) == n and len(w.classes) == 7 and w.plot.radius == 4
    w.select_box((-50, 0), (0, 50))
    expected = np.flatnonzero((xy[:, 0] <= 0) & (xy[:, 1] >= 0))
    assert w.selected == expected.tolist() and 2000 < len(expected) < 3000
    assert f"&hellip; and {len(expected) - 30} more" in w.listing.value
    assert w.listing.value.count("<br>") == 30
