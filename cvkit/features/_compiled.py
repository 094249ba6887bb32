"""The featurizer's backbone as it runs: a LiteRT graph converted once and cached, or a traced Keras call.

Why: converting a backbone to a LiteRT graph takes about 10 s, while featurizing with it is 1.5x
faster than Keras and needs no TensorFlow. So the converted graph is kept on disk beside the
feature cache (``<cache_dir>/backbones/*.tflite``, written atomically), named by backbone, input
size, precision, :data:`CONVERSION_VERSION` and the digest of the Keras model (architecture and
weight values, :func:`keras_model_digest`). A backbone *named* with ImageNet weights or a weights
file finds that digest without building the model: a small record beside the graphs maps the
SHA-256 of its weights file (:func:`weights_identity`) to it (:func:`named_digest`). So a process
whose graph is cached never imports TensorFlow, and a named backbone shares its graph and feature
cache with the same backbone given as a Keras model. Graphs converted in this process are also
kept in memory.

- :func:`graph_file` names a cached graph; :func:`cached_graph` reads it, or converts and writes it.
- :func:`keras_predict` is the Keras runtime: the model as a traced ``tf.function`` on uint8 batches.

- :func:`calibration_images` picks and decodes the images an int8 graph is calibrated on.

Example:
    >>> weights_identity("efficientnet_lite0", "imagenet")  # the SHA-256 of its .pth file, 16 digits
    '579344248a93e230'
    >>> graph_file("cache", "efficientnet_lite0", 224, None, "0123456789abcdef", "float32").name
    'efficientnet_lite0-224px-0123456789abcdef-float32-v1.tflite'
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cvkit._io import atomic_write, read_json
from cvkit.backbones._blocks import flat_layers
from cvkit.backbones._efficientnet_lite import LITE_VARIANTS, lite_weights_path
from cvkit.data._images import PathLike
from cvkit.data._source import ImageSource, content_key
from cvkit.features._store import as_size, size_text

__all__ = ["CONVERSION_VERSION", "GRAPH_FOLDER", "weights_identity", "keras_model_digest", "named_digest",
           "graph_file", "cached_graph", "keras_predict", "calibration_images"]

Size = int | Sequence[int]

#: Part of every cached graph's name: bump it when the conversion changes (converter settings, a
#: new cvkit preprocessing), so graphs converted the old way are not used.
CONVERSION_VERSION = 1
#: Sub-folder of the cache folder holding converted backbones.
GRAPH_FOLDER = "backbones"
_MEMORY_GRAPHS = 6  # converted graphs kept in memory per process (a Lite0 float32 graph is 13 MB)

_graphs: OrderedDict[str, bytes] = OrderedDict()
_file_hashes: dict[tuple, str] = {}
_named_digests: dict[str, str] = {}
# Traced predict functions per Keras model and input size: tracing takes seconds, so featurizers
# that share a backbone model share the trace. Weak keys: a discarded model frees its function.
_traced: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], Any]] = weakref.WeakKeyDictionary()


def _file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so refits do not read it again."""
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def weights_identity(name: str, weights: PathLike | None) -> str | None:
    """16 hex digits identifying the weights of backbone ``name`` (canonical) without building it.

    ``"imagenet"`` for EfficientNet-Lite: the SHA-256 of the ``.pth`` file of its weights package;
    for ``keras.applications`` backbones: the installed Keras version (whose download it is); a
    weights file: its SHA-256. ``None`` (random weights) has no identity: returns None.

    Example:
        >>> weights_identity("efficientnet_lite0", None) is None
        True
        >>> weights_identity("efficientnet_lite0", "imagenet") == weights_identity("efficientnet_lite0", "imagenet")
        True
    """
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        if name not in LITE_VARIANTS:
            text = f"keras.applications:{name}:keras=={importlib.metadata.version('keras')}"
            return hashlib.sha256(text.encode()).hexdigest()[:16]
        path = lite_weights_path(name)
    else:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file not found")
    return _file_sha256(path)[:16]


def _architecture_id(model: Any) -> str:
    """A name-independent description of ``model``: each layer's type and config minus its name.

    Keras numbers auto-named layers per session (``activation_17``), so names are left out: the same
    architecture built twice gets the same id.
    """
    parts = [repr(model.input_shape), repr(model.output_shape)]
    for layer in flat_layers(model):
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
        except Exception:  # a layer that cannot describe itself: its type still counts
            config = {}
        parts.append(type(layer).__name__ + json.dumps(config, sort_keys=True, default=repr))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def keras_model_digest(model: Any) -> str:
    """16 hex digits identifying a Keras model by its architecture and the bytes of its weights.

    The architecture counts too, since two models can share weights but differ in weightless
    layers such as pooling.

    Example:
        >>> from cvkit import backbones
        >>> model = backbones.get("efficientnet_lite0", weights=None, input_shape=(32, 32, 3))  # random weights
        >>> digest = keras_model_digest(model)
        >>> len(digest), digest == keras_model_digest(model)
        (16, True)
    """
    digest = hashlib.sha1()
    digest.update(_architecture_id(model).encode())
    for w in model.weights:
        value = np.asarray(w.numpy())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def named_digest(folder: PathLike | None, name: str, input_size: Size, pooling: str, weights_id: str,
                 build: Callable[[], Any]) -> str:
    """:func:`keras_model_digest` of a named backbone, without building it when it is on record.

    The record is a small JSON file under ``folder`` (``<cache_dir>/backbones/``; None: this
    process only), written the first time ``build()`` makes the Keras model. So the same backbone
    named (``ImageFeaturizer("efficientnet_lite0")``) or given as a Keras model (as
    ``FeatureClassifier`` does) shares one converted graph and one feature cache file.

    Example:
        >>> import tempfile
        >>> from cvkit import backbones
        >>> model = backbones.get("efficientnet_lite0", weights=None, input_shape=(32, 32, 3))  # random weights
        >>> folder = tempfile.mkdtemp()
        >>> named_digest(folder, "demo", 32, "avg", "0" * 16, lambda: model) == keras_model_digest(model)
        True
        >>> sorted(p.name for p in Path(folder, "backbones").iterdir())
        ['demo-32px-avg-0000000000000000-v1.json']
    """
    stem = f"{name}-{size_text(input_size)}px-{pooling}-{weights_id}-v{CONVERSION_VERSION}"
    record = None if folder is None else Path(folder) / GRAPH_FOLDER / f"{stem}.json"
    if stem not in _named_digests and record is not None and record.is_file():
        try:
            digest = read_json(record, "backbone digest record").get("keras_digest")
        except (OSError, ValueError, AttributeError):
            digest = None
        if isinstance(digest, str) and len(digest) == 16 and all(c in "0123456789abcdef" for c in digest):
            _named_digests[stem] = digest
    if stem not in _named_digests:
        _named_digests[stem] = keras_model_digest(build())
    if record is not None and not record.is_file():
        try:
            record.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(record, json.dumps({"keras_digest": _named_digests[stem]}))
        except OSError:  # only costs the next process a build
            pass
    return _named_digests[stem]


def graph_file(folder: PathLike, name: str, input_size: Size, pooling: str | None, weights_id: str,
               precision: str, calibration_id: str | None = None) -> Path:
    """Where the converted graph of one backbone configuration is cached under the cache ``folder``.

    Characters other than letters, digits, ``-`` and ``_`` in ``name`` become ``_``; ``pooling``
    None (a Keras model, whose digest covers its pooling) is left out of the name; ``input_size`` is
    an int or ``(width, height)`` (see :func:`cvkit.features._store.size_text`).

    Example:
        >>> graph_file("cache", "my model", 192, None, "0123456789abcdef", "int8", "fedcba9876543210").name
        'my_model-192px-0123456789abcdef-int8-fedcba9876543210-v1.tflite'
    """
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    parts = [safe, f"{size_text(input_size)}px", *([pooling] if pooling else []), weights_id, precision,
             *([calibration_id] if calibration_id else []), f"v{CONVERSION_VERSION}"]
    return Path(folder) / GRAPH_FOLDER / ("-".join(parts) + ".tflite")


def _remember(key: str, content: bytes) -> bytes:
    _graphs[key] = content
    _graphs.move_to_end(key)
    while len(_graphs) > _MEMORY_GRAPHS:
        _graphs.popitem(last=False)
    return content


def cached_graph(key: str, path: Path | None, convert: Callable[[], bytes],
                 valid: Callable[[bytes], bool] = lambda content: True) -> bytes:
    """The graph known as ``key``: from memory, else from the file ``path``, else ``convert()``-ed.

    A converted graph is written to ``path`` (when given) atomically; a cached file that ``valid``
    rejects (damaged) is converted again and replaced. A folder that cannot be written only costs
    the next process a conversion (one ``RuntimeWarning``).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp(), "backbones", "g.tflite")
        >>> calls = []
        >>> make = lambda: calls.append(1) or b"graph bytes"
        >>> first = cached_graph("doc-example", path, make)
        >>> cached_graph("doc-example", path, make) == first, len(calls), path.read_bytes()
        (True, 1, b'graph bytes')
    """
    on_disk = path is not None and path.is_file()
    if key in _graphs and (path is None or on_disk):
        return _remember(key, _graphs[key])
    if on_disk:
        try:
            content = path.read_bytes()
        except OSError:
            content = None
        if content is not None and valid(content):
            return _remember(key, content)
    content = _graphs[key] if key in _graphs else bytes(convert())  # converted here before, for another folder
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, content)
        except OSError as exc:
            warnings.warn(f"ImageFeaturizer: cannot cache the converted backbone at {path} ({exc}); "
                          "the next process converts it again", RuntimeWarning, stacklevel=4)
    return _remember(key, content)


def keras_predict(model: Any, size: Size) -> Callable[[np.ndarray], np.ndarray]:
    """The Keras runtime: ``model`` as a traced ``tf.function`` on uint8 ``(batch, height, width, 3)``
    at ``size`` = ``(width, height)`` (an int: a square) returning NumPy; any batch size, one trace,
    shared by featurizers of the same model.

    A plain traced call is about twice as fast per batch as ``model.predict`` on NumPy arrays.

    Example:
        >>> from cvkit import backbones
        >>> model = backbones.get("efficientnet_lite0", weights=None, input_shape=(24, 32, 3))  # random weights
        >>> predict = keras_predict(model, (32, 24))
        >>> predict(np.zeros((2, 24, 32, 3), np.uint8)).shape
        (2, 1280)
    """
    size = as_size(size)
    per_model = _traced.setdefault(model, {})
    if size not in per_model:
        from cvkit._console import import_tensorflow

        tf = import_tensorflow()
        width, height = size

        @tf.function(input_signature=[tf.TensorSpec([None, height, width, 3], tf.uint8)])
        def traced(x):
            return model(tf.cast(x, tf.float32), training=False)

        per_model[size] = traced
    traced = per_model[size]
    return lambda batch: traced(batch).numpy()


def calibration_images(X: Any, size: Size, limit: int, threads: int | None = None) -> tuple[np.ndarray, str]:
    """What an int8 graph is calibrated on: pixels of (up to ``limit`` of, evenly spaced) the images
    ``X`` at ``size`` = ``(width, height)``, and a 16-digit id of which they are (the content keys of
    files, the SHA-1 of the resized pixels of arrays), part of the int8 graph's cached name.

    Unreadable images are left out; none readable is a ``ValueError``.

    Example:
        >>> pixels, ident = calibration_images(["sample_data/bird/owl.jpg", "missing.jpg"], (32, 24), limit=200)
        >>> pixels.shape, len(ident)
        ((1, 24, 32, 3), 16)
    """
    source = ImageSource.resolve(X)
    if len(source) > limit:
        source = source.subset([int(i) for i in np.linspace(0, len(source) - 1, limit)])
    pixels, ok, _ = source.read_all(size, threads=threads)
    if not ok.any():
        raise ValueError(f"precision='int8': none of the {len(source)} image(s) passed to fit could be read "
                         "to calibrate on")
    keys = [(content_key(item)[0] if isinstance(item, str) else None) or hashlib.sha1(pixels[i].tobytes()).hexdigest()
            for i, item in enumerate(source.items) if ok[i]]
    return pixels[ok], hashlib.sha1("\n".join(keys).encode()).hexdigest()[:16]
