"""Calibrated probabilities: fitted out of fold, the same in every runtime, refused when hostile."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cvkit.classifiers import FeatureClassifier
from cvkit.models import ModelFormatError, load_model
from cvkit.models._calibration import expected_calibration_error, tempered
from tests.support.models import edited_model_copy, standard_split, trained_model_dir


@pytest.fixture(scope="module")
def split():
    return standard_split()


@pytest.fixture(scope="module")
def plain(split):
    return FeatureClassifier(verbose=False, calibration=None).fit(split[0])


def test_the_default_is_tempered_out_of_fold_and_keeps_every_answer(fitted, plain, split):
    _, test = split
    info = fitted.metrics_["calibration"]
    assert info["method"] == "temperature" and info["folds"] == 5
    assert fitted.temperature_ == info["temperature"] != 1.0 and plain.temperature_ == 1.0
    assert info["oof_log_loss_after"] <= info["oof_log_loss_before"] + 1e-9  # T minimises that log-loss
    proba, raw = fitted.predict_proba(test), plain.predict_proba(test)
    np.testing.assert_allclose(proba, tempered(raw, fitted.temperature_), atol=1e-6)
    assert fitted.predict(test).tolist() == plain.predict(test).tolist(), "calibration never changes an answer"
    assert fitted.score(test) == plain.score(test)


@pytest.mark.parametrize("runtime", ["litert", "keras"])
def test_the_temperature_is_saved_with_the_head_so_every_runtime_agrees(fitted, split, runtime):
    model = load_model(trained_model_dir(), runtime=runtime)
    meta = model.metadata_["calibration"]
    assert meta == {"method": "temperature", "temperature": fitted.temperature_, "in_graph": False}
    assert model.temperature_ == fitted.temperature_, "applied after the head's arrays, once"
    np.testing.assert_allclose(model.predict_proba(split[1]), fitted.predict_proba(split[1]), atol=1e-4)


def test_a_head_outside_the_graph_gets_its_temperature_when_loaded(split, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    clf = FeatureClassifier(head=KNeighborsClassifier(7), verbose=False).fit(split[0])
    assert clf.temperature_ != 1.0
    model = load_model(clf.save(tmp_path / "knn"))
    assert model.metadata_["head"] == "skops" and model.metadata_["calibration"]["in_graph"] is False
    assert model.temperature_ == clf.temperature_
    np.testing.assert_allclose(model.predict_proba(split[1]), clf.predict_proba(split[1]), atol=1e-5)


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_scikit_learn_calibration_lives_in_the_head_and_saves(method, split, tmp_path):
    clf = FeatureClassifier(calibration=method, verbose=False).fit(split[0])
    assert type(clf.estimator_).__name__ == "CalibratedClassifierCV" and clf.estimator_.method == method
    assert clf.temperature_ == 1.0 and clf.metrics_["calibration"] == {"method": method}
    model = load_model(clf.save(tmp_path / method))
    np.testing.assert_allclose(model.predict_proba(split[1]), clf.predict_proba(split[1]), atol=1e-5)


def test_a_too_sure_head_is_tempered_down_and_its_error_shrinks():
    from sklearn.linear_model import LogisticRegression

    from cvkit.classifiers._calibrate import temperature_from_folds

    rng = np.random.default_rng(1)
    F = np.vstack([rng.normal(c, 2.0, (60, 8)) for c in range(3)])
    y = np.repeat([0, 1, 2], 60)
    found = temperature_from_folds(lambda: LogisticRegression(C=1e4, max_iter=2000), F, y, cv=5)
    assert found["temperature"] > 1.3
    assert found["oof_ece_after"] < found["oof_ece_before"] / 2
    assert found["oof_log_loss_after"] < found["oof_log_loss_before"]
    tiny = temperature_from_folds(lambda: LogisticRegression(), F[:61], y[:61], cv=5)  # one photo of class 1
    assert tiny["temperature"] == 1.0 and "fewer than 2" in tiny["note"]


def test_a_perfectly_calibrated_case_keeps_its_error_near_zero():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20000)
    right = rng.random(20000) < confidence
    proba = np.stack([confidence, 1 - confidence], axis=1)
    assert expected_calibration_error(proba, np.where(right, 0, 1)) < 0.02


@pytest.mark.parametrize("field, message", [
    ({"method": "temperature", "temperature": 1e9, "in_graph": False}, r"'calibration.temperature' must be a number"),
    ({"method": "temperature", "temperature": "2", "in_graph": False}, r"'calibration.temperature' must be a number"),
    ({"method": "temperature", "temperature": 2.0, "in_graph": "yes"}, "'calibration.in_graph' must be true or false"),
    ({"method": "magic", "temperature": 2.0}, "'calibration.method' must be one of"),
    ({"temperature": 2.0, "code": "x"}, "'calibration.code' is not a field"),
    ([2.0], "field 'calibration' must be an object"),
])
def test_a_hostile_calibration_field_is_refused_naming_it(tmp_path, field, message):
    folder = edited_model_copy(tmp_path / "model", calibration=field)
    with pytest.raises(ModelFormatError, match=message):
        load_model(folder)


def test_a_folder_saved_before_calibration_loads_uncalibrated(tmp_path, split, plain):
    from tests.support.models import older_format_copy

    model = load_model(older_format_copy(tmp_path / "old"))  # cvkit 0.1: no calibration field
    assert model.temperature_ == 1.0 and "calibration" not in model.metadata_
    np.testing.assert_allclose(model.predict_proba(split[1]), plain.predict_proba(split[1]), atol=1e-4)


def test_a_bad_calibration_name_is_an_error_naming_the_choices(split):
    with pytest.raises(ValueError, match="calibration must be one of 'temperature', 'sigmoid', 'isotonic'"):
        FeatureClassifier(calibration="platt", verbose=False).fit(split[0])


def test_the_report_measures_calibration_and_draws_the_reliability_diagram(fitted, split, tmp_path):
    from matplotlib.figure import Figure

    import cvkit

    report = cvkit.evaluate(fitted, split[1])
    assert report.calibration_error == pytest.approx(expected_calibration_error(report.proba, report.y_true))
    assert 0.0 <= report.calibration_error < 0.3
    fig = report.plot_calibration()
    assert isinstance(fig, Figure) and f"ECE {report.calibration_error:.3f} on 36 images" in fig.axes[0].get_title()
    saved = json.loads(report.to_json(tmp_path / "r.json"))
    assert saved["calibration_error"] == pytest.approx(report.calibration_error)


@pytest.mark.slow
def test_a_finetuned_model_is_calibrated_on_its_validation_images(tmp_path):
    from cvkit.classifiers import FineTuneClassifier
    from cvkit.models import load_model
    from cvkit.models._calibration import softmax

    train, test = standard_split()
    settings = {"epochs": 0, "verbose": 0, "validation_fraction": 0.3}  # the logistic probe only: deterministic
    plain = FineTuneClassifier(calibration=None, **settings).fit(train)
    calibrated = FineTuneClassifier(**settings).fit(train)
    found, T = calibrated.metrics_["calibration"], calibrated.temperature_
    assert found["method"] == "temperature" and found["temperature"] == T and T != 1.0 and 0.05 < T < 20
    assert found["on"] == f"{plain.metrics_['n_validation']} validation images"
    assert plain.metrics_["calibration"] == {"method": None} and plain.temperature_ == 1.0
    p0, p1 = plain.predict_proba(test), calibrated.predict_proba(test)
    np.testing.assert_allclose(p1, softmax(np.log(p0) / T), atol=1e-4)  # the logits divided by T
    assert (p0.argmax(1) == p1.argmax(1)).all(), "calibration changes no answer"
    model = load_model(calibrated.save(tmp_path / "ft"))
    assert model.metadata_["calibration"] == {"method": "temperature", "temperature": T, "in_graph": True}
    np.testing.assert_allclose(model.predict_proba(test), p1, atol=1e-4)
    unvalidated = FineTuneClassifier(**{**settings, "validation_fraction": 0}).fit(train)
    assert unvalidated.temperature_ == 1.0 and "no validation images" in unvalidated.metrics_["calibration"]["note"]
