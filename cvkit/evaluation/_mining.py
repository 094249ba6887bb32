"""Hard-negative mining: find the images a model gets wrong most confidently, to label and add.

The usual loop: collect a pool of images you know the class of (often photos of *none* of your
classes, labelled e.g. ``"other"``), score them, keep the ``k`` the model most confidently puts in
a wrong class, add them to the training set under their true label, retrain.

Example:
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
    >>> hard = hard_negatives(clf, "sample_data/fruit", label="vegetable", k=3)
    >>> list(hard.columns), len(hard)
    (['path', 'label', 'predicted', 'confidence'], 3)
    >>> more = cvkit.ImageDataset.from_paths(hard.path, hard.label)
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.data._dataset import ImageDataset
from cvkit.data._images import PathLike
from cvkit.data._source import ImageSource
from cvkit.evaluation._model_eval import as_model

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["hard_negatives"]


def _pool(data: Any, label: str | None) -> ImageDataset:
    """The images to mine, each with its true label: ``label``, or the input's own labels."""
    source = ImageSource.resolve(data, side="test")
    if source.kind == "folder" and len(source) == 0:
        raise ValueError(f"{os.fspath(data)}: no image files found")
    if label is not None:
        source = ImageSource(source.items, [label] * len(source), source.kind, source.root, source.skipped)
    elif not source.has_labels:
        raise ValueError(f"hard_negatives: the images are unlabelled ({source.kind}): pass label=, the true class "
                         "of every image in the pool")
    return source.dataset("hard_negatives")


def hard_negatives(model: Any, dataset_or_folder: ImageDataset | PathLike | Sequence[PathLike],
                   label: str | None = None, k: int = 10) -> pd.DataFrame:
    """The ``k`` images most confidently misclassified, worst first, ready to label and add.

    Parameters
    ----------
    model : a fitted classifier (``predict_proba`` and ``classes_``) or a model folder.
    dataset_or_folder : the pool to mine: any input of image files :meth:`cvkit.ImageSource.resolve`
        takes (an ``ImageDataset``, a folder, a table, a split manifest's test side, a glob, a list
        of image paths).
    label : the true class of every image in the pool (it may be a class the model does not know,
        such as ``"other"``; then every prediction is a mistake). Without it, a labelled input
        keeps its own labels (a folder of class folders, a table with labels, a labelled dataset).
    k : how many images to return (fewer if the model makes fewer mistakes).

    Returns a DataFrame with columns ``path``, ``label`` (the true class, to train with),
    ``predicted`` and ``confidence`` (the probability of the wrong prediction). Unreadable images
    are reported once and skipped. No image is moved or modified.

    Example:
        >>> import os, tempfile, cvkit
        >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data/tags.tsv")
        >>> hard = hard_negatives(clf, "sample_data/flower", label="other", k=5)
        >>> len(hard), set(hard.label)
        (5, {'other'})
        >>> hard[["path", "label"]].to_csv(os.path.join(tempfile.mkdtemp(), "more.tsv"), sep="\\t", header=False,
        ...                                index=False)
    """
    import pandas as pd
    check_param("k", k, [Interval(int, 1, None)])
    model = as_model(model)
    pool = _pool(dataset_or_folder, None if label is None else str(label))
    columns = ["path", "label", "predicted", "confidence"]
    if len(pool) == 0:
        return pd.DataFrame(columns=columns)
    classes = np.asarray([str(c) for c in model.classes_], dtype=object)
    proba = np.asarray(model.predict_proba(pool), dtype=np.float64)
    ok = ~np.isnan(proba).any(axis=1)
    truth = np.asarray(pool.image_labels, dtype=object)
    pred_idx = np.where(ok, np.nan_to_num(proba).argmax(axis=1), 0)
    predicted = classes[pred_idx]
    confidence = np.where(ok, np.nan_to_num(proba).max(axis=1), np.nan)
    wrong = np.flatnonzero(ok & (predicted != truth))
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:k]
    return pd.DataFrame({"path": [os.path.normpath(pool.paths[i]) for i in order], "label": truth[order].tolist(),
                         "predicted": predicted[order].tolist(), "confidence": confidence[order]},
                        columns=columns)
