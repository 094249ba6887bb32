"""``cvkit.compare``: does classifier B beat classifier A on these photos, or is it the luck of the split?

Why: on 36 test photos one photo is 2.8 points, so one split cannot tell two methods apart by less
than that, and trying both on a few splits by hand invites seeing what one hopes to see. Here both
classifiers are cross-validated on the *same* repeated folds, the difference of their scores is
taken fold by fold (paired), and the 95% interval of the mean difference uses the corrected
resampled t-test of Nadeau & Bengio (2003): folds of repeated cross-validation share most of their
training photos, so their scores are not independent, and the plain t-test's interval is far too
narrow. The correction multiplies the variance of the differences by ``1/(k·r) + n_test/n_train``
instead of ``1/(k·r)`` (``k`` folds, ``r`` repeats), and uses ``k·r − 1`` degrees of freedom.

Two :class:`~cvkit.classifiers.FeatureClassifier` on the same backbone featurize once between them.

Example:
    >>> import cvkit
    >>> a = cvkit.FeatureClassifier(verbose=False)
    >>> found = cvkit.compare(a, a, "sample_data", cv=5, repeats=2)
    >>> print(found.verdict)
    no evidence that B beats A: +0.0 points (+0.0 to +0.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cvkit._validation import Custom, Interval, Options, check_param
from cvkit.evaluation._cross_validation import CrossValidationResult, cross_validate_on
from cvkit.evaluation._folds import FoldFitter, labelled_images, repeated_folds, slow_notice, verbose_of

__all__ = ["ComparisonResult", "compare", "corrected_interval", "METRICS"]

#: What :func:`compare` can compare (per-fold scores of :attr:`CrossValidationResult.scores`).
METRICS = ("accuracy", "balanced_accuracy")
_NAMES = [Custom(lambda v: isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(n, str) and n for n in v),
                 "a pair of names, e.g. ('probe', 'fine-tuned')")]


def corrected_interval(differences: np.ndarray, test_train_ratio: float, level: float = 0.95
                       ) -> tuple[float, float, float]:
    """``(low, high, p_value)``: the interval of the mean of per-fold ``differences`` and the two-sided
    p-value of "no difference", by the corrected resampled t-test (Nadeau & Bengio 2003).

    ``test_train_ratio`` is ``n_test / n_train`` of a fold. With no spread at all (the same
    classifier twice) the interval is the mean itself.

    Example:
        >>> low, high, p = corrected_interval(np.array([0.02, 0.04, 0.00, 0.03, 0.01]), 0.25)
        >>> round(low, 3), round(high, 3), round(p, 3)
        (-0.009, 0.049, 0.132)
    """
    from scipy.stats import t

    d = np.asarray(differences, dtype=np.float64)
    mean, n = float(d.mean()), len(d)
    variance = float(d.var(ddof=1)) if n > 1 else 0.0
    se = float(np.sqrt((1.0 / n + test_train_ratio) * variance))
    if se == 0.0:
        return mean, mean, (1.0 if mean == 0.0 else 0.0)
    half = float(t.ppf(0.5 + level / 2.0, n - 1)) * se
    p_value = float(2.0 * t.sf(abs(mean) / se, n - 1))
    return mean - half, mean + half, p_value


@dataclass(repr=False)
class ComparisonResult:
    """What :func:`compare` found.

    Attributes
    ----------
    a, b : each classifier's :class:`~cvkit.evaluation.CrossValidationResult`, on the same folds.
    names : what the verdict calls them (default ``("A", "B")``).
    metric : ``"accuracy"`` or ``"balanced_accuracy"``.
    differences : per fold, B's score minus A's (``k × r`` values, repeat after repeat).
    mean_difference : their mean; positive when B does better.
    interval : the 95% interval ``(low, high)`` of the mean difference (corrected resampled t-test).
    p_value : the test's two-sided p-value for "no difference".
    """

    a: CrossValidationResult
    b: CrossValidationResult
    names: tuple[str, str]
    metric: str
    differences: np.ndarray
    mean_difference: float
    interval: tuple[float, float]
    p_value: float

    @property
    def verdict(self) -> str:
        """One line: who wins, by how many points (of 100), and the 95% interval; "no evidence" when
        the interval includes 0. The points are always B minus A.

        Example: ``"B beats A: +4.1 points (+1.2 to +7.0)"``, ``"no evidence that B beats A: +0.8
        points (−2.1 to +3.6)"``, ``"B is worse than A: −6.3 points (−9.0 to −3.5)"``.
        """
        a, b = self.names
        low, high = self.interval
        points = f"{_points(self.mean_difference)} points ({_points(low)} to {_points(high)})"
        if low > 0:
            return f"{b} beats {a}: {points}"
        if high < 0:
            return f"{b} is worse than {a}: {points}"
        if self.mean_difference >= 0:
            return f"no evidence that {b} beats {a}: {points}"
        return f"no evidence of a difference between {a} and {b}: {points}"

    def summary(self) -> str:
        """Each classifier's cross-validated line, then the verdict (on :attr:`metric`, per fold)."""
        a, b = self.names
        return (f"{a}: {self.a.summary()}\n{b}: {self.b.summary()}\n"
                f"{self.metric.replace('_', ' ')}, {b} minus {a}, paired over {len(self.differences)} folds: "
                f"{self.verdict}")

    def __repr__(self) -> str:
        return f"<ComparisonResult: {self.verdict}>"


def _points(value: float) -> str:
    """A difference in points of 100, signed: ``+4.1``, ``−2.1`` (a real minus sign), ``+0.0``."""
    text = f"{value * 100:+.1f}"
    return "+0.0" if text == "-0.0" else text.replace("-", "\u2212")


def compare(a: Any, b: Any, dataset: Any, cv: int = 5, repeats: int = 3, metric: str = "accuracy",
            random_state: int | None = 0, *, names: tuple[str, str] = ("A", "B"),
            verbose: bool | None = None) -> ComparisonResult:
    """Cross-validate classifiers ``a`` and ``b`` (unfitted; not changed) on the same ``repeats`` × ``cv``
    folds of ``dataset`` and say whether B's ``metric`` is better than A's, with a 95% interval.

    ``dataset`` is any labelled input of :meth:`cvkit.ImageSource.resolve`. The folds are those of
    :func:`~cvkit.evaluation.cross_validate` (stratified, duplicates kept in one fold). The
    difference is paired (B minus A on each fold) and its interval is the corrected resampled
    t-test's (see the module notes), the principled choice for repeated cross-validation; ``metric``
    is ``"accuracy"`` or ``"balanced_accuracy"``. ``names`` say what the verdict calls the two
    (e.g. ``("probe", "fine-tuned")``). Two FeatureClassifiers on one backbone are featurized once;
    a FineTuneClassifier trains on every fold (slow: a line says so).

    Returns a :class:`ComparisonResult` (``.verdict``, ``.interval``, ``.differences``, both
    cross-validation results as ``.a`` and ``.b``).

    Example:
        >>> import cvkit
        >>> from sklearn.dummy import DummyClassifier
        >>> probe = cvkit.FeatureClassifier(verbose=False)
        >>> guess = cvkit.FeatureClassifier(head=DummyClassifier(), calibration=None, verbose=False)
        >>> print(compare(probe, guess, "sample_data", repeats=1, names=("probe", "guess")).verdict)
        guess is worse than probe: −61.6 points (−69.7 to −53.4)
    """
    check_param("metric", metric, [Options(list(METRICS))])
    check_param("names", names, _NAMES)
    check_param("cv", cv, [Interval(int, 2, None)])
    data = labelled_images(dataset, "compare")
    folds = repeated_folds(data, cv, repeats, random_state)
    features: dict = {}
    results = []
    for classifier in (a, b):
        show = verbose_of(classifier, verbose)
        slow_notice(classifier, len(folds), "compare")
        results.append(cross_validate_on(FoldFitter(classifier, data, features, show, "compare"), folds,
                                         verbose=show))
    key = f"test_{metric}"
    differences = results[1].scores[key] - results[0].scores[key]
    ratio = float(np.mean([len(f.test) / len(f.train) for f in folds]))
    low, high, p_value = corrected_interval(differences, ratio)
    return ComparisonResult(results[0], results[1], (names[0], names[1]), metric, differences,
                            float(differences.mean()), (low, high), p_value)
