"""Scoring images with a loaded model: the one code path behind every way cvkit scores an image.

The web service (:mod:`cvkit.serving._app`), the Azure-ML-style entry script
(:mod:`cvkit.serving.azureml_entry`), batch scoring (:mod:`cvkit.models._batch`) and
``model.score_image(...)`` all turn pixels into answers here, so they agree to the last digit.
Encoded images are decoded by :func:`cvkit.data._source.decode_item`, the one decoder of cvkit.

A *model* is anything with the loaded-model API of :func:`cvkit.load_model`: ``classes_``
(class names), ``input_size_`` (``(width, height)``) and ``predict_proba(uint8 array)``.

Request-protocol helpers live here too (:func:`check_top_k`, :func:`decode_image`,
:data:`DEFAULT_TOP_K`, :data:`DEFAULT_MAX_PIXELS`), because the service, batch scoring and
``LoadedModel.score_image`` all share them.

Example:
    >>> import os, tempfile
    >>> import cvkit
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(cvkit.ImageDataset.from_directory("sample_data"))
    >>> input_size(clf), classes(clf)
    ((224, 224), ['bird', 'flower', 'fruit', 'vegetable'])
    >>> model = cvkit.load_model(clf.save(os.path.join(tempfile.mkdtemp(), "model")))
    >>> answer = score_image(model, "sample_data/bird/crow.jpg", top_k=2)
    >>> sorted(answer), answer["label"], len(answer["top_k"])
    (['label', 'novelty', 'score', 'scores', 'top_k'], 'bird', 2)
    >>> pixels = decode_image("sample_data/bird/owl.jpg", model)
    >>> pixels.shape, predict_proba(model, pixels[None]).shape, score_arrays(model, pixels[None], top_k=[1])[0]["label"]
    ((224, 224, 3), (1, 4), 'bird')
    >>> answers = score_sources(model, ["sample_data/bird/owl.jpg", b"not an image"])
    >>> answers[0]["label"], answers[1]["error"]
    ('bird', '<bytes>: not an image file, or a format Pillow cannot read')
    >>> predict_outputs(model, pixels[None])[1].shape   # its novelty, from the same run of the graph
    (1,)
    >>> probability_graph(model) is None   # its graph ends in features: the head's arrays run after it
    True
"""
from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.data._images import EncodedImage, ImageReadError
from cvkit.data._source import decode_item
from cvkit.models._decision import DecisionRule

__all__ = [
    "DEFAULT_TOP_K",
    "DEFAULT_MAX_PIXELS",
    "input_size",
    "classes",
    "decision_rule",
    "check_top_k",
    "decode_image",
    "predict_proba",
    "predict_outputs",
    "has_novelty",
    "probability_graph",
    "format_prediction",
    "score_arrays",
    "score_sources",
    "score_image",
    "fetch_url",
]

#: Number of best classes listed in each answer unless asked otherwise.
DEFAULT_TOP_K = 3

#: Decompression-bomb guard for images that arrive from outside (about 50 megapixels, 150 MB RGB).
DEFAULT_MAX_PIXELS = 50_000_000

#: Largest download ``score_image`` accepts when given a URL (bytes).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024

ScoreSource = str | os.PathLike | bytes | bytearray | memoryview
#: An encoded image as :func:`decode_image` takes it: a path, bytes, or a binary stream.


def input_size(model: Any) -> tuple[int, int]:
    """The model's input size as ``(width, height)``; accepts an int or a pair on the model.

    Example:
        >>> class Model:
        ...     input_size_ = 240
        >>> input_size(Model())
        (240, 240)
    """
    size = getattr(model, "input_size_", None)
    if size is None:
        raise TypeError(f"{type(model).__name__} has no input_size_: load it with cvkit.load_model()")
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    width, height = size
    return int(width), int(height)


def classes(model: Any) -> list[str]:
    """The model's class names, in the order of its probability columns.

    (Example: see the module.)
    """
    names = getattr(model, "classes_", None)
    if names is None:
        raise TypeError(f"{type(model).__name__} has no classes_: load it with cvkit.load_model()")
    return [str(c) for c in names]


def decision_rule(model: Any) -> DecisionRule:
    """The decision rule the model answers with (:class:`~cvkit.models._decision.DecisionRule`).

    A fitted classifier or a loaded model keeps it in ``decision_rule_`` (set with
    ``model.set_thresholds(...)``, saved in and read from ``metadata.json``); any other model
    answers with the arg-max. Every path that names an answer asks this function, so they agree.

    Example:
        >>> decision_rule(object()).describe()
        'arg-max'
    """
    rule = getattr(model, "decision_rule_", None)
    return rule if isinstance(rule, DecisionRule) else DecisionRule()


def check_top_k(value: Any, n_classes: int, field: str = "top_k") -> int:
    """Validate ``top_k`` (a positive integer, or a string of digits) and clip it to the number of classes.

    Raises :class:`~cvkit._validation.InvalidParameterError` (a ``ValueError``) naming ``field``, so a
    caller can report which input was wrong.

    Example:
        >>> check_top_k("10", n_classes=4)
        4
        >>> check_top_k(0, n_classes=4)
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: top_k must be a positive int, got 0
    """
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return int(min(int(check_param(field, value, [Interval(int, 1, None)])), n_classes))


def _encoded(source: EncodedImage) -> tuple[str | bytes, str]:
    """``(item for decode_item, name for errors)`` of a path, bytes or binary stream."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source), os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    if hasattr(source, "read"):
        return bytes(source.read()), str(getattr(source, "name", "<stream>"))
    raise TypeError(f"cannot decode a {type(source).__name__}: give a file path, image bytes or a binary stream")


def decode_image(source: EncodedImage, model: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS
                 ) -> np.ndarray:
    """Read ``source`` (path, bytes or binary stream) as the model's input: uint8 (H, W, 3).

    Decoded by :func:`cvkit.data._source.decode_item` (the one decoder: :func:`cvkit.data.read_image`
    with EXIF rotation, any colour mode, the bomb guard ``max_pixels``) at the model's input size.
    Raises :class:`~cvkit.data.ImageReadError` naming the file (or ``<bytes>``) for a bad image.
    (Example: see the module.)
    """
    item, name = _encoded(source)
    pixels, reason, _ = decode_item(item, input_size(model), max_pixels)
    if pixels is None:
        raise ImageReadError(name, str(reason))
    return pixels


def predict_proba(model: Any, images: np.ndarray) -> np.ndarray:
    """Class probabilities (n, n_classes) float32 for a uint8 batch (n, H, W, 3) at input size.

    The single place a model is called on pixels for scoring; an empty batch gives an empty answer
    without calling the model. (Example: see the module.)
    """
    names = classes(model)
    if len(images) == 0:
        return np.zeros((0, len(names)), np.float32)
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected a batch of RGB images (n, H, W, 3), got shape {images.shape}")
    graph = probability_graph(model)
    if graph is not None:
        proba = np.asarray(graph.predict(images), dtype=np.float32)
    else:
        proba = np.asarray(model.predict_proba(images), dtype=np.float32)
    if proba.shape != (len(images), len(names)):
        raise RuntimeError(f"model returned probabilities of shape {proba.shape}, expected "
                           f"{(len(images), len(names))}")
    return proba


def has_novelty(model: Any) -> bool:
    """Whether ``model`` scores novelty (so its answers carry a ``novelty`` and may be "unknown").

    Example:
        >>> has_novelty(object())
        False
    """
    return getattr(model, "novelty_", None) is not None


def predict_outputs(model: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(probabilities, novelty or None)`` for a uint8 batch: what every path names answers from.

    A model with a novelty scorer (``novelty_``) gives both from one run of its graph; any other
    model gives its probabilities (:func:`predict_proba`) and None.
    """
    if not has_novelty(model):
        return predict_proba(model, images), None
    if len(images) == 0:
        return predict_proba(model, images), np.zeros(0, np.float32)
    proba, novelty = model._predict_outputs(np.asarray(images))
    return np.asarray(proba, dtype=np.float32), np.asarray(novelty, dtype=np.float32)


def probability_graph(model: Any, required: bool = False, keras: bool = False) -> Any:
    """The model's pixel graph when it maps raw pixels straight to class probabilities, else None.

    A saved model with a Keras head is, by the model-folder contract, ONE graph from float32 pixels
    (0..255) to probabilities, so running it (``graph.predict(pixels)``) gives ``predict_proba``'s
    answer with no per-call set-up, on whichever runtime the model was loaded with: its ``graph_``,
    a :class:`cvkit._litert.LiteRTModel` or a :class:`cvkit.models._graphs.KerasGraph`. With
    ``keras=True`` it is the Keras model itself (``keras_model_``: what exporting needs; a model
    loaded on LiteRT has none). Other models give None, or with ``required=True`` a ``ValueError``
    saying why. (Example: see the module.)
    """
    reason = None
    meta = getattr(model, "metadata_", None)
    graph = getattr(model, "keras_model_" if keras else "graph_", None)
    if graph is None:
        reason = ("this model has no Keras graph (keras_model_); load it with cvkit.load_model(path, "
                  "runtime='keras')" if keras else
                  "this model has no pixel graph (graph_); load it with cvkit.load_model")
    elif not isinstance(meta, dict) or meta.get("head") != "keras":
        head = meta.get("head") if isinstance(meta, dict) else None
        reason = (f"this model uses a {head!r} head, so its graph ends in features, not "
                  "probabilities; only models with a Keras head (the default linear head, or "
                  "fine-tuned models) can be used whole")
    else:
        try:
            shape = tuple(graph.output_shape)
        except (AttributeError, ValueError):
            shape = ()
        if len(shape) != 2 or shape[-1] != len(classes(model)):
            reason = (f"the graph outputs shape {shape} for {len(classes(model))} classes; "
                      "it is not a probability graph")
    if reason is None:
        return graph
    if required:
        raise ValueError(reason)
    return None


def format_prediction(proba: np.ndarray, class_names: Sequence[str], top_k: int = DEFAULT_TOP_K,
                      rule: DecisionRule | None = None, novelty: float | None = None) -> dict[str, Any]:
    """One image's answer: ``label``, ``score`` (the top class's probability), ``scores`` by class, ``top_k``.

    ``label`` is what the model's decision ``rule`` answers (default: the arg-max). When the rule
    is more than the arg-max (thresholds), the answer also says ``decision`` (``"label"`` or
    ``"no_decision"``) and which ``rule`` was applied; probabilities are always given as they are.
    A model with a novelty scorer also gives the image's ``novelty``; above the rule's unknown cut
    the label is ``"unknown"`` (decision ``"unknown"``). Plain Python types only, so the dict is
    JSON-ready. Ties keep class order.

    Example:
        >>> format_prediction([0.1, 0.7, 0.2], ["cat", "dog", "fox"], top_k=2)["top_k"]
        [{'label': 'dog', 'score': 0.7}, {'label': 'fox', 'score': 0.2}]
        >>> answer = format_prediction([0.1, 0.7, 0.2], ["cat", "dog", "fox"], rule=DecisionRule(thresholds=0.8))
        >>> answer["label"], answer["score"], answer["decision"], answer["rule"]
        ('no decision', 0.7, 'no_decision', 'threshold 0.8')
    """
    row = np.asarray(proba, dtype=np.float64).reshape(-1)
    if len(row) != len(class_names):
        raise ValueError(f"{len(row)} probabilities for {len(class_names)} classes")
    if not np.all(np.isfinite(row)):
        return {"error": "the model returned non-finite scores for this image"}
    order = np.argsort(-row, kind="stable")
    k = max(1, min(int(top_k), len(class_names)))
    best = int(order[0])
    answer: dict[str, Any] = {"label": str(class_names[best])}
    ruled = rule is not None and not rule.is_argmax
    if ruled:
        scores = None if novelty is None else np.array([novelty], dtype=np.float64)
        if rule.unknown_cut is not None and (scores is None or not np.isfinite(scores[0])):
            return {"error": "the model gave no novelty score for this image"}
        labels, decisions = rule.decide(row[None], class_names, scores)
        answer = {"label": str(labels[0]), "decision": str(decisions[0]), "rule": rule.describe()}
    if novelty is not None:
        answer["novelty"] = float(novelty)
    return {
        **answer,
        "score": float(row[best]),
        "scores": {str(c): float(p) for c, p in zip(class_names, row)},
        "top_k": [{"label": str(class_names[i]), "score": float(row[i])} for i in order[:k]],
    }


def score_arrays(model: Any, images: np.ndarray, top_k: int | Sequence[int] = DEFAULT_TOP_K
                 ) -> list[dict[str, Any]]:
    """Score a uint8 batch (n, H, W, 3) already at input size; ``top_k`` may be one per image.

    (Example: see the module.)
    """
    names = classes(model)
    proba, novelty = predict_outputs(model, images)
    ks = [top_k] * len(proba) if isinstance(top_k, (int, np.integer)) else list(top_k)
    if len(ks) != len(proba):
        raise ValueError(f"{len(ks)} top_k values for {len(proba)} images")
    rule = decision_rule(model)
    scores = [None] * len(proba) if novelty is None else novelty
    return [format_prediction(p, names, k, rule, v) for p, k, v in zip(proba, ks, scores)]


def score_sources(model: Any, sources: Sequence[ScoreSource], top_k: int = DEFAULT_TOP_K,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS, allow_urls: bool = False,
                  timeout: float = 10.0) -> list[dict[str, Any]]:
    """Score several images (paths or bytes; URLs when ``allow_urls``) in one model call.

    One answer per source, in order. An image that cannot be read gets ``{"error": reason}`` and
    does not stop the others. (Example: see the module.)
    """
    k = check_top_k(top_k, len(classes(model)))
    arrays: list[np.ndarray] = []
    where: list[int] = []
    results: list[dict[str, Any]] = [{} for _ in sources]
    for i, source in enumerate(sources):
        try:
            data = _resolve(source, allow_urls=allow_urls, timeout=timeout)
            arrays.append(decode_image(data, model, max_pixels=max_pixels))
            where.append(i)
        except ImageReadError as exc:
            name = source if _is_url(source) else exc.source
            results[i] = {"error": f"{name}: {exc.reason}"}
        except ValueError as exc:
            results[i] = {"error": str(exc)}
    if arrays:
        for i, answer in zip(where, score_arrays(model, np.stack(arrays), k)):
            results[i] = answer
    return results


def score_image(model: Any, source: ScoreSource, top_k: int = DEFAULT_TOP_K,
                timeout: float = 10.0, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """Score one image given as a path, an ``http(s)://`` URL (fetched here, with ``timeout``) or bytes.

    Raises :class:`~cvkit.data.ImageReadError` (naming the file or URL) if it cannot be read, and
    ``ValueError`` for a bad ``top_k``. This is what ``model.score_image(...)`` calls. (Example:
    see the module.)
    """
    k = check_top_k(top_k, len(classes(model)))
    data = _resolve(source, allow_urls=True, timeout=timeout)
    try:
        pixels = decode_image(data, model, max_pixels=max_pixels)
    except ImageReadError as exc:
        if _is_url(source):  # name the URL, not "<bytes>"
            raise ImageReadError(source, exc.reason) from None
        raise
    return score_arrays(model, pixels[None], k)[0]


def _is_url(source: object) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def _resolve(source: ScoreSource, allow_urls: bool, timeout: float) -> EncodedImage:
    """Turn a URL into bytes (when allowed); paths and bytes pass through untouched."""
    if _is_url(source):
        if not allow_urls:
            raise ValueError(f"{source}: URLs are not fetched here; send the image bytes instead")
        return fetch_url(str(source), timeout=timeout)
    if isinstance(source, (bytes, bytearray, memoryview, str, os.PathLike)):
        return source
    raise ValueError(f"cannot score a {type(source).__name__}: give a file path, URL or image bytes")


def fetch_url(url: str, timeout: float = 10.0, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """Download an image over http(s) with a timeout and a size cap; the client side of scoring.

    Raises :class:`~cvkit.data.ImageReadError` naming the URL on any failure.

    Example:
        >>> fetch_url("file:///etc/passwd")
        Traceback (most recent call last):
        cvkit.data._images.ImageReadError: file:///etc/passwd: only http:// and https:// URLs can be fetched
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ImageReadError(url, "only http:// and https:// URLs can be fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "cvkit"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            data = response.read(max_bytes + 1)
    except OSError as exc:  # URLError, HTTPError, timeouts are all OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise ImageReadError(url, f"download failed: {reason}") from None
    if len(data) > max_bytes:
        raise ImageReadError(url, f"download larger than {max_bytes} bytes")
    if not data:
        raise ImageReadError(url, "download was empty")
    return data
