"""The OpenAPI description of the scoring routes (``/openapi.json``, ``/docs``).

The endpoints read the raw request themselves (so hostile bodies get cvkit's own 4xx answers), so
FastAPI cannot infer their bodies; these functions describe them, every request shape of
:mod:`cvkit.serving._protocol` included, for schema-driven clients and fuzzers.

Example:
    >>> [sorted(s["required"]) if "required" in s else s["type"]
    ...  for s in score_openapi()["requestBody"]["content"]["application/json"]["schema"]["anyOf"]]
    [['images'], 'array', ['data'], ['instances'], ['inputs']]
"""
from __future__ import annotations

from typing import Any

from cvkit.serving._protocol import DEFAULT_MAX_IMAGES

__all__ = ["EXAMPLE_IMAGE_BASE64", "error_response", "score_openapi", "predict_openapi",
           "model_status_openapi"]

#: A real 8x8 PNG, base64: the example request of the OpenAPI schema (so generated requests score).
EXAMPLE_IMAGE_BASE64 = ("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFUlEQVR42mM8ISfHgA0wMeAAg1MCANDKARQfGKMRA"
                        "AAAAElFTkSuQmCC")

_ERROR = {"type": "object", "required": ["detail"], "properties": {
    "detail": {"type": "string"}, "error": {"type": "string"}}}
_TOP_K = {"type": "integer", "minimum": 1, "description": "how many best classes to list (clipped "
                                                         "to the number of classes)"}
_PARAMETERS = {"type": "object", "properties": {"top_k": _TOP_K}}
_BASE64 = {"type": "string", "contentEncoding": "base64",
           "description": "the image file's bytes (JPEG, PNG, ...), base64"}
_ITEM = {"type": "object", "required": ["image_in_base64"], "properties": {
    "image_in_base64": _BASE64, "parameters": _PARAMETERS}}
_B64 = {"type": "object", "required": ["b64"], "properties": {"b64": _BASE64}}
_ANSWER = {"type": "object", "required": ["index"], "properties": {
    "index": {"type": "integer", "minimum": 0},
    "filename": {"type": "string"},
    "label": {"type": "string", "description": "a class, or the model's 'no decision' / 'unknown' answer"},
    "decision": {"type": "string", "enum": ["label", "no_decision", "unknown"],
                 "description": "what the label is (given when the model has thresholds or an unknown cut)"},
    "rule": {"type": "string", "description": "the decision rule applied, in words"},
    "novelty": {"type": "number", "description": "how unlike the training photos (models with a novelty score)"},
    "score": {"type": "number"},
    "scores": {"type": "object", "additionalProperties": {"type": "number"}},
    "top_k": {"type": "array", "items": {"type": "object", "properties": {
        "label": {"type": "string"}, "score": {"type": "number"}}}},
    "error": {"type": "string"}}}
_PREDICTIONS = {"type": "object", "required": ["predictions"], "properties": {
    "predictions": {"type": "array", "items": _ANSWER},
    "model_version": {"type": ["string", "integer", "null"]},
    "detail": {"type": "string"}}}
_ROWS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
         "description": "per image, the class probabilities in the order of /metadata's classes"}
_NAMED = {"type": "array", "items": {"type": "object", "required": ["probabilities", "novelty"], "properties": {
    "probabilities": {"type": "array", "items": {"type": "number"}}, "novelty": {"type": "number"}}},
    "description": "per image, named outputs: when the model answers 'unknown' from its novelty score"}
_NAMED_COLUMNS = {"type": "object", "required": ["probabilities", "novelty"], "properties": {
    "probabilities": _ROWS, "novelty": {"type": "array", "items": {"type": "number"}}}}
_TF_ANSWER = {"anyOf": [{"type": "object", "required": ["predictions"],
                         "properties": {"predictions": {"anyOf": [_ROWS, _NAMED]}}},
                        {"type": "object", "required": ["outputs"],
                         "properties": {"outputs": {"anyOf": [_ROWS, _NAMED_COLUMNS]}}}]}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a ``{"detail": "..."}`` refusal."""
    return _json_response(description, _ERROR)


def _tf_bodies(max_images: int) -> list[dict[str, Any]]:
    """TF Serving's predict bodies: row format (``instances``) and columnar (``inputs``)."""
    images = {"type": "array", "minItems": 1, "maxItems": max_images, "items": _B64}
    signature = {"type": "string", "description": "accepted and ignored (one signature)"}
    return [{"type": "object", "required": ["instances"],
             "properties": {"signature_name": signature, "instances": images}},
            {"type": "object", "required": ["inputs"], "properties": {
                "signature_name": signature,
                "inputs": {"anyOf": [images, {"type": "object", "minProperties": 1,
                                              "maxProperties": 1,
                                              "additionalProperties": images}]}}}]


def _common_refusals() -> dict[str, Any]:
    return {"401": error_response("missing or wrong API key"),
            "408": error_response("the request body did not arrive in time"),
            "413": error_response("body, image count or pixel budget over the service's limits"),
            "415": error_response("unsupported Content-Type"),
            "500": error_response("the model itself failed"),
            "503": error_response("the model is still loading (or failed to load)")}


def score_openapi(max_images: int = DEFAULT_MAX_IMAGES) -> dict[str, Any]:
    """The OpenAPI operation fields of ``POST /score``: its request bodies and its answers.

    JSON bodies: cvkit's ``{"images": [...]}``, cvtk's bare list, Azure ML's ``{"data": ...}``
    and TF Serving's ``{"instances": ...}`` / ``{"inputs": ...}``; or multipart files.

    Example:
        >>> sorted(score_openapi()["requestBody"]["content"])
        ['application/json', 'multipart/form-data']
    """
    images = {"type": "array", "minItems": 1, "maxItems": max_images, "items": _ITEM}
    cvkit_body = {"type": "object", "required": ["images"],
                  "properties": {"images": images, "parameters": _PARAMETERS}}
    azureml_body = {"type": "object", "required": ["data"], "properties": {
        "data": {"anyOf": [_BASE64, {"type": "array", "minItems": 1, "maxItems": max_images,
                                     "items": {"anyOf": [_BASE64, _ITEM]}}]},
        "parameters": _PARAMETERS}}
    form = {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "array", "maxItems": max_images,
                  "items": {"type": "string", "format": "binary"}},
        "top_k": _TOP_K}}
    example = {"images": [{"image_in_base64": EXAMPLE_IMAGE_BASE64, "parameters": {"top_k": 2}}]}
    json_body = {"anyOf": [cvkit_body, images, azureml_body, *_tf_bodies(max_images)],
                 "description": "cvkit's {images: [...]}; or cvtk's bare list of the same items; "
                                "or Azure ML's {data: ...}; or TF Serving's {instances: [...]} / "
                                "{inputs: ...} (answered in TF Serving's shape)"}
    return {
        "parameters": [{"name": "top_k", "in": "query", "required": False, "schema": _TOP_K}],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": json_body, "example": example},
            "multipart/form-data": {"schema": form}}},
        "responses": {
            "200": _json_response("one answer per image, in order; failed images carry an error",
                                  {"anyOf": [_PREDICTIONS, _TF_ANSWER]}),
            "400": _json_response("malformed request, or no image could be scored",
                                  {**_PREDICTIONS, "required": ["detail"]}),
            **_common_refusals()},
    }


def _name_parameter(model_name: str) -> dict[str, Any]:
    return {"name": "name", "in": "path", "required": True,
            "schema": {"type": "string", "enum": [model_name]},
            "description": "the served model's name (another name is a 404)"}


def predict_openapi(model_name: str, max_images: int = DEFAULT_MAX_IMAGES) -> dict[str, Any]:
    """The OpenAPI operation fields of TF Serving's ``POST /v1/models/{name}:predict``.

    Example:
        >>> predict_openapi("model")["parameters"][0]["schema"]
        {'type': 'string', 'enum': ['model']}
    """
    example = {"signature_name": "serving_default", "instances": [{"b64": EXAMPLE_IMAGE_BASE64}]}
    return {
        "parameters": [_name_parameter(model_name)],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"anyOf": _tf_bodies(max_images)}, "example": example}}},
        "responses": {
            "200": _json_response("per image, the class probabilities (TF Serving's shape)",
                                  _TF_ANSWER),
            "400": error_response("malformed request, or an image could not be scored"),
            "404": error_response("no model of that name here"),
            **_common_refusals()},
    }


def model_status_openapi(model_name: str) -> dict[str, Any]:
    """The OpenAPI operation fields of TF Serving's ``GET /v1/models/{name}`` (model status)."""
    status = {"type": "object", "required": ["model_version_status"], "properties": {
        "model_version_status": {"type": "array", "items": {"type": "object", "properties": {
            "version": {"type": "string"}, "state": {"type": "string"},
            "status": {"type": "object"}}}}}}
    return {
        "parameters": [_name_parameter(model_name)],
        "responses": {"200": _json_response("AVAILABLE once the model is loaded, else LOADING or "
                                            "END (failed)", status),
                      "401": error_response("missing or wrong API key"),
                      "404": error_response("no model of that name here")},
    }
