"""``cvkit evaluate``: score a model folder on a labelled folder, table or split and save the report.

Prints the metrics table and the worst mistakes, writes the JSON report (reload it with
``cvkit.evaluation.EvaluationReport.from_json``) and optionally the summary figure.

Example (shell)::

    cvkit evaluate MODEL_DIR DATA_DIR_OR_TABLE --output report.json
    cvkit evaluate MODEL_DIR --split runs/sample/split.json --output report.json --figure eval.png

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit evaluate")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["model", "data", "-o", "r.json"]).output
    'r.json'
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from cvkit.evaluation.model_eval import as_dataset, as_model, evaluate

__all__ = ["add_arguments", "run"]

_DESCRIPTION = """\
Evaluate a saved model on labelled images: accuracy, balanced accuracy, log-loss (overall and per
class), precision/recall/F1, ROC AUC and average precision per class, the confusion matrix and the
worst mistakes. Writes everything to a JSON report (reload it with
cvkit.evaluation.EvaluationReport.from_json).
"""

_EPILOG = """\
examples:
  cvkit evaluate runs/sample/model sample_data --output report.json
  cvkit evaluate runs/sample/model --split runs/sample/split.json -o report.json --figure eval.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit evaluate``'s arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder written by training (clf.save)")
    parser.add_argument("data", metavar="DATA_DIR_OR_TABLE", nargs="?",
                        help="a folder with one sub-folder per class, or a path<TAB>label table")
    parser.add_argument("--split", metavar="FILE",
                        help="split manifest from training: evaluate exactly its test images "
                             "(then DATA_DIR_OR_TABLE is not needed)")
    parser.add_argument("--output", "-o", metavar="FILE", required=True, help="where to write the JSON report")
    parser.add_argument("--figure", metavar="FILE",
                        help="also save the confusion matrix / ROC / PR figure (.png, .svg or .pdf)")
    parser.add_argument("--top-losses", metavar="N", type=int, default=5,
                        help="list the N images with the highest loss (default 5; 0 for none)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit evaluate`` for parsed ``args``: evaluate, print, write the report. Returns 0.

    Bad input (no images given, a missing model folder, unreadable images) raises ValueError or
    FileNotFoundError, which ``cvkit`` reports with exit status 2.
    """
    if args.split is None and args.data is None:
        raise ValueError("give DATA_DIR_OR_TABLE or --split FILE (the images to evaluate on)")
    if args.top_losses < 0:
        raise ValueError(f"--top-losses must be 0 or more, not {args.top_losses}")
    model = as_model(args.model_dir)
    if args.split is not None:
        dataset = as_dataset(args.split, side="test")
        if args.data is not None:
            print(f"note: evaluating the {len(dataset)} test images listed in {args.split}; "
                  f"{args.data} is not read")
    else:
        dataset = as_dataset(args.data)
    report = evaluate(model, dataset)
    print(f"model: {args.model_dir}")
    print(report.to_text())
    if args.top_losses:
        table = report.top_losses(args.top_losses)
        print(f"\nTop {len(table)} losses (predicted / true, loss):")
        for row in table.itertuples():
            print(f"  {row.predicted} / {row.true}  {row.loss:.3f}  {row.path}")
    report.to_json(args.output)
    print(f"\nreport written to {args.output}")
    if args.figure:
        save_figure(report, args.figure)
        print(f"figure written to {args.figure}")
    return 0


def save_figure(report: Any, path: str | os.PathLike) -> None:
    """Save ``report``'s summary figure (confusion matrix, ROC, PR) to ``path``, without a display.

    Example:
        >>> save_figure(cvkit.evaluate(clf, test), tmp + "/eval.png")
    """
    import matplotlib
    matplotlib.use("Agg")
    fig = report.plot_summary()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
