"""The scoring service's settings (:class:`ServiceConfig`): limits, batching, API key, docs.

Every field is also a :func:`cvkit.serving._app.create_app` keyword and a ``CVKIT_*`` environment
variable (:func:`cvkit.serving._app.create_app_from_env`).

Example:
    >>> ServiceConfig(max_images=8).max_images
    8
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cvkit.models import _inference as inference
from cvkit.serving._connections import DEFAULT_BODY_TIMEOUT
from cvkit.serving._protocol import DEFAULT_MAX_IMAGES, DEFAULT_MAX_REQUEST_PIXELS

__all__ = ["ServiceConfig", "DEFAULT_MAX_REQUEST_BYTES"]

#: Largest request body accepted (bytes); larger requests get 413.
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024



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
    model_name : the ``{name}`` of the TF Serving routes (``/v1/models/{name}:predict``); default
        the model folder's name (``model`` for a model given as an object).
    warmup : score one blank image after loading so the first real request is not slow.
    runtime : ``"auto"`` (LiteRT when installed, else Keras), ``"litert"`` or ``"keras"``: what
        runs the model (see :func:`cvkit.load_model`); ``/metadata`` says which runs.
    precision : ``"float32"`` (the default) or ``"int8"`` (the folder's fast int8 graph).
    num_threads : threads of each LiteRT interpreter; default the cores this process may use
        (``cvkit serve --workers N`` gives each of its N processes an even share).

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
    model_name: str | None = None
    runtime: str = "auto"
    precision: str = "float32"
    num_threads: int | None = None

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
        if self.runtime not in ("auto", "litert", "keras"):
            raise ValueError(f"runtime must be 'auto', 'litert' or 'keras', got {self.runtime!r}")
        if self.precision not in ("float32", "int8"):
            raise ValueError(f"precision must be 'float32' or 'int8', got {self.precision!r}")
        if self.num_threads is not None and (isinstance(self.num_threads, bool)
                                             or not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}")
        if self.model_name is not None and not re.fullmatch(r"[\w.-]+", str(self.model_name)):
            raise ValueError(f"model_name must be letters, digits, '_', '.' or '-', got "
                             f"{self.model_name!r}")
