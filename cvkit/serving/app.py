"""The scoring web service: a FastAPI app around one loaded model.

Endpoints:

- ``POST /score``: multipart image uploads (one or many files) or JSON
  ``{"images": [{"image_in_base64": "...", "parameters": {"top_k": 3}}]}``. Answers
  ``{"predictions": [...]}``, one entry per image in order (see :mod:`cvkit.serving.protocol`).
  One bad image gets an ``error`` and its siblings are still scored (200); when no image could be
  scored the answer is 400 and each error names its item (``images[0]: ...``).
- ``GET /health`` (and ``HEAD /health``): 200 once the model is loaded and warmed up, 503 while
  loading (or if loading failed). Always open, so load balancers can probe it without a key. Its
  ``pid`` names the worker process that answered (``cvkit serve --workers N`` runs N of them).
- ``GET /metadata``: classes, input size, backbone, model version, limits.
- ``GET /openapi.json``, ``/docs``, ``/redoc``: the API description (``docs=False`` turns them off).

Safety (every refusal is a 4xx naming the limit or the field, never a 500):

- the request body is capped (default 10 MB, 413 beyond) and must arrive within ``body_timeout``
  seconds of its headers (default 30 s, 408 after);
- images above :data:`~cvkit.models.inference.DEFAULT_MAX_PIXELS` (50 MP) are refused one by one
  (decompression bombs), and a request's images together may hold at most ``max_request_pixels``
  (default 100 MP, 413 beyond), counted from their headers before anything is decoded;
- JSON nested too deeply, or with integers too long to convert, is a 400 naming the field;
- an optional bearer API key guards ``/score``, ``/metadata`` and the API description (401);
- only bytes sent in the request are scored: the service never fetches a URL or opens a path
  named in a request.

Slow or idle connections (headers that never finish, too many sockets) are the HTTP server's
business: :func:`cvkit.serving.server.serve` runs uvicorn with a header timeout and a connection
limit (see :mod:`cvkit.serving.server`).

Concurrent requests are micro-batched into shared model calls (:mod:`cvkit.serving.microbatch`).

Example:
    >>> from fastapi.testclient import TestClient
    >>> with TestClient(create_app(model_dir, api_key="s3cret")) as client:
    ...     while client.get("/health").status_code != 200:
    ...         time.sleep(0.1)
    ...     answer = client.post("/score", files={"image": open(photo, "rb")},
    ...                          headers={"Authorization": "Bearer s3cret"}).json()
    >>> answer["predictions"][0]["label"] in clf.classes_
    True
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cvkit.models import inference
from cvkit.serving.connections import DEFAULT_BODY_TIMEOUT, BodySizeLimit
from cvkit.serving.microbatch import MicroBatcher
from cvkit.serving.protocol import (
    DEFAULT_MAX_IMAGES,
    DEFAULT_MAX_REQUEST_PIXELS,
    RequestError,
    ScoreItem,
    build_answers,
    check_pixel_budget,
    decode_items,
    error_response,
    parse_json_request,
    parse_top_k,
    response_body,
    response_status,
    score_openapi,
)

__all__ = ["ServiceConfig", "create_app", "create_app_from_env", "BodySizeLimit",
           "DEFAULT_MAX_REQUEST_BYTES", "DEFAULT_BODY_TIMEOUT"]

log = logging.getLogger("cvkit.serving")

#: Largest request body accepted (bytes); larger requests get 413.
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024

_FORBIDDEN_FORM_FIELDS = ("url", "image_url", "uri", "path", "image_path")


@dataclass
class ServiceConfig:
    """The service's knobs; every one is also a ``create_app`` keyword and a ``CVKIT_*`` variable.

    api_key : when set, ``/score``, ``/metadata`` and the API description (``/openapi.json``,
        ``/docs``, ``/redoc``) need ``Authorization: Bearer <api_key>``.
    max_request_bytes : body size limit (413 beyond).
    max_images : most images in one request.
    max_pixels : decompression-bomb guard per image.
    max_request_pixels : most pixels all images of one request may hold together, read from their
        headers before decoding (413 beyond; default 100 MP).
    max_batch_size, max_wait_ms : micro-batching bounds (see :class:`MicroBatcher`).
    default_top_k : ``top_k`` when a request does not say.
    body_timeout : seconds the body may take to arrive after the headers (408 after).
    docs : serve ``/openapi.json``, ``/docs`` and ``/redoc`` (behind the API key when there is one).
    warmup : score one blank image after loading so the first real request is not slow.

    Example:
        >>> ServiceConfig(max_request_pixels=0)
        Traceback (most recent call last):
        ...
        ValueError: max_request_pixels must be a positive integer, got 0
    """

    api_key: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_images: int = DEFAULT_MAX_IMAGES
    max_pixels: int = inference.DEFAULT_MAX_PIXELS
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS
    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    default_top_k: int = inference.DEFAULT_TOP_K
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    docs: bool = True
    warmup: bool = True

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_images", "max_pixels", "max_request_pixels",
                     "max_batch_size", "default_top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if not self.body_timeout > 0:
            raise ValueError(f"body_timeout must be > 0 seconds, got {self.body_timeout!r}")
        if self.api_key is not None and not str(self.api_key).strip():
            raise ValueError("api_key is empty: pass None for an open service")


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

    def _predict(self, images: np.ndarray) -> np.ndarray:
        return inference.predict_proba(self.model, images)

    def load(self) -> None:
        """Load (if given a folder) and warm up the model; runs on a worker thread."""
        try:
            if self.model is None:
                from cvkit.models.folder import load_model
                self.model = load_model(self.model_dir)
            self.classes = inference.classes(self.model)
            self.input_size = inference.input_size(self.model)
            if self.config.warmup:
                width, height = self.input_size
                inference.predict_proba(self.model, np.zeros((1, height, width, 3), np.uint8))
            self.ready = True
            log.info("model ready: %d classes, input %sx%s", len(self.classes), *self.input_size)
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
            "limits": {"max_request_bytes": self.config.max_request_bytes,
                       "max_images": self.config.max_images,
                       "max_pixels": self.config.max_pixels,
                       "max_request_pixels": self.config.max_request_pixels,
                       "max_batch_size": self.config.max_batch_size},
        }


# ---------------------------------------------------------------------- the app
def create_app(model: Any, *, api_key: str | None = None,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               max_images: int = DEFAULT_MAX_IMAGES, max_pixels: int = inference.DEFAULT_MAX_PIXELS,
               max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS,
               max_batch_size: int = 32, max_wait_ms: float = 10.0,
               default_top_k: int = inference.DEFAULT_TOP_K,
               body_timeout: float = DEFAULT_BODY_TIMEOUT, docs: bool = True, warmup: bool = True):
    """Build the FastAPI app serving ``model`` (a model folder, or a model already loaded).

    Given a folder, the model loads on a background thread at start-up, so ``/health`` answers 503
    ("loading") at once and 200 when ready. Every keyword is a :class:`ServiceConfig` field.

    Example:
        >>> app = create_app(model_dir, api_key="k", max_request_pixels=20_000_000)
        >>> app.state.config.max_request_pixels
        20000000
    """
    config = ServiceConfig(api_key=api_key, max_request_bytes=max_request_bytes,
                           max_images=max_images, max_pixels=max_pixels,
                           max_request_pixels=max_request_pixels, max_batch_size=max_batch_size,
                           max_wait_ms=max_wait_ms, default_top_k=default_top_k,
                           body_timeout=body_timeout, docs=docs, warmup=warmup)
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


async def _read_items(service: _Service, request: Request) -> list[ScoreItem]:
    """The request's images as items; raises :class:`RequestError` (or ValueError) for a bad request."""
    config, n_classes = service.config, len(service.classes)
    default_k = config.default_top_k
    if "top_k" in request.query_params:
        default_k = parse_top_k(request.query_params["top_k"], n_classes, field="query parameter top_k")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        items = await _parse_multipart(request, n_classes, default_k, config.max_images)
    elif content_type in ("application/json", "text/json", "") or content_type.endswith("+json"):
        items = parse_json_request(await request.body(), n_classes, default_k, config.max_images)
    else:
        raise RequestError(f"unsupported Content-Type {content_type!r}: send "
                           "multipart/form-data files or application/json", status_code=415)
    await run_in_threadpool(check_pixel_budget, items, config.max_request_pixels, config.max_pixels)
    return items


async def _score(service: _Service, request: Request) -> JSONResponse:
    """``POST /score`` once the key and readiness are checked."""
    try:
        items = await _read_items(service, request)
    except RequestError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    with service.batcher.incoming():  # lets a forming batch wait for these images
        pixels = await run_in_threadpool(decode_items, items, service.model, service.config.max_pixels)
    scored = [i for i, p in enumerate(pixels) if p is not None]
    proba = np.zeros((0, len(service.classes)), np.float32)
    if scored:
        try:
            proba = await service.batcher.submit(np.stack([pixels[i] for i in scored]))
        except Exception as exc:  # noqa: BLE001
            log.exception("scoring failed")
            return JSONResponse({"detail": f"the model failed on this request: "
                                           f"{type(exc).__name__}: {exc}"}, status_code=500)
    answers = build_answers(items, proba, scored, service.classes)
    version = (getattr(service.model, "metadata_", None) or {}).get("model_version")
    return JSONResponse(response_body(answers, version), status_code=response_status(answers))


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


def create_app_from_env():
    """App factory for ``uvicorn --factory`` and multi-worker serving: reads ``CVKIT_*`` variables.

    ``CVKIT_MODEL_DIR`` (required), ``CVKIT_API_KEY``, ``CVKIT_MAX_REQUEST_BYTES``,
    ``CVKIT_MAX_IMAGES``, ``CVKIT_MAX_PIXELS``, ``CVKIT_MAX_REQUEST_PIXELS``,
    ``CVKIT_MAX_BATCH_SIZE``, ``CVKIT_MAX_WAIT_MS``, ``CVKIT_DEFAULT_TOP_K``,
    ``CVKIT_BODY_TIMEOUT``, ``CVKIT_DOCS`` (``0`` turns the API description off).
    """
    model_dir = os.environ.get("CVKIT_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("set CVKIT_MODEL_DIR to the model folder to serve")
    kwargs: dict[str, Any] = {}
    for field_name, default in asdict(ServiceConfig()).items():
        env = f"CVKIT_{field_name.upper()}"
        if env not in os.environ or field_name == "warmup":
            continue
        raw = os.environ[env]
        if field_name == "api_key":
            kwargs[field_name] = raw or None
        elif isinstance(default, bool):
            kwargs[field_name] = raw.strip().lower() not in ("0", "false", "no", "off", "")
        elif isinstance(default, float):
            kwargs[field_name] = float(raw)
        else:
            try:
                kwargs[field_name] = int(raw)
            except ValueError:
                raise ValueError(f"{env} must be an integer, got {raw!r}") from None
    return create_app(model_dir, **kwargs)
