"""``cvkit compare``: is one way of training better than another on these photos, or is it luck?

A thin front for :func:`cvkit.compare`: both classifiers are cross-validated on the same repeated
folds of DATA, and the paired difference gets a 95% interval (corrected resampled t-test) and a
one-line verdict. Each classifier is a method (``features`` or ``finetune``, as ``cvkit train
--method``) followed by any ``name=value`` settings of that classifier.

Example (shell)::

    cvkit compare sample_data --b "features class_weight=balanced"
    cvkit compare sample_data --a features --b "finetune epochs=5" --repeats 1
    cvkit compare sample_data --b "features calibration=none" --metric balanced_accuracy

Example (Python):
    >>> classifier_spec("finetune epochs=5 augment=none")
    ('finetune', {'epochs': 5, 'augment': None})
"""
from __future__ import annotations

import argparse
import ast
from typing import Any

from cvkit.cli._main import add_verbose_argument

__all__ = ["add_arguments", "run", "classifier_spec"]

_DESCRIPTION = """\
Compare two classifiers on the same repeated cross-validation folds of DATA (a folder of class
folders, a path<TAB>label table or a split.json's train side) and say whether B beats A: the mean
per-fold difference (B minus A, in points of 100) with its 95% interval (corrected resampled
t-test, Nadeau & Bengio 2003) and a one-line verdict, e.g.
  no evidence that B beats A: +0.8 points (-2.1 to +3.6)

A classifier is written as a method, features (backbone features + logistic regression; seconds)
or finetune (trains the top of the backbone; minutes per fold), followed by settings of that
classifier as name=value, quoted as one argument: "features class_weight=balanced",
"finetune epochs=5 augment=none", "features backbone=efficientnet_lite1 calibration=none".
Two features classifiers on one backbone featurize the photos once.
"""

_EPILOG = """\
examples:
  cvkit compare sample_data --b "features class_weight=balanced"
  cvkit compare sample_data --a features --b "finetune epochs=5" --repeats 1
  cvkit compare sample_data --a "features calibration=none" --b features --metric balanced_accuracy
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit compare``'s arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("data", metavar="DATA", help="folder of class folders, path<TAB>label table or split.json")
    parser.add_argument("--a", dest="a", default="features", metavar="SPEC",
                        help='classifier A, the baseline: "METHOD [name=value ...]" (default: features)')
    parser.add_argument("--b", dest="b", required=True, metavar="SPEC",
                        help='classifier B, the challenger, e.g. "features class_weight=balanced" or finetune')
    parser.add_argument("--cv", type=int, default=5, help="folds per repeat (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the folds, each shuffled anew (default 3)")
    parser.add_argument("--metric", choices=("accuracy", "balanced_accuracy"), default="accuracy",
                        help="what to compare (default accuracy)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the folds (default 0)")
    add_verbose_argument(parser, "the progress bars")
    return parser


def _value(text: str) -> Any:
    """A setting's value: a Python literal (``5``, ``0.1``, ``True``), ``none`` for None, else the text."""
    if text.lower() == "none":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def classifier_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"METHOD name=value ..."`` as ``(method, {name: value})``; a malformed setting is a ValueError."""
    words = spec.split()
    if not words:
        raise ValueError("a classifier is a method (features or finetune) and optional name=value settings")
    settings = {}
    for word in words[1:]:
        name, sep, value = word.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"{spec!r}: expected name=value settings after the method, got {word!r}")
        settings[name] = _value(value)
    return words[0], settings


def _classifier(spec: str, verbose: bool) -> Any:
    from cvkit.classifiers._model_selection import make_classifier

    method, settings = classifier_spec(spec)
    settings.setdefault("verbose", verbose and method == "features")
    return make_classifier(method, **settings)


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit compare`` for parsed ``args``: print both cross-validations and the verdict; returns 0."""
    from cvkit.evaluation import compare

    a, b = _classifier(args.a, args.verbose), _classifier(args.b, args.verbose)
    print(f"A = {args.a}\nB = {args.b}")
    result = compare(a, b, args.data, cv=args.cv, repeats=args.repeats, metric=args.metric,
                     random_state=args.random_state, verbose=args.verbose)
    print(result.summary())
    return 0
