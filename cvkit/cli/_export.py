"""``cvkit export``: a model folder to TensorFlow SavedModel or TFLite, checked against Keras.

A thin front for :func:`cvkit.models._export.export_model`. It prints the check (size, agreement
with the Keras model on real images, largest probability difference) and exits with status 1 when
the export agrees with Keras on fewer than 95% of the images, so a script can stop there.

Example (shell)::

    cvkit export models/sample --format tflite --quantize float16
    cvkit export models/sample --format savedmodel -o /srv/models/sample/1

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit export")
    >>> _ = add_arguments(parser)
    >>> parser.parse_args(["models/sample", "--format", "tflite"]).n_check
    64
"""
from __future__ import annotations

import argparse

from cvkit.models._export import FORMATS, export_model

__all__ = ["add_arguments", "run", "MIN_AGREEMENT"]

#: Below this share of images where the export and Keras pick the same class, the exit status is 1.
MIN_AGREEMENT = 0.95


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit export``'s arguments to ``parser``; returns it."""
    parser.add_argument("model_dir", help="model folder written by clf.save() or `cvkit train`")
    parser.add_argument("--format", choices=FORMATS, default="savedmodel",
                        help="savedmodel (TensorFlow Serving) or tflite (mobile/edge)")
    parser.add_argument("--quantize", choices=["float16", "int8"], default=None,
                        help="TFLite weight quantization")
    parser.add_argument("-o", "--output", default=None,
                        help="output path (default MODEL_DIR/export/saved_model or model*.tflite)")
    parser.add_argument("--images", default=None,
                        help="images to check the export on: folder, table or split.json "
                             "(default: split.json in or next to MODEL_DIR)")
    parser.add_argument("--n-check", type=int, default=64, help="most images to check (default 64)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit export`` for parsed ``args``; prints the check. Returns 1 if agreement < 95%, else 0."""
    result = export_model(args.model_dir, args.format, quantize=args.quantize, output=args.output,
                          images=args.images, n_check=args.n_check, overwrite=True)  # the command replaces its export
    print(result)
    return 0 if result.agreement >= MIN_AGREEMENT else 1
