"""Export a model folder to TensorFlow SavedModel or TFLite, and check the export agrees with Keras.

The exported model takes the same input as the Keras graph in ``model.keras``: float32 RGB pixels
0..255 of shape (batch, height, width, 3), preprocessing inside, and returns class probabilities.
Every export is checked on real images: the fraction of images where both models pick the same
class (``agreement``) and the largest probability difference are reported beside the file size.

- ``savedmodel``: a folder for TensorFlow Serving / ``tf.saved_model.load`` (signature ``serve``).
- ``tflite``: one ``.tflite`` file for phones and edge devices; ``quantize="float16"`` halves it,
  ``quantize="int8"`` quarters the weights, calibrated on the training images of a split (so it is
  checked on images it was not calibrated on), or on the check images when there is no split.

Next to the export go ``labels.txt`` (one class per line, in output order) and ``export.json``
(the check's numbers, the classes, and the model's decision rule under ``"decision"``: the
thresholds below which an app should answer "no decision", as every cvkit path does). Every
file is written through :mod:`cvkit._io` (atomically); an existing export is replaced only with
``overwrite=True``.

Example (``cvkit export MODEL_DIR --format tflite`` does the same from the shell; about 20 s):
    >>> import os, tempfile
    >>> import cvkit
    >>> folder = tempfile.mkdtemp()
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> model_dir = clf.save(os.path.join(folder, "model"))
    >>> out = os.path.join(folder, "model.tflite")
    >>> result = export_model(model_dir, "tflite", output=out, images="sample_data/bird", n_check=4)
    >>> result.agreement, result.n_images, result.images
    (1.0, 4, 'images')
    >>> TFLiteModel(out).predict_proba(np.zeros((2, 224, 224, 3))).shape
    (2, 4)
    >>> export_model(model_dir, "tflite", output=out)    # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileExistsError: .../model.tflite exists; pass overwrite=True or another output
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._console import import_tensorflow, quiet_stderr
from cvkit._io import atomic_write, staged_folder, write_json
from cvkit._validation import Interval, Options, check_param
from cvkit.data._images import PathLike, resize
from cvkit.data._source import ImageSource
from cvkit.models._folder import KERAS_FILE, load_model
from cvkit.models._inference import decision_rule, input_size, probability_graph

__all__ = ["export_model", "ExportResult", "TFLiteModel", "FORMATS", "QUANTIZATIONS", "check_images",
           "read_pixels"]

FORMATS = ("savedmodel", "tflite")
QUANTIZATIONS = (None, "float16", "int8")


@dataclass
class ExportResult:
    """Where the export went, how big it is, and how well it agrees with the Keras model."""

    path: str
    format: str
    quantize: str | None
    size_bytes: int
    keras_size_bytes: int | None
    n_images: int
    n_agree: int
    max_abs_diff: float
    mean_abs_diff: float
    images: str
    seconds: float
    calibration: str | None = None  # int8 only: the images that set the quantization ranges

    @property
    def agreement(self) -> float:
        """Fraction of check images where the export and Keras predict the same class."""
        return self.n_agree / self.n_images if self.n_images else float("nan")

    @property
    def size_mb(self) -> float:
        """Export size in MB (2**20 bytes)."""
        return self.size_bytes / 2**20

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (what ``export.json`` holds)."""
        out = asdict(self)
        out["agreement"] = self.agreement
        out["size_mb"] = round(self.size_mb, 3)
        return out

    def __str__(self) -> str:
        kind = self.format + (f" ({self.quantize})" if self.quantize else "")
        ratio = f", {self.size_bytes / self.keras_size_bytes:.2f}x the Keras file" \
            if self.keras_size_bytes else ""
        return (f"{kind} {self.path}: {self.size_mb:.1f} MB{ratio}; agrees with Keras on "
                f"{self.n_agree}/{self.n_images} {self.images} ({100 * self.agreement:.1f}%), "
                f"max probability difference {self.max_abs_diff:.4f}"
                + (f" (int8 calibrated on {self.calibration})" if self.calibration else ""))


class TFLiteModel:
    """Run a ``.tflite`` classifier: ``predict_proba(uint8 or float32 pixels (n, H, W, 3))``.

    Runs on :class:`cvkit._litert.LiteRTModel`: the LiteRT interpreter with its XNNPACK kernels (the
    speed users get from cvkit), one interpreter per thread, without importing TensorFlow.
    """

    def __init__(self, path: PathLike, num_threads: int | None = None):
        from cvkit._litert import LiteRTModel

        self.path = os.fspath(path)
        self.graph = LiteRTModel(self.path, num_threads=num_threads)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Input shape with ``-1`` for the batch dimension, e.g. ``(-1, 224, 224, 3)``."""
        return tuple(self.graph.input_shape)

    def predict_proba(self, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Probabilities (n, n_classes) for pixels (n, H, W, 3) in 0..255 at the model's input size."""
        return self.graph.predict(np.asarray(images), batch_size=batch_size)


# ---------------------------------------------------------------------- helpers
def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def read_pixels(images: Any, size: tuple[int, int], limit: int) -> list[np.ndarray]:
    """Up to ``limit`` readable images of ``images`` (any input :meth:`ImageSource.resolve` takes) at
    ``size``, in order; unreadable ones are passed over. Decoded ``limit`` at a time by the one
    decode loop, so a large folder is read only as far as needed.

    Example:
        >>> [p.shape for p in read_pixels(["missing.jpg", "sample_data/bird/owl.jpg"], (32, 24), limit=5)]
        [(24, 32, 3)]
    """
    source = images if isinstance(images, ImageSource) else ImageSource.resolve(images)
    found: list[np.ndarray] = []
    for start in range(0, len(source), max(1, limit)):
        window = range(start, min(start + limit, len(source)))
        for batch in source.batches(size, batch_size=max(1, limit), indices=window):
            found += list(batch.pixels[batch.ok])
        if len(found) >= limit:
            break
    return found[:limit]


def check_images(images: Any, model_dir: Path | None, size: tuple[int, int], limit: int
                  ) -> tuple[np.ndarray, str, list[str]]:
    """Pixels (n, H, W, 3) uint8 to check the export on, a description of where they came from,
    and the paths of separate calibration images (the training half of a split; else none).

    ``images`` as :func:`export_model` takes them; None: the ``split.json`` inside or beside the
    model folder (its test images; the training images calibrate), else random noise (a warning).

    Example:
        >>> pixels, what, calibration = check_images(np.zeros((3, 224, 224, 3), np.uint8), None, (224, 224), 2)
        >>> pixels.shape, what, calibration
        ((2, 224, 224, 3), 'given images', [])
    """
    if images is None and model_dir is not None:
        # notebook 01 writes split.json beside the model folder, `cvkit train` inside it
        for split in (model_dir / "split.json", model_dir.parent / "split.json"):
            if split.is_file():
                images = split
                break
    if images is None:
        warnings.warn("export_model: no images given and no split.json beside the model folder; "
                      "checking the export on random-noise images. Pass images=... (a folder, "
                      "table, split.json or ImageDataset) for a meaningful check.", stacklevel=3)
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (min(limit, 16), size[1], size[0], 3), dtype=np.uint8), \
            "random-noise images", []
    if isinstance(images, np.ndarray):
        arr = images[:limit]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images array must be (n, H, W, 3), got {arr.shape}")
        if arr.shape[1:3] != (size[1], size[0]):
            arr = np.stack([resize(np.asarray(a, dtype=np.uint8), size) for a in arr])
        return arr.astype(np.uint8), "given images", []
    source = ImageSource.resolve(images, side="test")
    what, calibration = "images", []
    if source.kind == "manifest":  # a split: checked on its test images, calibrated on its training images
        what, calibration = "test-split images", list(ImageSource.resolve(images, side="train").items)
    pixels = read_pixels(source, size, limit)
    if not pixels:
        raise ValueError(f"no readable images to check the export on in {images}")
    return np.stack(pixels), what, calibration


def _default_output(model_dir: Path | None, fmt: str, quantize: str | None) -> Path:
    if model_dir is None:
        raise ValueError("output is required when exporting a model that was not loaded from a folder")
    if fmt == "savedmodel":
        return model_dir / "export" / "saved_model"
    return model_dir / "export" / (f"model_{quantize}.tflite" if quantize else "model.tflite")


@contextlib.contextmanager
def _quiet_tensorflow() -> Iterator[None]:
    """Silence TensorFlow's Python INFO logs ("Assets written to: /tmp/...") during an export."""
    import logging
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _convert_tflite(saved_model: Path, quantize: str | None, calibration: np.ndarray) -> bytes:
    tf = import_tensorflow()

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative() -> Any:
            for image in calibration:
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = representative
    with quiet_stderr():  # the converter prints its MLIR passes ("fully_quantize: 0, ...") whatever the log level
        return converter.convert()


def keras_probability_model(model: Any) -> Any:
    """One Keras graph from pixels to calibrated probabilities, for exporting.

    A model whose head is in its graph has it already; a linear head kept as arrays (``head.npz``)
    is appended as a softmax ``Dense`` layer with the calibration temperature folded in (after an
    L2 normalisation when the head normalises its features). Other heads (scikit-learn) cannot be
    exported whole: ``ValueError`` saying why.
    """
    from cvkit.models._head import LinearHead

    head = getattr(model, "head_", None)
    if not isinstance(head, LinearHead):
        return probability_graph(model, required=True, keras=True)
    from cvkit._console import import_keras

    keras = import_keras()
    backbone = model.keras_model_
    temperature = np.float32(getattr(model, "temperature_", 1.0))
    inputs = keras.Input(tuple(backbone.input_shape[1:]), dtype="float32", name="image")
    features = backbone(inputs)
    if head.normalize:
        features = keras.layers.UnitNormalization(name="l2_normalize")(features)
    dense = keras.layers.Dense(head.n_classes, activation="softmax", name="classifier")
    outputs = dense(features)
    dense.set_weights([head.weights / temperature, head.bias / temperature])
    return keras.Model(inputs, outputs, name=f"{backbone.name}_classifier")


def _export_savedmodel(graph: Any, out: Path, pixels: np.ndarray, labels: str, replace: bool) -> np.ndarray:
    """Write ``graph`` as a SavedModel folder ``out`` with its ``labels.txt`` (assembled aside, renamed
    into place); its answers on ``pixels``."""
    tf = import_tensorflow()

    with staged_folder(out, replace=replace) as staging:
        with _quiet_tensorflow():
            graph.export(str(staging), format="tf_saved_model", verbose=False)
        atomic_write(staging / "labels.txt", labels)
    loaded = tf.saved_model.load(str(out))
    return np.concatenate([np.asarray(loaded.serve(tf.constant(pixels[i:i + 16], tf.float32)))
                           for i in range(0, len(pixels), 16)])


def _export_tflite(graph: Any, out: Path, pixels: np.ndarray, quantize: str | None,
                   calibration: np.ndarray, labels: str) -> np.ndarray:
    """Write ``graph`` as the TFLite file ``out`` and ``labels.txt`` beside it (atomically); the file's
    answers on ``pixels``."""
    with tempfile.TemporaryDirectory(prefix="cvkit-export-") as tmp:
        with _quiet_tensorflow():
            graph.export(os.path.join(tmp, "saved_model"), format="tf_saved_model", verbose=False)
            flat = _convert_tflite(Path(tmp) / "saved_model", quantize, calibration)
    atomic_write(out, flat)
    atomic_write(out.parent / "labels.txt", labels)
    return TFLiteModel(out).predict_proba(pixels)


def _check_format(format: str, quantize: str | None) -> str:
    """The canonical format name ("savedmodel" or "tflite"); an error naming a bad value or pair.

    Example:
        >>> _check_format("TF-Lite", "float16")
        'tflite'
        >>> _check_format("onnx", None)
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: format must be one of 'savedmodel', 'tflite', got 'onnx'
    """
    fmt = str(format).lower().replace("_", "").replace("-", "")
    check_param("format", fmt if fmt in FORMATS else format, [Options(FORMATS)])
    check_param("quantize", quantize, [Options([q for q in QUANTIZATIONS if q is not None]), None])
    if quantize is not None and fmt != "tflite":
        raise ValueError("quantize applies to format='tflite' only")
    return fmt


def _folder_of(model: Any) -> Path | None:
    """The model folder of a path or a loaded model (None for a model that was not loaded from one)."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model)
    return Path(model.path_) if getattr(model, "path_", None) else None


# ---------------------------------------------------------------------- export
def export_model(model: Any, format: str = "savedmodel", quantize: str | None = None,
                 output: PathLike | None = None, images: Any = None, n_check: int = 64,
                 overwrite: bool = False) -> ExportResult:
    """Export ``model`` (a model folder or a loaded model) and check it against the Keras model.

    Parameters
    ----------
    format : ``"savedmodel"`` or ``"tflite"``.
    quantize : TFLite only: ``None`` (float32), ``"float16"`` or ``"int8"`` (calibrated on a split's
        training images, else on the check images; inputs and outputs stay float32).
    output : where to write; by default ``MODEL_DIR/export/saved_model`` or
        ``MODEL_DIR/export/model[_float16|_int8].tflite``.
    images : images to check on (a folder, a table, a ``split.json`` whose test images are used, an
        ImageDataset, a list of paths or a uint8 array: anything :meth:`cvkit.data.ImageSource.resolve`
        takes). By default the ``split.json`` next to the model folder (where notebook 01 writes it)
        or inside it (where ``cvkit train`` does).
    n_check : most images checked.
    overwrite : replace an existing ``output`` (by default it is refused, before any work, like
        every writer of cvkit).

    Example (an export takes 10-20 seconds; see the module example):
        >>> export_model("no/such/model", "savedmodel", quantize="int8")
        Traceback (most recent call last):
        ValueError: quantize applies to format='tflite' only
    """
    fmt = _check_format(format, quantize)
    check_param("n_check", n_check, [Interval(int, 1, None)])
    check_param("overwrite", overwrite, ["boolean"])
    start = time.perf_counter()
    model_dir = _folder_of(model)
    out = Path(output) if output is not None else _default_output(model_dir, fmt, quantize)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True or another output")
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, runtime="keras")
    elif getattr(model, "keras_model_", None) is None and getattr(model, "path_", None):
        model = load_model(model.path_, runtime="keras")  # loaded on LiteRT: exporting needs Keras
    graph = keras_probability_model(model)
    size = input_size(model)
    pixels, what, calibration_paths = check_images(images, model_dir, size, n_check)
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = "\n".join(str(c) for c in model.classes_) + "\n"

    reference = np.asarray(graph.predict_on_batch(pixels.astype(np.float32)), dtype=np.float32)
    calibrated_on = None
    if fmt == "savedmodel":
        exported = _export_savedmodel(graph, out, pixels, labels, replace=bool(overwrite))
    else:
        calibration, calibrated_on = pixels[:100], what
        if quantize == "int8" and calibration_paths:
            calibration = np.stack(read_pixels(calibration_paths, size, 100) or list(pixels[:100]))
            calibrated_on = "training-split images"
        exported = _export_tflite(graph, out, pixels, quantize, calibration, labels)

    diff = np.abs(exported.astype(np.float64) - reference.astype(np.float64))
    keras_file = model_dir / KERAS_FILE if model_dir is not None else None
    result = ExportResult(
        path=os.fspath(out), format=fmt, quantize=quantize, size_bytes=_dir_size(out),
        keras_size_bytes=keras_file.stat().st_size if keras_file and keras_file.is_file() else None,
        n_images=len(pixels), n_agree=int(np.sum(exported.argmax(1) == reference.argmax(1))),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0, images=what,
        seconds=time.perf_counter() - start,
        calibration=calibrated_on if quantize == "int8" else None)
    report = out.parent / (out.stem + ".export.json") if fmt == "tflite" else out / "export.json"
    rule = decision_rule(model)
    sidecar = {**result.to_dict(), "classes": [str(c) for c in model.classes_],
               "decision": rule.to_metadata()}  # the model's rule travels with the export
    if rule.unknown_cut is not None:
        sidecar["unknown"] = ("not applied by this export: its graph outputs class probabilities only, and the "
                              "novelty score needs the model folder (cvkit.load_model)")
    write_json(report, sidecar, indent=2)
    return result
