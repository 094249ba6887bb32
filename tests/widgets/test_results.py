"""ResultsWidget driven through its controls, on real sample photos and a real EvaluationReport."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from cvkit import ImageDataset
from cvkit.evaluation import EvaluationReport
from cvkit.widgets import ResultsWidget


@pytest.fixture()
def scored(sample_split):
    """The sample test set (36 photos) with made-up but fixed probabilities: about 1/3 wrong."""
    _, test = sample_split
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(len(test), len(test.labels)))
    logits[np.arange(len(test)), test.targets] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return test, proba


def _expected_rows(test, proba, show="all", true=None, pred=None):
    y_pred = proba.argmax(axis=1)
    keep = np.ones(len(test), bool)
    if show == "correct":
        keep &= y_pred == test.targets
    if show == "incorrect":
        keep &= y_pred != test.targets
    if true is not None:
        keep &= test.targets == test.labels.index(true)
    if pred is not None:
        keep &= y_pred == test.labels.index(pred)
    return np.flatnonzero(keep)


def test_shows_image_truth_prediction_and_class_scores(scored):
    test, proba = scored
    w = ResultsWidget(test, proba)
    assert w.row == 0 and "1 of 36 shown" in w.position_text.value
    name = test.paths[0].rsplit("/", 1)[-1]
    # the path is shown relative to the dataset's folder
    assert f"<b>{name}</b>" in w.title.value and f">{test.image_labels[0]}/{name}<" in w.title.value
    assert w.image.value[:2] == b"\xff\xd8" and w.image.layout.display is None
    truth, pred = test.image_labels[0], test.labels[proba[0].argmax()]
    assert f"true: <b>{truth}</b>" in w.verdict.value
    assert f">{pred}</b> ({proba[0].max():.2f})" in w.verdict.value
    assert ("correct" if truth == pred else "wrong") in w.verdict.value
    # the bars are the probabilities, highest first, the true class green
    bars = w.bar_values
    assert list(bars) == [test.labels[c] for c in np.argsort(-proba[0], kind="stable")]
    assert np.allclose([bars[c] for c in test.labels], proba[0])
    slot = list(bars).index(truth)
    assert w._bars[slot].bar_style == "success"


@pytest.mark.parametrize("show", ["all", "correct", "incorrect"])
def test_show_filter(scored, show):
    test, proba = scored
    w = ResultsWidget(test, proba)
    w.show.value = show
    expected = _expected_rows(test, proba, show)
    assert list(w.indices) == list(expected) and 0 < len(expected)
    for _ in range(len(expected)):   # walk through them with Next
        verdict = w.verdict.value
        if show == "correct":
            assert "correct" in verdict
        if show == "incorrect":
            assert "wrong" in verdict
        w.next_button.click()
    assert w.position == len(expected) - 1, "Next stops at the last image"


def test_class_filters_sorting_and_slider(scored):
    test, proba = scored
    w = ResultsWidget(test, proba)
    w.true_class.value = "bird"
    assert list(w.indices) == list(_expected_rows(test, proba, true="bird"))
    w.predicted_class.value = "flower"
    assert list(w.indices) == list(_expected_rows(test, proba, true="bird", pred="flower"))
    w.true_class.value = "(all)"
    w.predicted_class.value = "(all)"
    w.show.value = "incorrect"
    w.sort.value = "loss"
    report = EvaluationReport(test.image_labels, proba, test.labels, paths=test.paths)
    worst = report.errors().sort_values("loss", ascending=False, kind="stable").index.tolist()
    assert list(w.indices) == worst, "worst mistakes first, as the report ranks them"
    w.sort.value = "confidence"
    conf = proba.max(axis=1)[w.indices]
    assert np.all(np.diff(conf) <= 0)
    w.sort.value = "-confidence"
    assert np.all(np.diff(proba.max(axis=1)[w.indices]) >= 0)
    w.slider.value = 3
    assert w.position == 2 and w.row == w.indices[2]
    w.previous_button.click()
    assert w.position == 1 and w.slider.value == 2
    assert w.slider.max == len(w.indices)


def test_no_match_says_so(scored):
    test, proba = scored
    w = ResultsWidget(test, proba)
    w.show.value = "correct"
    w.predicted_class.value = "bird"
    w.true_class.value = "fruit"   # correct AND true fruit AND predicted bird: impossible
    assert len(w.indices) == 0 and w.row is None
    assert "no image matches these filters" in w.position_text.value
    assert w.image.layout.display == "none" and w.bar_values == {}
    w.next_button.click()          # harmless
    w.show.value = "all"
    assert len(w.indices) == len(_expected_rows(test, proba, true="fruit", pred="bird"))


def test_from_a_report_with_unreadable_images(tmp_path, sample_split):
    _, test = sample_split
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    paths = test.paths[:5] + [str(bad)]
    labels = test.image_labels[:5] + ["bird"]
    ds = ImageDataset(paths, [test.labels.index(v) for v in labels], test.labels)
    proba = np.full((6, 4), 0.1)
    proba[np.arange(5), [0, 1, 2, 3, 0]] = 0.7
    proba[5] = np.nan                    # what predict_proba gives for an unreadable image
    w = ResultsWidget(ds, proba)
    w.slider.value = 6
    assert w.row == 5 and "cannot show this image" in w.placeholder.value
    assert "no prediction" in w.verdict.value and w.image.layout.display == "none"
    w.show.value = "incorrect"
    assert 5 not in w.indices
    w.show.value = "all"
    w.sort.value = "loss"
    assert w.indices[-1] == 5, "unreadable images sort last"
    # the same through an EvaluationReport, which leaves the NaN row out (with a warning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = EvaluationReport(labels, proba, test.labels, paths=paths)
    w2 = ResultsWidget(None, report)
    assert len(w2.paths) == 5 and np.allclose(w2.proba, proba[:5])
    # without a dataset, paths are shown from above their deepest common folder
    common = os.path.commonpath([os.path.dirname(p) for p in paths[:5]])
    shown = os.path.relpath(paths[0], os.path.dirname(common))
    assert f">{shown}<" in w2.title.value and not shown.startswith(("/", ".."))
    assert ResultsWidget(report).paths == w2.paths


def test_unlabelled_images_show_predictions_only(sample_split):
    _, test = sample_split
    ds = ImageDataset(test.paths[:4])
    proba = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.25] * 4, [0.1, 0.1, 0.1, 0.7]])
    w = ResultsWidget(ds, proba, classes=["bird", "flower", "fruit", "vegetable"])
    assert w.show.disabled and w.true_class.disabled
    assert "true:" not in w.verdict.value and ">bird</b> (0.70)" in w.verdict.value
    assert "loss" not in dict(w.sort.options).values()
    w.predicted_class.value = "flower"
    assert list(w.indices) == [1]


def test_bad_input_is_named(scored):
    test, proba = scored
    with pytest.raises(ValueError, match="dataset has 36 images but results has 35 rows"):
        ResultsWidget(test, proba[:35])
    with pytest.raises(ValueError, match="classes has 3 names for 4 columns"):
        ResultsWidget(test, proba, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="2-D array"):
        ResultsWidget(test, proba[0])
    with pytest.raises(TypeError, match="needs results"):
        ResultsWidget(test)


def test_notebook_display(scored):
    test, proba = scored
    w = ResultsWidget(test, proba)
    bundle = w._repr_mimebundle_()
    wrong = int((proba.argmax(1) != test.targets).sum())
    assert bundle["text/plain"] == f"<ResultsWidget: 36 images, 4 classes, {wrong} wrong>"
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == w.widget.model_id


@pytest.mark.slow
def test_with_a_real_model_and_evaluate(sample_split):
    """The widgets on what users actually pass them: cvkit.evaluate() of a fitted FeatureClassifier."""
    import cvkit
    from cvkit.classifiers import FeatureClassifier
    from cvkit.widgets import PrecisionRecallWidget

    train, test = sample_split
    clf = FeatureClassifier(verbose=False).fit(train)
    report = cvkit.evaluate(clf, test)
    w = ResultsWidget(test, report)
    assert len(w.paths) == len(test) == 36
    w.show.value = "incorrect"
    w.sort.value = "loss"
    assert list(w.indices) == report.top_losses(k=len(report)).query("true != predicted").index.tolist()
    w.show.value = "all"
    w.sort.value = "confidence"
    i = w.row
    assert np.allclose(sorted(w.bar_values.values(), reverse=True), np.sort(report.proba[i])[::-1])
    assert f"true: <b>{test.image_labels[i]}</b>" in w.verdict.value
    pr = PrecisionRecallWidget(report, threshold=0.9)
    assert pr.values == report.at_threshold(0.9)


def test_a_rule_with_thresholds_shows_no_decision_answers(scored):
    from cvkit.models._decision import DecisionRule

    test, proba = scored
    rule = DecisionRule(thresholds={test.labels[0]: 0.6, test.labels[1]: 0.5})
    w = ResultsWidget(test, proba, decision_rule=rule)
    top, best = proba.max(axis=1), proba.argmax(axis=1)
    expected = ((best == 0) & (top < 0.6)) | ((best == 1) & (top < 0.5))
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(w.withheld, expected)
    assert "no decision" in w.show.options and f"{int(expected.sum())} with no decision" in repr(w)
    w.show.value = "no decision"
    assert w.indices.tolist() == np.flatnonzero(expected).tolist()
    assert "answer: <b" in w.verdict.value and "no decision</b> (below the threshold" in w.verdict.value
    w.show.value = "all"  # the other photos are answered by their class, as before
    assert "answer:" not in w.verdict.value or w.withheld[w.row]
    plain = ResultsWidget(test, proba)  # no rule: nothing withheld, no "no decision" choice
    assert "no decision" not in plain.show.options and not plain.withheld.any()
    with pytest.raises(TypeError, match="decision_rule must be a DecisionRule"):
        ResultsWidget(test, proba, decision_rule="0.5")


def test_a_model_with_an_unknown_cut_shows_its_unknown_answers(sample_split, tmp_path):
    """Photos of other things beside the test photos: the model's novelty puts them in "unknown"."""
    from PIL import Image

    import cvkit
    from tests.support.models import trained_model_dir

    _, test = sample_split
    rng = np.random.default_rng(3)
    others = []
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)).save(tmp_path / f"noise{i}.png")
        others.append(str(tmp_path / f"noise{i}.png"))
    paths = list(test.paths) + others
    model = cvkit.load_model(trained_model_dir()).set_unknown_threshold(keep=0.95)
    w = ResultsWidget(paths, model.predict_proba(paths), classes=model.classes_, decision_rule=model)
    answers = model.predict(paths)
    np.testing.assert_array_equal(w.unknown, answers == "unknown")
    assert w.unknown[-2:].all() and "unknown" in w.show.options and f"{int(w.unknown.sum())} unknown" in repr(w)
    w.show.value = "unknown"
    assert w.indices.tolist() == np.flatnonzero(answers == "unknown").tolist()
    assert "unknown</b> (unlike the training photos)" in w.verdict.value
    bare = ResultsWidget(paths, model.predict_proba(paths), classes=model.classes_, decision_rule=model.decision_rule_)
    assert not bare.unknown.any() and "unknown" not in bare.show.options  # a bare rule has no novelty to cut


def test_clicking_a_confusion_cell_shows_its_photos_and_show_all_brings_them_back(scored):
    """Issue 27: the confusion matrix's cells are buttons; a click filters the photos to that cell."""
    test, proba = scored
    w = ResultsWidget(test, proba)
    y_pred = proba.argmax(axis=1)
    expected = np.zeros((4, 4), int)
    np.add.at(expected, (test.targets, y_pred), 1)
    np.testing.assert_array_equal(w.confusion.matrix, expected)
    assert {b.description for b in w.confusion.buttons.values()} == {str(n) for n in expected.ravel()}
    # the biggest mistake: an off-diagonal cell with photos in it
    off = expected - np.diag(np.diag(expected))
    i, j = np.unravel_index(off.argmax(), off.shape)
    assert off[i, j] > 0
    w.confusion.buttons[i, j].click()
    rows = np.flatnonzero((test.targets == i) & (y_pred == j))
    assert list(w.indices) == list(rows) and w.row == rows[0]
    true, pred = test.labels[i], test.labels[j]
    assert w.cell_text.value == f"showing: true <b>{true}</b>, predicted <b>{pred}</b> ({len(rows)})"
    assert f"true: <b>{true}</b>" in w.verdict.value and f">{pred}</b>" in w.verdict.value
    assert w.confusion.selected == (i, j) and w.confusion.buttons[i, j].layout.border
    assert (w.true_class.value, w.predicted_class.value) == (true, pred)   # the dropdowns agree
    # the shade is the share of the true class: a fuller row share, a stronger colour
    assert w.confusion.buttons[i, j].style.button_color != w.confusion.buttons[i, i].style.button_color
    w.all_button.click()
    assert list(w.indices) == list(range(len(test))) and w.confusion.selected is None
    assert w.cell_text.value == f"showing: all photos ({len(test)})" and w.all_button.layout.display == "none"
    w.show.value = "incorrect"                                # other filters are described too
    w.true_class.value = true
    assert w.cell_text.value == f"showing: incorrect, true <b>{true}</b> ({len(w.indices)})"
    assert w.confusion.selected is None and w.all_button.layout.display is None
    # a diagonal cell by name, from code; an empty cell cannot be clicked
    w.show_cell(true, true)
    assert list(w.indices) == list(np.flatnonzero((test.targets == i) & (y_pred == i)))
    empty = [cell for cell, n in np.ndenumerate(expected) if n == 0]
    assert all(w.confusion.buttons[c].disabled for c in empty)
    with pytest.raises(ValueError, match="unknown class 'cat'"):
        w.show_cell("cat", true)


def test_no_confusion_matrix_without_true_labels(sample_split):
    _, test = sample_split
    w = ResultsWidget(ImageDataset(test.paths[:2]), np.array([[0.9, 0.1], [0.2, 0.8]]), classes=["a", "b"])
    assert w.confusion is None
    with pytest.raises(ValueError, match="no true labels"):
        w.show_cell(0, 1)


def test_the_heat_map_toggle_overlays_the_predicted_class_map_lazily(sample_split, tmp_path):
    """Off: the photo, and no map made. On: the photo with the map of the class it was given (exact CAM
    from a model folder), the title naming the method. A folder without its Keras graph says why it has none."""
    import cvkit
    from tests.support.models import litert_only_copy, trained_model_dir

    _, test = sample_split
    model = cvkit.load_model(trained_model_dir())
    paths = list(test.paths[:3])
    w = ResultsWidget(paths, model.predict_proba(paths), classes=model.classes_, heatmaps=trained_model_dir())
    plain = w.image.value
    assert w.heatmap_toggle is not None and not w.heatmap_toggle._items  # nothing made until asked
    w.heatmap_toggle.checkbox.value = True
    assert w.image.value != plain and w.image.value[:2] == b"\xff\xd8"
    assert "heat map: cam" in w.title.value
    predicted = model.classes_[int(np.argmax(model.predict_proba(paths[:1])))]
    assert list(w.heatmap_toggle._items) == [(paths[0], predicted)]
    w.heatmap_toggle.checkbox.value = False
    assert w.image.value == plain
    assert ResultsWidget(paths, model.predict_proba(paths), classes=model.classes_).heatmap_toggle is None

    lite = cvkit.load_model(litert_only_copy(trained_model_dir(), tmp_path / "lite"))
    w = ResultsWidget(paths, model.predict_proba(paths), classes=model.classes_, heatmaps=lite)
    w.heatmap_toggle.checkbox.value = True
    assert w.placeholder.layout.display is None and "only a LiteRT graph" in w.placeholder.value  # the reason
