"""Building a model folder's LiteRT graph (``model.tflite``) once, and checking it answers like Keras.

Saving (:func:`cvkit.models._folder.save_model`) calls :func:`build_litert`: for a feature
classifier whose featurizer already holds the backbone's converted float32 graph (converted once
per backbone and cached by :mod:`cvkit.features`), the fitted linear head is appended to it
(:func:`cvkit.models._graphs.append_softmax`, a tenth of a second); any other model (fine-tuned,
a Keras-runtime featurizer) is converted whole with :func:`cvkit._litert.convert_keras` (about 10 s
for EfficientNet-Lite0). Either way the graph is run on a few seeded pixel arrays and compared with
the Keras model; a graph that disagrees is not written (a warning says so, and the folder runs on
Keras).

Folders saved before cvkit wrote ``model.tflite`` get theirs converted once on first load with
LiteRT (:func:`cached_conversion`), into the cvkit cache folder (``$CVKIT_CACHE_DIR`` or
``~/.cache/cvkit``, under ``models/``), keyed by the SHA-256 of their ``model.keras``; the model
folder itself is never written to.

Example:
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> tflite, info = build_litert(clf, clf._export())
    >>> info["file"], info["precision"], info["built"], info["max_abs_diff"] < 1e-4
    ('model.tflite', 'float32', 'the featurizer graph (the head runs on its features)', True)
    >>> keras_model = clf._export()["keras_model"]
    >>> compare(keras_model, tflite, check_pixels(keras_model.input_shape))[1]
    True
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._io import atomic_write

__all__ = ["LITERT_FILE", "INT8_FILE", "N_CHECK", "check_pixels", "compare", "build_litert", "cached_conversion"]

LITERT_FILE = "model.tflite"
INT8_FILE = "model.int8.tflite"
#: Seeded pixel arrays a converted graph is checked on against Keras when it is built.
N_CHECK = 2
# Largest difference accepted between a float32 LiteRT graph and Keras, relative to the output's
# scale (float32 conversions differ by about 1e-5 on features, 1e-7 on probabilities).
_TOLERANCE = 1e-3


def check_pixels(input_shape: tuple, n: int = N_CHECK) -> np.ndarray:
    """``n`` seeded random RGB images at the graph's input size, uint8 ``(n, H, W, 3)``.

    Example:
        >>> check_pixels((None, 8, 6, 3)).shape
        (2, 8, 6, 3)
    """
    height, width = int(input_shape[1]), int(input_shape[2])
    return np.random.default_rng(0).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


def compare(keras_model: Any, tflite: bytes, pixels: np.ndarray) -> tuple[float, bool]:
    """``(max_abs_diff, close)``: the LiteRT graph ``tflite`` against ``keras_model`` on ``pixels``.

    (Example: see the module.)
    """
    from cvkit._litert import LiteRTModel

    reference = np.asarray(keras_model(pixels.astype(np.float32), training=False), np.float64)
    got = LiteRTModel(tflite, num_threads=1).predict(pixels).astype(np.float64)
    if got.shape != reference.shape:
        return float("inf"), False
    diff = float(np.abs(got - reference).max())
    return diff, bool(diff <= _TOLERANCE * max(1.0, float(np.abs(reference).max())))


def _appended(classifier: Any, exported: dict) -> bytes | None:
    """The featurizer's float32 backbone graph (+ the softmax head when the model has one), or None."""
    featurizer = getattr(classifier, "featurizer_", None)
    backbone = getattr(featurizer, "graph_", None)
    if backbone is None or getattr(featurizer, "precision", "float32") != "float32":
        return None
    if isinstance(backbone, (str, os.PathLike)):
        backbone = Path(backbone).read_bytes()
    model = exported["keras_model"]
    if model is getattr(featurizer, "model_", None):  # a scikit-learn head: the graph ends in features
        return bytes(backbone)
    layers = list(getattr(model, "layers", []))
    dense = layers[-1] if layers else None
    if len(layers) != 3 or layers[1] is not featurizer.model_ or type(dense).__name__ != "Dense" \
            or getattr(getattr(dense, "activation", None), "__name__", "") != "softmax":
        return None
    from cvkit.models._graphs import append_softmax

    kernel, bias = dense.get_weights()
    return append_softmax(bytes(backbone), kernel, bias)


def build_litert(classifier: Any, exported: dict) -> tuple[bytes | None, dict[str, Any]]:
    """The whole float32 LiteRT graph of a classifier being saved, and what ``metadata.json`` says of it.

    Returns ``(tflite bytes, info)``; ``(None, info with "error")`` when the graph disagrees with
    Keras (with a warning): the folder then runs on Keras. (Example: see the module.)
    """
    from cvkit._litert import convert_keras

    start = time.perf_counter()
    keras_model = exported["keras_model"]
    pixels = check_pixels(tuple(keras_model.input_shape))
    info: dict[str, Any] = {"file": LITERT_FILE, "precision": "float32"}
    tflite, diff, close = _appended(classifier, exported), float("inf"), False
    if tflite is not None:
        diff, close = compare(keras_model, tflite, pixels)
        same = keras_model is getattr(getattr(classifier, "featurizer_", None), "model_", None)
        info["built"] = "the featurizer graph (the head runs on its features)" if same else \
            "appended the head to the featurizer graph"
    if not close:
        tflite = convert_keras(keras_model)
        diff, close = compare(keras_model, tflite, pixels)
        info["built"] = "converted the Keras model"
    info.update(max_abs_diff=diff, n_check=len(pixels), seconds=round(time.perf_counter() - start, 3))
    if not close:
        info["error"] = f"the LiteRT graph differs from Keras by {diff:.3g}; not written"
        warnings.warn(f"save: {info['error']} (the model will run on Keras)", RuntimeWarning, stacklevel=4)
        return None, info
    return tflite, info


def cached_conversion(load_keras: Any, keras_sha256: str, where: str) -> bytes:
    """The LiteRT graph of a folder saved without one, converted once and cached by its ``model.keras`` hash.

    ``load_keras()`` gives the folder's Keras model; it is called only when the cache misses.

    Prints a one-line notice the first time (conversion takes about 10 s); later loads read the
    cache. The model folder ``where`` is only named, never written to. Raises ``ValueError`` when
    the converted graph disagrees with Keras (the caller then runs Keras).

    Example:
        >>> cached_path("0" * 64).name      # where the graph of this model.keras hash is cached
        '0000000000000000000000000000000000000000000000000000000000000000.tflite'
    """
    path = cached_path(keras_sha256)
    if path.is_file():
        return path.read_bytes()
    print(f"cvkit: {where} has no {LITERT_FILE} (saved by an older cvkit); converting it for LiteRT "
          f"once, cached in {path.parent}", file=sys.stderr, flush=True)
    from cvkit._litert import convert_keras

    keras_model = load_keras()
    tflite = convert_keras(keras_model)
    diff, close = compare(keras_model, tflite, check_pixels(tuple(keras_model.input_shape)))
    if not close:
        raise ValueError(f"{where}: its LiteRT conversion differs from Keras by {diff:.3g}")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, tflite)
    return tflite


def cached_path(keras_sha256: str) -> Path:
    """Where the converted graph of a ``model.keras`` with this SHA-256 is cached.

    Example:
        >>> cached_path("ab" * 32).parent.name
        'models'
    """
    from cvkit.features._store import default_cache_dir

    return Path(default_cache_dir()) / "models" / f"{keras_sha256}.tflite"
