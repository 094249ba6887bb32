"""The wire format of ``POST /score`` and ``run()``: parsing requests, shaping answers.

JSON requests have the shape cvtk's clients sent::

    {"images": [{"image_in_base64": "<base64 JPEG/PNG bytes>", "parameters": {"top_k": 3}}, ...],
     "parameters": {"top_k": 3}}          # optional default for every image

Answers are ``{"predictions": [...]}`` with one entry per image, in order: ``label``, ``score``,
``scores`` (by class), ``top_k``, or ``error`` for an image that could not be scored.

Only bytes carried *in* the request are ever scored: an item naming a URL or a file path is
answered with an error, never fetched or opened.

Example:
    >>> items = parse_json_request(b'{"images": [{"image_in_base64": "aGk="}]}', n_classes=4)
    >>> items[0].data, items[0].top_k
    (b'hi', 3)
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from cvkit.data.images import ImageReadError
from cvkit.models.inference import DEFAULT_MAX_PIXELS, DEFAULT_TOP_K, check_top_k, decode_image, format_prediction

__all__ = ["RequestError", "ScoreItem", "parse_json_request", "item_error", "response_status",
           "decode_items", "build_answers", "response_body", "DEFAULT_MAX_IMAGES"]

#: Most images one request may carry.
DEFAULT_MAX_IMAGES = 64

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


def _top_k_of(parameters: Any, default: int, n_classes: int, field: str) -> int:
    if parameters is None:
        return default
    if not isinstance(parameters, Mapping):
        raise ValueError(f"{field} must be an object such as {{\"top_k\": 3}}")
    if "top_k" not in parameters:
        return default
    return check_top_k(parameters["top_k"], n_classes, field=f"{field}.top_k")


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
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(f"request body is not valid JSON: {exc}") from None
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
