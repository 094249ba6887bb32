"""A linear head as plain arrays: ``logits = normalise(features) @ weights + bias``, saved as ``head.npz``.

Why: every head cvkit picks by default (logistic regression or a linear SVM, on standardised or
L2-normalised features) is a linear map of the backbone's features. Kept as two arrays it runs the
same in every path (LiteRT, Keras, the service, a Ray worker) with one matrix product, can be
calibrated (a temperature divides the logits), gives the class weights a class activation map
needs, and loads from a file of numbers only (``numpy.load(..., allow_pickle=False)``), never code.

:meth:`LinearHead.from_estimator` reads a fitted scikit-learn head (``LogisticRegression(CV)``,
``LinearSVC``, ``RidgeClassifier``, in a ``Pipeline`` after ``StandardScaler`` and/or
``Normalizer``) and checks on real feature rows that the arrays give its answers; anything else
(trees, kernels, calibrated wrappers) is not linear and stays a scikit-learn head.

Example:
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    >>> fitted = LogisticRegression().fit(X, y)
    >>> head = LinearHead.from_estimator(fitted, X)
    >>> bool(np.allclose(head.predict_proba(X), fitted.predict_proba(X), atol=1e-5))
    True
    >>> LinearHead.from_npz(head.to_npz(), "head.npz").weights.shape
    (5, 3)
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from cvkit.models._calibration import softmax

__all__ = ["LinearHead", "ScoresAsLogits", "MAX_FEATURES", "MAX_CLASSES"]

#: Bounds on a stored head: feature width and number of classes (far above any backbone or task).
MAX_FEATURES = 65_536
MAX_CLASSES = 10_000

_KEYS = ("weights", "bias", "normalize")


@dataclass(frozen=True)
class LinearHead:
    """``logits = (x / ||x|| if normalize else x) @ weights + bias``; ``predict_proba`` is their softmax.

    ``weights`` float32 ``(n_features, n_classes)``, ``bias`` float32 ``(n_classes,)``.
    """

    weights: np.ndarray
    bias: np.ndarray
    normalize: bool = False

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Class scores float64 ``(n, n_classes)`` for features ``(n, n_features)``."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"features must be (n, {self.n_features}), got {x.shape}")
        if self.normalize:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0)
        return x @ self.weights.astype(np.float64) + self.bias.astype(np.float64)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``softmax(logits)`` as float64."""
        return softmax(self.logits(features))

    # ------------------------------------------------------------------ from scikit-learn
    @classmethod
    def from_estimator(cls, estimator: Any, check_features: np.ndarray, atol: float = 1e-5) -> LinearHead | None:
        """The arrays of a fitted linear scikit-learn head, or None if it is not one.

        Verified on ``check_features`` (real feature rows): for a head with ``predict_proba`` the
        softmax of the logits must match it within ``atol`` (a one-vs-rest logistic regression does
        not, and is refused); for one without (``LinearSVC``), the logits must match its
        ``decision_function``.
        """
        parts = _linear_parts(estimator)
        if parts is None:
            return None
        W, b, normalize = parts
        head = cls(W.astype(np.float32), b.astype(np.float32), normalize)
        x = np.asarray(check_features, dtype=np.float64)
        if hasattr(estimator, "predict_proba"):
            expected, found = estimator.predict_proba(x), head.predict_proba(x)
        else:
            expected = np.asarray(estimator.decision_function(x), dtype=np.float64)
            found = head.logits(x)
            if expected.ndim == 1:  # binary: one score, the logits are [0, score]
                found = found[:, 1] - found[:, 0]
        scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
        if found.shape != expected.shape or not np.allclose(found, expected, atol=atol * scale, rtol=0):
            return None
        return head

    # ------------------------------------------------------------------ file
    def to_npz(self) -> bytes:
        """The head as ``.npz`` bytes (numbers only)."""
        buffer = io.BytesIO()
        np.savez(buffer, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                 normalize=np.array(bool(self.normalize)))
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, where: str) -> LinearHead:
        """A head from ``.npz`` bytes, refusing anything but the expected finite float arrays
        (``ValueError`` naming ``where`` and the array); objects are never unpickled."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                keys = sorted(archive.files)
                if keys != sorted(_KEYS):
                    raise ValueError(f"{where}: holds arrays {keys}; expected exactly {sorted(_KEYS)}")
                arrays = {k: archive[k] for k in _KEYS}
        except ValueError as exc:
            message = str(exc)
            raise ValueError(message if message.startswith(where) else f"{where}: not a head file ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - a damaged zip, a wrong format
            raise ValueError(f"{where}: not a head file ({type(exc).__name__}: {exc})") from None
        W, b, normalize = arrays["weights"], arrays["bias"], arrays["normalize"]
        sized = W.ndim == 2 and 1 <= W.shape[0] <= MAX_FEATURES and 2 <= W.shape[1] <= MAX_CLASSES
        if W.dtype.kind != "f" or not sized:
            raise ValueError(f"{where}: 'weights' must be a float array (n_features, n_classes) within "
                             f"({MAX_FEATURES}, {MAX_CLASSES}), got {W.dtype} {W.shape}")
        if b.dtype.kind != "f" or b.shape != (W.shape[1],):
            raise ValueError(f"{where}: 'bias' must be a float array ({W.shape[1]},), got {b.dtype} {b.shape}")
        if normalize.dtype != np.bool_ or normalize.shape != ():
            raise ValueError(f"{where}: 'normalize' must be one bool, got {normalize.dtype} {normalize.shape}")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise ValueError(f"{where}: 'weights' and 'bias' must be finite")
        return cls(W.astype(np.float32), b.astype(np.float32), bool(normalize))


class ScoresAsLogits(ClassifierMixin, BaseEstimator):
    """A linear classifier without probabilities (``LinearSVC``) whose scores are read as logits.

    ``predict_proba`` is the softmax of ``decision_function`` (for two classes, of ``[0, score]``),
    so the head stays one linear map that :class:`LinearHead` saves as arrays and a calibration
    temperature makes honest; scikit-learn's ``CalibratedClassifierCV`` would instead add a
    non-linear step per class and leave the model a pickled head. Used by
    ``FeatureClassifier(head="svm")`` and, when it wins, by ``head="auto"``.

    Example:
        >>> from sklearn.svm import LinearSVC
        >>> X, y = np.array([[0.0], [0.2], [1.0], [1.2]]), np.array([0, 0, 1, 1])
        >>> head = ScoresAsLogits(LinearSVC(C=1.0)).fit(X, y)
        >>> head.predict([[0.1], [1.1]]).tolist(), bool(np.allclose(head.predict_proba(X).sum(axis=1), 1))
        ([0, 1], True)
    """

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> ScoresAsLogits:
        from sklearn.base import clone
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return self.estimator_.decision_function(X)

    def predict(self, X: Any) -> np.ndarray:
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        scores = np.asarray(self.decision_function(X), dtype=np.float64)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        return softmax(scores)


def _linear_parts(estimator: Any) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """``(W, b, normalize)`` of a linear head (``x @ W + b`` are its logits), else None."""
    if isinstance(estimator, ScoresAsLogits):
        return _linear_parts(estimator.estimator_)
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler
    from sklearn.svm import LinearSVC

    steps = [s for _, s in estimator.steps if s not in (None, "passthrough")] \
        if isinstance(estimator, Pipeline) else [estimator]
    *pre, last = steps
    if not isinstance(last, (LogisticRegression, LogisticRegressionCV, LinearSVC, RidgeClassifier)):
        return None
    coef = np.asarray(last.coef_, dtype=np.float64)
    intercept = np.broadcast_to(np.asarray(last.intercept_, dtype=np.float64).reshape(-1), (coef.shape[0],))
    if coef.shape[0] == 1:  # binary: one score z, the logits [0, z] give sigmoid(z) = softmax([0, z])[1]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    W, b = coef.T.copy(), np.array(intercept, dtype=np.float64)
    normalize = False
    for position, step in reversed(list(enumerate(pre))):
        if isinstance(step, StandardScaler):  # x -> (x - mean) / scale: an affine map, folded in
            mean = step.mean_ if step.with_mean and step.mean_ is not None else np.zeros(W.shape[0])
            scale = step.scale_ if step.with_std and step.scale_ is not None else np.ones(W.shape[0])
            W = W / np.asarray(scale, dtype=np.float64)[:, None]
            b = b - np.asarray(mean, dtype=np.float64) @ W
        elif isinstance(step, Normalizer) and step.norm == "l2" and position == 0:
            normalize = True  # x -> x / ||x||, first: kept as a flag
        else:
            return None
    return W, b, normalize
