"""Classifier heads on backbone features: the default estimator, class weights, and fitting with them.

A fitted linear head becomes plain arrays (weights and bias) through
:meth:`cvkit.models._head.LinearHead.from_estimator`: saved as ``head.npz`` for a feature classifier,
copied into the softmax ``Dense`` layer of a fine-tuned one.

Example:
    >>> from cvkit.classifiers._heads import default_estimator
    >>> default_estimator(min_class_count=12)  # doctest: +ELLIPSIS
    LogisticRegressionCV(...)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cvkit._validation import Custom, Interval, Options, check_param

__all__ = ["DEFAULT_CS", "default_estimator", "with_probabilities", "check_class_weight",
           "CLASS_WEIGHT", "class_weights", "resolve_class_weight", "fit_head"]

#: Inverse regularisation strengths tried by the default head's cross-validation.
DEFAULT_CS = tuple(float(c) for c in np.logspace(-2, 2, 9))


def default_estimator(min_class_count: int, cv: int = 5, random_state: int | None = 0) -> Any:
    """The default head: multinomial logistic regression with its regularisation chosen by CV.

    ``C`` is picked from :data:`DEFAULT_CS` by stratified ``cv``-fold cross-validation on log-loss
    (fewer folds when the smallest class is smaller than ``cv``). Features are *not* standardised:
    pooled ReLU6 features are mostly zeros, and standardising blows up near-dead units (it cost
    2-3 test images of 36 on the sample data). The Newton-CG solver converges in ~10 iterations on
    a few hundred images, so the whole search takes about a second. With fewer than 2 images in
    some class, a plain ``LogisticRegression(C=1)`` is used.
    """
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    folds = min(int(cv), int(min_class_count))
    if folds < 2:
        return LogisticRegression(C=1.0, solver="newton-cg", max_iter=1000)
    return LogisticRegressionCV(Cs=list(DEFAULT_CS), cv=StratifiedKFold(folds, shuffle=True, random_state=random_state),
                                scoring="neg_log_loss", solver="newton-cg", max_iter=1000, l1_ratios=(0.0,),
                                use_legacy_attributes=False)


def with_probabilities(estimator: Any, min_class_count: int, random_state: int | None = 0) -> Any:
    """``estimator`` itself if it has ``predict_proba``, else wrapped for calibrated probabilities.

    Classifiers without probabilities (``LinearSVC``, ``RidgeClassifier``...) are wrapped in
    ``CalibratedClassifierCV`` (sigmoid, i.e. Platt scaling) so ``predict_proba`` works and scores
    mean something; with very small classes fewer folds are used.
    """
    if hasattr(estimator, "predict_proba"):
        return estimator
    if not hasattr(estimator, "decision_function"):
        raise TypeError(f"estimator {type(estimator).__name__} has neither predict_proba nor decision_function; "
                        "use a scikit-learn classifier")
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    folds = max(2, min(3, int(min_class_count)))
    return CalibratedClassifierCV(estimator, method="sigmoid",
                                  cv=StratifiedKFold(folds, shuffle=True, random_state=random_state))


_WEIGHT = Interval(float, 0, None, closed="neither")


def _is_weight_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(_WEIGHT.is_satisfied_by(w) for w in value.values())


#: The constraints of ``class_weight`` (both classifiers declare these).
CLASS_WEIGHT = [Options(["auto", "balanced"]), Custom(_is_weight_dict, "a dict of class name -> positive weight"), None]


def check_class_weight(class_weight: Any) -> Any:
    """``class_weight`` if it is None, ``"balanced"`` or a ``{class name: positive weight}`` dict, else an error.

    Example:
        >>> check_class_weight("balanced")
        'balanced'
        >>> check_class_weight("heavy")
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: class_weight must be one of 'auto', 'balanced' or a dict of ...
    """
    return check_param("class_weight", class_weight, CLASS_WEIGHT)


def resolve_class_weight(class_weight: Any, targets: np.ndarray) -> Any:
    """``class_weight`` with ``"auto"`` resolved on class indices ``targets``: ``"balanced"`` when the
    largest class has more than :data:`~cvkit.data._balance.MAX_SIZE_RATIO` (3) times the photos of the
    smallest (the same line :func:`cvkit.data.check_class_balance` draws), else None.

    Example:
        >>> resolve_class_weight("auto", np.array([0] * 40 + [1] * 10))
        'balanced'
        >>> print(resolve_class_weight("auto", np.array([0, 0, 1])))
        None
    """
    if class_weight != "auto":
        return class_weight
    from cvkit.data._balance import is_imbalanced

    return "balanced" if is_imbalanced(np.bincount(np.asarray(targets, dtype=np.int64))) else None


def class_weights(class_weight: Any, targets: np.ndarray, classes: list[str]) -> dict[int, float] | None:
    """``{class index: weight}`` for ``class_weight`` on class indices ``targets``, or None for no weighting.

    ``"auto"`` is ``"balanced"`` when classes differ more than 3x, else None (:func:`resolve_class_weight`).
    ``"balanced"`` weighs class ``c`` by ``n_images / (n_classes * n_images_of_c)`` (scikit-learn's
    rule), so every class counts as much in the loss whatever its size; a dict gives weights by
    class name (unnamed classes weigh 1).

    Example:
        >>> weights = class_weights("balanced", np.array([0, 0, 0, 1]), ["big", "small"])
        >>> {k: round(w, 3) for k, w in weights.items()}
        {0: 0.667, 1: 2.0}
    """
    check_class_weight(class_weight)
    class_weight = resolve_class_weight(class_weight, targets)
    if class_weight is None:
        return None
    if class_weight == "balanced":
        counts = np.bincount(np.asarray(targets), minlength=len(classes)).astype(float)
        present = counts > 0
        weights = np.ones(len(classes))
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return {i: float(w) for i, w in enumerate(weights)}
    unknown = sorted(set(map(str, class_weight)) - set(map(str, classes)))
    if unknown:
        raise ValueError(f"class_weight names unknown class(es) {', '.join(map(repr, unknown))}; "
                         f"the classes are {', '.join(map(repr, classes))}")
    named = {str(k): float(v) for k, v in class_weight.items()}
    return {i: named.get(str(c), 1.0) for i, c in enumerate(classes)}


def fit_head(estimator: Any, features: np.ndarray, targets: np.ndarray, weights: dict[int, float] | None) -> Any:
    """Fit ``estimator`` on ``features`` and class indices ``targets`` with class ``weights``; returns it.

    How the weights get in depends on the head. The default ``LogisticRegressionCV`` gets them as
    per-image ``sample_weight``: then both the fits inside its cross-validation *and* the log-loss
    that picks ``C`` are weighted, so ``C`` is chosen for the weighted problem. Other heads get
    them through their own ``class_weight`` parameter (also inside a ``Pipeline`` or
    ``CalibratedClassifierCV``), or else as ``sample_weight``; a head taking neither is a TypeError.
    A head whose own ``class_weight`` is already set cannot take weights a second time (ValueError).

    Example:
        >>> from sklearn.linear_model import LogisticRegression
        >>> X, y = np.array([[0.0], [0.1], [0.2], [1.0]]), np.array([0, 0, 0, 1])
        >>> fit_head(LogisticRegression(), X, y, {0: 0.667, 1: 2.0}).class_weight
        {0: 0.667, 1: 2.0}
    """
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    if weights is None:
        return estimator.fit(features, targets)
    params = estimator.get_params(deep=True)
    keys = [k for k in params if k == "class_weight" or k.endswith("__class_weight")]
    already = {k: params[k] for k in keys if params[k] is not None}
    if already:
        raise ValueError(f"the head {type(estimator).__name__} already sets {', '.join(already)}="
                         f"{next(iter(already.values()))!r}; give class weights in one place only "
                         "(the classifier's class_weight, or the head's)")
    per_image = np.array([weights[int(t)] for t in targets], dtype=np.float64)
    if isinstance(estimator, LogisticRegressionCV) or not keys:
        if "sample_weight" not in inspect.signature(estimator.fit).parameters:
            raise TypeError(f"the head {type(estimator).__name__} takes neither class_weight nor sample_weight; "
                            "use class_weight=None or another head")
        return estimator.fit(features, targets, sample_weight=per_image)
    estimator.set_params(**{k: dict(weights) for k in keys})
    return estimator.fit(features, targets)
