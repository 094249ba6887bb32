"""Find label mistakes and odd images in a labelled dataset, before training on it.

Why: with a few dozen to a few thousand photos, one wrong label moves test accuracy by points. Each
image's class probabilities are predicted *out of fold* (by a model that never saw that image), and
confident learning (`cleanlab <https://github.com/cleanlab/cleanlab>`_) decides which given labels
disagree with them more than the class's usual confusion explains. Backbone features are cached on
disk, so a second audit of the same photos takes seconds. Images that fit no class at all (a blank,
a screenshot, a photo of something else) are scored by how far they lie from their nearest
neighbours in feature space (cleanlab's out-of-distribution score).

Example:
    >>> issues = find_label_issues("sample_data", cv=3)      # any labelled input: a folder, a table...
    >>> list(issues.columns[:7])
    ['path', 'given_label', 'suggested_label', 'label_quality', 'is_issue', 'ood_score', 'is_outlier']
    >>> len(issues), bool(issues.label_quality.is_monotonic_increasing)
    (104, True)
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cvkit._console import import_extra
from cvkit._validation import Interval, check_param
from cvkit.classifiers._features import FeatureClassifier
from cvkit.classifiers._inputs import image_dataset
from cvkit.data._checks import BadImageWarning, warn_skipped
from cvkit.data._dataset import ImageDataset

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["find_label_issues", "image_features", "default_featurizer", "out_of_fold_probabilities",
           "outlier_scores", "OUTLIER_IQR_SCALE"]

#: An image is an outlier when its mean cosine distance to its nearest neighbours exceeds the third
#: quartile by this many interquartile ranges (cleanlab Datalab's default rule for features).
OUTLIER_IQR_SCALE = 1.7


def default_featurizer() -> Any:
    """The featurizer audits use by default: EfficientNet-Lite0 with the on-disk cache, no progress bar.

    It shares its Keras backbone with every :class:`~cvkit.classifiers.FeatureClassifier` in the
    process, so after the first call (or a first fit) it costs nothing to build.

    Example:
        >>> default_featurizer().n_features_out_
        1280
    """
    return FeatureClassifier(verbose=False).make_featurizer()


def image_features(dataset: Any, featurizer: Any = None, what: str = "audit") -> tuple[np.ndarray, np.ndarray]:
    """``(features, ok)``: float32 features of every image and a mask of the readable ones.

    ``dataset`` is an :class:`~cvkit.data.ImageDataset` or any input of image files
    :meth:`cvkit.ImageSource.resolve` takes. Unreadable images (NaN rows, ``ok`` False) are reported
    in one warning naming ``what``.

    Example:
        >>> F, ok = image_features("sample_data/bird")
        >>> F.shape, bool(ok.all())
        ((35, 1280), True)
    """
    dataset = image_dataset(dataset, what)
    featurizer = default_featurizer() if featurizer is None else featurizer
    with warnings.catch_warnings():  # re-issued below under the caller's name
        warnings.simplefilter("ignore", BadImageWarning)
        features, ok = featurizer.transform(list(dataset.paths), return_mask=True)
    skipped = [(p, r) for p, r in getattr(featurizer, "skipped_", [])]
    warn_skipped(skipped, what, stacklevel=4,
                 summary=f"skipped {len(skipped)} unreadable image(s); they are left out")
    return np.asarray(features, dtype=np.float32), np.asarray(ok, dtype=bool)


def _default_head(random_state: int | None) -> Any:
    """Standardised features + L2 logistic regression: fits 1,000 images in a fraction of a second."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, random_state=random_state))


def _check_folds(dataset: ImageDataset, cv: Any, what: str) -> None:
    if not dataset.is_labelled:
        raise ValueError(f"{what}: the dataset is unlabelled; label it first "
                         "(cvkit.AnnotationWidget or a path,label table)")
    check_param("cv", cv, [Interval(int, 2, None)])
    counts = dataset.counts()
    present = {k: v for k, v in counts.items() if v > 0}
    if len(present) < 2:
        raise ValueError(f"{what}: at least 2 classes are needed, got {sorted(present)}")
    small = {k: v for k, v in present.items() if v < cv}
    if small:
        listed = ", ".join(f"{k!r} ({v})" for k, v in small.items())
        raise ValueError(f"{what}: class(es) with fewer images than cv={cv} folds: {listed}. "
                         f"Pass cv={max(2, min(small.values()))} or fewer, or add images to those classes "
                         "(a class needs at least 2 images)")


def out_of_fold_probabilities(features: np.ndarray, targets: np.ndarray, n_classes: int, cv: int = 5,
                              random_state: int | None = 0, head: Any = None) -> np.ndarray:
    """Class probabilities of each row from a model fitted on the other folds (stratified K folds).

    ``head`` is a scikit-learn classifier (cloned per fold); by default standardised features +
    logistic regression. Columns are classes ``0..n_classes-1``.

    Example:
        >>> ds = ImageDataset.from_directory("sample_data")
        >>> F, _ = image_features(ds)
        >>> P = out_of_fold_probabilities(F, ds.targets, len(ds.labels), cv=3)
        >>> P.shape, bool(np.allclose(P.sum(1), 1))
        ((104, 4), True)
    """
    targets = np.asarray(targets, dtype=np.int64)
    proba = np.zeros((len(targets), n_classes), dtype=np.float64)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    for fit_idx, held_idx in folds.split(features, targets):
        model = clone(head) if head is not None else _default_head(random_state)
        model.fit(features[fit_idx], targets[fit_idx])
        proba[np.ix_(held_idx, np.asarray(model.classes_, dtype=np.int64))] = model.predict_proba(features[held_idx])
    return proba


def _classifier_probabilities(dataset: ImageDataset, classifier: Any, cv: int,
                              random_state: int | None) -> np.ndarray:
    """Out-of-fold probabilities from a cvkit classifier: a clone is fitted per fold on the images."""
    proba = np.zeros((len(dataset), len(dataset.labels)), dtype=np.float64)
    column = {label: i for i, label in enumerate(dataset.labels)}
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    for fit_idx, held_idx in folds.split(np.zeros(len(dataset)), dataset.targets):
        model = clone(classifier).fit(dataset.subset(fit_idx))
        held = np.asarray(model.predict_proba(dataset.subset(held_idx)), dtype=np.float64)
        cols = [column[str(c)] for c in model.classes_]
        proba[np.ix_(held_idx, cols)] = np.nan_to_num(held, nan=1.0 / len(cols))
    return proba


def outlier_scores(features: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """``(ood_score, is_outlier)`` for each feature row: cleanlab's kNN out-of-distribution score.

    ``ood_score`` is in 0..1, low for images far (in cosine distance) from their ``k`` nearest
    neighbours; ``is_outlier`` marks scores beyond :data:`OUTLIER_IQR_SCALE` interquartile ranges
    of the typical neighbour distance (the same rule as cleanlab's Datalab).

    Example:
        >>> F, _ = image_features("sample_data/tags.tsv")
        >>> score, odd = outlier_scores(F)
        >>> score.shape, bool(((score >= 0) & (score <= 1)).all())
        ((104,), True)
    """
    OutOfDistribution = import_extra("cleanlab.outlier").OutOfDistribution

    n = len(features)
    if n < 3:
        return np.ones(n), np.zeros(n, dtype=bool)
    ood = OutOfDistribution(params={"k": int(min(k, n - 1))})
    score = np.asarray(ood.fit_score(features=np.asarray(features, dtype=np.float64), verbose=False), float)
    scale = float(ood.params.get("scaling_factor") or 1.0)
    distance = -np.log(np.clip(score, 1e-300, 1.0)) * scale  # score = exp(-distance / scale)
    q1, q3 = np.percentile(distance, [25, 75])
    return score, distance > q3 + OUTLIER_IQR_SCALE * (q3 - q1)


def find_label_issues(dataset: Any, classifier: Any = None, cv: int = 5, random_state: int | None = 0,
                      *, featurizer: Any = None) -> pd.DataFrame:
    """Images whose given label looks wrong, and images that fit no class: a DataFrame, worst first.

    Parameters
    ----------
    dataset : labelled images: an :class:`~cvkit.data.ImageDataset`, or any labelled input of image
        files :meth:`cvkit.ImageSource.resolve` takes (a folder of class folders, a ``path,label``
        table, a split manifest: its train side).
    classifier : None (default) for a logistic regression on cached backbone features, refitted per
        fold in a fraction of a second; or a cvkit classifier (e.g. ``FeatureClassifier(head=...)``,
        ``FineTuneClassifier()``), cloned and fitted on the images of each fold.
    cv : stratified folds; every class needs at least ``cv`` images.
    random_state : seed of the folds (and of the default model).
    featurizer : the :class:`~cvkit.features._featurizer.ImageFeaturizer` for the features (used for
        the default model and the outlier score); default :func:`default_featurizer`.

    Returns one row per readable image, sorted by ``label_quality`` (lowest first); the index is
    the image's position in ``dataset``. Columns: ``path``, ``given_label``, ``suggested_label``
    (the most probable class out of fold), ``label_quality`` (0..1, cleanlab's self-confidence:
    the out-of-fold probability of the given label), ``is_issue`` (cleanlab's confident-learning
    decision), ``ood_score`` (0..1, low = unlike every other image), ``is_outlier``, then
    ``p_<class>``: the out-of-fold probability of each class. Unreadable images are reported in one
    warning and left out.

    Example:
        >>> ds = ImageDataset.from_directory("sample_data")
        >>> issues = find_label_issues(ds, cv=3)
        >>> list(issues.columns[:5])
        ['path', 'given_label', 'suggested_label', 'label_quality', 'is_issue']
        >>> fixed = ds.image_labels
        >>> for i, row in issues[issues.is_issue].iterrows():
        ...     fixed[i] = row.suggested_label             # accept the suggestions (after a look!)
        >>> relabelled = ImageDataset.from_paths(ds.paths, fixed, root=ds.root)
    """
    import pandas as pd
    confident_learning = import_extra("cleanlab.filter").find_label_issues
    get_label_quality_scores = import_extra("cleanlab.rank").get_label_quality_scores

    dataset = image_dataset(dataset, "find_label_issues", side="train")
    _check_folds(dataset, cv, "find_label_issues")
    features, ok = image_features(dataset, featurizer, "find_label_issues")
    keep = np.flatnonzero(ok)
    data = dataset.subset(keep)
    _check_folds(data, cv, "find_label_issues")
    if classifier is None:
        proba = out_of_fold_probabilities(features[keep], data.targets, len(data.labels), cv, random_state)
    else:
        proba = _classifier_probabilities(data, classifier, cv, random_state)
    proba = np.clip(proba, 0.0, 1.0)
    proba /= np.maximum(proba.sum(axis=1, keepdims=True), 1e-12)
    targets = data.targets
    quality = get_label_quality_scores(targets, proba, method="self_confidence")
    is_issue = confident_learning(targets, proba, filter_by="prune_by_noise_rate", n_jobs=1)
    ood, odd = outlier_scores(features[keep])
    labels = np.asarray(data.labels, dtype=object)
    table = pd.DataFrame({
        "path": data.paths, "given_label": labels[targets], "suggested_label": labels[proba.argmax(axis=1)],
        "label_quality": quality.astype(float), "is_issue": np.asarray(is_issue, dtype=bool),
        "ood_score": ood, "is_outlier": odd,
        **{f"p_{label}": proba[:, j] for j, label in enumerate(data.labels)},
    }, index=pd.Index(keep, name="index"))
    return table.sort_values("label_quality", kind="stable")
