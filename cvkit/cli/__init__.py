"""The ``cvkit`` command: one thin module per sub-command (train, evaluate, score, serve, export, cache)."""
from cvkit.cli._main import main

__all__ = ["main"]
