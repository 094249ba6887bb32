"""Calibrating a feature classifier's probabilities on its own training photos, out of fold.

``FeatureClassifier(calibration="temperature")`` (the default) fits its head, then refits it
``cv`` times on all folds but one and predicts the photos left out: out-of-fold probabilities,
each from a head that did not see that photo, as new photos will be. The temperature ``T`` that
makes those probabilities honest (lowest log-loss of ``softmax(log p / T)``) divides the head's
logits from then on: the arg-max, and so every answer and the accuracy, stay as they are. The
model folder records it (``metadata.json``'s ``calibration``) and every path applies it after the
head, the same way on Keras and LiteRT (float32 and int8), in the service, batch scoring and Ray
jobs; an export folds it into its last ``Dense`` layer.

A :class:`~cvkit.classifiers.FineTuneClassifier` is calibrated on its validation images instead
(:func:`fold_temperature`): the temperature divides its softmax ``Dense`` layer's weights, so the
saved graph itself gives calibrated probabilities.

The folds reuse the head's chosen regularisation (``C``), so calibrating costs ``cv`` small fits,
not ``cv`` cross-validations. With fewer than 2 photos in some class there is nothing to hold out,
and the model stays uncalibrated (``temperature_`` 1.0, said in ``metrics_["calibration"]``).

Example:
    >>> rng = np.random.default_rng(0)
    >>> F = np.vstack([rng.normal(c, 1.5, (40, 5)) for c in range(3)])
    >>> y = np.repeat([0, 1, 2], 40)
    >>> from sklearn.linear_model import LogisticRegression
    >>> found = temperature_from_folds(lambda: LogisticRegression(C=100.0), F, y, cv=5, random_state=0)
    >>> found["temperature"] > 1, found["oof_ece_after"] < found["oof_ece_before"]   # a too-sure head, tempered
    (True, True)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cvkit.models._calibration import apply_temperature, expected_calibration_error, fit_temperature, log_proba

__all__ = ["temperature_from_folds", "out_of_fold_log_proba", "temperature_from_oof", "n_folds", "fixed_head",
           "fold_temperature", "CALIBRATIONS"]

#: What ``FeatureClassifier(calibration=...)`` accepts: temperature scaling (kept in the graph), scikit-learn's
#: sigmoid (Platt) or isotonic calibration of the head (``CalibratedClassifierCV``), or none.
CALIBRATIONS = ("temperature", "sigmoid", "isotonic")


def fixed_head(estimator: Any, make_head: Callable[[], Any]) -> Callable[[], Any]:
    """A maker of fresh heads like ``estimator`` for the folds: the default ``LogisticRegressionCV``
    becomes a ``LogisticRegression`` with the ``C`` it chose (one fit per fold); any other head is
    made anew by ``make_head``."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    if isinstance(estimator, LogisticRegressionCV):
        c = float(np.ravel(estimator.C_)[0])
        return lambda: LogisticRegression(C=c, solver="newton-cg", max_iter=1000)
    return make_head


def temperature_from_folds(make_head: Callable[[], Any], features: np.ndarray, targets: np.ndarray, cv: int = 5,
                           random_state: int | None = 0, weights: dict[int, float] | None = None,
                           fit: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Fit heads made by ``make_head`` on ``cv`` stratified folds of ``features``/``targets`` (class
    indices), and the temperature for their out-of-fold probabilities. ``fit(head, X, y, weights)``
    fits one head (default: ``head.fit(X, y)``); ``weights`` (by class index) weigh the log-loss.

    Returns ``{"method": "temperature", "temperature", "folds", "oof_ece_before", "oof_ece_after",
    "oof_log_loss_before", "oof_log_loss_after"}``, or with ``"temperature": 1.0`` and a ``"note"``
    when some class has fewer than 2 photos. (Example: see the module.)
    """
    y = np.asarray(targets, dtype=np.int64)
    oof = out_of_fold_log_proba(make_head, features, y, cv, random_state, weights, fit)
    if oof is None:
        return {"method": "temperature", "temperature": 1.0, "folds": 0,
                "note": "not calibrated: some class has fewer than 2 training photos"}
    return temperature_from_oof(oof, y, weights, n_folds(y, cv))


def n_folds(targets: np.ndarray, cv: int) -> int:
    """``cv`` lowered to the smallest class's size (a class needs a photo in every held-out fold)."""
    y = np.asarray(targets, dtype=np.int64)
    return min(int(cv), int(np.bincount(y, minlength=int(y.max()) + 1).min()))


def out_of_fold_log_proba(make_head: Callable[[], Any], features: np.ndarray, targets: np.ndarray, cv: int = 5,
                          random_state: int | None = 0, weights: dict[int, float] | None = None,
                          fit: Callable[..., Any] | None = None) -> np.ndarray | None:
    """Log-probabilities ``(n, n_classes)`` of every photo from a head (made by ``make_head``, fitted
    by ``fit(head, X, y, weights)``) that did not see it, over ``cv`` stratified folds; None when
    some class has fewer than 2 photos (nothing to hold out)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(targets, dtype=np.int64)
    n_classes = int(y.max()) + 1
    folds = n_folds(y, cv)
    if folds < 2:
        return None
    oof = np.zeros((len(y), n_classes))
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    for train, test in splitter.split(features, y):
        head = make_head()
        head = fit(head, features[train], y[train], weights) if fit is not None else head.fit(features[train], y[train])
        oof[test] = log_proba(head.predict_proba(features[test]))
    return oof


def temperature_from_oof(oof: np.ndarray, targets: np.ndarray, weights: dict[int, float] | None = None,
                         folds: int = 0) -> dict[str, Any]:
    """The temperature for out-of-fold log-probabilities ``oof`` and what :func:`temperature_from_folds`
    reports about it (``weights`` by class index weigh the log-loss)."""
    y = np.asarray(targets, dtype=np.int64)
    w = None if weights is None else np.array([weights[int(t)] for t in y], dtype=np.float64)
    temperature = fit_temperature(oof, y, sample_weight=w)
    before, after = apply_temperature(oof, 1.0), apply_temperature(oof, temperature)
    picked = np.arange(len(y)), y
    return {"method": "temperature", "temperature": round(float(temperature), 6), "folds": folds,
            "oof_ece_before": expected_calibration_error(before, y),
            "oof_ece_after": expected_calibration_error(after, y),
            "oof_log_loss_before": float(-log_proba(before[picked]).mean()),
            "oof_log_loss_after": float(-log_proba(after[picked]).mean())}


def fold_temperature(model: Any, dense: Any, pixels: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """Calibrate a Keras classifier on held-out ``pixels`` (uint8) and class indices ``targets``: the
    temperature of its probabilities there, folded into its last softmax ``Dense`` layer ``dense``
    (kernel and bias divided by it: the logits divided, the answers unchanged). Returns what
    ``metrics_["calibration"]`` records, with the ECE on those images before and after.
    """
    proba = np.asarray(model.predict(np.asarray(pixels, np.float32), batch_size=32, verbose=0), np.float64)
    y = np.asarray(targets, dtype=np.int64)
    logits = log_proba(proba)
    temperature = fit_temperature(logits, y)
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel / np.float32(temperature), bias / np.float32(temperature)])
    return {"method": "temperature", "temperature": round(float(temperature), 6), "on": f"{len(y)} validation images",
            "val_ece_before": expected_calibration_error(apply_temperature(logits, 1.0), y),
            "val_ece_after": expected_calibration_error(apply_temperature(logits, temperature), y)}
