"""The wire format of ``POST /score`` and ``run()``: parsing requests, shaping answers.

cvkit's own JSON request::

    {"images": [{"image_in_base64": "<base64 JPEG/PNG bytes>", "parameters": {"top_k": 3}}, ...],
     "parameters": {"top_k": 3}}          # optional default for every image

is answered ``{"predictions": [...]}`` with one entry per image, in order: ``label``, ``score``,
``scores`` (by class), ``top_k``, or ``error`` for an image that could not be scored. A model saved
with thresholds (``set_thresholds``) answers ``"no decision"`` below them, and each answer then
also names its ``decision`` and the ``rule`` applied (``GET /metadata`` gives the rule as
``"decision"``, so a TF Serving client, which receives probabilities, can apply the same rule).

Clients written for the systems cvkit replaces are understood as they are (:func:`parse_request`
tells the shapes apart; each is documented in the README's "Existing clients"):

- **cvtk** (``convention="cvtk"``): a bare JSON list of the same items,
  ``[{"image_in_base64": ..., "parameters": {}}]``. cvtk's client built the string with
  ``"{0}".format(base64.b64encode(data))``, which gives ``"b'iVBOR...'"``: that ``b'...'``
  wrapping is taken off before decoding. Answered like cvkit's shape.
- **Azure ML** (``convention="azureml"``): ``{"data": ...}``, as a ``score.py`` reads
  ``json.loads(raw_data)["data"]``. ``data`` is one base64 string (one image), or a list whose
  entries are base64 strings or cvkit/cvtk items; an optional ``"parameters": {"top_k": 3}``
  applies to all. Answered like cvkit's shape.
- **TensorFlow Serving** (``convention="tfserving"``): the predict API's row format
  ``{"signature_name": "serving_default", "instances": [{"b64": "..."}]}`` (an instance may also
  name its input, ``{"image_bytes": {"b64": "..."}}``) or its columnar format
  ``{"inputs": [{"b64": "..."}]}`` / ``{"inputs": {"image_bytes": [{"b64": "..."}]}}``. As TF
  Serving would answer for a Keras classifier, each prediction is the list of class probabilities
  in the order of the model's classes (``GET /metadata``): ``{"predictions": [[0.91, 0.02, ...]]}``
  (columnar: ``{"outputs": [[...]]}``); a request with any unreadable image fails as a whole, 400
  ``{"error": ..., "detail": ...}``. ``signature_name`` is accepted and ignored (one signature).

Every shape has the same limits: item count, body size, pixel budget, nesting, integer size.
Only bytes carried *in* the request are ever scored: an item naming a URL or a file path is
answered with an error, never fetched or opened.

Hostile requests get a 4xx naming what is wrong, never an exception: JSON nested too deeply
(``RecursionError`` in the parser) or a number too long for Python's int conversion (over 4300
digits) is a 400 naming the field, and :func:`check_pixel_budget` refuses (413) a request whose
images add up to too many pixels, read from their headers before anything is decoded.

Example:
    >>> items = parse_json_request(b'{"images": [{"image_in_base64": "aGk="}]}', n_classes=4)
    >>> items[0].data, items[0].top_k
    (b'hi', 3)
    >>> request = parse_request([{"image_in_base64": "b'aGk='", "parameters": {}}], n_classes=4)
    >>> request.convention, request.items[0].data
    ('cvtk', b'hi')
    >>> parse_request('{"instances": [{"b64": "aGk="}]}', n_classes=4).convention
    'tfserving'
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvkit.models._decision import DecisionRule
from cvkit.models._inference import DEFAULT_TOP_K, check_top_k, format_prediction

__all__ = ["RequestError", "ScoreItem", "ScoreRequest", "CONVENTIONS", "parse_request",
           "parse_json_request", "decode_base64", "response_for", "parse_top_k", "item_error",
           "response_status", "build_answers",
           "response_body", "DEFAULT_MAX_IMAGES", "DEFAULT_MAX_REQUEST_PIXELS"]

#: Most images one request may carry.
DEFAULT_MAX_IMAGES = 64

#: Most pixels (summed over a request's images, from their headers) one request may ask to decode:
#: 100 MP. A 10 MB body of ordinary JPEG photos holds about 30 MP, and one image at the per-image
#: limit (50 MP) fits, while 64 highly compressible 7000x7000 PNGs (3.1 GP, about 20 s of CPU and
#: 1 GB of memory) are refused at once.
DEFAULT_MAX_REQUEST_PIXELS = 100_000_000

#: Longest integer literal accepted in a JSON request (top_k needs a few digits).
MAX_JSON_INT_DIGITS = 30

_FORBIDDEN_KEYS = ("url", "image_url", "uri", "path", "image_path", "file", "filename")
_DATA_URL = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)


class RequestError(ValueError):
    """The request as a whole is malformed (HTTP 400); the message names the field at fault."""

    def __init__(self, message: str, status_code: int = 400, convention: str = "cvkit"):
        self.status_code = status_code
        self.convention = convention
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON answer: ``{"detail": ...}``, plus TF Serving's ``error`` for its requests."""
        message = str(self)
        return {"detail": message, "error": message} if self.convention == "tfserving" else \
            {"detail": message}


@dataclass
class ScoreItem:
    """One image of a request: its bytes (or the error that stops it) and its own ``top_k``."""

    index: int
    data: bytes | None
    top_k: int = DEFAULT_TOP_K
    error: str | None = None
    name: str | None = None
    field: str = "images"

    def error_answer(self) -> dict[str, Any]:
        """The answer for an item that could not be scored."""
        return item_error(self.index, self.error or "unknown error", self.name, self.field)


def item_error(index: int, message: str, name: str | None = None, field: str = "images"
               ) -> dict[str, Any]:
    """An error answer for item ``index``; the message starts with ``images[index]`` (or the
    request's own list field, e.g. ``data[index]``)."""
    answer: dict[str, Any] = {"index": index, "error": f"{field}[{index}]: {message}"}
    if name:
        answer["filename"] = name
    return answer


class OversizedNumber:
    """Stands in for a JSON integer too long to convert, so the field holding it can be named."""

    def __init__(self, text: str):
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _json_int(text: str) -> int | OversizedNumber:
    return OversizedNumber(text) if len(text) > MAX_JSON_INT_DIGITS else int(text)


def parse_top_k(value: Any, n_classes: int, field: str = "top_k") -> int:
    """:func:`~cvkit.models._inference.check_top_k` whose every refusal names ``field``.

    Even an integer string too long for Python to convert (over 4300 digits) is a ``ValueError``
    naming the field, not Python's own message.

    Example:
        >>> parse_top_k("2", n_classes=4, field="query parameter top_k")
        2
        >>> parse_top_k("9" * 5000, n_classes=4, field="query parameter top_k")
        Traceback (most recent call last):
        ...
        ValueError: query parameter top_k must be a positive integer, got a value of 5000 characters
    """
    try:
        return check_top_k(value, n_classes, field=field)
    except ValueError as exc:
        if str(exc).startswith(field):
            raise
        size = len(value) if isinstance(value, str) else "many"
        raise ValueError(f"{field} must be a positive integer, got a value of {size} characters"
                         ) from None


def _top_k_of(parameters: Any, default: int, n_classes: int, field: str) -> int:
    if parameters is None:
        return default
    if not isinstance(parameters, Mapping):
        raise ValueError(f"{field} must be an object such as {{\"top_k\": 3}}")
    if "top_k" not in parameters:
        return default
    return parse_top_k(parameters["top_k"], n_classes, field=f"{field}.top_k")


def _base64_hint(text: str) -> str:
    """What is most likely wrong with a string that is not base64 (for the 400's message)."""
    if "://" in text[:16]:
        return "it looks like a URL; send the image's bytes, base64-encoded, not its address"
    if len(text) < 1000 and re.fullmatch(r"[\w ./\\:~-]+\.(jpe?g|png|gif|bmp|tiff?|webp)", text, re.I):
        return "it looks like a file name; send the file's contents, base64-encoded"
    bad = re.search(r"[^A-Za-z0-9+/=\s_-]", text)
    if bad:
        return (f"character {bad.group()!r} at position {bad.start()} is not in the base64 "
                "alphabet")
    if len("".join(text.split()).rstrip("=")) % 4 == 1:
        return "its length is one more than a multiple of 4: the string was probably cut short"
    return "'=' padding in the middle, or the string was cut short"


def _unwrap_bytes_repr(text: str) -> str:
    """``"b'aGk='"`` -> ``"aGk="``: what ``"{0}".format(base64.b64encode(data))`` produced (cvtk)."""
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        return text[2:-1].replace("\\n", "")
    return text


def decode_base64(text: Any, field: str = "image_in_base64") -> bytes:
    """Strict base64 (standard or URL-safe alphabet, whitespace and a ``data:`` prefix allowed).

    A Python bytes repr around the text (``"b'...'"``, from ``"{0}".format(b64encode(data))`` in
    cvtk's client) is taken off. Invalid text raises ``ValueError`` naming ``field`` with a hint.

    Example:
        >>> decode_base64("b'aGk='"), decode_base64("data:image/png;base64,aGk")
        (b'hi', b'hi')
        >>> decode_base64("photo.jpg")
        Traceback (most recent call last):
        ...
        ValueError: image_in_base64 is not valid base64: it looks like a file name; send the file's contents, ...
    """
    if not isinstance(text, str):
        raise ValueError(f"{field} must be a string, got {type(text).__name__}")
    original = text = _unwrap_bytes_repr(text.strip())
    text = _DATA_URL.sub("", text)
    text = "".join(text.split())
    if not text:
        raise ValueError(f"{field} is empty")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{field} is not valid base64: {_base64_hint(original)} (encode with "
                         'base64.b64encode(data).decode("ascii"))') from None


#: The request shapes :func:`parse_request` understands (see the module docstring).
CONVENTIONS = ("cvkit", "cvtk", "azureml", "tfserving")

#: The list field of each JSON-object shape, and its convention.
_LIST_FIELDS = {"images": "cvkit", "data": "azureml", "instances": "tfserving",
                "inputs": "tfserving"}


@dataclass
class ScoreRequest:
    """A parsed scoring request: its items, the convention it follows (how to answer it), and
    ``columnar`` for TF Serving's ``inputs`` format (answered ``{"outputs": ...}``)."""

    items: list[ScoreItem]
    convention: str = "cvkit"
    columnar: bool = False


def _load_json(body: Any) -> Any:
    """The request's JSON value; refusals name what is wrong."""
    if not isinstance(body, (str, bytes, bytearray)):
        return body
    try:
        return json.loads(body, parse_int=_json_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("request body is nested too deeply: send "
                           '{"images": [{"image_in_base64": "..."}]}') from None


def _check_list(entries: Any, field: str, max_images: int, convention: str) -> list:
    what = '{"b64": "..."}' if convention == "tfserving" else '{"image_in_base64": "..."}'
    if not isinstance(entries, list):
        raise RequestError(f'field "{field}" must be a list of {what} objects', convention=convention)
    if not entries:
        raise RequestError(f'field "{field}" is empty: send at least one image', convention=convention)
    if len(entries) > max_images:
        raise RequestError(f'field "{field}" has {len(entries)} images; at most {max_images} per '
                           "request", status_code=413, convention=convention)
    return entries


def _tf_entries(payload: Mapping[str, Any]) -> tuple[Any, str, bool]:
    """TF Serving's ``instances`` (rows) or ``inputs`` (columns): the list of images."""
    if "signature_name" in payload and not isinstance(payload["signature_name"], str):
        raise RequestError('field "signature_name" must be a string such as "serving_default"',
                           convention="tfserving")
    if "instances" in payload:
        return payload["instances"], "instances", False
    inputs = payload["inputs"]
    if isinstance(inputs, Mapping) and "b64" not in inputs:
        if len(inputs) != 1:
            raise RequestError('field "inputs" must hold one input (the image), e.g. '
                               '{"inputs": {"image_bytes": [{"b64": "..."}]}}', convention="tfserving")
        name, inputs = next(iter(inputs.items()))
        return inputs, f"inputs.{name}", True
    return (inputs if isinstance(inputs, list) else [inputs]), "inputs", True


def parse_request(body: Any, n_classes: int, default_top_k: int = DEFAULT_TOP_K,
                  max_images: int = DEFAULT_MAX_IMAGES) -> ScoreRequest:
    """Parse a JSON scoring request of any known shape (see the module docstring) into items.

    Problems with the request as a whole (not JSON, no image list, too many images, a bad
    request-level ``parameters``) raise :class:`RequestError`. Problems with one image (bad base64,
    a URL or path instead of bytes, a bad ``top_k``) become that item's ``error``.
    """
    payload = _load_json(body)
    columnar = False
    if isinstance(payload, list):
        convention, field, entries = "cvtk", "images", payload
        if not payload:
            raise RequestError("request body is an empty list: send at least one image")
        parameters = None
    elif isinstance(payload, Mapping):
        present = [k for k in _LIST_FIELDS if k in payload]
        if not present:
            raise RequestError('missing field "images": send {"images": [{"image_in_base64": '
                               '"..."}]} (also understood: a bare list of such items, {"data": '
                               '[...]}, or {"instances": [{"b64": "..."}]})')
        if len(present) > 1:
            raise RequestError(f"the request has both {present[0]!r} and {present[1]!r}: send one "
                               "list of images")
        field = present[0]
        convention, entries = _LIST_FIELDS[field], payload[field]
        if convention == "tfserving":
            entries, field, columnar = _tf_entries(payload)
        elif convention == "azureml" and isinstance(entries, str):
            entries = [entries]
        parameters = payload.get("parameters")
    else:
        raise RequestError('request body must be a JSON object like {"images": [...]}, or a list '
                           'of {"image_in_base64": "..."} objects')
    entries = _check_list(entries, field, max_images, convention)
    try:
        default = _top_k_of(parameters, check_top_k(default_top_k, n_classes), n_classes,
                            "parameters")
    except ValueError as exc:
        raise RequestError(str(exc), convention=convention) from None
    items = [_parse_entry(i, entry, default, n_classes, field, convention)
             for i, entry in enumerate(entries)]
    return ScoreRequest(items, convention, columnar)


def parse_json_request(body: bytes | str | Mapping[str, Any], n_classes: int,
                       default_top_k: int = DEFAULT_TOP_K,
                       max_images: int = DEFAULT_MAX_IMAGES) -> list[ScoreItem]:
    """The items of a JSON scoring request (:func:`parse_request` without the convention)."""
    return parse_request(body, n_classes, default_top_k, max_images).items


def _image_text(entry: Any, convention: str) -> tuple[Any, str, Any]:
    """``(base64 text, its field name, per-item parameters)`` of one entry; ValueError if none."""
    if isinstance(entry, str):
        return entry, "the string", None
    if convention == "tfserving" and isinstance(entry, Mapping):
        if "b64" in entry:
            return entry["b64"], "b64", None
        named = [(k, v) for k, v in entry.items() if isinstance(v, Mapping) and "b64" in v]
        if len(named) == 1:
            return named[0][1]["b64"], f"{named[0][0]}.b64", None
        raise ValueError('must be {"b64": "<base64 image bytes>"} (or {"image_bytes": {"b64": '
                         '"..."}}); pixel arrays are not accepted: send the encoded image file')
    if not isinstance(entry, Mapping):
        if isinstance(entry, list):
            raise ValueError("pixel arrays are not accepted: send the image file's bytes, base64")
        raise ValueError('must be a JSON object like {"image_in_base64": "..."} or a base64 string')
    if "image_in_base64" not in entry:
        named = [k for k in _FORBIDDEN_KEYS if k in entry]
        if named:
            raise ValueError(f'"{named[0]}" is not accepted: this service scores only image '
                             "bytes sent in the request (image_in_base64); it never fetches "
                             "URLs or reads files on the server")
        raise ValueError('missing field "image_in_base64"')
    return entry["image_in_base64"], "image_in_base64", entry.get("parameters")


def _parse_entry(index: int, entry: Any, default: int, n_classes: int, field: str,
                 convention: str) -> ScoreItem:
    item = ScoreItem(index=index, data=None, top_k=default, field=field)
    try:
        text, name, parameters = _image_text(entry, convention)
        item.top_k = _top_k_of(parameters, default, n_classes, f"{field}[{index}].parameters")
        item.data = decode_base64(text, name)
    except ValueError as exc:
        item.error = str(exc)
    return item


def response_status(answers: list[dict[str, Any]]) -> int:
    """200 when at least one image was scored; 400 when every image failed."""
    return 200 if any("error" not in a for a in answers) else 400


def build_answers(items: list[ScoreItem], proba: np.ndarray, scored: list[int],
                  class_names: list[str], rule: DecisionRule | None = None,
                  novelty: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One answer per item, in order: ``proba[j]`` (and ``novelty[j]``, for a model that scores it)
    belongs to item ``scored[j]``; others get errors. Labels follow the model's decision ``rule``
    (None: arg-max; "unknown" above its novelty cut), as in every other path."""
    answers: list[dict[str, Any]] = [{} for _ in items]
    scores = [None] * len(scored) if novelty is None else [float(v) for v in novelty]
    for row, i, value in zip(proba, scored, scores):
        answer = format_prediction(row, class_names, items[i].top_k, rule, value)
        if "error" in answer:
            answers[i] = item_error(i, answer["error"], items[i].name, items[i].field)
            continue
        head: dict[str, Any] = {"index": i}
        if items[i].name:
            head["filename"] = items[i].name
        answers[i] = {**head, **answer}
    for i, item in enumerate(items):
        if not answers[i]:
            answers[i] = item.error_answer()
    return answers


def response_body(answers: list[dict[str, Any]], model_version: Any = None) -> dict[str, Any]:
    """The JSON answer: ``{"predictions": [...]}`` (+ ``model_version``, + ``detail`` if all failed)."""
    body: dict[str, Any] = {}
    if response_status(answers) != 200:
        body["detail"] = "no image could be scored: " + "; ".join(a["error"] for a in answers)
    body["predictions"] = answers
    if model_version is not None:
        body["model_version"] = model_version
    return body


def response_for(request: ScoreRequest, answers: list[dict[str, Any]], class_names: list[str],
                 model_version: Any = None, named_outputs: bool = False) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` answering ``request`` in its own convention.

    cvkit, cvtk and Azure ML requests get :func:`response_body`. TF Serving requests get
    ``{"predictions": [[p, ...], ...]}`` (``{"outputs": ...}`` for the columnar format): each row
    the class probabilities in the order of ``class_names``; any failed image fails the request
    (400, ``{"error": ..., "detail": ...}``), as TF Serving does. With ``named_outputs`` (a model
    that answers "unknown" from a novelty score) each row names its outputs, as TF Serving does for a
    signature of several: ``{"probabilities": [...], "novelty": x}``, so a client can apply the rule.

    Example:
        >>> request = ScoreRequest([ScoreItem(index=0, data=None)], "tfserving")
        >>> response_for(request, [{"index": 0, "scores": {"cat": 0.25, "dog": 0.75}}], ["cat", "dog"])
        (200, {'predictions': [[0.25, 0.75]]})
    """
    if request.convention != "tfserving":
        return response_status(answers), response_body(answers, model_version)
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        message = "; ".join(errors)
        return 400, {"error": message, "detail": message}
    rows: list[Any] = [[a["scores"][name] for name in class_names] for a in answers]
    if named_outputs:
        if request.columnar:
            return 200, {"outputs": {"probabilities": rows, "novelty": [a.get("novelty") for a in answers]}}
        rows = [{"probabilities": row, "novelty": a.get("novelty")} for row, a in zip(rows, answers)]
    return 200, {"outputs" if request.columnar else "predictions": rows}
