"""The scoring service's settings (:class:`ServiceConfig`): limits, batching, API key, docs, run options.

One declaration serves every way a setting arrives: a :func:`~cvkit.serving.create_app` keyword,
a :func:`~cvkit.serving.serve` or :class:`~cvkit.serving.BackgroundServer` keyword, or a
``CVKIT_*`` environment variable (what ``cvkit serve`` and each of its uvicorn worker processes
read). The variable of a service field is ``CVKIT_<FIELD>``; the run options (``runtime``,
``precision``, ``num_threads``) use :data:`cvkit.options.ENVIRONMENT`, the names every other
command reads too. Values are checked once, by :mod:`cvkit._validation` and
:class:`~cvkit.options.RunOptions`, with one wording: ``<name> must be <allowed>, got <value>``.

Example:
    >>> config = ServiceConfig.from_env({"CVKIT_MAX_IMAGES": "8", "CVKIT_RUNTIME": "keras"})
    >>> config.max_images, config.run_options.runtime
    (8, 'keras')
    >>> ServiceConfig.from_env(config.to_env()) == config       # what worker processes read back
    True
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cvkit._validation import Custom, Interval, check_param, validate_params
from cvkit.models import _inference as inference
from cvkit.options import ENVIRONMENT, RunOptions
from cvkit.serving._connections import DEFAULT_BODY_TIMEOUT
from cvkit.serving._protocol import DEFAULT_MAX_IMAGES, DEFAULT_MAX_REQUEST_PIXELS

__all__ = ["ServiceConfig", "DEFAULT_MAX_REQUEST_BYTES", "environment_variable"]

#: Largest request body accepted (bytes); larger requests get 413.
DEFAULT_MAX_REQUEST_BYTES = 10 * 1024 * 1024

#: Environment texts read as False for a yes/no field (``CVKIT_DOCS=0``).
FALSE_TEXTS = ("0", "false", "no", "off", "")

_POSITIVE = [Interval(int, 1, None)]
#: Fields whose environment text is the value itself (an empty one is None).
_TEXT_FIELDS = ("api_key", "model_name")


def _name_like(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[\w.-]+", value) is not None


def environment_variable(field: str) -> str:
    """The environment variable of a :class:`ServiceConfig` field: the run options' own names
    (:data:`cvkit.options.ENVIRONMENT`), else ``CVKIT_<FIELD>``.

    Example:
        >>> environment_variable("max_batch_size"), environment_variable("num_threads")
        ('CVKIT_MAX_BATCH_SIZE', 'CVKIT_NUM_THREADS')
    """
    return ENVIRONMENT.get(field, f"CVKIT_{field.upper()}")


@dataclass
class ServiceConfig:
    """The service's knobs; every one is a ``create_app`` keyword and a ``CVKIT_*`` variable.

    api_key : when set, ``/score``, ``/metadata`` and the API description (``/openapi.json``,
        ``/docs``, ``/redoc``) need ``Authorization: Bearer <api_key>``.
    max_request_bytes : body size limit (413 beyond).
    max_images : most images in one request.
    max_pixels : decompression-bomb guard per image.
    max_request_pixels : most pixels all images of one request may hold together, read from their
        headers before decoding (413 beyond; default 100 MP).
    max_batch_size, max_wait_ms : micro-batching bounds (see :mod:`cvkit.serving._microbatch`).
    default_top_k : ``top_k`` when a request does not say.
    body_timeout : seconds the body may take to arrive after the headers (408 after).
    docs : serve ``/openapi.json``, ``/docs`` and ``/redoc`` (behind the API key when there is one).
    warmup : score one blank image after loading so the first real request is not slow.
    model_name : the ``{name}`` of the TF Serving routes (``/v1/models/{name}:predict``); default
        the model folder's name (``model`` for a model given as an object).
    runtime, precision, num_threads : what runs the model, as :class:`cvkit.options.RunOptions`
        (``/metadata`` says which runs); ``cvkit serve --workers N`` gives each of its N processes
        an even share of the cores unless ``num_threads`` is set.

    Example:
        >>> ServiceConfig(max_request_pixels=0)
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: max_request_pixels must be a positive int, got 0
        >>> ServiceConfig(precision="int4")
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: precision must be one of 'float32', 'int8', got 'int4'
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

    #: The constraints of the service's own fields (the run options are RunOptions').
    _parameter_constraints: ClassVar[dict[str, list]] = {
        "api_key": [Custom(lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"), None],
        "max_request_bytes": _POSITIVE, "max_images": _POSITIVE, "max_pixels": _POSITIVE,
        "max_request_pixels": _POSITIVE, "max_batch_size": _POSITIVE, "default_top_k": _POSITIVE,
        "max_wait_ms": [Interval(float, 0, None)],
        "body_timeout": [Interval(float, 0, None, closed="neither")],
        "docs": ["boolean"], "warmup": ["boolean"],
        "model_name": [Custom(_name_like, "a name of letters, digits, '_', '.' or '-'"), None],
    }

    def __post_init__(self) -> None:
        own = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_params(type(self).__name__, own, self._parameter_constraints)
        self.num_threads = self.run_options.num_threads  # checked (and made a plain int) by RunOptions

    @property
    def run_options(self) -> RunOptions:
        """``runtime``, ``precision`` and ``num_threads`` as :class:`~cvkit.options.RunOptions`."""
        return RunOptions(runtime=self.runtime, precision=self.precision, num_threads=self.num_threads)

    # ------------------------------------------------------------------ the environment
    @classmethod
    def field_names(cls) -> list[str]:
        """Every field, in order (each a keyword of ``create_app``, ``serve`` and ``BackgroundServer``)."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_fields(cls, names: Iterable[str], owner: str = "ServiceConfig") -> None:
        """``TypeError`` naming any of ``names`` that is not a field (a misspelt keyword of ``owner``).

        Example:
            >>> ServiceConfig.check_fields(["max_images", "max_image"], owner="create_app")
            Traceback (most recent call last):
            ...
            TypeError: create_app got unknown service option(s): max_image
        """
        unknown = [name for name in names if name not in cls.field_names()]
        if unknown:
            raise TypeError(f"{owner} got unknown service option(s): {', '.join(sorted(unknown))}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> ServiceConfig:
        """A config from keyword values (those not None), else the ``CVKIT_*`` variables of
        ``environ`` (default ``os.environ``), else the defaults. A bad variable is an error naming it.

        Example:
            >>> ServiceConfig.from_env({"CVKIT_DOCS": "0", "CVKIT_MAX_WAIT_MS": "2.5"}, max_wait_ms=5).docs
            False
            >>> ServiceConfig.from_env({"CVKIT_MAX_IMAGES": "many"})
            Traceback (most recent call last):
            ...
            cvkit._validation.InvalidParameterError: CVKIT_MAX_IMAGES must be a positive int, got 'many'
        """
        cls.check_fields(given, owner="ServiceConfig.from_env")
        environ = os.environ if environ is None else environ
        values = {name: value for name, value in given.items() if value is not None}
        for field in dataclasses.fields(cls):
            variable = environment_variable(field.name)
            if field.name not in values and variable in environ:
                values[field.name] = _from_text(field, variable, environ[variable])
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``CVKIT_*`` variables that give this config to another process (None fields left out).

        Example:
            >>> env = ServiceConfig(max_batch_size=4, docs=False).to_env()
            >>> env["CVKIT_MAX_BATCH_SIZE"], env["CVKIT_DOCS"], "CVKIT_API_KEY" in env
            ('4', '0', False)
        """
        env = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                env[environment_variable(field.name)] = ("1" if value else "0") if isinstance(value, bool) \
                    else str(value)
        return env


def _from_text(field: dataclasses.Field, variable: str, text: str) -> Any:
    """The value of ``field`` that the environment text means; a refusal names ``variable``."""
    if field.name in ENVIRONMENT:  # the run options: RunOptions reads its own variables
        return getattr(RunOptions.from_env({variable: text}), field.name)
    if field.name in _TEXT_FIELDS:
        value: Any = text or None
    elif isinstance(field.default, bool):
        value = text.strip().lower() not in FALSE_TEXTS
    else:
        try:
            value = (float if isinstance(field.default, float) else int)(text.strip())
        except ValueError:
            value = text
    return check_param(variable, value, ServiceConfig._parameter_constraints[field.name])
