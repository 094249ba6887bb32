"""Azure-ML-style entry script: ``init()`` loads the model once, ``run(raw_json)`` scores a request.

This is the shape Azure ML's deployment tutorial asks for (a ``score.py`` with ``init`` and
``run``), so a cvkit model folder can be deployed there, or behind any host that calls these two
functions. It uses the same request formats and code path as the web service
(:mod:`cvkit.serving._protocol` and :mod:`cvkit.models._inference`): cvkit's ``{"images": [...]}``,
cvtk's bare list, Azure ML's usual ``{"data": [...]}`` (base64 strings or cvkit items) and TF
Serving's ``{"instances": [{"b64": ...}]}`` (answered ``{"predictions": [[probabilities]]}``).

The model folder is ``init``'s argument, else ``$CVKIT_MODEL_DIR``, else ``$AZUREML_MODEL_DIR``
(that folder itself, or the one sub-folder in it holding a ``metadata.json``).

A hostile request is answered, never raised: JSON nested too deeply, an integer too long to
convert, or images over the per-request pixel budget give ``{"detail": ..., "status_code": 4xx}``.

Example:
    >>> import base64, json, tempfile
    >>> import cvkit
    >>> from cvkit.serving import azureml_entry
    >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> model_dir = os.path.join(tempfile.mkdtemp(), "model")
    >>> _ = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train).save(model_dir)
    >>> azureml_entry.init(model_dir)
    >>> with open("sample_data/bird/owl.jpg", "rb") as f:
    ...     image = base64.b64encode(f.read()).decode()
    >>> answer = azureml_entry.run(json.dumps({"images": [{"image_in_base64": image}]}))
    >>> answer["predictions"][0]["label"]
    'bird'
    >>> answer = azureml_entry.run(json.dumps({"data": [image]}))   # Azure ML's convention
    >>> answer["predictions"][0]["label"]
    'bird'
    >>> azureml_entry.run('{"images": ' + "[" * 5000 + "]" * 5000 + "}")["status_code"]
    400
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cvkit.models import _inference as inference
from cvkit.options import RunOptions
from cvkit.serving._decoding import check_pixel_budget, decode_items
from cvkit.serving._protocol import (
    DEFAULT_MAX_IMAGES,
    DEFAULT_MAX_REQUEST_PIXELS,
    RequestError,
    build_answers,
    parse_request,
    response_for,
)

__all__ = ["init", "run", "find_model_dir"]

model: Any = None


def find_model_dir(model_dir: str | os.PathLike | None = None) -> Path:
    """Where the model folder is: the argument, ``$CVKIT_MODEL_DIR`` or under ``$AZUREML_MODEL_DIR``."""
    if model_dir is not None:
        return Path(model_dir)
    if os.environ.get("CVKIT_MODEL_DIR"):
        return Path(os.environ["CVKIT_MODEL_DIR"])
    root = os.environ.get("AZUREML_MODEL_DIR")
    if not root:
        raise RuntimeError("no model folder: pass init(model_dir) or set CVKIT_MODEL_DIR "
                           "(or AZUREML_MODEL_DIR)")
    root_path = Path(root)
    if (root_path / "metadata.json").is_file():
        return root_path
    found = sorted(p.parent for p in root_path.glob("*/metadata.json"))
    if len(found) == 1:
        return found[0]
    raise RuntimeError(f"{root_path}: expected one cvkit model folder (with metadata.json) in "
                       f"AZUREML_MODEL_DIR, found {len(found)}")


def init(model_dir: str | os.PathLike | None = None, runtime: str | None = None,
         precision: str | None = None) -> None:
    """Load the model once per process (Azure ML calls this when the container starts).

    ``runtime`` and ``precision`` as for :func:`cvkit.load_model`; those not given come from the
    environment as everywhere in cvkit (:meth:`cvkit.options.RunOptions.from_env`):
    ``$CVKIT_RUNTIME`` (else ``"auto"``: LiteRT when installed), ``$CVKIT_PRECISION`` (else
    ``"float32"``) and ``$CVKIT_NUM_THREADS`` (else every core the process may use); a bad value
    is an error naming its variable.
    """
    global model
    from cvkit.models._folder import load_model

    options = RunOptions.from_env(runtime=runtime, precision=precision)
    model = load_model(find_model_dir(model_dir), runtime=options.runtime, precision=options.precision,
                       num_threads=options.num_threads)
    width, height = inference.input_size(model)
    inference.predict_proba(model, np.zeros((1, height, width, 3), np.uint8))  # warm up


def run(raw_data: str | bytes | Mapping[str, Any], max_images: int = DEFAULT_MAX_IMAGES,
        max_pixels: int = inference.DEFAULT_MAX_PIXELS,
        max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS) -> dict[str, Any]:
    """Score a JSON request ``{"images": [{"image_in_base64": ..., "parameters": {"top_k": 3}}]}``
    (or any shape :func:`~cvkit.serving._protocol.parse_request` understands: cvtk's bare list,
    ``{"data": [...]}``, TF Serving's ``{"instances": [{"b64": ...}]}``).

    Returns the same JSON-ready dict as the web service's ``POST /score``: ``{"predictions": [...]}``
    with one answer or error per image, plus ``detail`` when nothing could be scored (TF Serving
    requests: ``{"predictions": [[class probabilities], ...]}``, or ``{"error": ..., "detail": ...,
    "status_code": 400}`` when an image fails). A malformed request gives ``{"detail": "...",
    "status_code": 400}`` (413 over ``max_images`` or ``max_request_pixels``) rather than an
    exception, so a hosting runtime can pass it straight back.
    """
    if model is None:
        raise RuntimeError("call init() before run()")
    names = inference.classes(model)
    try:
        request = parse_request(raw_data, len(names), max_images=max_images)
    except RequestError as exc:
        return {**exc.body(), "status_code": exc.status_code}
    items = request.items
    try:
        check_pixel_budget(items, max_request_pixels, max_pixels)
    except RequestError as exc:
        exc.convention = request.convention  # TF Serving's requests get its "error" field too
        return {**exc.body(), "status_code": exc.status_code}
    pixels = decode_items(items, model, max_pixels=max_pixels)
    scored = [i for i, p in enumerate(pixels) if p is not None]
    proba, novelty = inference.predict_outputs(model, np.stack([pixels[i] for i in scored])) if scored else \
        (np.zeros((0, len(names)), np.float32), None)
    rule = inference.decision_rule(model)
    answers = build_answers(items, proba, scored, names, rule, novelty)
    version = (getattr(model, "metadata_", None) or {}).get("model_version")
    status, body = response_for(request, answers, names, version, rule.unknown_cut is not None)
    if request.convention == "tfserving" and status != 200:
        body["status_code"] = status
    return body
