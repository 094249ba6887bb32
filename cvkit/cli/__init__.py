"""The ``cvkit`` command: one thin module per sub-command (train, evaluate, score, featurize, serve,
quantize, export, cache, audit); :func:`main` is the console script.

Example:
    >>> from cvkit.cli import main
    >>> main(["serve", "no/such/model"])   # bad input: one line on stderr, exit status 2
    2
"""
from cvkit.cli._main import main

__all__ = ["main"]
