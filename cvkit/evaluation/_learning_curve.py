"""``cvkit.learning_curve``: per-class recall as the training photos grow, and which classes need more.

Why: "label more photos" is the usual advice, but of which class? A class whose out-of-fold recall
still rises between 75% and 100% of the training photos is likely to gain from more of them; a
class that levelled off long ago needs something else (cleaner labels, a better backbone, photos of
another kind). So each fold of a stratified K-fold trains on 25%, 50%, 75% and 100% of its training
photos (every class cut to the same share, at least 2 photos; the smaller sets are subsets of the
larger, so the curve moves with the photos added, not with a new draw) and every photo is tested
once per share by a model that never saw it.

A :class:`~cvkit.classifiers.FeatureClassifier` is featurized once, and only its head is refitted
(without the calibration temperature, which changes no answer and so no recall); any other
classifier is trained ``cv × len(fractions)`` times (slow: a line says so).

Example:
    >>> import cvkit
    >>> curve = cvkit.learning_curve(cvkit.FeatureClassifier(verbose=False), "sample_data", cv=5)
    >>> curve.recall.shape, list(curve.recall.columns)
    ((4, 4), [0.25, 0.5, 0.75, 1.0])
    >>> fig = curve.plot()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import Custom, Interval, check_param
from cvkit.evaluation._folds import FoldFitter, labelled_images, repeated_folds, slow_notice, verbose_of
from cvkit.evaluation._tables import names_list

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LearningCurve", "learning_curve", "FRACTIONS"]

#: The constraints of ``fractions``: increasing shares in (0, 1].
FRACTIONS = [Custom(lambda v: isinstance(v, (tuple, list, np.ndarray)) and len(v) >= 2
                    and all(Interval(float, 0, 1, closed="right").is_satisfied_by(f) for f in v)
                    and all(a < b for a, b in zip(v[:-1], v[1:])),
                    "increasing shares in (0, 1], at least two, e.g. (0.25, 0.5, 0.75, 1.0)")]


@dataclass(repr=False)
class LearningCurve:
    """What :func:`learning_curve` found.

    Attributes
    ----------
    recall : a ``pandas.DataFrame``, one row per class and one column per fraction: the out-of-fold
        recall of the class when trained on that share of the training photos.
    accuracy : a ``pandas.Series`` by fraction: the out-of-fold accuracy.
    n_train : a ``pandas.DataFrame`` like :attr:`recall`: training photos of each class per fold (mean).
    fractions : the shares of the training photos.
    """

    recall: pd.DataFrame
    accuracy: pd.Series
    n_train: pd.DataFrame
    fractions: tuple[float, ...]

    def gains(self, steps: int = 1) -> pd.Series:
        """Each class's recall gain over the last ``steps`` fractions (e.g. from 75% to 100% of the
        training photos), largest first: how much the class was still improving when the photos ran out."""
        columns = self.recall.columns
        gain = self.recall[columns[-1]] - self.recall[columns[-1 - steps]]
        return gain.sort_values(ascending=False, kind="mergesort")

    def advice(self) -> str:
        """A sentence naming the classes that would gain most from more photos: those whose recall
        still rose by 2 points or more over the last step (or, if none did, by 4 or more over the last
        two), largest gain first; else the class with the lowest recall, if below 0.9.

        Example: ``"More photos would help 'vegetable' (0.56 → 0.83) most: its recall still rose over
        the last 50% of the training photos."``
        """
        columns = self.recall.columns
        for steps in range(1, min(2, len(columns) - 1) + 1):
            gains = self.gains(steps)
            rising = [c for c in gains.index if gains[c] >= 0.02 * steps][:3]
            if rising:
                start, last = columns[-1 - steps], columns[-1]
                parts = [f"{c!r} ({self.recall.loc[c, start]:.2f} \u2192 {self.recall.loc[c, last]:.2f})"
                         for c in rising]
                their = "their recall" if len(parts) > 1 else "its recall"
                return (f"More photos would help {_joined(parts)} most: {their} still rose over the last "
                        f"{round((last - start) * 100)}% of the training photos.")
        last = columns[-1]
        worst = self.recall[last].idxmin()
        if self.recall.loc[worst, last] < 0.9:
            return (f"Recall has levelled off for every class; {worst!r} is weakest "
                    f"({self.recall.loc[worst, last]:.2f}): more photos of the same kind may not help it; "
                    "look at its mistakes (report.plot_top_losses()) and labels (cvkit.find_label_issues).")
        return f"Recall has levelled off for every class ({names_list(list(self.recall.index))}), all at 0.9 or more."

    def plot(self, ax: Axes | None = None) -> Figure:
        """Recall of each class (and accuracy, dashed) against the share of training photos.
        Returns the matplotlib Figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
        else:
            fig = ax.figure
        x = [f * 100 for f in self.fractions]
        markers = "osD^vP*X"
        for k, (name, row) in enumerate(self.recall.iterrows()):  # first classes drawn larger: equal lines show
            ax.plot(x, row.values, marker=markers[k % len(markers)], markersize=max(3.0, 11.0 - 3.0 * k),
                    label=str(name))
        ax.plot(x, self.accuracy.values, color="black", linestyle="--", label="accuracy")
        ax.set_xlabel("share of the training photos (%)")
        ax.set_ylabel("out-of-fold recall")
        ax.set_xticks(x)
        ax.set_ylim(max(0.0, min(0.5, float(np.nanmin(self.recall.values)) - 0.05)), 1.02)
        ax.set_title("Learning curve per class")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        return fig

    def __repr__(self) -> str:
        return f"<LearningCurve: {len(self.recall)} classes at {list(self.fractions)}>\n{self.recall.round(3)}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _nested_subsets(train: np.ndarray, codes: np.ndarray, fractions: tuple[float, ...],
                    rng: np.random.RandomState) -> list[np.ndarray]:
    """For each fraction, that share of each class of ``train`` (at least 2 photos, or all it has),
    every smaller set a subset of the larger ones.

    Example:
        >>> subsets = _nested_subsets(np.arange(8), np.array([0] * 4 + [1] * 4), (0.5, 1.0), np.random.RandomState(0))
        >>> [len(s) for s in subsets], set(subsets[0]) <= set(subsets[1])
        ([4, 8], True)
    """
    order = rng.permutation(train)
    out = []
    for fraction in fractions:
        chosen = []
        for c in np.unique(codes[train]):
            members = order[codes[order] == c]
            take = min(len(members), max(2, int(np.ceil(fraction * len(members)))))
            chosen.append(members[:take])
        out.append(np.sort(np.concatenate(chosen)))
    return out


def learning_curve(classifier: Any, dataset: Any, fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0), cv: int = 5,
                   random_state: int | None = 0, *, verbose: bool | None = None) -> LearningCurve:
    """Per-class out-of-fold recall of an unfitted ``classifier`` trained on growing ``fractions`` of
    the training photos of each of ``cv`` stratified folds of ``dataset`` (duplicates kept in one fold).

    ``dataset`` is any labelled input of :meth:`cvkit.ImageSource.resolve`. Returns a
    :class:`LearningCurve`: ``.recall`` (classes × fractions), ``.plot()`` and ``.advice()``, a
    sentence naming the classes that would gain most from more photos. A FeatureClassifier takes
    seconds (featurized once); other classifiers train ``cv × len(fractions)`` times.

    Example:
        >>> import cvkit
        >>> curve = learning_curve(cvkit.FeatureClassifier(verbose=False), "sample_data", fractions=(0.5, 1.0), cv=3)
        >>> curve.recall.columns.tolist(), curve.recall.index.tolist()
        ([0.5, 1.0], ['bird', 'flower', 'fruit', 'vegetable'])
    """
    import pandas as pd
    from tqdm.auto import tqdm

    check_param("fractions", fractions, FRACTIONS)
    fractions = tuple(float(f) for f in fractions)
    data = labelled_images(dataset, "learning_curve")
    folds = repeated_folds(data, cv, 1, random_state)
    show = verbose_of(classifier, verbose)
    slow_notice(classifier, len(folds) * len(fractions), "learning_curve")
    fitter = FoldFitter(classifier, data, verbose=show, what="learning_curve")
    rng = np.random.RandomState(random_state)
    pred = np.full((len(fractions), len(data)), -1, dtype=np.int64)
    counts = np.zeros((len(fractions), len(data.classes)))
    steps = [(fold, i, subset) for fold in folds
             for i, subset in enumerate(_nested_subsets(fold.train, data.codes, fractions, rng))]
    for fold, i, subset in tqdm(steps, desc="learning_curve", unit="fit", disable=not show, leave=False):
        proba = fitter.fit_predict(subset, fold.test, calibrate=False)
        readable = ~np.isnan(proba).any(axis=1)
        pred[i, fold.test[readable]] = proba[readable].argmax(axis=1)
        counts[i] += np.bincount(data.codes[subset], minlength=len(data.classes)) / len(folds)
    return _curve(data.classes, data.codes, pred, counts, fractions, pd)


def _curve(classes: list[str], codes: np.ndarray, pred: np.ndarray, counts: np.ndarray,
           fractions: tuple[float, ...], pd: Any) -> LearningCurve:
    """The tables of a :class:`LearningCurve` from out-of-fold predictions ``pred`` (-1: unreadable)."""
    tested = pred[0] >= 0
    right = pred[:, tested] == codes[tested]
    recall = np.array([[right[i, codes[tested] == c].mean() if np.any(codes[tested] == c) else np.nan
                        for i in range(len(fractions))] for c in range(len(classes))])
    columns = pd.Index(list(fractions), name="fraction")
    index = pd.Index(classes, name="class")
    return LearningCurve(recall=pd.DataFrame(recall, index=index, columns=columns),
                         accuracy=pd.Series(right.mean(axis=1), index=columns, name="accuracy"),
                         n_train=pd.DataFrame(counts.T, index=index, columns=columns), fractions=fractions)
