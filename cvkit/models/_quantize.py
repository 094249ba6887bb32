"""The int8 fast mode of a model folder: ``model.int8.tflite``, with its agreement with float32 on record.

Why: post-training int8 quantization runs EfficientNet-Lite0 about 3x faster than float32 on a CPU
with VNNI, for scoring large archives, but its answers differ slightly from the float32 model's. So
it is never the default: :func:`quantize_model` builds it once (calibrated on the training images,
the way ``cvkit export --quantize int8`` does), measures how often it picks the same class as the
float32 graph on held-out images, and stores both in the folder (the graph hashed in ``files``,
the numbers in ``metadata.json``'s ``litert_int8``). ``cvkit.load_model(path, precision="int8")``
(and ``--precision int8`` on ``cvkit serve/evaluate/score``) then runs it.

Example (quantizing takes about 15 s, see the test suite):
    >>> quantize_model("no/such/model")
    Traceback (most recent call last):
    FileNotFoundError: no/such/model: model folder not found
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._io import atomic_write
from cvkit.data._images import PathLike
from cvkit.models._conversion import INT8_FILE
from cvkit.models._export import check_images, read_pixels
from cvkit.models._folder import load_model, read_metadata, sha256_bytes, write_metadata
from cvkit.models._inference import input_size

__all__ = ["quantize_model"]


def _probabilities(model: Any, outputs: np.ndarray) -> np.ndarray:
    """A graph's outputs as class probabilities (a scikit-learn head turns features into them)."""
    return outputs if model.head_ is None else np.asarray(model.head_.predict_proba(outputs), np.float32)


def quantize_model(model_dir: PathLike, images: Any = None, n_calibration: int = 100, n_check: int = 256,
                   overwrite: bool = False) -> dict[str, Any]:
    """Add ``model.int8.tflite`` to a model folder; returns what ``metadata.json``'s ``litert_int8`` now says.

    ``images`` as for :func:`cvkit.models._export.export_model`: by default the ``split.json`` inside
    or beside the folder, whose training images calibrate (up to ``n_calibration``, plus their
    mirror images) and whose test
    images (up to ``n_check``) measure the agreement with the float32 graph (``top1_agreement``,
    cosine of the probability rows: :func:`cvkit._litert.agreement`). An existing int8 graph is
    replaced only with ``overwrite=True``. Needs TensorFlow (it converts the Keras graph).
    """
    from cvkit._litert import LiteRTModel, agreement, convert_keras

    folder = Path(model_dir)
    meta = read_metadata(folder)
    if INT8_FILE in (meta.get("files") or {}) and not overwrite:
        raise FileExistsError(f"{folder / INT8_FILE}: an int8 graph already exists; pass overwrite=True "
                              "to build it again")
    start = time.perf_counter()
    keras = load_model(folder, runtime="keras")
    size = input_size(keras)
    pixels, what, calibration_paths = check_images(images, folder, size, n_check)
    calibration, calibrated_on = pixels[:n_calibration], what
    if calibration_paths:
        found = read_pixels(calibration_paths, size, n_calibration)
        if found:
            calibration, calibrated_on = np.stack(found), "training-split images"
    # Mirrored copies double the activation statistics the ranges are set from (on the sample split:
    # top-1 agreement 35/36 calibrated on the 68 training images, 36/36 with their mirror images).
    calibration = np.concatenate([calibration, calibration[:, :, ::-1]])
    tflite = convert_keras(keras.keras_model_, precision="int8", calibration=calibration)
    reference = load_model(folder, runtime="auto")
    found = agreement(_probabilities(reference, reference.graph_.predict(pixels)),
                      _probabilities(keras, LiteRTModel(tflite).predict(pixels)))
    info = {"file": INT8_FILE, "precision": "int8",
            "calibration": f"{len(calibration) // 2} {calibrated_on} and their mirror images",
            "agreement": {**found, "images": what, "reference": f"float32 on {reference.runtime_}"},
            "seconds": round(time.perf_counter() - start, 3)}
    atomic_write(folder / INT8_FILE, tflite)
    meta = read_metadata(folder)
    meta["files"][INT8_FILE] = sha256_bytes(tflite)
    meta["litert_int8"] = info
    write_metadata(folder, meta)
    return info
