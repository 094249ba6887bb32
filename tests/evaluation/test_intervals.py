"""95% intervals on a report's metrics: right arithmetic, honest width, and coverage that holds."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, recall_score, roc_auc_score

from cvkit.evaluation import EvaluationReport
from cvkit.evaluation._intervals import bootstrap_intervals, resample_weights, wilson_interval

CLASSES = ["a", "b", "c"]


def synthetic(n: int, accuracy: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` test images over three classes; each is right with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    right = rng.random(n) < accuracy
    guess = np.where(right, y, (y + rng.integers(1, 3, n)) % 3)
    proba = np.full((n, 3), 0.1) + 0.7 * np.eye(3)[guess] + 0.05 * rng.random((n, 3))
    return y, proba / proba.sum(axis=1, keepdims=True)


def test_the_vectorised_resamples_equal_scikit_learn_on_each_resample():
    y, proba = synthetic(90)
    weights = resample_weights(y, n_boot=20, random_state=3)
    assert (weights.sum(axis=1) == len(y)).all()
    for c in range(3):  # stratified: every resample keeps every class's count
        assert (weights[:, y == c].sum(axis=1) == (y == c).sum()).all()
    from cvkit.evaluation._intervals import _weighted_auc
    for w in weights[:5]:
        pred = proba.argmax(1)
        acc = accuracy_score(y, pred, sample_weight=w)
        assert float(w @ (pred == y) / w.sum()) == pytest.approx(acc)
        assert float(w @ -np.log(proba[np.arange(len(y)), y]) / w.sum()) == pytest.approx(
            log_loss(y, proba, sample_weight=w, labels=[0, 1, 2]))
        for c in range(3):
            auc = _weighted_auc(proba[:, c], y == c, w[None])[0]
            assert auc == pytest.approx(roc_auc_score(y == c, proba[:, c], sample_weight=w))
        assert recall_score(y, pred, average=None, sample_weight=w) == pytest.approx(
            [(w * (pred == y) * (y == c)).sum() / (w * (y == c)).sum() for c in range(3)])


def test_an_interval_holds_its_estimate_is_seeded_and_widens_as_the_test_set_shrinks():
    widths = []
    for n in (1200, 300, 40):
        y, proba = synthetic(n)
        report = EvaluationReport(y, proba, CLASSES)
        low, high = report.intervals()["accuracy"]
        assert low <= report.accuracy <= high
        low_b, high_b = report.intervals()["balanced_accuracy"]
        assert low_b <= report.balanced_accuracy <= high_b
        assert report.intervals() == EvaluationReport(y, proba, CLASSES).intervals(), "seeded: the same every time"
        widths.append(high - low)
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] > 0.15 and widths[0] < 0.06


def test_95_percent_intervals_cover_the_true_accuracy_at_least_90_percent_of_the_time():
    """200 test sets of 60 images drawn from one population whose accuracy is 0.8."""
    hits = []
    for seed in range(200):
        y, proba = synthetic(60, accuracy=0.8, seed=seed)
        low, high = bootstrap_intervals(y, proba, n_boot=400, random_state=seed)["accuracy"]
        hits.append(low <= 0.8 <= high)
    assert np.mean(hits) >= 0.90, np.mean(hits)


def test_a_class_all_right_is_not_reported_as_known_exactly():
    assert [round(v, 3) for v in wilson_interval(12, 12)] == [0.758, 1.0]
    assert wilson_interval(0, 0) is None
    y = np.repeat([0, 1], [12, 12])
    proba = np.where(np.eye(2)[y] > 0, 0.9, 0.1)
    found = EvaluationReport(y, proba, ["a", "b"]).intervals()
    assert found["accuracy"][0] < 0.95 and found["accuracy"][1] == 1.0
    for low, high in found["per_class"]["recall"] + found["per_class"]["precision"]:
        assert low == pytest.approx(0.758, abs=1e-3) and high == 1.0


def test_text_json_plot_and_per_class_table_show_the_intervals(tmp_path):
    y, proba = synthetic(50)
    report = EvaluationReport(y, proba, CLASSES)
    low, high = report.intervals()["accuracy"]
    text = report.to_text()
    assert f"accuracy                  {report.accuracy:.3f} ({low:.3f}\u2013{high:.3f})" in text
    assert "only 50 test images: accuracy is known to within about" in text
    assert report.headline().startswith(f"accuracy {report.accuracy:.3f} ({low:.3f}\u2013{high:.3f})")
    table = report.per_class(intervals=True)
    assert (table.recall_low <= table.recall).all() and (table.recall <= table.recall_high).all()
    doc = json.loads(report.to_json(tmp_path / "report.json"))
    assert doc["intervals"]["accuracy"] == [low, high] and doc["intervals"]["level"] == 0.95
    assert EvaluationReport.from_json(tmp_path / "report.json").intervals()["accuracy"] == (low, high)
    fig = report.plot_summary()
    assert f"({low:.3f}\u2013{high:.3f})" in fig._suptitle.get_text()
    big = EvaluationReport(*synthetic(4000), CLASSES)
    assert "test images: accuracy is known to within" not in big.to_text(), "no warning when the interval is tight"
