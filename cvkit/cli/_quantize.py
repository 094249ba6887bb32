"""``cvkit quantize``: add the int8 fast mode (``model.int8.tflite``) to a model folder.

A thin front for :func:`cvkit.models._quantize.quantize_model`. It prints how well the int8 graph
agrees with the float32 one on held-out images (top-1 agreement, cosine of the probability rows),
where the file went, and how to use it: ``--precision int8`` on ``cvkit score/serve/evaluate``, or
``cvkit.load_model(MODEL_DIR, precision="int8")``. An existing int8 graph is kept unless
``--overwrite`` is given (without it: exit status 2 and a message saying so).

Example (shell)::

    cvkit quantize runs/sample/model
    cvkit quantize models/sample --images runs/sample/split.json --overwrite

Example (Python):
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="cvkit quantize")
    >>> _ = add_arguments(parser)
    >>> args = parser.parse_args(["models/sample", "--images", "split.json"])
    >>> args.images, args.overwrite
    ('split.json', False)
    >>> print(summary("models/sample", {"file": "model.int8.tflite", "calibration": "68 training-split images"
    ...     " and their mirror images", "seconds": 14.2, "agreement": {"n": 36, "top1_agreement": 1.0,
    ...     "cosine_min": 0.9871, "cosine_mean": 0.9987, "images": "test-split images"}}))
    int8 graph written to models/sample/model.int8.tflite in 14.2 s (calibrated on 68 training-split images ...
    agreement with float32 on 36 test-split images: top-1 100.0% (36/36), cosine mean 0.9987, min 0.9871
    use it: cvkit score|serve|evaluate models/sample --precision int8
            cvkit.load_model('models/sample', precision="int8")
"""
from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["add_arguments", "run", "summary"]

_DESCRIPTION = """\
Build the int8 fast mode of a model folder: model.int8.tflite, post-training quantized and
calibrated on the training images of the model's split, about 3x faster than float32 on a CPU with
VNNI. Its agreement with the float32 graph on held-out images is printed and stored in the folder's
metadata.json (litert_int8). float32 stays the default: run the int8 graph with --precision int8.
Needs TensorFlow (it converts the Keras graph).
"""

_EPILOG = """\
examples:
  cvkit quantize runs/sample/model
  cvkit quantize models/sample --images runs/sample/split.json
  cvkit score models/sample photos/ -o scores.csv --precision int8
"""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``cvkit quantize``'s arguments, description and examples to ``parser``; returns it."""
    parser.description, parser.epilog = _DESCRIPTION, _EPILOG
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="model folder written by training (clf.save)")
    parser.add_argument("--images", metavar="FOLDER|TABLE|split.json", default=None,
                        help="images to calibrate and check on: a split.json (its training images "
                             "calibrate, its test images check), a folder or a table (default: the "
                             "split.json in or next to MODEL_DIR)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the folder's existing int8 graph")
    return parser


def summary(model_dir: str | os.PathLike, info: dict[str, Any]) -> str:
    """What ``cvkit quantize`` prints: where the int8 graph is, its agreement, how to use it."""
    found = info["agreement"]
    n, share = found["n"], found["top1_agreement"]
    path = os.path.join(os.fspath(model_dir), info["file"])
    return "\n".join([
        f"int8 graph written to {path} in {info['seconds']:.1f} s (calibrated on {info['calibration']})",
        f"agreement with float32 on {n} {found['images']}: top-1 {100 * share:.1f}% "
        f"({round(share * n)}/{n}), cosine mean {found['cosine_mean']:.4f}, min {found['cosine_min']:.4f}",
        f"use it: cvkit score|serve|evaluate {os.fspath(model_dir)} --precision int8",
        f"        cvkit.load_model({os.fspath(model_dir)!r}, precision=\"int8\")",
    ])


def run(args: argparse.Namespace) -> int:
    """Run ``cvkit quantize`` for parsed ``args``; prints the summary and returns 0.

    An existing int8 graph without ``--overwrite`` raises FileExistsError (``cvkit`` reports it in
    one line and exits 2), like a missing folder.
    """
    from cvkit.models._quantize import quantize_model

    try:
        info = quantize_model(args.model_dir, images=args.images, overwrite=args.overwrite)
    except FileExistsError as exc:  # the library names its keyword; the command names its option
        raise FileExistsError(str(exc).replace("pass overwrite=True", "pass --overwrite")) from None
    print(summary(args.model_dir, info))
    return 0
