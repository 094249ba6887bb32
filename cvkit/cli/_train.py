"""``cvkit train``: load a folder of class folders (or a path/label table), split, fit, score, save.

The model folder gets ``split.json`` (the split manifest), so ``cvkit evaluate MODEL_DIR`` and
``cvkit export`` later use exactly the held-out test images. Without ``--output`` the model goes
to ``runs/<name of the data folder>/model`` (:func:`cvkit.data.default_run_dir`). The run ends
with the test split's per-class precision, recall and support and its balanced accuracy, and
warns when the classes differ a lot in size or a class has few photos
(:func:`cvkit.data.check_class_balance`).

Example (shell)::

    cvkit train sample_data                          # writes runs/sample/model
    cvkit train sample_data --output models/sample --class-weight balanced
    cvkit train sample_data -o models/sample-ft --method finetune --epochs 8

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit train")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["sample_data", "-o", "models/sample"]).test_size
    0.34
    >>> output_folder(parser.parse_args(["sample_data"])).as_posix()
    'runs/sample/model'
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from cvkit._console import require_extra
from cvkit.classifiers._model_selection import METHODS, make_classifier
from cvkit.classifiers._selection import HEADS, training_choices
from cvkit.cli._main import add_verbose_argument
from cvkit.data import ImageDataset, check_class_balance, default_run_dir, save_split
from cvkit.evaluation._model_eval import evaluate
from cvkit.models._folder import check_overwrite

__all__ = ["add_arguments", "run", "output_folder", "print_test_report"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit train``'s arguments to ``parser``; returns it."""
    parser.description = (
        "Train an image classifier: load DATA (one sub-folder per class, or a path<TAB>label table),\n"
        "hold out a stratified test split, fit, report test accuracy, per-class precision/recall and\n"
        "balanced accuracy, and save the model folder (with the split manifest as split.json).")
    parser.epilog = ("examples:\n  cvkit train sample_data                  # writes runs/sample/model\n"
                     "  cvkit train sample_data --output models/sample --class-weight balanced\n"
                     "  cvkit train sample_data -o models/sample-ft --method finetune --epochs 8")
    parser.add_argument("data", metavar="DATA", help="folder of class folders, or a .tsv/.csv table of path,label")
    parser.add_argument("-o", "--output", metavar="MODEL_DIR",
                        help="model folder to write (default runs/<name of DATA>/model)")
    parser.add_argument("--method", choices=METHODS, default="features",
                        help="features: backbone features + logistic regression (seconds; default); "
                             "finetune: train the head, then the top of the backbone (minutes)")
    parser.add_argument("--backbone", default="efficientnet_lite0", help="backbone name (default efficientnet_lite0)")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (finetune only; default 10)")
    parser.add_argument("--no-augment", action="store_true", help="no on-the-fly augmentation (finetune only)")
    parser.add_argument("--no-flip", action="store_true",
                        help="augment without mirroring (text, signs, digits, left/right)")
    parser.add_argument("--class-weight", choices=("auto", "none", "balanced"), default="auto",
                        help="balanced: every class counts the same in training whatever its size; none: every "
                             "image counts the same; auto (default): balanced when classes differ more than 3x")
    parser.add_argument("--head", choices=HEADS, default="auto",
                        help="the head on the features (features only): logistic, svm, or auto (default: the one "
                             "with the higher balanced accuracy out of fold on the training photos)")
    parser.add_argument("--test-size", type=float, default=0.34,
                        help="share of images held out for testing (default 0.34; 0 trains on all)")
    parser.add_argument("--no-stratify", action="store_true",
                        help="a plain random split instead of a stratified one (allows classes with 1 image; "
                             "such a class may then be missing from the training or test side)")
    parser.add_argument("--random-state", type=int, default=0, help="seed for the split and training (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace MODEL_DIR if it is a model folder (an existing one is never replaced without it)")
    add_verbose_argument(parser, "the progress bars")
    return parser


def output_folder(args: argparse.Namespace) -> Path:
    """The model folder to write: ``--output``, else ``runs/<name of DATA>/model``."""
    return Path(args.output) if args.output else default_run_dir(args.data) / "model"


def print_test_report(report: Any, file: Any = None) -> None:
    """Print a test report's accuracy, balanced accuracy (each with its 95% interval) and per-class
    precision, recall (with its interval) and support. When classes differ more than 3x
    (``report.imbalanced``) balanced accuracy comes first, with the smallest recall: accuracy hides
    small classes.

    Example:
        >>> import cvkit
        >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
        >>> print_test_report(cvkit.evaluate(clf, test))          # doctest: +NORMALIZE_WHITESPACE
        test accuracy: 0.9722 (35/36), 95% interval 0.858\u20131.000
        balanced accuracy: 0.9583, 95% interval 0.801\u20131.000
        only 36 test images: accuracy is known to within about ±7 points; more test images ...
                   precision  recall  recall_low  recall_high  support
        class
        bird           1.000   1.000       0.758        1.000       12
        flower         1.000   1.000       0.701        1.000        9
        fruit          0.900   1.000       0.701        1.000        9
        vegetable      1.000   0.833       0.436        1.000        6
    """
    n, found = len(report), report.intervals()
    lines = [f"test accuracy: {report.accuracy:.4f} ({round(report.accuracy * n)}/{n}), "
             f"95% interval {_range(found['accuracy'])}",
             f"balanced accuracy: {report.balanced_accuracy:.4f}, 95% interval {_range(found['balanced_accuracy'])}"]
    if report.imbalanced:
        name, recall = report.smallest_recall()
        lines = [lines[1], f"smallest recall: {recall:.3f} ({name})", lines[0]]
    for line in lines:
        print(line, file=file)
    note = report.interval_warning()
    if note:
        print(note, file=file)
    table = report.per_class(intervals=True)[["precision", "recall", "recall_low", "recall_high", "support"]]
    print(table.to_string(na_rep="n/a", float_format="{:.3f}".format), file=file)


def _range(bounds: tuple[float, float] | None) -> str:
    return "n/a" if bounds is None else f"{bounds[0]:.3f}\u2013{bounds[1]:.3f}"


def _split(dataset: ImageDataset, args: argparse.Namespace) -> tuple[ImageDataset, ImageDataset | None]:
    """``(train, test)``, or ``(dataset, None)`` with ``--test-size 0``; errors name the CLI option."""
    if args.test_size == 0:
        return dataset, None
    try:
        return dataset.split(test_size=args.test_size, stratify=not args.no_stratify,
                             random_state=args.random_state)
    except ValueError as exc:
        if "stratify=False" in str(exc):  # the library's advice, in this command's words
            raise ValueError(f"{exc} (cvkit train: --no-stratify)") from None
        raise


def _known_classes(test: ImageDataset, classes: list[str]) -> ImageDataset:
    """``test`` without images of classes the model never saw (possible with ``--no-stratify``), with a note."""
    known = set(classes)
    keep = [i for i, label in enumerate(test.image_labels) if label in known]
    if len(keep) < len(test):
        missing = sorted(set(test.image_labels) - known)
        print(f"note: {len(test) - len(keep)} test image(s) of class(es) {', '.join(missing)}, which have no "
              "training image, are left out of the test scores")
    return test if len(keep) == len(test) else test.subset(keep)


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit train`` for parsed ``args``: load, split, fit, score, save. Returns 0."""
    require_extra("tensorflow", "cvkit train")  # not installed: say so before any work, not after training
    out = output_folder(args)
    if not 0.0 <= args.test_size < 1.0:
        raise ValueError(f"--test-size must be in [0, 1), got {args.test_size}")
    check_overwrite(out, None, True if args.overwrite else "same_classes")  # a non-model folder: fail now
    dataset = ImageDataset.from_path(args.data, verbose=args.verbose)  # class folders or a table
    if dataset.targets is None or len(dataset) == 0:
        raise ValueError(f"{args.data}: no labelled images found")
    check_overwrite(out, dataset.labels, args.overwrite)  # before training, not after
    print(f"data: {dataset}")
    train, test = _split(dataset, args)
    print(f"split: {len(train)} training, {0 if test is None else len(test)} test images")
    class_weight = None if args.class_weight == "none" else args.class_weight
    extra = {"head": args.head} if args.method == "features" else {}
    clf = make_classifier(args.method, backbone=args.backbone, epochs=args.epochs,
                          augment=None if args.no_augment else "default-no-flip" if args.no_flip else "default",
                          random_state=args.random_state,
                          verbose=args.verbose, class_weight=class_weight, **extra)
    start = time.perf_counter()
    clf.fit(train)
    seconds = time.perf_counter() - start
    print(f"trained {type(clf).__name__} ({args.method}, {args.backbone}) in {seconds:.1f} s")
    for line in training_choices(clf):
        print(line)
    metrics: dict[str, Any] = {"fit_seconds": round(seconds, 2)}
    if test is not None:
        report = evaluate(clf, _known_classes(test, clf.classes_))
        metrics.update(test_accuracy=report.accuracy, test_balanced_accuracy=report.balanced_accuracy,
                       n_test=len(test))
        print_test_report(report)
    weighted = getattr(clf, "metrics_", {}).get("class_weight") == "balanced" or class_weight == "balanced"
    for warning in check_class_balance(train):
        note = " (this run already weighs classes as balanced)" if weighted and "differ" in warning else ""
        print(f"cvkit train: warning: {warning}{note}", file=sys.stderr)
    clf.save(out, overwrite=args.overwrite, metrics=metrics)
    if test is not None:
        save_split(out / "split.json", train, test, random_state=args.random_state, test_size=args.test_size,
                   stratify=not args.no_stratify)
    print(f"model saved to {os.fspath(out)}")
    return 0
