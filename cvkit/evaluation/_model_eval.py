"""``evaluate(model, dataset)``: score a labelled dataset with a model and build its ``EvaluationReport``.

Also holds the small helpers that turn "a model or a model folder" and "a dataset, folder, table or
split manifest" into the real objects, shared by :func:`evaluate`, :func:`hard_negatives` and the CLI.

Example:
    >>> report = cvkit.evaluate(model_dir, "sample_data")       # a model folder, a folder of classes
    >>> len(report), report.classes
    (104, ['bird', 'flower', 'fruit', 'vegetable'])
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from cvkit.data._dataset import ImageDataset
from cvkit.data._manifest import SPLIT_FORMAT, load_split
from cvkit.evaluation._report import EvaluationReport, EvaluationWarning
from cvkit.models._folder import load_model

__all__ = ["evaluate", "as_model", "as_dataset"]


def as_model(model: Any) -> Any:
    """A fitted classifier as is, or a model folder (``str``/``Path``) loaded with ``cvkit.load_model``.

    Example:
        >>> as_model(clf) is clf, type(as_model(model_dir)).__name__
        (True, 'LoadedModel')
    """
    if isinstance(model, (str, os.PathLike)):
        return load_model(model)
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        raise TypeError(f"model must be a fitted cvkit classifier (with predict_proba and classes_) "
                        f"or a model folder, not {type(model).__name__}")
    return model


def is_split_manifest(path: Path) -> bool:
    """True when ``path`` is a JSON split manifest written by :func:`cvkit.data.save_split`.

    Example:
        >>> is_split_manifest(Path("sample_data/tags.tsv"))
        False
    """
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh).get("format") == SPLIT_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def as_dataset(data: Any, side: str = "test") -> ImageDataset:
    """An ``ImageDataset`` from a dataset, a folder of class folders, a table or a split manifest.

    For a split manifest (written by ``cvkit.data.save_split``), ``side`` picks ``"test"`` (default)
    or ``"train"``.

    Example:
        >>> len(as_dataset("sample_data")), len(as_dataset("sample_data/tags.tsv"))
        (104, 104)
        >>> manifest = cvkit.save_split(f"{tmp}/split.json", train, test)
        >>> len(as_dataset(manifest)), len(as_dataset(manifest, side="train"))
        (36, 68)
    """
    if isinstance(data, ImageDataset):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"expected an ImageDataset, a folder, a table or a split manifest, "
                        f"not {type(data).__name__}")
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder, table or split manifest")
    if is_split_manifest(path):
        if side not in ("train", "test"):
            raise ValueError(f"side must be 'train' or 'test', not {side!r}")
        train, test = load_split(path)
        return test if side == "test" else train
    return ImageDataset.from_path(path)


def evaluate(model: Any, dataset: Any, *, zero_division: float = float("nan")) -> EvaluationReport:
    """Score every image of a labelled ``dataset`` with ``model`` and return the full report.

    ``model`` is a fitted cvkit classifier (or anything with ``predict_proba`` and ``classes_``) or a
    model folder; ``dataset`` is an :class:`~cvkit.data.ImageDataset`, a folder of class folders, a
    ``path<TAB>label`` table or a split manifest (its test side). Unreadable images are reported
    and left out (see ``report.skipped``). A dataset class the model does not know is an error.

    Example:
        >>> report = cvkit.evaluate(clf, test)
        >>> report
        <EvaluationReport: 36 images, 4 classes, accuracy 0.972, log-loss 0.157>
        >>> fig = report.plot_summary()
    """
    model = as_model(model)
    ds = as_dataset(dataset)
    if ds.targets is None:
        raise ValueError("evaluate needs a labelled dataset (every image with its class); "
                         "use model.predict for unlabelled images")
    if len(ds) == 0:
        raise ValueError("the dataset has no readable images to evaluate")
    classes = [str(c) for c in model.classes_]
    unknown = sorted(set(ds.image_labels) - set(classes))
    if unknown:
        raise ValueError(f"the dataset has class(es) the model was not trained on: "
                         f"{', '.join(repr(u) for u in unknown)} (model classes: "
                         f"{', '.join(repr(c) for c in classes)}); relabel or remove those images")
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
    return report
