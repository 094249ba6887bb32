"""The ``cvkit`` command: the parser, the dispatch to one module per sub-command, the error handling.

Every sub-command is a module of ``cvkit.cli`` (``train``, ``evaluate``, ``score``, ``serve``,
``export``, ``cache``) with the same two functions:

- ``add_arguments(parser)`` adds the command's arguments (and, if it likes, its description and
  epilog) to its ``argparse`` sub-parser;
- ``run(args) -> int`` does the work by calling the library and returns the exit code.

:data:`COMMANDS` lists them. Only the chosen command's module is imported, so ``cvkit train`` never
loads the web server and ``cvkit --help`` is instant. Errors in the input (a missing folder, a bad
option) print ``cvkit NAME: error: ...`` and exit 2; a command that needs an extra that is not installed
(``cvkit train`` without ``cvkit[train]``) prints that in one line and exits 1; Ctrl-C prints
``cvkit NAME: interrupted`` and exits 130.

Example (shell)::

    cvkit train sample_data --output models/sample --method features
    cvkit train sample_data -o models/sample-ft --method finetune --epochs 8
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from cvkit._console import MissingExtraError

__all__ = ["COMMANDS", "Command", "USER_ERRORS", "build_parser", "main", "add_verbose_argument"]


class Command(NamedTuple):
    """One sub-command: its name, its one-line help and the module holding ``add_arguments``/``run``.

    Example:
        >>> COMMANDS[0].runner
        'cvkit.cli._train:run'
    """

    name: str
    help: str
    module: str

    @property
    def runner(self) -> str:
        """``"module:run"``: what the parsed arguments name as the function to call."""
        return f"{self.module}:run"


#: The registry. To add a command, write ``cvkit/cli/NAME.py`` with ``add_arguments`` and ``run``
#: and add an entry here.
COMMANDS: tuple[Command, ...] = (
    Command("train", "train a classifier on a folder of class folders (or a path/label table)",
            "cvkit.cli._train"),
    Command("evaluate", "evaluate a model folder on labelled images", "cvkit.cli._evaluate"),
    Command("compare", "compare two classifiers on the same cross-validation folds: does B beat A?",
            "cvkit.cli._compare"),
    Command("score", "score a folder or table of images into a CSV", "cvkit.cli._score"),
    Command("featurize", "backbone features of a folder or table of images into Parquet", "cvkit.cli._featurize"),
    Command("serve", "serve a model folder over HTTP", "cvkit.cli._serve"),
    Command("quantize", "add the int8 fast mode (model.int8.tflite) to a model folder", "cvkit.cli._quantize"),
    Command("thresholds", "set, choose or show a model folder's operating point (\"no decision\" below it)",
            "cvkit.cli._thresholds"),
    Command("export", "export a model folder to SavedModel or TFLite and check it", "cvkit.cli._export"),
    Command("cache", "see or clear the on-disk feature cache", "cvkit.cli._cache"),
    Command("audit", "find label mistakes, odd images, duplicates and train/test leaks", "cvkit.cli._audit"),
    Command("explain", "heat-map overlay PNGs of where a model found its evidence in each image",
            "cvkit.cli._explain"),
)

#: Exceptions that mean "bad input": reported in one line with exit status 2, not as a traceback.
#: (cvkit's own ImageReadError, TableFormatError and ModelFormatError are ValueErrors.)
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               TypeError)


def add_verbose_argument(parser: argparse.ArgumentParser, what: str = "the progress bar") -> None:
    """``--quiet`` (alias ``--no-progress``): the ``verbose`` switch of every command, ``args.verbose``.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> add_verbose_argument(parser)
        >>> parser.parse_args([]).verbose, parser.parse_args(["--no-progress"]).verbose
        (True, False)
    """
    parser.add_argument("--quiet", "--no-progress", dest="verbose", action="store_false", help=f"hide {what}")


def _resolve(target: str) -> Callable[[argparse.Namespace], int]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _parser(loaded: Iterable[str]) -> argparse.ArgumentParser:
    """The parser with every command listed, and the arguments of the commands in ``loaded``."""
    from cvkit import __version__
    loaded = set(loaded)
    parser = argparse.ArgumentParser(
        prog="cvkit", description="From a folder of photos to a trained, evaluated and deployed image classifier.")
    parser.add_argument("--version", action="version", version=f"cvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if cmd.name in loaded:
            importlib.import_module(cmd.module).add_arguments(p)
        p.set_defaults(_run=cmd.runner, _name=cmd.name)
    return parser


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``cvkit`` parser with the arguments of ``command`` (or of every command, if None).

    Example:
        >>> build_parser("train").parse_args(["train", "data", "-o", "m"]).method
        'features'
    """
    names = [c.name for c in COMMANDS]
    if command is not None and command not in names:
        raise ValueError(f"unknown command {command!r}; the commands are {', '.join(names)}")
    return _parser(names if command is None else [command])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cvkit`` console script; returns the exit code.

    Example:
        >>> main(["cache", "info", "--cache-dir", "no/such/folder"])
        2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = _parser([chosen] if chosen else []).parse_args(argv)
    try:
        return int(_resolve(args._run)(args) or 0)
    except USER_ERRORS as exc:
        print(f"cvkit {args._name}: error: {exc}", file=sys.stderr)
        return 2
    except MissingExtraError as exc:
        print(f"cvkit {args._name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"cvkit {args._name}: interrupted", file=sys.stderr)
        return 130
