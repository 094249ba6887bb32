"""``head="auto"``: the head a feature classifier uses, chosen by its own training photos.

Why: on cached backbone features two linear heads are strong, each where the other is weak
(``bench/heads.py``). Multinomial logistic regression, its ``C`` chosen by cross-validated log-loss,
is best on balanced folders; a linear SVM on standardised features, strongly regularised
(``C=0.01``), holds the small classes of imbalanced folders far better. Which one a folder needs is
a question for the data, asked the way a careful person would: each candidate predicts every
training photo from a head that did not see it (stratified ``cv`` folds), and the candidate with
the higher **balanced accuracy** (the mean recall over classes: a small class counts as much as a
large one) wins. With a few dozen photos such scores are noisy, so one head is the favourite for
the data's class sizes (:func:`favourite`: the SVM when classes differ more than 3x, else logistic
regression) and the other must beat it by :data:`MARGIN` to take its place. The winner's
out-of-fold predictions then give its calibration temperature, so choosing costs a few small fits,
not a second cross-validation.

Both candidates are linear maps of the features, so whichever wins is saved as arrays
(``head.npz``), runs the same on every runtime, and has the class weights a class activation map
needs. The SVM's scores are read as logits (:class:`~cvkit.models._head.ScoresAsLogits`), which the
temperature makes honest probabilities.

Example:
    >>> rng = np.random.default_rng(0)
    >>> F = np.vstack([rng.normal(c, 1.0, (30, 4)) for c in range(3)])
    >>> y = np.repeat([0, 1, 2], 30)
    >>> chosen = choose_head(F, y, None, cv=3, random_state=0)
    >>> chosen.name in CANDIDATES, sorted(chosen.selection["scores"])
    (True, ['logistic', 'svm'])
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvkit.classifiers._calibrate import fixed_head, n_folds, out_of_fold_log_proba, temperature_from_oof
from cvkit.classifiers._heads import default_estimator, fit_head
from cvkit.models._head import ScoresAsLogits

__all__ = ["HEADS", "CANDIDATES", "SVM_C", "MARGIN", "favourite", "named_head", "choose_head", "ChosenHead",
           "describe", "training_choices", "path_log_proba"]

#: What ``FeatureClassifier(head=...)`` takes by name.
HEADS = ("auto", "logistic", "svm")
#: The heads ``"auto"`` chooses between, in order of preference when nothing separates them.
CANDIDATES = ("logistic", "svm")
#: The SVM's regularisation: strong, as few photos per class need (``bench/heads.py`` tried 0.001-0.03).
SVM_C = 0.01
#: How much higher the other head's out-of-fold balanced accuracy must be to replace the favourite:
#: with a few dozen photos per fold a smaller gap is mostly noise (``bench/heads.py`` tried 0.005-0.04).
MARGIN = 0.03


def named_head(name: str, min_class_count: int, cv: int = 5, random_state: int | None = 0) -> Any:
    """An unfitted head by name: ``"logistic"`` (:func:`~cvkit.classifiers._heads.default_estimator`)
    or ``"svm"`` (standardised features, ``LinearSVC(C=SVM_C)``, scores read as logits).

    Example:
        >>> named_head("svm", 10)  # doctest: +ELLIPSIS
        ScoresAsLogits(estimator=Pipeline(steps=[('standardscaler', StandardScaler()),
                                                 ('linearsvc', LinearSVC(C=0.01))]))
    """
    if name == "svm":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        return ScoresAsLogits(make_pipeline(StandardScaler(), LinearSVC(C=SVM_C)))
    if name == "logistic":
        return default_estimator(min_class_count, cv=cv, random_state=random_state)
    raise ValueError(f"head must be one of {', '.join(map(repr, HEADS))}, got {name!r}")


@dataclass
class ChosenHead:
    """What :func:`choose_head` found: the winner's ``name``, its fitted ``head``, its ``calibration``
    (as ``temperature_from_folds`` reports it) and the ``selection`` record (scores of every candidate)."""

    name: str
    head: Any
    calibration: dict[str, Any]
    selection: dict[str, Any]


def _candidate(name: str, F: np.ndarray, y: np.ndarray, weights: dict[int, float] | None, cv: int,
               random_state: int | None) -> tuple[Any, np.ndarray | None]:
    """``(head fitted on all photos, out-of-fold log-probabilities or None)`` of one candidate."""
    min_count = int(np.bincount(y).min())
    head = fit_head(named_head(name, min_count, cv, random_state), F, y, weights)
    found = path_log_proba(head, F, y)
    if found is not None:
        return head, found
    maker: Callable[[], Any] = fixed_head(head, lambda: named_head(name, min_count, cv, random_state))
    return head, out_of_fold_log_proba(maker, F, y, cv, random_state, weights, fit_head)


def path_log_proba(head: Any, F: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Out-of-fold log-probabilities of a fitted ``LogisticRegressionCV`` at the ``C`` it chose, read from
    the fold models its own search already fitted (``coefs_paths_``), or None when they cannot be
    (another head, folds that are not reproducible, an unexpected layout).

    Its folds are the ones :func:`~cvkit.classifiers._calibrate.out_of_fold_log_proba` would use
    (stratified, shuffled with the same seed), and each fold model is the one the search fitted at
    that ``C`` (warm-started along the path, so its probabilities differ from a fresh fit's by a few
    hundredths at most, its answers not at all on the bench folders): out-of-fold predictions
    without fitting again, 5 fewer fits of the logistic head per choice. (Checked against
    refitting in ``tests/classifiers/test_selection.py``.)
    """
    from sklearn.linear_model import LogisticRegressionCV

    from cvkit.models._calibration import log_proba, softmax

    splitter = getattr(head, "cv", None)
    if not isinstance(head, LogisticRegressionCV) or not isinstance(getattr(splitter, "random_state", None), int):
        return None
    paths, n_classes = np.asarray(getattr(head, "coefs_paths_", None)), int(y.max()) + 1
    if paths.ndim != 5 or paths.shape[3] != n_classes or paths.shape[4] != F.shape[1] + 1 or n_classes < 3:
        return None
    at = int(np.argmin(np.abs(np.asarray(head.Cs_) - float(np.ravel(head.C_)[0]))))
    oof = np.zeros((len(y), n_classes))
    for fold, (_, test) in enumerate(splitter.split(F, y)):
        coef = paths[fold, 0, at]
        oof[test] = log_proba(softmax(np.asarray(F[test], np.float64) @ coef[:, :-1].T + coef[:, -1]))
    return oof


def favourite(y: np.ndarray) -> str:
    """The head :func:`choose_head` keeps unless the other clearly wins: ``"svm"`` when the largest class
    has more than 3 times the photos of the smallest (where it held the small classes best on every
    folder of ``bench/heads.py``), else ``"logistic"`` (best calibrated, best on balanced folders).

    Example:
        >>> favourite(np.array([0] * 40 + [1] * 10)), favourite(np.array([0] * 20 + [1] * 10))
        ('svm', 'logistic')
    """
    from cvkit.data._balance import is_imbalanced

    return "svm" if is_imbalanced(np.bincount(np.asarray(y, dtype=np.int64))) else "logistic"


def choose_head(F: np.ndarray, y: np.ndarray, weights: dict[int, float] | None, cv: int = 5,
                random_state: int | None = 0) -> ChosenHead:
    """Fit every head of :data:`CANDIDATES` on features ``F`` and class indices ``y`` (weighted by
    ``weights``), score each out of fold, and return the winner (see the module). With fewer than 2
    photos in some class nothing can be held out: the logistic head, uncalibrated, and a note."""
    from sklearn.metrics import balanced_accuracy_score

    y = np.asarray(y, dtype=np.int64)
    folds = n_folds(y, cv)
    kept = favourite(y)
    by = (f"balanced accuracy out of fold ({folds} folds); {kept} (the favourite for these class sizes) "
          f"unless the other beats it by {MARGIN}")
    fitted, scores, calibrations = {}, {}, {}
    for name in CANDIDATES:
        fitted[name], oof = _candidate(name, F, y, weights, cv, random_state)
        if oof is None:
            head = fitted["logistic"]
            note = "not compared: some class has fewer than 2 training photos"
            return ChosenHead("logistic", head, {"method": "temperature", "temperature": 1.0, "folds": 0, "note": note},
                              {"chosen": "logistic", "by": note, "scores": {}})
        calibrations[name] = temperature_from_oof(oof, y, weights, folds)
        scores[name] = {"balanced_accuracy": round(float(balanced_accuracy_score(y, oof.argmax(axis=1))), 4),
                        "log_loss": round(calibrations[name]["oof_log_loss_after"], 4)}
    other = next(n for n in CANDIDATES if n != kept)
    name = other if scores[other]["balanced_accuracy"] >= scores[kept]["balanced_accuracy"] + MARGIN else kept
    return ChosenHead(name, fitted[name], calibrations[name], {"chosen": name, "by": by, "scores": scores})


def describe(selection: dict[str, Any]) -> str:
    """One line saying which head was chosen and why (for ``cvkit train`` and notebook 01).

    Example:
        >>> describe({"chosen": "svm", "by": "balanced accuracy out of fold",
        ...           "scores": {"logistic": {"balanced_accuracy": 0.81, "log_loss": 0.5},
        ...                      "svm": {"balanced_accuracy": 0.86, "log_loss": 0.45}}})
        'head: svm (balanced accuracy out of fold 0.860; logistic 0.810)'
    """
    chosen, scores = selection.get("chosen", "?"), selection.get("scores") or {}
    if chosen not in scores:
        return f"head: {chosen} ({selection.get('by', 'given')})"
    others = "; ".join(f"{n} {s['balanced_accuracy']:.3f}" for n, s in scores.items() if n != chosen)
    return f"head: {chosen} (balanced accuracy out of fold {scores[chosen]['balanced_accuracy']:.3f}; {others})"


def training_choices(clf: Any) -> list[str]:
    """Lines saying what the fit chose by itself: the head (``head="auto"``) and the class weights
    (``class_weight="auto"``), each with why.

    Example:
        >>> import cvkit
        >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
        >>> for line in training_choices(clf):
        ...     print(line)
        head: logistic (balanced accuracy out of fold 0.925; svm 0.898)
        class weights: none (the classes differ less than 3x in size)
    """
    lines = []
    selection = getattr(clf, "selection_", None)
    if selection is not None:
        lines.append(describe(selection))
    if getattr(clf, "class_weight", None) == "auto":
        weight = getattr(clf, "metrics_", {}).get("class_weight")
        lines.append("class weights: balanced (the classes differ more than 3x in size: every class counts the "
                     "same, and balanced accuracy is the number to judge by)" if weight == "balanced" else
                     "class weights: none (the classes differ less than 3x in size)")
    return lines
