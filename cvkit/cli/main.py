"""The ``cvkit`` command: ``cvkit train``, ``evaluate``, ``score``, ``serve``, ``export``, ``cache``.

Each sub-command lives in the module that does the work and plugs in through :data:`COMMANDS`:
an entry names a function that adds the command's arguments to its ``argparse`` sub-parser
(``add_NAME_arguments(parser)``; or ``add_NAME_parser(subparsers)``, which creates the sub-parser
itself), and the function that runs it (``NAME_command(args) -> exit code``). Only the chosen command's
module is imported, so ``cvkit train`` never loads the web server and ``cvkit --help`` is instant.
Errors in the input (a missing folder, a bad option) print ``cvkit NAME: error: ...`` and exit 2.

Example (shell)::

    cvkit train sample_data --output models/sample --method features
    cvkit train sample_data -o models/sample-ft --method finetune --epochs 8
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

__all__ = ["COMMANDS", "Command", "build_parser", "main", "add_train_arguments", "train_command"]


class Command(NamedTuple):
    """One sub-command: ``module:function`` names, imported only when the command runs.

    ``arguments`` adds the command's arguments to the (already created) sub-parser; ``run`` takes
    the parsed ``argparse.Namespace`` and returns the exit code.
    """

    name: str
    help: str
    arguments: str
    run: str


#: The registry. To add a command, add an entry here pointing at your module's two functions.
COMMANDS: tuple[Command, ...] = (
    Command("train", "train a classifier on a folder of class folders (or a path/label table)",
            "cvkit.cli.main:add_train_arguments", "cvkit.cli.main:train_command"),
    Command("evaluate", "evaluate a model folder on labelled images and write a JSON report",
            "cvkit.cli.evaluate:add_evaluate_parser", "cvkit.cli.evaluate:evaluate_command"),
    Command("score", "score a folder or table of images into a CSV",
            "cvkit.serving.batch_score:add_score_arguments", "cvkit.serving.batch_score:score_command"),
    Command("serve", "serve a model folder over HTTP",
            "cvkit.serving.server:add_serve_arguments", "cvkit.serving.server:serve_command"),
    Command("export", "export a model folder to SavedModel or TFLite and check it",
            "cvkit.models.export:add_export_arguments", "cvkit.models.export:export_command"),
    Command("cache", "see or clear the on-disk feature cache",
            "cvkit.features.admin:add_cache_arguments", "cvkit.features.admin:cache_command"),
)

_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, TypeError)


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``cvkit`` parser; the arguments of ``command`` (or of every command, if None) are added.

    Example:
        >>> build_parser("train").parse_args(["train", "data", "-o", "m"]).method
        'features'
    """
    from cvkit import __version__
    parser = argparse.ArgumentParser(
        prog="cvkit", description="From a folder of photos to a trained, evaluated and deployed image classifier.")
    parser.add_argument("--version", action="version", version=f"cvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        wanted = command is None or command == cmd.name
        adder = None
        if wanted:
            try:
                adder = _resolve(cmd.arguments)
            except (ImportError, AttributeError):
                if command == cmd.name:
                    raise
        if adder is not None and cmd.arguments.endswith("_parser"):
            p = adder(sub)  # add_NAME_parser(subparsers) creates its own sub-parser
        else:
            p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            if adder is not None:
                adder(p)
        p.set_defaults(_run=cmd.run, _name=cmd.name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cvkit`` console script; returns the exit code.

    Example:
        >>> main(["train", "no/such/folder", "-o", "m"])  # doctest: +SKIP
        2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    names = {c.name for c in COMMANDS}
    parser = build_parser(chosen if chosen in names else None)
    args = parser.parse_args(argv)
    try:
        return int(_resolve(args._run)(args) or 0)
    except _USER_ERRORS as exc:
        print(f"cvkit {args._name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cvkit {args._name}: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------- cvkit train
def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit train``'s arguments to ``parser``; returns it."""
    from cvkit.classifiers.model_selection import METHODS
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


def train_command(args: argparse.Namespace) -> int:
    """Run ``cvkit train`` for parsed ``args``: load, split, fit, score, save. Returns 0."""
    from cvkit.models.folder import is_model_folder
    from cvkit.classifiers.model_selection import make_classifier
    from cvkit.data import ImageDataset, save_split

    out = Path(args.output)
    if out.exists() and not (args.overwrite and is_model_folder(out)):
        hint = "pass --overwrite to replace it" if is_model_folder(out) else "it is not a model folder"
        raise FileExistsError(f"{out}: already exists ({hint})")
    if not 0.0 <= args.test_size < 1.0:
        raise ValueError(f"--test-size must be in [0, 1), got {args.test_size}")
    data = Path(args.data)
    if data.is_dir():
        dataset = ImageDataset.from_directory(data, progress=not args.quiet)
    elif data.is_file():
        dataset = ImageDataset.from_table(data, progress=not args.quiet)
    else:
        raise FileNotFoundError(f"{data}: no such folder or table")
    if dataset.targets is None or len(dataset) == 0:
        raise ValueError(f"{data}: no labelled images found")
    print(f"data: {dataset}")
    if args.test_size > 0:
        train, test = dataset.split(test_size=args.test_size, random_state=args.random_state)
    else:
        train, test = dataset, None
    print(f"split: {len(train)} training, {0 if test is None else len(test)} test images")
    clf = make_classifier(args.method, backbone=args.backbone, epochs=args.epochs,
                          augment=None if args.no_augment else "default", random_state=args.random_state,
                          progress=not args.quiet)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
