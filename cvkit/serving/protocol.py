"""The wire format of ``POST /score`` and ``run()``: parsing requests, shaping answers.

JSON requests have the shape cvtk's clients sent::

    {"images": [{"image_in_base64": "<base64 JPEG/PNG bytes>", "parameters": {"top_k": 3}}, ...],
     "parameters": {"top_k": 3}}          # optional default for every image

Answers are ``{"predictions": [...]}`` with one entry per image, in order: ``label``, ``score``,
``scores`` (by class), ``top_k``, or ``error`` for an image that could not be scored.

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
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image

from cvkit.data.images import ImageReadError
from cvkit.models.inference import DEFAULT_MAX_PIXELS, DEFAULT_TOP_K, check_top_k, decode_image, format_prediction

__all__ = ["RequestError", "ScoreItem", "parse_json_request", "parse_top_k", "item_error",
           "response_status", "header_pixels", "check_pixel_budget", "decode_items", "build_answers",
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

    def __init__(self, message: str, status_code: int = 400):
        self.status_code = status_code
        super().__init__(message)


@dataclass
class ScoreItem:
    """One image of a request: its bytes (or the error that stops it) and its own ``top_k``."""

    index: int
    data: bytes | None
    top_k: int = DEFAULT_TOP_K
    error: str | None = None
    name: str | None = None

    def error_answer(self) -> dict[str, Any]:
        """The answer for an item that could not be scored."""
        return item_error(self.index, self.error or "unknown error", self.name)


def item_error(index: int, message: str, name: str | None = None) -> dict[str, Any]:
    """An error answer for item ``index``; the message starts with ``images[index]``."""
    answer: dict[str, Any] = {"index": index, "error": f"images[{index}]: {message}"}
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
    """:func:`~cvkit.models.inference.check_top_k` whose every refusal names ``field``.

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


def decode_base64(text: Any) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, whitespace and a ``data:`` prefix allowed)."""
    if not isinstance(text, str):
        raise ValueError(f"image_in_base64 must be a string, got {type(text).__name__}")
    text = _DATA_URL.sub("", text.strip())
    text = "".join(text.split())
    if not text:
        raise ValueError("image_in_base64 is empty")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"image_in_base64 is not valid base64 ({exc})") from None


def parse_json_request(body: bytes | str | Mapping[str, Any], n_classes: int,
                       default_top_k: int = DEFAULT_TOP_K,
                       max_images: int = DEFAULT_MAX_IMAGES) -> list[ScoreItem]:
    """Parse a JSON scoring request into items.

    Problems with the request as a whole (not JSON, no ``images`` list, too many images, a bad
    request-level ``parameters``) raise :class:`RequestError`. Problems with one image (bad base64,
    a URL or path instead of bytes, a bad ``top_k``) become that item's ``error``.
    """
    if isinstance(body, Mapping):
        payload: Any = body
    else:
        try:
            payload = json.loads(body, parse_int=_json_int)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(f"request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise RequestError("request body is nested too deeply: send "
                               '{"images": [{"image_in_base64": "..."}]}') from None
    if not isinstance(payload, Mapping):
        raise RequestError('request body must be a JSON object like {"images": [...]}')
    if "images" not in payload:
        raise RequestError('missing field "images": send {"images": [{"image_in_base64": "..."}]}')
    images = payload["images"]
    if not isinstance(images, list):
        raise RequestError('field "images" must be a list of {"image_in_base64": "..."} objects')
    if not images:
        raise RequestError('field "images" is empty: send at least one image')
    if len(images) > max_images:
        raise RequestError(f'field "images" has {len(images)} images; at most {max_images} per '
                           f"request", status_code=413)
    try:
        default = _top_k_of(payload.get("parameters"), check_top_k(default_top_k, n_classes),
                            n_classes, "parameters")
    except ValueError as exc:
        raise RequestError(str(exc)) from None

    items: list[ScoreItem] = []
    for i, entry in enumerate(images):
        item = ScoreItem(index=i, data=None, top_k=default)
        items.append(item)
        try:
            if not isinstance(entry, Mapping):
                raise ValueError('must be an object like {"image_in_base64": "..."}')
            named = [k for k in _FORBIDDEN_KEYS if k in entry]
            if "image_in_base64" not in entry:
                if named:
                    raise ValueError(f'"{named[0]}" is not accepted: this service scores only image '
                                     "bytes sent in the request (image_in_base64); it never fetches "
                                     "URLs or reads files on the server")
                raise ValueError('missing field "image_in_base64"')
            item.top_k = _top_k_of(entry.get("parameters"), default, n_classes,
                                   f"images[{i}].parameters")
            item.data = decode_base64(entry["image_in_base64"])
        except ValueError as exc:
            item.error = str(exc)
    return items


def response_status(answers: list[dict[str, Any]]) -> int:
    """200 when at least one image was scored; 400 when every image failed."""
    return 200 if any("error" not in a for a in answers) else 400


def header_pixels(data: bytes) -> int | None:
    """Width x height as the image's header declares it (nothing is decoded); None if unreadable.

    Example:
        >>> buffer = io.BytesIO(); Image.new("L", (7000, 7000)).save(buffer, "PNG")
        >>> header_pixels(buffer.getvalue()), header_pixels(b"not an image")
        (49000000, None)
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Exception:  # noqa: BLE001 - any unreadable header: the decode reports it per item
        return None
    return int(width) * int(height)


def check_pixel_budget(items: list[ScoreItem], max_request_pixels: int | None,
                       max_pixels: int | None = DEFAULT_MAX_PIXELS) -> int:
    """Refuse (413) a request whose images total over ``max_request_pixels``; returns the total.

    Sizes come from the image headers, before anything is decoded. An image with no readable
    header or over the per-image limit ``max_pixels`` is not counted: it is refused on its own,
    without decoding, and its siblings are still scored.

    Example:
        >>> buffer = io.BytesIO(); Image.new("L", (7000, 7000)).save(buffer, "PNG")
        >>> items = [ScoreItem(index=i, data=buffer.getvalue()) for i in range(3)]
        >>> check_pixel_budget(items, max_request_pixels=100_000_000)
        Traceback (most recent call last):
        ...
        cvkit.serving.protocol.RequestError: the images of this request total 147000000 pixels, over the per-request budget of 100000000 pixels (max_request_pixels, 100 MP): send fewer or smaller images per request
    """
    total = 0
    for item in items:
        if item.data is None:
            continue
        pixels = header_pixels(item.data)
        if pixels is None or (max_pixels is not None and pixels > max_pixels):
            continue
        total += pixels
    if max_request_pixels is not None and total > max_request_pixels:
        raise RequestError(f"the images of this request total {total} pixels, over the per-request "
                           f"budget of {max_request_pixels} pixels (max_request_pixels, "
                           f"{max_request_pixels / 1e6:g} MP): send fewer or smaller images per "
                           "request", status_code=413)
    return total


def decode_items(items: list[ScoreItem], model: Any, max_pixels: int | None = DEFAULT_MAX_PIXELS
                 ) -> list[np.ndarray | None]:
    """Decode each item's bytes at the model's input size (None where it failed).

    A failure becomes the item's ``error``; the bytes are dropped once decoded.
    """
    out: list[np.ndarray | None] = []
    for item in items:
        if item.data is None:
            out.append(None)
            continue
        try:
            out.append(decode_image(item.data, model, max_pixels=max_pixels))
        except ImageReadError as exc:
            item.error = exc.reason
            out.append(None)
        finally:
            item.data = None
    return out


def build_answers(items: list[ScoreItem], proba: np.ndarray, scored: list[int],
                  class_names: list[str]) -> list[dict[str, Any]]:
    """One answer per item, in order: ``proba[j]`` belongs to item ``scored[j]``; others get errors."""
    answers: list[dict[str, Any]] = [{} for _ in items]
    for row, i in zip(proba, scored):
        answer = format_prediction(row, class_names, items[i].top_k)
        if "error" in answer:
            answers[i] = item_error(i, answer["error"], items[i].name)
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


# ---------------------------------------------------------------------- OpenAPI description
#: A real 8x8 PNG, base64: the example request of the OpenAPI schema (so generated requests score).
EXAMPLE_IMAGE_BASE64 = ("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8ISfHgA0wMeAAg1MCANDKARQfGKMRA"
                        "AAAAElFTkSuQmCC")

_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
_TOP_K = {"type": "integer", "minimum": 1, "description": "how many best classes to list (clipped "
                                                         "to the number of classes)"}
_PARAMETERS = {"type": "object", "properties": {"top_k": _TOP_K}}
_ANSWER = {"type": "object", "required": ["index"], "properties": {
    "index": {"type": "integer", "minimum": 0},
    "filename": {"type": "string"},
    "label": {"type": "string"},
    "score": {"type": "number"},
    "scores": {"type": "object", "additionalProperties": {"type": "number"}},
    "top_k": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "score": {"type": "number"}}}},
    "error": {"type": "string"}}}
_PREDICTIONS = {"type": "object", "required": ["predictions"], "properties": {
    "predictions": {"type": "array", "items": _ANSWER},
    "model_version": {"type": ["string", "integer", "null"]},
    "detail": {"type": "string"}}}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a ``{"detail": "..."}`` refusal."""
    return _json_response(description, _ERROR)


def score_openapi(max_images: int = DEFAULT_MAX_IMAGES) -> dict[str, Any]:
    """The OpenAPI operation fields of ``POST /score``: its two request bodies and its answers.

    The endpoint reads the raw request itself (so hostile bodies get cvkit's own 4xx answers), so
    FastAPI cannot infer this; schema-driven clients and fuzzers read it from ``/openapi.json``.

    Example:
        >>> sorted(score_openapi()["requestBody"]["content"])
        ['application/json', 'multipart/form-data']
    """
    item = {"type": "object", "required": ["image_in_base64"], "properties": {
        "image_in_base64": {"type": "string", "contentEncoding": "base64",
                            "description": "the image file's bytes (JPEG, PNG, ...), base64"},
        "parameters": _PARAMETERS}}
    json_body = {"type": "object", "required": ["images"], "properties": {
        "images": {"type": "array", "minItems": 1, "maxItems": max_images, "items": item},
        "parameters": _PARAMETERS}}
    form = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "array", "maxItems": max_images,
                  "items": {"type": "string", "format": "binary"}},
        "top_k": _TOP_K}}
    example = {"images": [{"image_in_base64": EXAMPLE_IMAGE_BASE64, "parameters": {"top_k": 2}}]}
    return {
        "parameters": [{"name": "top_k", "in": "query", "required": False, "schema": _TOP_K}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": json_body, "example": example},
            "multipart/form-data": {"schema": form}}},
        "responses": {
            "200": _json_response("one answer per image, in order; failed images carry an error",
                                  _PREDICTIONS),
            "400": _json_response("malformed request, or no image could be scored",
                                  {**_PREDICTIONS, "required": ["detail"]}),
            "401": error_response("missing or wrong API key"),
            "408": error_response("the request body did not arrive in time"),
            "413": error_response("body, image count or pixel budget over the service's limits"),
            "415": error_response("unsupported Content-Type"),
            "500": error_response("the model itself failed"),
            "503": error_response("the model is still loading (or failed to load)"),
        },
    }
