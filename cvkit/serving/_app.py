"""The scoring web service: a FastAPI app around one loaded model.

Endpoints:

- ``POST /score``: multipart image uploads (one or many files) or JSON
  ``{"images": [{"image_in_base64": "...", "parameters": {"top_k": 3}}]}``. Answers
  ``{"predictions": [...]}``, one entry per image in order (see :mod:`cvkit.serving._protocol`).
  One bad image gets an ``error`` and its siblings are still scored (200); when no image could be
  scored the answer is 400 and each error names its item (``images[0]: ...``). Clients of the
  systems cvkit replaces work unchanged: cvtk's bare list, Azure ML's ``{"data": ...}`` and TF
  Serving's ``{"instances": [{"b64": ...}]}`` (answered in TF Serving's shape).
- ``POST /v1/models/{name}:predict`` and ``GET /v1/models/{name}``: TF Serving's REST predict and
  model-status routes; ``name`` is ``model_name`` (default: the model folder's name), any other
  name is a 404.
- ``GET /health`` (and ``HEAD /health``): 200 once the model is loaded and warmed up, 503 while
  loading (or if loading failed). Always open, so load balancers can probe it without a key. Its
  ``pid`` names the worker process that answered (``cvkit serve --workers N`` runs N of them).
- ``GET /metadata``: classes, input size, backbone, model version, the runtime and precision
  that run the model (``runtime``: ``litert`` or ``keras``), limits.
- ``GET /openapi.json``, ``/docs``, ``/redoc``: the API description (``docs=False`` turns them off).

Safety (every refusal is a 4xx naming the limit or the field, never a 500):

- the request body is capped (default 10 MB, 413 beyond) and must arrive within ``body_timeout``
  seconds of its headers (default 30 s, 408 after);
- images above :data:`~cvkit.models._inference.DEFAULT_MAX_PIXELS` (50 MP) are refused one by one
  (decompression bombs), and a request's images together may hold at most ``max_request_pixels``
  (default 100 MP, 413 beyond), counted from their headers before anything is decoded;
- JSON nested too deeply, or with integers too long to convert, is a 400 naming the field;
- an optional bearer API key guards ``/score``, ``/metadata`` and the API description (401);
- only bytes sent in the request are scored: the service never fetches a URL or opens a path
  named in a request.

Slow or idle connections (headers that never finish, too many sockets) are the HTTP server's
business: :func:`cvkit.serving._server.serve` runs uvicorn with a header timeout and a connection
limit (see :mod:`cvkit.serving._server`).

Concurrent requests are micro-batched into shared model calls (:mod:`cvkit.serving._microbatch`).

Example:
    >>> import cvkit
    >>> from fastapi.testclient import TestClient
    >>> train, _ = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False, random_state=0).fit(train)
    >>> with TestClient(create_app(clf, api_key="s3cret")) as client:
    ...     while client.get("/health").status_code != 200:
    ...         time.sleep(0.1)
    ...     with open("sample_data/bird/owl.jpg", "rb") as image:
    ...         answer = client.post("/score", files={"image": image},
    ...                              headers={"Authorization": "Bearer s3cret"}).json()
    >>> answer["predictions"][0]["label"]
    'bird'
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cvkit.models import _inference as inference
from cvkit.serving._config import DEFAULT_MAX_REQUEST_BYTES, ServiceConfig
from cvkit.serving._connections import DEFAULT_BODY_TIMEOUT, BodySizeLimit
from cvkit.serving._decoding import check_pixel_budget, decode_items
from cvkit.serving._microbatch import MicroBatcher
from cvkit.serving._openapi import error_response, model_status_openapi, predict_openapi, score_openapi
from cvkit.serving._protocol import (
    RequestError,
    ScoreItem,
    ScoreRequest,
    build_answers,
    parse_request,
    parse_top_k,
    response_for,
)

__all__ = ["ServiceConfig", "create_app", "create_app_from_env", "BodySizeLimit",
           "DEFAULT_MAX_REQUEST_BYTES", "DEFAULT_BODY_TIMEOUT"]

log = logging.getLogger("cvkit.serving")

_FORBIDDEN_FORM_FIELDS = ("url", "image_url", "uri", "path", "image_path")


class _Service:
    """What the endpoints share: the model (once loaded), its batcher and the config."""

    def __init__(self, model: Any, config: ServiceConfig):
        self.config = config
        self.model: Any = None if isinstance(model, (str, os.PathLike)) else model
        self.model_dir = os.fspath(model) if isinstance(model, (str, os.PathLike)) else \
            getattr(model, "path_", None)
        self.load_error: str | None = None
        self.ready = False
        self.started = time.time()
        self.batcher = MicroBatcher(self._predict, max_batch_size=config.max_batch_size,
                                    max_wait_ms=config.max_wait_ms)
        folder = os.path.basename(os.path.normpath(os.fspath(self.model_dir))) if self.model_dir \
            else ""
        self.model_name = config.model_name or (folder if re.fullmatch(r"[\w.-]+", folder)
                                                else "model")

    def _predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities, with the novelty score as one more column for a model that has one (the
        micro-batcher hands back rows; :func:`split_outputs` takes them apart)."""
        proba, novelty = inference.predict_outputs(self.model, images)
        return proba if novelty is None else np.column_stack([proba, novelty])

    def load(self) -> None:
        """Load (if given a folder) and warm up the model; runs on a worker thread."""
        try:
            if self.model is None:
                from cvkit.models._folder import load_model
                options = self.config.run_options
                self.model = load_model(self.model_dir, runtime=options.runtime, precision=options.precision,
                                        num_threads=options.num_threads)
            self.classes = inference.classes(self.model)
            self.input_size = inference.input_size(self.model)
            if self.config.warmup:
                width, height = self.input_size
                inference.predict_proba(self.model, np.zeros((1, height, width, 3), np.uint8))
            self.ready = True
            log.info("model ready: %d classes, input %sx%s, runs on %s", len(self.classes), *self.input_size,
                     getattr(self.model, "runtime_", "python"))
        except Exception as exc:  # noqa: BLE001 - reported by /health
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("could not load the model from %s: %s", self.model_dir, self.load_error)

    def metadata(self) -> dict[str, Any]:
        meta = dict(getattr(self.model, "metadata_", None) or {})
        width, height = self.input_size
        return {
            "classes": list(self.classes),
            "input_size": [width, height],
            "backbone": meta.get("backbone", getattr(self.model, "backbone", None)),
            "model_version": meta.get("model_version"),
            "method": meta.get("method"),
            "head": meta.get("head"),
            "created": meta.get("created"),
            "format": meta.get("format"),
            "format_version": meta.get("format_version"),
            "preprocessing": meta.get("preprocessing"),
            "model_name": self.model_name,
            "runtime": getattr(self.model, "runtime_", None),
            "precision": getattr(self.model, "precision_", None),
            "decision": inference.decision_rule(self.model).to_metadata(),
            "novelty": meta.get("novelty"),
            "limits": {"max_request_bytes": self.config.max_request_bytes,
                       "max_images": self.config.max_images,
                       "max_pixels": self.config.max_pixels,
                       "max_request_pixels": self.config.max_request_pixels,
                       "max_batch_size": self.config.max_batch_size},
        }


def split_outputs(out: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(probabilities, novelty or None)`` of :meth:`Service._predict`'s rows.

    Example:
        >>> proba, novelty = split_outputs(np.array([[0.2, 0.8, 5.0]]), 2)
        >>> proba.tolist(), novelty.tolist()
        ([[0.2, 0.8]], [5.0])
    """
    out = np.asarray(out)
    if out.ndim == 2 and out.shape[1] == n_classes + 1:
        return out[:, :n_classes], out[:, n_classes]
    return out, None


# ---------------------------------------------------------------------- the app
def create_app(model: Any, config: ServiceConfig | None = None, **fields: Any):
    """Build the FastAPI app serving ``model`` (a model folder, or a model already loaded).

    Settings are a :class:`ServiceConfig`, or its fields as keywords (``create_app(model,
    api_key="k")``), or both (the keywords replace the config's values); a keyword that is not a
    field is a ``TypeError`` naming it. The environment is not read here: that is
    :func:`create_app_from_env`. Given a folder, the model loads on a background thread at
    start-up, so ``/health`` answers 503 ("loading") at once and 200 when ready.

    Example:
        >>> import tempfile
        >>> model_dir = tempfile.mkdtemp()   # stands for a saved model folder: it loads when the app starts
        >>> app = create_app(model_dir, api_key="k", max_request_pixels=20_000_000)
        >>> app.state.config.max_request_pixels, app.state.config.api_key
        (20000000, 'k')
        >>> create_app(model_dir, max_request_pixel=1)
        Traceback (most recent call last):
        ...
        TypeError: create_app got unknown service option(s): max_request_pixel
    """
    ServiceConfig.check_fields(fields, owner="create_app")
    config = ServiceConfig(**fields) if config is None else dataclasses.replace(config, **fields)
    if isinstance(model, (str, os.PathLike)) and not os.path.isdir(model):
        raise FileNotFoundError(f"{os.fspath(model)}: model folder not found")
    service = _Service(model, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.batcher.start()
        loader = asyncio.get_running_loop().run_in_executor(None, service.load)
        app.state.loader = loader
        try:
            yield
        finally:
            await service.batcher.stop()
            stats = service.batcher.stats
            print(f"cvkit: scoring service stopped after {stats.requests} scored request(s), "
                  f"{stats.images} image(s) in {stats.batches} model call(s)", file=sys.stderr,
                  flush=True)

    # The API description is served by routes of our own, so the API key can guard it.
    app = FastAPI(title="cvkit image scoring", version="1", lifespan=lifespan,
                  summary="Classify images with a cvkit model.", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.service = service
    app.state.config = config
    _add_service_routes(app, service)
    if config.docs:
        _add_docs_routes(app, service)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes, timeout=config.body_timeout)
    return app


def _refusal(service: _Service, request: Request, need_ready: bool = True) -> JSONResponse | None:
    """401 without the right API key, 503 while the model is not ready; None when all is well."""
    key = service.config.api_key
    if key is not None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 str(key).encode()):
            return JSONResponse({"detail": "missing or wrong API key: send "
                                           "'Authorization: Bearer <key>'"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
    if not need_ready or service.ready:
        return None
    if service.load_error:
        return JSONResponse({"detail": f"model failed to load: {service.load_error}"}, status_code=503)
    return JSONResponse({"detail": "model is loading; retry shortly"}, status_code=503,
                        headers={"Retry-After": "1"})


_HEALTH = {"type": "object", "required": ["status", "ready"], "properties": {
    "status": {"type": "string", "enum": ["ok", "loading", "error"]}, "ready": {"type": "boolean"},
    "pid": {"type": "integer"}, "uptime_s": {"type": "number"}, "batching": {"type": "object"},
    "detail": {"type": "string"}}}


def _add_service_routes(app: FastAPI, service: _Service) -> None:
    """``/health``, ``/metadata`` and ``/score``."""
    health_doc = {"content": {"application/json": {"schema": _HEALTH}}}

    health_responses = {200: {"description": "the model is loaded and warmed up", **health_doc},
                        503: {"description": "loading, or the model failed to load", **health_doc}}

    @app.head("/health", operation_id="health_head", responses=health_responses)
    @app.get("/health", operation_id="health", responses=health_responses)
    async def health() -> JSONResponse:
        """Liveness and readiness: 200 when the model is loaded, 503 while loading or after failure."""
        body: dict[str, Any] = {"pid": os.getpid(),  # which worker answered (with --workers N)
                                "uptime_s": round(time.time() - service.started, 1),
                                "batching": service.batcher.stats.as_dict()}
        if service.ready:
            return JSONResponse({"status": "ok", "ready": True, **body})
        if service.load_error:
            return JSONResponse({"status": "error", "ready": False, "detail": service.load_error,
                                 **body}, status_code=503)
        return JSONResponse({"status": "loading", "ready": False, **body}, status_code=503)

    @app.get("/metadata", responses={
        200: {"description": "classes, input size, backbone, version and limits",
              "content": {"application/json": {"schema": {"type": "object", "required": ["classes"]}}}},
        401: error_response("missing or wrong API key"),
        503: error_response("the model is still loading (or failed to load)")})
    async def metadata(request: Request) -> JSONResponse:
        """The model's classes, input size, backbone and version, and the service's limits."""
        return _refusal(service, request) or JSONResponse(service.metadata())

    @app.post("/score", openapi_extra=score_openapi(service.config.max_images))
    async def score(request: Request) -> JSONResponse:
        """Score uploaded images (multipart files or JSON base64); see the module docstring."""
        return _refusal(service, request) or await _score(service, request)

    _add_tfserving_routes(app, service)


def _tf_error(message: str, status_code: int) -> JSONResponse:
    """A refusal in TF Serving's shape (``error``) that also carries cvkit's ``detail``."""
    return JSONResponse({"error": message, "detail": message}, status_code=status_code)


def _unknown_model(service: _Service, name: str) -> JSONResponse | None:
    if name == service.model_name:
        return None
    return _tf_error(f"no model named {name!r} here: this service serves {service.model_name!r} "
                     f"(POST /v1/models/{service.model_name}:predict)", 404)


def _add_tfserving_routes(app: FastAPI, service: _Service) -> None:
    """TF Serving's REST routes: ``POST /v1/models/{name}:predict``, ``GET /v1/models/{name}``."""
    name = service.model_name

    @app.post("/v1/models/{name}:predict", operation_id="tfserving_predict",
              openapi_extra=predict_openapi(name, service.config.max_images))
    async def predict(request: Request) -> JSONResponse:
        """TF Serving's predict API: ``{"instances": [{"b64": ...}]}`` (or ``{"inputs": ...}``),
        answered ``{"predictions": [[class probabilities], ...]}``."""
        refusal = _refusal(service, request, need_ready=False) or \
            _unknown_model(service, request.path_params["name"])
        if refusal is None and not service.ready:
            refusal = _refusal(service, request)
        return refusal or await _score(service, request, tfserving=True)

    @app.get("/v1/models/{name}", operation_id="tfserving_model_status",
             openapi_extra=model_status_openapi(name))
    async def model_status(request: Request) -> JSONResponse:
        """TF Serving's model status: ``AVAILABLE`` once loaded, ``LOADING``, or ``END`` (failed)."""
        refusal = _refusal(service, request, need_ready=False) or \
            _unknown_model(service, request.path_params["name"])
        if refusal:
            return refusal
        state, code, message = ("AVAILABLE", "OK", "") if service.ready else \
            ("END", "UNKNOWN", service.load_error) if service.load_error else ("LOADING", "OK", "")
        version = (getattr(service.model, "metadata_", None) or {}).get("model_version")
        return JSONResponse({"model_version_status": [{
            "version": str(version if version is not None else 1), "state": state,
            "status": {"error_code": code, "error_message": message}}]})


def _add_docs_routes(app: FastAPI, service: _Service) -> None:
    """``/openapi.json``, ``/docs`` and ``/redoc``, behind the API key when there is one."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> Response:
        return _refusal(service, request, need_ready=False) or JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        return _refusal(service, request, need_ready=False) or \
            get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> Response:
        return _refusal(service, request, need_ready=False) or \
            get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


async def _read_request(service: _Service, request: Request, tfserving: bool = False
                        ) -> ScoreRequest:
    """The request's images; raises :class:`RequestError` (or ValueError) for a bad request."""
    config, n_classes = service.config, len(service.classes)
    default_k = config.default_top_k
    if "top_k" in request.query_params and not tfserving:
        default_k = parse_top_k(request.query_params["top_k"], n_classes, field="query parameter top_k")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data" and not tfserving:
        parsed = ScoreRequest(await _parse_multipart(request, n_classes, default_k,
                                                     config.max_images))
    elif content_type in ("application/json", "text/json", "") or content_type.endswith("+json") \
            or (tfserving and content_type == "application/x-www-form-urlencoded"):
        # TF Serving reads any body as JSON, and its documented clients use curl -d (form type)
        parsed = parse_request(await request.body(), n_classes, default_k, config.max_images)
    else:
        hint = " (curl -d sends it: add -H 'Content-Type: application/json')" \
            if content_type == "application/x-www-form-urlencoded" else ""
        raise RequestError(f"unsupported Content-Type {content_type!r}: send "
                           + ("application/json" if tfserving else
                              "multipart/form-data files or application/json") + hint,
                           status_code=415)
    if tfserving and parsed.convention != "tfserving":
        raise RequestError('this is TF Serving\'s predict route: send {"instances": [{"b64": '
                           '"..."}]} or {"inputs": ...}; other request shapes go to POST /score')
    try:
        await run_in_threadpool(check_pixel_budget, parsed.items, config.max_request_pixels,
                                config.max_pixels)
    except RequestError as exc:
        exc.convention = parsed.convention  # TF Serving's requests get its "error" field too
        raise
    return parsed


async def _score(service: _Service, request: Request, tfserving: bool = False) -> JSONResponse:
    """``POST /score`` (or TF Serving's predict route) once the key and readiness are checked."""
    try:
        parsed = await _read_request(service, request, tfserving)
    except RequestError as exc:
        if tfserving:
            exc.convention = "tfserving"
        return JSONResponse(exc.body(), status_code=exc.status_code)
    except ValueError as exc:
        return _tf_error(str(exc), 400) if tfserving else \
            JSONResponse({"detail": str(exc)}, status_code=400)

    items = parsed.items
    with service.batcher.incoming():  # lets a forming batch wait for these images
        pixels = await run_in_threadpool(decode_items, items, service.model, service.config.max_pixels)
    scored = [i for i, p in enumerate(pixels) if p is not None]
    out = np.zeros((0, len(service.classes)), np.float32)
    if scored:
        try:
            out = await service.batcher.submit(np.stack([pixels[i] for i in scored]))
        except Exception as exc:  # noqa: BLE001
            log.exception("scoring failed")
            message = f"the model failed on this request: {type(exc).__name__}: {exc}"
            return _tf_error(message, 500) if parsed.convention == "tfserving" else \
                JSONResponse({"detail": message}, status_code=500)
    proba, novelty = split_outputs(out, len(service.classes))
    rule = inference.decision_rule(service.model)
    answers = build_answers(items, proba, scored, service.classes, rule, novelty)
    version = (getattr(service.model, "metadata_", None) or {}).get("model_version")
    status, body = response_for(parsed, answers, service.classes, version, rule.unknown_cut is not None)
    return JSONResponse(body, status_code=status)


async def _parse_multipart(request: Any, n_classes: int, default_k: int, max_images: int
                           ) -> list[ScoreItem]:
    """Every uploaded file is one image, in order; an optional ``top_k`` field applies to all."""
    from starlette.datastructures import UploadFile

    try:
        form = await request.form(max_files=max_images + 1, max_fields=32)
    except Exception as exc:  # starlette raises MultiPartException, or HTTPException wrapping it
        detail = str(getattr(exc, "detail", None) or getattr(exc, "message", None) or exc)
        if detail.lower().startswith("too many files"):
            raise RequestError(f"too many files; at most {max_images} per request",
                               status_code=413) from None
        raise RequestError(f"malformed multipart form: {detail}") from None
    try:
        files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        for key in fields:
            if key.lower() in _FORBIDDEN_FORM_FIELDS:
                raise RequestError(f"form field {key!r} is not accepted: this service scores only "
                                   "uploaded image files; it never fetches URLs or reads files on "
                                   "the server")
        if "top_k" in fields:
            default_k = parse_top_k(fields["top_k"], n_classes, field="form field top_k")
        if not files:
            raise RequestError("no image files in the multipart form: upload one or more files "
                               "(any field name, e.g. 'image')")
        if len(files) > max_images:
            raise RequestError(f"{len(files)} files uploaded; at most {max_images} per request",
                               status_code=413)
        items = []
        for i, (_, upload) in enumerate(files):
            data = await upload.read()
            item = ScoreItem(index=i, data=data, top_k=default_k, name=upload.filename or None)
            if not data:
                item.error, item.data = "empty file (0 bytes)", None
            items.append(item)
        return items
    finally:
        await form.close()


def create_app_from_env(environ: Mapping[str, str] | None = None):
    """App factory for ``uvicorn --factory`` and multi-worker serving: the settings of ``environ``
    (default ``os.environ``).

    ``CVKIT_MODEL_DIR`` (required) names the model folder; every :class:`ServiceConfig` field is
    read from its variable (:meth:`ServiceConfig.from_env`): ``CVKIT_API_KEY``,
    ``CVKIT_MAX_BATCH_SIZE``, ``CVKIT_DOCS`` (``0`` turns the API description off),
    ``CVKIT_MODEL_NAME``, ``CVKIT_RUNTIME``, ``CVKIT_PRECISION``, ``CVKIT_NUM_THREADS``, ...

    Example:
        >>> import tempfile
        >>> app = create_app_from_env({"CVKIT_MODEL_DIR": tempfile.mkdtemp(), "CVKIT_MAX_IMAGES": "4"})
        >>> app.state.config.max_images
        4
    """
    environ = os.environ if environ is None else environ
    model_dir = environ.get("CVKIT_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("set CVKIT_MODEL_DIR to the model folder to serve")
    return create_app(model_dir, ServiceConfig.from_env(environ))
