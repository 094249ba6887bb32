"""The scoring web service: a FastAPI app around one loaded model.

Endpoints:

- ``POST /score``: multipart image uploads (one or many files) or JSON
  ``{"images": [{"image_in_base64": "...", "parameters": {"top_k": 3}}]}``. Answers
  ``{"predictions": [...]}``, one entry per image in order (see :mod:`cvkit.serving.protocol`).
  One bad image gets an ``error`` and its siblings are still scored (200); when no image could be
  scored the answer is 400 and each error names its item (``images[0]: ...``).
- ``GET /health``: 200 once the model is loaded and warmed up, 503 while loading (or if loading
  failed). Always open, so load balancers can probe it without a key. Its ``pid`` names the worker
  process that answered (``cvkit serve --workers N`` runs N of them).
- ``GET /metadata``: classes, input size, backbone, model version, limits.

Safety: the request body is capped (default 10 MB, 413 beyond), images above
:data:`~cvkit.models.inference.DEFAULT_MAX_PIXELS` are refused (decompression bombs), an optional
bearer API key guards ``/score`` and ``/metadata`` (401), and only bytes sent in the request are
scored: the service never fetches a URL or opens a path named in a request.

Concurrent requests are micro-batched into shared model calls (:mod:`cvkit.serving.microbatch`).

Example:
    >>> from cvkit.serving.app import create_app
    >>> app = create_app("runs/sample/model", api_key="s3cret")         # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)    # doctest: +SKIP
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from cvkit.models import inference as scoring
from cvkit.serving.microbatch import MicroBatcher
from cvkit.serving.protocol import (DEFAULT_MAX_IMAGES, RequestError, ScoreItem, build_answers, decode_items,
                       parse_json_request, response_body, response_status)

__all__ = ["ServiceConfig", "create_app", "create_app_from_env", "DEFAULT_MAX_REQUEST_BYTES"]

log = logging.getLogger("cvkit.serving")

#: Largest request body accepted (bytes); larger requests get 413.
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024

_FORBIDDEN_FORM_FIELDS = ("url", "image_url", "uri", "path", "image_path")


@dataclass
class ServiceConfig:
    """The service's knobs; every one is also a ``create_app`` keyword and a ``CVKIT_*`` variable.

    api_key : when set, ``/score`` and ``/metadata`` need ``Authorization: Bearer <api_key>``.
    max_request_bytes : body size limit (413 beyond).
    max_images : most images in one request.
    max_pixels : decompression-bomb guard per image.
    max_batch_size, max_wait_ms : micro-batching bounds (see :class:`MicroBatcher`).
    default_top_k : ``top_k`` when a request does not say.
    warmup : score one blank image after loading so the first real request is not slow.
    """

    api_key: str | None = None
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_images: int = DEFAULT_MAX_IMAGES
    max_pixels: int = scoring.DEFAULT_MAX_PIXELS
    max_batch_size: int = 32
    max_wait_ms: float = 10.0
    default_top_k: int = scoring.DEFAULT_TOP_K
    warmup: bool = True

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_images", "max_pixels", "max_batch_size", "default_top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.api_key is not None and not str(self.api_key).strip():
            raise ValueError("api_key is empty: pass None for an open service")


class _Service:
    """What the endpoints share: the model (once loaded), its batcher and the config."""

    def __init__(self, model: Any, config: ServiceConfig):
        self.config = config
        self.source = model
        self.model: Any = None if isinstance(model, (str, os.PathLike)) else model
        self.model_dir = os.fspath(model) if isinstance(model, (str, os.PathLike)) else \
            getattr(model, "path_", None)
        self.load_error: str | None = None
        self.ready = False
        self.started = time.time()
        self.batcher = MicroBatcher(self._predict, max_batch_size=config.max_batch_size,
                                    max_wait_ms=config.max_wait_ms)

    def _predict(self, images: np.ndarray) -> np.ndarray:
        return scoring.predict_proba(self.model, images)

    def load(self) -> None:
        """Load (if given a folder) and warm up the model; runs on a worker thread."""
        try:
            if self.model is None:
                from cvkit.models.folder import load_model
                self.model = load_model(self.model_dir)
            self.classes = scoring.classes(self.model)
            self.input_size = scoring.input_size(self.model)
            if self.config.warmup:
                width, height = self.input_size
                scoring.predict_proba(self.model, np.zeros((1, height, width, 3), np.uint8))
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
                       "max_batch_size": self.config.max_batch_size},
        }


# ---------------------------------------------------------------------- request size limit
class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 before the app sees them.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as it
    arrives. The body is drained (not stored) up to 8x the limit so the client reads the 413 cleanly.
    """

    def __init__(self, app: Callable, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, declared)
            await self._too_large(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                chunks.clear()
                if message.get("more_body", False):
                    size = await self._drain(receive, None, size)
                await self._too_large(send, size)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _drain(self, receive: Callable, declared: int | None, seen: int = 0) -> int:
        cap = 8 * self.max_bytes
        if declared is not None and declared > cap:
            return seen  # do not read an absurd body; the connection will be closed
        while seen <= cap:
            message = await receive()
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return seen

    async def _too_large(self, send: Callable, size: int) -> None:
        mb = self.max_bytes / (1024 * 1024)
        await _send_json(send, 413, {"detail": f"request body too large: {size} bytes; the limit is "
                                               f"{self.max_bytes} bytes ({mb:g} MB)"})


async def _send_json(send: Callable, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- the app
def create_app(model: Any, *, api_key: str | None = None,
               max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
               max_images: int = DEFAULT_MAX_IMAGES, max_pixels: int = scoring.DEFAULT_MAX_PIXELS,
               max_batch_size: int = 32, max_wait_ms: float = 10.0,
               default_top_k: int = scoring.DEFAULT_TOP_K, warmup: bool = True):
    """Build the FastAPI app serving ``model`` (a model folder, or a model already loaded).

    Given a folder, the model loads on a background thread at start-up, so ``/health`` answers 503
    ("loading") at once and 200 when ready. Every keyword is a :class:`ServiceConfig` field.

    Example:
        >>> app = create_app("runs/sample/model")                           # doctest: +SKIP
        >>> app = create_app(cvkit.load_model("runs/sample/model"), api_key="k")  # doctest: +SKIP
    """
    config = ServiceConfig(api_key=api_key, max_request_bytes=max_request_bytes,
                           max_images=max_images, max_pixels=max_pixels,
                           max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                           default_top_k=default_top_k, warmup=warmup)
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

    app = FastAPI(title="cvkit image scoring", version="1", lifespan=lifespan,
                  summary="Classify images with a cvkit model.")
    app.state.service = service
    app.state.config = config

    def unauthorized() -> JSONResponse:
        return JSONResponse({"detail": "missing or wrong API key: send 'Authorization: Bearer <key>'"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    def check_key(request: Request) -> JSONResponse | None:
        if config.api_key is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 str(config.api_key).encode()):
            return unauthorized()
        return None

    def not_ready() -> JSONResponse | None:
        if service.ready:
            return None
        if service.load_error:
            return JSONResponse({"detail": f"model failed to load: {service.load_error}"},
                                status_code=503)
        return JSONResponse({"detail": "model is loading; retry shortly"}, status_code=503,
                            headers={"Retry-After": "1"})

    @app.get("/health")
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

    @app.get("/metadata")
    async def metadata(request: Request) -> JSONResponse:
        """The model's classes, input size, backbone and version, and the service's limits."""
        refused = check_key(request) or not_ready()
        if refused is not None:
            return refused
        return JSONResponse(service.metadata())

    @app.post("/score")
    async def score(request: Request) -> JSONResponse:
        """Score uploaded images (multipart files or JSON base64); see the module docstring."""
        refused = check_key(request) or not_ready()
        if refused is not None:
            return refused
        n_classes = len(service.classes)
        try:
            default_k = config.default_top_k
            if "top_k" in request.query_params:
                default_k = scoring.check_top_k(request.query_params["top_k"], n_classes,
                                                field="query parameter top_k")
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "multipart/form-data":
                items = await _parse_multipart(request, n_classes, default_k, config.max_images)
            elif content_type in ("application/json", "text/json", "") or content_type.endswith("+json"):
                items = parse_json_request(await request.body(), n_classes, default_k,
                                           config.max_images)
            else:
                raise RequestError(f"unsupported Content-Type {content_type!r}: send "
                                   "multipart/form-data files or application/json", status_code=415)
        except RequestError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)

        with service.batcher.incoming():  # lets a forming batch wait for these images
            pixels = await run_in_threadpool(decode_items, items, service.model, config.max_pixels)
        scored = [i for i, p in enumerate(pixels) if p is not None]
        proba = np.zeros((0, n_classes), np.float32)
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

    app.add_middleware(BodySizeLimit, max_bytes=config.max_request_bytes)
    return app


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
            default_k = scoring.check_top_k(fields["top_k"], n_classes, field="form field top_k")
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
    ``CVKIT_MAX_IMAGES``, ``CVKIT_MAX_PIXELS``, ``CVKIT_MAX_BATCH_SIZE``, ``CVKIT_MAX_WAIT_MS``,
    ``CVKIT_DEFAULT_TOP_K``.
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
        elif isinstance(default, float):
            kwargs[field_name] = float(raw)
        else:
            try:
                kwargs[field_name] = int(raw)
            except ValueError:
                raise ValueError(f"{env} must be an integer, got {raw!r}") from None
    return create_app(model_dir, **kwargs)
