"""``--runtime`` and ``--precision``: the options that say what runs a loaded model, for every command.

``cvkit serve``, ``cvkit evaluate`` and ``cvkit score`` take the same two options and name what ran
in their summaries (:func:`runs_on`).

Example:
    >>> import argparse
    >>> add_runtime_arguments(argparse.ArgumentParser()).parse_args([]).runtime
    'auto'
"""
from __future__ import annotations

import argparse

__all__ = ["add_runtime_arguments", "runs_on"]


def add_runtime_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--runtime`` and ``--precision``: what runs a loaded model (shared by serve, evaluate and score).

    Example:
        >>> args = add_runtime_arguments(argparse.ArgumentParser()).parse_args(["--precision", "int8"])
        >>> args.runtime, args.precision
        ('auto', 'int8')
    """
    parser.add_argument("--runtime", choices=["auto", "litert", "keras"], default="auto",
                        help="what runs the model: litert (LiteRT with XNNPACK, no TensorFlow), keras "
                             "(TensorFlow), or auto (the default: litert when installed)")
    parser.add_argument("--precision", choices=["float32", "int8"], default="float32",
                        help="float32 (the default, Keras-equal answers) or int8 (about 3x faster, answers "
                             "differ slightly; needs the folder's int8 graph: cvkit.models.quantize_model)")
    return parser


def runs_on(model: object) -> str:
    """How a loaded model runs, for CLI summaries: e.g. ``"litert float32"``.

    Example:
        >>> runs_on(cvkit.load_model(model_dir))
        'litert float32'
    """
    return f"{getattr(model, 'runtime_', 'python')} {getattr(model, 'precision_', 'float32')}"
