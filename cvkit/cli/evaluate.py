"""``cvkit evaluate``: score a model folder on a labelled folder, table or split and save the report.

Usage::

    cvkit evaluate MODEL_DIR DATA_DIR_OR_TABLE --output report.json
    cvkit evaluate MODEL_DIR --split runs/sample/split.json --output report.json --figure eval.png

``add_evaluate_parser`` adds the sub-command to cvkit's main parser (see ``cvkit.cli``); the
command prints the metrics table, writes the JSON report (and optionally the summary figure).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Sequence

__all__ = ["add_evaluate_parser", "evaluate_command", "main"]

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


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` sub-command to an ``argparse`` sub-parsers object; returns its parser.

    Example:
        >>> parser = argparse.ArgumentParser(prog="cvkit")
        >>> _ = add_evaluate_parser(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["evaluate", "model", "data", "-o", "r.json"]).output
        'r.json'
    """
    p = subparsers.add_parser("evaluate", help="evaluate a model folder on labelled images",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="MODEL_DIR", help="model folder written by training (clf.save)")
    p.add_argument("data", metavar="DATA_DIR_OR_TABLE", nargs="?",
                   help="a folder with one sub-folder per class, or a path<TAB>label table")
    p.add_argument("--split", metavar="FILE",
                   help="split manifest from training: evaluate exactly its test images "
                        "(then DATA_DIR_OR_TABLE is not needed)")
    p.add_argument("--output", "-o", metavar="FILE", required=True, help="where to write the JSON report")
    p.add_argument("--figure", metavar="FILE",
                   help="also save the confusion matrix / ROC / PR figure (.png, .svg or .pdf)")
    p.add_argument("--top-losses", metavar="N", type=int, default=5,
                   help="list the N images with the highest loss (default 5; 0 for none)")
    p.set_defaults(func=evaluate_command)
    return p


def evaluate_command(args: argparse.Namespace) -> int:
    """Run ``cvkit evaluate`` for parsed ``args``; returns the exit code (0 ok, 2 bad input).

    Example: ``evaluate_command(parser.parse_args([...]))``.
    """
    from cvkit.data import ImageReadError
    from cvkit.evaluation.model_eval import as_dataset, as_model, evaluate
    out = sys.stdout
    try:
        if args.split is None and args.data is None:
            raise ValueError("give DATA_DIR_OR_TABLE or --split FILE (the images to evaluate on)")
        if args.top_losses < 0:
            raise ValueError(f"--top-losses must be 0 or more, not {args.top_losses}")
        model = as_model(args.model_dir)
        if args.split is not None:
            dataset = as_dataset(args.split, side="test")
            if args.data is not None:
                print(f"note: evaluating the {len(dataset)} test images listed in {args.split}; "
                      f"{args.data} is not read", file=out)
        else:
            dataset = as_dataset(args.data)
        report = evaluate(model, dataset)
    except (ValueError, FileNotFoundError, ImageReadError, TypeError) as exc:
        print(f"cvkit evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(f"model: {args.model_dir}", file=out)
    print(report.to_text(), file=out)
    if args.top_losses:
        table = report.top_losses(args.top_losses)
        print(f"\nTop {len(table)} losses (predicted / true, loss):", file=out)
        for row in table.itertuples():
            print(f"  {row.predicted} / {row.true}  {row.loss:.3f}  {row.path}", file=out)
    report.to_json(args.output)
    print(f"\nreport written to {args.output}", file=out)
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        fig = report.plot_summary()
        os.makedirs(os.path.dirname(os.path.abspath(args.figure)), exist_ok=True)
        fig.savefig(args.figure, dpi=110, bbox_inches="tight")
        print(f"figure written to {args.figure}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m cvkit.cli.evaluate MODEL_DIR DATA -o report.json``."""
    parser = argparse.ArgumentParser(prog="cvkit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_evaluate_parser(sub)
    args = parser.parse_args(["evaluate", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
