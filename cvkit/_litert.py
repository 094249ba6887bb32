"""Run inference graphs on LiteRT (TensorFlow's on-device runtime) with XNNPACK, and make them from Keras.

Why: cvkit is for machines with no GPU, so CPU inference speed is the speed its users feel. The same
network with the same weights runs about 1.6x faster in the LiteRT interpreter with its XNNPACK
kernels than in TensorFlow (``bench/featurize.py``), gives the same answers (features within about
1e-5), and the ``ai-edge-litert`` package loads in a tenth of a second without TensorFlow. Keras
stays for building and training; :func:`convert_keras` turns a Keras model into a ``.tflite``
graph once, and :class:`LiteRTModel` runs it.

The ``runtime`` / ``precision`` / ``num_threads`` settings that choose between LiteRT and Keras live
in :mod:`cvkit.options` (:class:`~cvkit.options.RunOptions`).

- :class:`LiteRTModel`: a ``.tflite`` graph taking pixels ``(n, H, W, 3)``; thread-safe (one
  interpreter per thread, since one interpreter is not) and picklable (it keeps the graph's bytes).
- :func:`convert_keras`: Keras model -> ``.tflite`` bytes with a dynamic batch dimension, float32
  or int8 (post-training quantization calibrated on images), quietly.
- :func:`agreement`: how closely two runtimes' outputs agree (top-1, cosine, largest difference).

Importing this module imports neither TensorFlow nor LiteRT; :class:`LiteRTModel` imports LiteRT
only, and only :func:`convert_keras` imports TensorFlow.

Example:
    >>> import numpy as np
    >>> agreement(np.eye(3), np.eye(3))["top1_agreement"]
    1.0
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import warnings
from typing import Any

import numpy as np

from cvkit.options import INSTALL_HINT, check_precision, default_threads, litert_available

__all__ = ["LiteRTModel", "convert_keras", "agreement"]

# The first interpreter allocated in a process prints "INFO: Created TensorFlow Lite XNNPACK delegate
# for CPU." straight to stderr; allocating under this lock with stderr hidden keeps that quiet safely.
_CREATE_LOCK = threading.Lock()


class LiteRTModel:
    """One ``.tflite`` graph run by the LiteRT interpreter with XNNPACK: ``predict(pixels) -> float32 (n, d)``.

    ``model`` is the graph's bytes or the path of a ``.tflite`` file; ``num_threads`` the threads
    each interpreter uses (default :func:`default_threads`). The graph takes pixels ``(n, H, W, 3)``
    in 0..255 (uint8 or float; cast to float32 one batch at a time) and returns ``(n, d)``.

    Thread-safe: each thread that calls :meth:`predict` gets an interpreter of its own (one LiteRT
    interpreter must not run in two threads at once), resized when the batch size changes (cheap).
    Picklable: a copy keeps the graph's bytes and builds its interpreters when first used.

    Attributes: ``input_shape`` / ``output_shape`` (batch as -1), ``n_outputs`` (``d``),
    ``precision`` (``"int8"`` when the graph holds int8 weights, else ``"float32"``), ``num_threads``.

    Example:
        >>> from cvkit._console import import_keras
        >>> keras = import_keras()
        >>> inputs = keras.Input((32, 32, 3))
        >>> tiny = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs)))
        >>> model = LiteRTModel(convert_keras(tiny))  # or the path of a .tflite file
        >>> model.input_shape, model.output_shape, model.precision
        ((-1, 32, 32, 3), (-1, 8), 'float32')
        >>> model.predict(np.zeros((3, 32, 32, 3), np.uint8)).shape
        (3, 8)
    """

    def __init__(self, model: bytes | str | os.PathLike, num_threads: int | None = None):
        if isinstance(model, (bytes, bytearray, memoryview)):
            self.source = "<tflite bytes>"
            content = bytes(model)
        elif isinstance(model, (str, os.PathLike)):
            self.source = os.fspath(model)
            try:
                with open(self.source, "rb") as f:
                    content = f.read()
            except OSError as exc:
                raise FileNotFoundError(f"{self.source}: cannot read the .tflite file ({exc.strerror})") from None
        else:
            raise TypeError(f"model must be .tflite bytes or a path, got {type(model).__name__}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer))
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
        self.num_threads = int(num_threads) if num_threads is not None else default_threads()
        self._content = content
        self._local = threading.local()
        self._describe(self._interpreter(None))

    # ------------------------------------------------------------------ graph
    def _new_interpreter(self) -> Any:
        if not litert_available():
            raise ImportError(f"running a .tflite graph needs the LiteRT interpreter: {INSTALL_HINT}")
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        with _CREATE_LOCK:
            try:
                # AUTO keeps the default XNNPACK delegate (BUILTIN_WITHOUT_DEFAULT_DELEGATES is 0.7x Keras)
                return Interpreter(model_content=self._content, num_threads=self.num_threads,
                                   experimental_op_resolver_type=OpResolverType.AUTO)
            except (ValueError, RuntimeError) as exc:
                raise ValueError(f"{self.source}: not a valid .tflite graph ({exc})") from None

    def _interpreter(self, batch: int | None) -> Any:
        """This thread's interpreter, sized for ``batch`` images (None: as it is, to read the graph's shapes).

        One per thread, resized when the batch size changes: after the first allocation (which packs
        the weights for XNNPACK, ~0.2 s for EfficientNet-Lite0) a resize costs ~0.2 ms, nothing
        beside a batch's ~250 ms, so interpreters per batch size would only cost memory.
        """
        local = self._local
        interpreter = getattr(local, "interpreter", None)
        if interpreter is None:
            interpreter = local.interpreter = self._new_interpreter()
            local.batch = None
        if batch is not None and local.batch != batch:
            from cvkit._console import quiet_stderr

            index = self._input_index
            with _CREATE_LOCK, quiet_stderr():  # the first allocation prints "INFO: Created ... XNNPACK delegate"
                interpreter.resize_tensor_input(index, [batch, *self.input_shape[1:]], strict=True)
                interpreter.allocate_tensors()
            local.batch = batch
        return interpreter

    def _describe(self, interpreter: Any) -> None:
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.source}: cvkit runs graphs with one input and one output, this one has "
                             f"{len(inputs)} and {len(outputs)}")
        self.input_shape = tuple(int(v) for v in inputs[0]["shape_signature"])
        self.output_shape = tuple(int(v) for v in outputs[0]["shape_signature"])
        if len(self.input_shape) != 4 or self.input_shape[-1] != 3 or len(self.output_shape) != 2:
            raise ValueError(f"{self.source}: expected a graph from pixels (n, H, W, 3) to (n, d), got "
                             f"{self.input_shape} -> {self.output_shape}")
        self.input_shape = (-1, *self.input_shape[1:])
        self.output_shape = (-1, self.output_shape[1])
        self.n_outputs = int(self.output_shape[1])
        self._input_dtype = np.dtype(inputs[0]["dtype"])
        self._input_index, self._output_index = inputs[0]["index"], outputs[0]["index"]
        int8 = any(np.dtype(t["dtype"]) == np.int8 for t in interpreter.get_tensor_details())
        self.precision = "int8" if int8 else "float32"

    # ------------------------------------------------------------------ running
    def predict(self, images: Any, batch_size: int = 32) -> np.ndarray:
        """Outputs float32 ``(n, d)`` for pixels ``(n, H, W, 3)`` in 0..255 at the graph's input size.

        ``batch_size`` images go through the graph at a time; no images give ``(0, d)``.

        Example:
            >>> from cvkit._console import import_keras
            >>> keras = import_keras()
            >>> inputs = keras.Input((16, 16, 3))
            >>> model = LiteRTModel(convert_keras(keras.Model(inputs, keras.layers.Flatten()(inputs))))
            >>> model.predict(np.full((2, 16, 16, 3), 7, np.uint8))[:, :3].tolist()
            [[7.0, 7.0, 7.0], [7.0, 7.0, 7.0]]
            >>> model.predict(np.zeros((0, 16, 16, 3))).shape  # no images, no rows
            (0, 768)
        """
        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(self.input_shape[1:]):
            raise ValueError(f"images must be (n, {', '.join(map(str, self.input_shape[1:]))}) pixels for "
                             f"{self.source}, got shape {images.shape}")
        if images.dtype.kind not in "uif":
            raise ValueError(f"images must be numeric pixels 0..255, got dtype {images.dtype}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        out = np.empty((len(images), self.n_outputs), dtype=np.float32)
        for start in range(0, len(images), int(batch_size)):
            chunk = images[start:start + int(batch_size)]
            interpreter = self._interpreter(len(chunk))
            interpreter.set_tensor(self._input_index, np.ascontiguousarray(chunk, dtype=self._input_dtype))
            interpreter.invoke()
            out[start:start + len(chunk)] = interpreter.get_tensor(self._output_index)
        return out

    def __getstate__(self) -> dict:
        return {"source": self.source, "num_threads": self.num_threads, "content": self._content}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["content"], num_threads=state["num_threads"])
        self.source = state["source"]

    def __repr__(self) -> str:
        return (f"LiteRTModel({self.source!r}, {self.input_shape} -> {self.output_shape}, {self.precision}, "
                f"num_threads={self.num_threads})")


# ---------------------------------------------------------------------- conversion
@contextlib.contextmanager
def _quiet_conversion():
    """Hide the converter's chatter: Keras' "Saved artifact at ..." listing (stdout), TensorFlow's
    Python INFO logs and warnings, and the MLIR passes native code prints to stderr."""
    from cvkit._console import quiet_stderr

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _calibration_pixels(calibration: Any, input_shape: tuple) -> np.ndarray:
    if calibration is None:
        raise ValueError("precision='int8' needs calibration images: pass calibration=pixels (n, H, W, 3), "
                         "a few dozen to a few hundred typical images")
    pixels = np.asarray(calibration)
    expected = tuple(input_shape[1:])
    if pixels.ndim != 4 or pixels.shape[0] == 0 or pixels.dtype.kind not in "uif" \
            or (None not in expected and tuple(pixels.shape[1:]) != expected):
        raise ValueError(f"calibration must be a non-empty array of pixels (n, {', '.join(map(str, expected))}), "
                         f"got {pixels.dtype} {pixels.shape}")
    return pixels


def convert_keras(model: Any, precision: str = "float32", calibration: np.ndarray | None = None) -> bytes:
    """A Keras model taking float32 pixels ``(n, H, W, 3)`` as ``.tflite`` bytes (batch dimension dynamic).

    ``precision="int8"`` quantizes weights and activations after training (inputs and outputs stay
    float32), with activation ranges measured on ``calibration`` pixels (uint8 or float
    ``(n, H, W, 3)``, typical images: the training images); it runs about 3x faster than float32 but
    its outputs differ more (see :func:`agreement`). Takes about 10 s for EfficientNet-Lite0 and
    prints nothing. Uses ``tf.lite.TFLiteConverter.from_keras_model`` (as fast as Keras' own
    ``model.export(format="litert")`` here, and the one that quantizes).

    Example:
        >>> from cvkit import backbones
        >>> small = backbones.get("mobilenet_v3_small", weights=None, input_shape=(32, 32, 3))
        >>> graph = LiteRTModel(convert_keras(small))
        >>> graph.input_shape, graph.n_outputs
        ((-1, 32, 32, 3), 576)
    """
    check_precision(precision)
    input_shape = tuple(model.input_shape)
    pixels = _calibration_pixels(calibration, input_shape) if precision == "int8" else None
    from cvkit._console import import_tensorflow

    tf = import_tensorflow()
    with _quiet_conversion():
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if pixels is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]

            def representative():
                for image in pixels:
                    yield [image[None].astype(np.float32)]

            converter.representative_dataset = representative
        return bytes(converter.convert())


# ---------------------------------------------------------------------- comparison
def agreement(reference: np.ndarray, other: np.ndarray) -> dict:
    """How closely ``other`` (e.g. LiteRT's outputs) matches ``reference`` (e.g. Keras'), row by row.

    Returns JSON-ready numbers: ``n`` rows compared (rows with a non-finite value in either are
    left out), ``top1_agreement`` (fraction of rows with the same arg-max), ``cosine_min`` and
    ``cosine_mean`` (cosine similarity of the rows) and ``max_abs_diff``.

    Example:
        >>> a = np.array([[1.0, 0.0], [0.2, 0.8]])
        >>> found = agreement(a, a + [[0.0, 0.1], [0.0, 0.0]])
        >>> found["n"], found["top1_agreement"], round(found["cosine_min"], 4), round(found["max_abs_diff"], 4)
        (2, 1.0, 0.995, 0.1)
    """
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if ref.ndim != 2 or ref.shape != oth.shape:
        raise ValueError(f"reference and other must be arrays of the same shape (n, d), got {ref.shape} and "
                         f"{oth.shape}")
    keep = np.isfinite(ref).all(axis=1) & np.isfinite(oth).all(axis=1)
    ref, oth = ref[keep], oth[keep]
    if not len(ref):
        raise ValueError("agreement needs at least one row with finite values in both arrays")
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(oth, axis=1)
    cosine = np.where(norms > 0, np.sum(ref * oth, axis=1) / np.where(norms > 0, norms, 1.0),
                      np.all(ref == oth, axis=1).astype(np.float64))
    return {"n": int(len(ref)), "top1_agreement": float(np.mean(ref.argmax(1) == oth.argmax(1))),
            "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean()),
            "max_abs_diff": float(np.abs(ref - oth).max())}
