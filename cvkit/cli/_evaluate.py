"""``cvkit evaluate``: score a model folder on a labelled folder, table or split and save the report.

Prints the metrics table and the worst mistakes, and with ``--output`` writes the JSON report
(reload it with ``cvkit.evaluation.EvaluationReport.from_json``); optionally the summary figure.
With no images named, the test side of the model's own split manifest is used (``split.json``,
which ``cvkit train`` writes into the model folder). Images that the model was trained on (the
training side of that manifest) are reported: a score on them is optimistic.

Example (shell)::

    cvkit evaluate MODEL_DIR                          # the held-out images of MODEL_DIR/split.json
    cvkit evaluate MODEL_DIR DATA_DIR_OR_TABLE --output report.json
    cvkit evaluate MODEL_DIR --split runs/sample/split.json --output report.json --figure eval.png

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit evaluate")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["model", "data", "-o", "r.json"]).output
    'r.json'
    >>> print(parser.parse_args(["model"]).output)
    None
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from cvkit._io import atomic_open
from cvkit.data import load_split
from cvkit.data._images import PathLike
from cvkit.evaluation._model_eval import as_dataset, as_model, evaluate, is_split_manifest
from cvkit.models._folder import load_model
from cvkit.options import RunOptions, describe_runtime

__all__ = ["add_arguments", "run", "save_figure", "find_model_split", "training_overlap"]


_DESCRIPTION = """\
Evaluate a saved model on labelled images: accuracy, balanced accuracy, log-loss (overall and per
class), precision/recall/F1, ROC AUC and average precision per class, the confusion matrix and the
worst mistakes. Prints them; --output also writes a JSON report (reload it with
cvkit.evaluation.EvaluationReport.from_json). With no DATA_DIR_OR_TABLE and no --split, the test
images of the model's own split.json (written by cvkit train) are used.
"""

_EPILOG = """\
examples:
  cvkit evaluate runs/sample/model
  cvkit evaluate runs/sample/model sample_data --output report.json
  cvkit evaluate runs/sample/model --split runs/sample/split.json -o report.json --figure eval.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit evaluate``'s arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder written by training (clf.save)")
    parser.add_argument("data", metavar="DATA_DIR_OR_TABLE", nargs="?",
                        help="a folder with one sub-folder per class, or a path<TAB>label table "
                             "(default: the test images of the model's split.json)")
    parser.add_argument("--split", metavar="FILE",
                        help="split manifest from training: evaluate exactly its test images "
                             "(then DATA_DIR_OR_TABLE is not needed)")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="also write the JSON report there (default: print only)")
    parser.add_argument("--figure", metavar="FILE",
                        help="also save the confusion matrix / ROC / PR figure (.png, .svg or .pdf)")
    parser.add_argument("--top-losses", metavar="N", type=int, default=5,
                        help="list the N images with the highest loss (default 5; 0 for none)")
    parser.add_argument("--unknown", metavar="FOLDER|TABLE", default=None,
                        help="photos of other things (none of the model's classes): how many its 'unknown' "
                             "answer catches, and the AUROC of its novelty score")
    RunOptions.add_arguments(parser)
    return parser


def find_model_split(model_dir: PathLike) -> Path | None:
    """The split manifest a model was trained with, or None: ``MODEL_DIR/split.json`` (``cvkit train``)
    or ``split.json`` next to the model folder (``notebooks/01_train.ipynb``'s ``runs/NAME/``).

    Example:
        >>> import os, tempfile
        >>> import cvkit
        >>> run = tempfile.mkdtemp()                # laid out as notebook 01 writes it: model/, split.json
        >>> os.mkdir(os.path.join(run, "model"))
        >>> find_model_split(os.path.join(run, "model")) is None     # clf.save() writes no split
        True
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> _ = cvkit.save_split(os.path.join(run, "split.json"), train, test)
        >>> find_model_split(os.path.join(run, "model")).name
        'split.json'
    """
    folder = Path(model_dir)
    for candidate in (folder / "split.json", folder.parent / "split.json"):
        if is_split_manifest(candidate):
            return candidate
    return None


def training_overlap(dataset: Any, split: PathLike) -> list[str]:
    """The images of ``dataset`` listed on the training side of the split manifest ``split``.

    Paths are compared after resolving links and relative parts, so ``sample_data/bird/x.jpg``
    and ``./sample_data/bird/x.jpg`` are the same image.

    Example:
        >>> import tempfile
        >>> import cvkit
        >>> ds = cvkit.ImageDataset.from_directory("sample_data")
        >>> train, test = ds.split(test_size=0.34, random_state=0)
        >>> manifest = cvkit.save_split(os.path.join(tempfile.mkdtemp(), "split.json"), train, test)
        >>> len(training_overlap(ds, manifest)), len(training_overlap(test, manifest))
        (68, 0)
    """
    trained, _ = load_split(split, check=False)
    seen = {os.path.realpath(p) for p in trained.paths}
    return [p for p in dataset.paths if os.path.realpath(p) in seen]


def _images(args: argparse.Namespace) -> tuple[Any, Path | None]:
    """The dataset to evaluate and the model's own split manifest (None if it has none)."""
    own = find_model_split(args.model_dir)
    if args.split is None and args.data is None:
        if own is None:
            raise ValueError(f"{args.model_dir} has no split.json (cvkit train writes one): give "
                             "DATA_DIR_OR_TABLE or --split FILE, the images to evaluate on")
        print(f"evaluating the test images of {own}")
        return as_dataset(own, side="test"), own
    if args.split is not None:
        dataset = as_dataset(args.split, side="test")
        if args.data is not None:
            print(f"note: evaluating the {len(dataset)} test images listed in {args.split}; "
                  f"{args.data} is not read")
        return dataset, own
    return as_dataset(args.data), own


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit evaluate`` for parsed ``args``: evaluate, print, write the report. Returns 0.

    Bad input (no images given, a missing model folder, unreadable images) raises ValueError or
    FileNotFoundError, which ``cvkit`` reports with exit status 2.
    """
    if args.top_losses < 0:
        raise ValueError(f"--top-losses must be 0 or more, not {args.top_losses}")
    options = RunOptions.from_args(args)  # flags, else $CVKIT_RUNTIME ..., else the defaults
    model = load_model(args.model_dir, runtime=options.runtime, precision=options.precision,
                       num_threads=options.num_threads) if os.path.isdir(args.model_dir) else as_model(args.model_dir)
    dataset, own = _images(args)
    seen = training_overlap(dataset, own) if own is not None else []
    if seen:
        print(f"cvkit evaluate: warning: {len(seen)} of the {len(dataset)} images evaluated were used to train "
              f"this model (the training side of {own}), so the scores below are optimistic. Evaluate on "
              f"held-out images: `cvkit evaluate {args.model_dir}` uses the test side of that split",
              file=sys.stderr)
    report = evaluate(model, dataset, unknown=args.unknown)
    print(f"model: {args.model_dir} (ran on {describe_runtime(model)})")
    print(report.to_text())
    if args.top_losses:
        table = report.top_losses(args.top_losses)
        print(f"\nTop {len(table)} losses (predicted / true, loss):")
        for row in table.itertuples():
            print(f"  {row.predicted} / {row.true}  {row.loss:.3f}  {row.path}")
    if args.output:
        report.to_json(args.output)
        print(f"\nreport written to {args.output}")
    if args.figure:
        save_figure(report, args.figure)
        print(f"figure written to {args.figure}")
    return 0


def save_figure(report: Any, path: str | os.PathLike) -> Path:
    """Save ``report``'s summary figure (confusion matrix, ROC, PR) to ``path``, without a display.

    The format is the file's suffix (``.png``, ``.svg``, ``.pdf``; none: ``.png`` is added, as
    matplotlib does). The file is written atomically (:func:`cvkit._io.atomic_open`): an existing
    figure is replaced whole or not at all. Returns the path written.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from cvkit.evaluation import EvaluationReport
        >>> report = EvaluationReport(np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]),
        ...                           classes=["cat", "dog"])
        >>> save_figure(report, os.path.join(tempfile.mkdtemp(), "eval")).name
        'eval.png'
    """
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.use("Agg")
    path = Path(path)
    fmt = path.suffix[1:].lower() or str(matplotlib.rcParams["savefig.format"])
    if not path.suffix:
        path = path.with_name(f"{path.name}.{fmt}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = report.plot_summary()
    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path
