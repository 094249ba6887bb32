"""``cvkit train``: load a folder of class folders (or a path/label table), split, fit, score, save.

The model folder gets ``split.json`` (the split manifest), so ``cvkit evaluate --split`` and
``cvkit export`` later use exactly the held-out test images.

Example (shell)::

    cvkit train sample_data --output models/sample
    cvkit train sample_data -o models/sample-ft --method finetune --epochs 8

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit train")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["sample_data", "-o", "models/sample"]).test_size
    0.34
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from cvkit.classifiers.model_selection import METHODS, make_classifier
from cvkit.data import ImageDataset, save_split
from cvkit.models.folder import is_model_folder

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit train``'s arguments to ``parser``; returns it."""
    parser.description = (
        "Train an image classifier: load DATA (one sub-folder per class, or a path<TAB>label table),\n"
        "hold out a stratified test split, fit, report test accuracy and save the model folder.\n"
        "The split manifest is saved as split.json inside the model folder.")
    parser.epilog = ("examples:\n  cvkit train sample_data --output models/sample\n"
                     "  cvkit train sample_data -o models/sample-ft --method finetune --epochs 8")
    parser.add_argument("data", metavar="DATA", help="folder of class folders, or a .tsv/.csv table of path,label")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="model folder to write")
    parser.add_argument("--method", choices=METHODS, default="features",
                        help="features: backbone features + logistic regression (seconds; default); "
                             "finetune: train the head, then the top of the backbone (minutes)")
    parser.add_argument("--backbone", default="efficientnet_lite0", help="backbone name (default efficientnet_lite0)")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (finetune only; default 10)")
    parser.add_argument("--no-augment", action="store_true", help="no on-the-fly augmentation (finetune only)")
    parser.add_argument("--test-size", type=float, default=0.34,
                        help="share of images held out for testing (default 0.34; 0 trains on all)")
    parser.add_argument("--random-state", type=int, default=0, help="seed for the split and training (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace MODEL_DIR if it is a model folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit train`` for parsed ``args``: load, split, fit, score, save. Returns 0."""
    out = Path(args.output)
    if out.exists() and not (args.overwrite and is_model_folder(out)):
        hint = "pass --overwrite to replace it" if is_model_folder(out) else "it is not a model folder"
        raise FileExistsError(f"{out}: already exists ({hint})")
    if not 0.0 <= args.test_size < 1.0:
        raise ValueError(f"--test-size must be in [0, 1), got {args.test_size}")
    dataset = ImageDataset.from_path(args.data, progress=not args.quiet)  # class folders or a table
    if dataset.targets is None or len(dataset) == 0:
        raise ValueError(f"{args.data}: no labelled images found")
    print(f"data: {dataset}")
    if args.test_size > 0:
        train, test = dataset.split(test_size=args.test_size, random_state=args.random_state)
    else:
        train, test = dataset, None
    print(f"split: {len(train)} training, {0 if test is None else len(test)} test images")
    clf = make_classifier(args.method, backbone=args.backbone, epochs=args.epochs,
                          augment=None if args.no_augment else "default", random_state=args.random_state,
                          verbose=not args.quiet)
    start = time.perf_counter()
    clf.fit(train)
    seconds = time.perf_counter() - start
    print(f"trained {type(clf).__name__} ({args.method}, {args.backbone}) in {seconds:.1f} s")
    metrics: dict[str, Any] = {"fit_seconds": round(seconds, 2)}
    if test is not None:
        accuracy = clf.score(test)
        metrics.update(test_accuracy=accuracy, n_test=len(test))
        print(f"test accuracy: {accuracy:.4f} ({round(accuracy * len(test))}/{len(test)})")
    clf.save(out, overwrite=args.overwrite, metrics=metrics)
    if test is not None:
        save_split(out / "split.json", train, test, random_state=args.random_state, test_size=args.test_size)
    print(f"model saved to {os.fspath(out)}")
    return 0
