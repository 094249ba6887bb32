"""``cvkit thresholds``: give a model folder an operating point, or show the one it has.

A thin front for :func:`cvkit.models.save_thresholds` and :func:`cvkit.evaluation.thresholds_for`.
Below its threshold a model answers "no decision" instead of a class, in every path that loads the
folder (``cvkit score``, ``cvkit serve`` in every protocol, Ray jobs, exports' sidecar).

Example (shell)::

    cvkit thresholds runs/sample/model                              # show the rule
    cvkit thresholds runs/sample/model --threshold 0.8              # one threshold for all classes
    cvkit thresholds runs/sample/model --class bird=0.9 --class fruit=0.7
    cvkit thresholds runs/sample/model --precision 0.95 --images runs/sample/split.json
    cvkit thresholds runs/sample/model --clear                      # back to the arg-max
    cvkit thresholds runs/sample/model --unknown-keep 0.95          # "unknown" for images unlike the training photos

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit thresholds")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "--class", "bird=0.9", "--class", "fruit=0.7"])
    >>> class_thresholds(args.classes)
    {'bird': 0.9, 'fruit': 0.7}
"""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run", "class_thresholds"]

_DESCRIPTION = """\
Set, choose or show a model folder's operating point: below its class's threshold the model answers
"no decision" rather than a class (probabilities stay as they are). Only metadata.json's "decision"
field changes. Choose thresholds for a target with --precision or --recall on held-out images
(a split.json's test side, a labelled folder or table).
"""

_EPILOG = """\
examples:
  cvkit thresholds runs/sample/model --precision 0.95 --images runs/sample/split.json
  cvkit thresholds runs/sample/model --threshold 0.8
  cvkit thresholds runs/sample/model --class bird=0.9 --class fruit=0.7
  cvkit thresholds runs/sample/model --clear
  cvkit thresholds runs/sample/model --unknown-keep 0.95     # 'unknown' above the novelty of 95% of training photos
  cvkit thresholds runs/sample/model --no-unknown
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit thresholds``' arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder written by training (clf.save)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=float, metavar="T", help="one threshold in [0, 1] for every class")
    how.add_argument("--class", dest="classes", action="append", metavar="NAME=T",
                     help="a threshold for one class (repeat for more); other classes get 0")
    how.add_argument("--precision", type=float, metavar="P", help="per-class thresholds reaching precision P "
                                                                   "on --images")
    how.add_argument("--recall", type=float, metavar="R", help="per-class thresholds keeping recall R on --images")
    how.add_argument("--clear", action="store_true", help="remove the thresholds (answer the top class)")
    parser.add_argument("--images", metavar="SPLIT|FOLDER|TABLE", default=None,
                        help="held-out labelled images for --precision/--recall (a split.json: its test side)")
    parser.add_argument("--global", dest="per_class", action="store_false",
                        help="with --precision/--recall: one threshold for all classes")
    unknown = parser.add_mutually_exclusive_group()
    unknown.add_argument("--unknown-keep", type=float, metavar="K",
                         help="answer 'unknown' above the novelty cut keeping a share K (e.g. 0.95) of the "
                              "training photos")
    unknown.add_argument("--unknown-cut", type=float, metavar="C", help="answer 'unknown' above novelty C")
    unknown.add_argument("--no-unknown", action="store_true", help="never answer 'unknown'")
    return parser


def class_thresholds(pairs: list[str]) -> dict[str, float]:
    """``["bird=0.9", ...]`` as ``{"bird": 0.9, ...}``; a malformed pair is a ValueError naming it."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.rpartition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--class {pair!r}: expected NAME=THRESHOLD, e.g. bird=0.9") from None
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit thresholds`` for parsed ``args``; prints the folder's rule and returns 0."""
    from cvkit.models import read_metadata, save_thresholds, save_unknown_threshold
    from cvkit.models._decision import DecisionRule

    if (args.precision is not None or args.recall is not None) != (args.images is not None):
        raise ValueError("--images goes with --precision or --recall (held-out images to choose thresholds on)")
    if args.precision is not None or args.recall is not None:
        from cvkit.evaluation import evaluate, thresholds_for
        report = evaluate(args.model_dir, args.images)
        chosen = thresholds_for(report, precision=args.precision, recall=args.recall, per_class=args.per_class)
        save_thresholds(args.model_dir, chosen)
        print(f"chosen on {len(report)} held-out images")
    elif args.threshold is not None or args.classes or args.clear:
        save_thresholds(args.model_dir, None if args.clear else
                               args.threshold if args.threshold is not None else class_thresholds(args.classes))
    if args.unknown_keep is not None or args.unknown_cut is not None or args.no_unknown:
        keep = None if args.no_unknown or args.unknown_cut is not None else args.unknown_keep
        save_unknown_threshold(args.model_dir, keep=keep, cut=args.unknown_cut)
    meta = read_metadata(args.model_dir)
    rule = DecisionRule.from_metadata(meta.get("decision"), meta["classes"], novelty=meta.get("novelty") is not None)
    print(f"{args.model_dir}: answers by {rule.describe()}")
    if isinstance(rule.thresholds, dict):
        for name, value in rule.thresholds.items():
            print(f"  {name}: {value:.4g}")
    return 0
