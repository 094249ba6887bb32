"""``evaluate(model, data)``: score labelled images with a model and build their ``EvaluationReport``.

Also holds the small helpers that turn "a model or a model folder" and "labelled images of any
input" (a dataset, a folder of class folders, a ``path,label`` table, a split manifest's test side:
whatever :meth:`cvkit.ImageSource.resolve` takes) into the real objects, shared by
:func:`evaluate`, :func:`hard_negatives` and the CLI.

Example:
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit("sample_data")
    >>> report = evaluate(clf, "sample_data/tags.tsv")              # a path<TAB>label table
    >>> len(report), report.classes
    (104, ['bird', 'flower', 'fruit', 'vegetable'])
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from cvkit._io import read_json
from cvkit.data._dataset import ImageDataset
from cvkit.data._manifest import SPLIT_FORMAT
from cvkit.data._source import ImageSource
from cvkit.evaluation._models import as_model
from cvkit.evaluation._report import EvaluationReport, EvaluationWarning
from cvkit.models._inference import has_novelty

__all__ = ["evaluate", "as_model", "as_dataset", "is_split_manifest"]

_UNLABELLED = ("evaluate needs a labelled dataset (every image with its class); "
               "use model.predict for unlabelled images")


def is_split_manifest(path: Path) -> bool:
    """True when ``path`` is a JSON split manifest written by :func:`cvkit.data.save_split`.

    Example:
        >>> is_split_manifest(Path("sample_data/tags.tsv"))
        False
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        doc = read_json(path, "split manifest")
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == SPLIT_FORMAT


def as_dataset(data: Any, side: str = "test") -> ImageDataset:
    """Labelled images of any input as an ``ImageDataset``: a dataset as is, else resolved by ImageSource.

    A folder of class folders, a ``path,label`` table, a split manifest (``side`` picks its
    ``"test"`` (default) or ``"train"`` images) or a glob is resolved once by
    :meth:`cvkit.ImageSource.resolve`. Images of a folder or a table are checked as an
    :class:`~cvkit.data.ImageDataset` checks them (cheaply, at a tiny scale): unreadable ones are
    left out with one warning and listed in ``skipped``, before anything is predicted.

    Example:
        >>> len(as_dataset("sample_data")), len(as_dataset("sample_data/tags.tsv"))
        (104, 104)
        >>> as_dataset("sample_data/bird")
        Traceback (most recent call last):
        ...
        ValueError: evaluate needs a labelled dataset (every image with its class); use model.predict ...
    """
    if isinstance(data, ImageDataset):
        return data
    source = ImageSource.resolve(data, side=side)
    if not source.has_labels:
        raise ValueError(_UNLABELLED)
    ds = source.dataset("evaluate")
    if source.kind == "manifest":  # load_split checked its images
        return ds
    checked = ImageDataset.from_paths(ds.paths, ds.image_labels, root=ds.root)
    checked.skipped = list(source.skipped) + checked.skipped
    return checked


def evaluate(model: Any, dataset: Any, *, zero_division: float = float("nan"), unknown: Any = None
             ) -> EvaluationReport:
    """Score every image of a labelled ``dataset`` with ``model`` and return the full report.

    ``model`` is a fitted cvkit classifier (or anything with ``predict_proba`` and ``classes_``) or a
    model folder; ``dataset`` is any labelled input of :meth:`cvkit.ImageSource.resolve`: an
    :class:`~cvkit.data.ImageDataset`, a folder of class folders, a ``path<TAB>label`` table or a
    split manifest (its test side). Unreadable images are reported and left out (see
    ``report.skipped``). A dataset class the model does not know is an error.

    For a model with a novelty score, ``report.info["unknown"]`` says how many of these images its
    "unknown" answer would reject (at its cut, or keeping 95% of its training photos), and with
    ``unknown=`` (images of other things: a folder, a table, paths) how many of those it catches and
    the AUROC (see :func:`cvkit.evaluation.unknown_report`); ``to_text`` shows both.

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False).fit(train)
        >>> report = evaluate(clf, test)
        >>> report
        <EvaluationReport: 36 images, 4 classes, accuracy 0.972, log-loss 0.159>
        >>> fig = report.plot_summary()
    """
    model = as_model(model)
    ds = as_dataset(dataset)
    if ds.targets is None:
        raise ValueError(_UNLABELLED)
    if len(ds) == 0:
        raise ValueError("the dataset has no readable images to evaluate")
    classes = [str(c) for c in model.classes_]
    unseen = sorted(set(ds.image_labels) - set(classes))
    if unseen:
        raise ValueError(f"the dataset has class(es) the model was not trained on: "
                         f"{', '.join(repr(u) for u in unseen)} (model classes: "
                         f"{', '.join(repr(c) for c in classes)}); relabel or remove those images")
    novelty = None
    if has_novelty(model):
        proba, novelty = model._predict_outputs(ds)  # one run gives both
    else:
        proba = model.predict_proba(ds)
    info: dict[str, Any] = {"n_dataset_images": len(ds)}
    for key, attr in (("model_path", "path_"), ("backbone", "backbone")):
        value = getattr(model, attr, None)
        if value is not None:
            info[key] = os.fspath(value) if isinstance(value, os.PathLike) else value
    meta = getattr(model, "metadata_", None)
    if isinstance(meta, dict):
        for key in ("model_version", "method", "head", "backbone"):
            if key in meta:
                info[key] = meta[key]
    if ds.root:
        info["data_root"] = ds.root
    with warnings.catch_warnings():
        # the model already warned about unreadable images; the report lists them in .skipped
        warnings.filterwarnings("ignore", message=r".*have no prediction", category=EvaluationWarning)
        report = EvaluationReport(ds.image_labels, proba, classes,
                                  paths=[os.path.normpath(p) for p in ds.paths],
                                  zero_division=zero_division, info=info)
    report.skipped = list(ds.skipped) + report.skipped
    if novelty is not None:
        report.info["unknown"] = _unknown_figures(model, proba, novelty, unknown)
    return report


def _unknown_figures(model: Any, proba: Any, novelty: Any, unknown: Any) -> dict[str, Any]:
    """What :func:`cvkit.evaluation.unknown_report` says, from the evaluated images' scores."""
    import numpy as np

    from cvkit.evaluation._unknown import novelty_and_top, report_from_scores

    proba, novelty = np.asarray(proba, np.float64), np.asarray(novelty, np.float64)
    ok = np.all(np.isfinite(proba), axis=1) & np.isfinite(novelty)
    found = report_from_scores(model, novelty[ok], proba[ok].max(axis=1))
    if unknown is not None:
        found.unknown_novelty, found.unknown_top = novelty_and_top(model, unknown)
    return found.to_dict()
