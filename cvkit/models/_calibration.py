"""Calibrated probabilities: temperature scaling, and how far probabilities are from the truth (ECE).

Why: a classifier trained on a few dozen photos per class is usually over-confident (its top
probability says 0.95 where it is right 85% of the time), so a threshold chosen on its
probabilities means less than it says. Temperature scaling (Guo et al., "On Calibration of Modern
Neural Networks", 2017) divides the logits by one number ``T`` fitted on held-out predictions
(out-of-fold logits of the training photos): it changes no arg-max, so accuracy is untouched,
and on the linear heads cvkit uses it folds into the head's weights.

- :func:`softmax`, :func:`fit_temperature`, :func:`apply_temperature`;
- :func:`expected_calibration_error` (the top-label ECE with equal-width bins) and
  :func:`reliability` (the table behind a reliability diagram).

Example:
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(0, 2, (2000, 3))                        # calibrated scores ...
    >>> y = np.array([rng.choice(3, p=p) for p in softmax(logits)])  # ... and labels drawn from them
    >>> T = fit_temperature(3 * logits, y)                           # a model 3x too sure
    >>> bool(2.5 < T < 3.5)
    True
    >>> ece_before = expected_calibration_error(softmax(3 * logits), y)
    >>> ece_after = expected_calibration_error(softmax(3 * logits / T), y)
    >>> bool(ece_after < ece_before / 2)
    True
"""
from __future__ import annotations

import numpy as np

__all__ = ["softmax", "log_softmax", "fit_temperature", "apply_temperature", "tempered", "log_proba",
           "expected_calibration_error", "reliability", "TEMPERATURE_RANGE"]

#: Temperatures :func:`fit_temperature` may return: a wider one means the held-out data say nothing useful.
TEMPERATURE_RANGE = (0.05, 20.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(logits))``, computed stably (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (float64).

    Example:
        >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2).tolist()
        [[0.5, 0.5], [0.25, 0.75]]
    """
    return np.exp(log_softmax(logits))


def _nll(logits: np.ndarray, y: np.ndarray, weights: np.ndarray, T: float) -> float:
    return float(-(weights * log_softmax(logits / T)[np.arange(len(y)), y]).sum() / weights.sum())


def fit_temperature(logits: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """The temperature ``T`` minimising the (weighted) log-loss of ``softmax(logits / T)`` on labels ``y``.

    ``logits`` are held-out scores ``(n, n_classes)`` (log-probabilities work too: they differ from
    logits by a constant per row), ``y`` class indices. Searched on a log scale within
    :data:`TEMPERATURE_RANGE` (a bounded 1-D minimisation), so it is fast and never diverges.

    Example:
        >>> fit_temperature(np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]]), np.array([0, 1, 0, 1])) > 1
        True
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise ValueError(f"logits must be (n, n_classes) with one label per row, got {z.shape} and {len(y)} labels")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda t: _nll(z, y, w, float(np.exp(t))), bounds=(lo, hi), method="bounded",
                            options={"xatol": 1e-4})
    return float(np.exp(found.x))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` as float32 probabilities."""
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return softmax(np.asarray(logits, dtype=np.float64) / float(temperature)).astype(np.float32)


def log_proba(proba: np.ndarray) -> np.ndarray:
    """``log(proba)`` (float64), with probabilities clipped at 1e-12 so a 0 gives a finite number."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0))


def tempered(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / temperature)`` as float32: the head's probabilities, calibrated (rows
    with a NaN stay NaN; temperature 1 returns them unchanged).

    Example:
        >>> tempered(np.array([[0.9, 0.1]]), 2.0).round(3).tolist()
        [[0.75, 0.25]]
    """
    proba = np.asarray(proba, dtype=np.float32)
    if temperature == 1.0:
        return proba
    out = np.full(proba.shape, np.nan, np.float32)
    ok = np.all(np.isfinite(proba), axis=1) if len(proba) else np.zeros(0, bool)
    if ok.any():
        out[ok] = apply_temperature(log_proba(proba[ok]), temperature)
    return out


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Top-label reliability table: per equal-width confidence bin, its ``count``, mean ``confidence``
    and ``accuracy`` (NaN for empty bins), with the bin ``edges``.

    Example:
        >>> table = reliability(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]), n_bins=2)
        >>> table["count"].tolist(), table["accuracy"].tolist()
        ([0, 2], [nan, 0.5])
    """
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    keep = np.all(np.isfinite(p), axis=1)
    p, y = p[keep], y[keep]
    confidence = p.max(axis=1) if len(p) else np.zeros(0)
    correct = (p.argmax(axis=1) == y) if len(p) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, int(n_bins) - 1)
    count = np.bincount(which, minlength=int(n_bins))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=int(n_bins)) / count
        accuracy = np.bincount(which, weights=correct.astype(float), minlength=int(n_bins)) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Top-label expected calibration error: the count-weighted mean of ``|accuracy - confidence|``
    over ``n_bins`` equal-width bins of the top probability (0 is perfect). Rows with a NaN are left out.

    Example:
        >>> expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))
        0.0
        >>> round(expected_calibration_error(np.array([[0.9, 0.1]] * 10), np.array([0] * 5 + [1] * 5)), 2)
        0.4
    """
    table = reliability(proba, y, n_bins)
    count = table["count"]
    if count.sum() == 0:
        return float("nan")
    full = count > 0
    gaps = np.abs(table["accuracy"][full] - table["confidence"][full])
    return float((gaps * count[full]).sum() / count.sum())
