"""Where a training run writes by default: ``runs/<name of the data folder>/``.

Deriving the folder from the data keeps runs on different photo collections apart: training on
``/my/photos`` writes ``runs/photos/`` and leaves the demo's ``runs/sample/`` alone. (The model
folder itself refuses to be replaced by a model of other classes; see
:func:`cvkit.models._folder.check_overwrite`.)

Example:
    >>> default_run_dir("sample_data").as_posix()
    'runs/sample'
    >>> default_run_dir("/my/photos/", root="experiments").as_posix()
    'experiments/photos'
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from cvkit.data._images import PathLike

__all__ = ["default_run_dir", "run_name"]

# A name that is only a generic word for "data" says nothing: keep it, but drop it as a suffix.
_DATA_SUFFIX = re.compile(r"(?i)[-_ .](data|dataset)$")


def run_name(data: PathLike) -> str:
    """A short folder name for the data at ``data``: the folder's name (a table: its file stem).

    A trailing ``_data`` (or ``-data``, ``_dataset``...) is dropped, so ``sample_data`` gives
    ``sample``; characters other than letters, digits, ``.``, ``-``
    and ``_`` become ``_``. A table named after no collection (``tags.tsv``, ``labels.csv``...)
    takes its folder's name: ``sample_data/tags.tsv`` gives ``sample`` too.

    Example:
        >>> run_name("sample_data"), run_name("sample_data/tags.tsv"), run_name("Road signs 2024")
        ('sample', 'sample', 'Road_signs_2024')
    """
    path = Path(os.path.abspath(os.fspath(data)))
    name = path.name
    if path.suffix.lower() in (".tsv", ".csv", ".txt"):
        name = path.stem
        if name.lower() in ("tags", "labels", "annotations", "index", "data", "train", "images", "photos"):
            name = path.parent.name or name
    short = _DATA_SUFFIX.sub("", name)
    name = short if short.strip("-_. ") else name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "data"
    return name


def default_run_dir(data: PathLike, root: PathLike = "runs") -> Path:
    """The folder a run on ``data`` writes to when none is given: ``root/<run_name(data)>``.

    ``cvkit train DATA`` saves its model folder as ``<this>/model``; ``notebooks/01_train.ipynb``
    writes ``<this>/model`` and ``<this>/split.json``.

    Example:
        >>> (default_run_dir("sample_data") / "model").as_posix()
        'runs/sample/model'
    """
    return Path(root) / run_name(data)
