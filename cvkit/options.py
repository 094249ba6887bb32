"""How a model runs: :class:`RunOptions` (runtime, precision, threads), the one home of these settings.

Every way of running a model takes the same three settings, checked here once: keyword arguments
(``cvkit.load_model(path, runtime="keras")``, ``ImageFeaturizer(precision="int8")``), the
command line (``--runtime``, ``--precision``, ``--num-threads`` on every command that runs a
model), the environment (``CVKIT_RUNTIME``, ``CVKIT_PRECISION``, ``CVKIT_NUM_THREADS``: what the
service, its worker processes and Ray workers read), and the service's config. Precedence, the
same everywhere: a value given explicitly, then the environment, then the default.

- ``runtime``: ``"auto"`` (LiteRT when ``ai-edge-litert`` is installed, else Keras), ``"litert"``
  (the converted graph with XNNPACK; no TensorFlow) or ``"keras"`` (TensorFlow).
- ``precision``: ``"float32"`` (Keras-equal answers) or ``"int8"`` (about 3x faster on LiteRT,
  answers differ slightly; needs an int8 graph).
- ``num_threads``: threads of each LiteRT interpreter; default the cores this process may use.

Example:
    >>> RunOptions(runtime="keras")
    RunOptions(runtime='keras', precision='float32', num_threads=None)
    >>> RunOptions.from_env({"CVKIT_PRECISION": "int8"}).precision
    'int8'
    >>> RunOptions.from_env({"CVKIT_RUNTIME": "keras"}, runtime="litert").runtime  # given beats environment
    'litert'
    >>> RunOptions(precision="int4")
    Traceback (most recent call last):
    ...
    cvkit._validation.InvalidParameterError: precision must be one of 'float32', 'int8', got 'int4'
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from cvkit._validation import Interval, InvalidParameterError, Options, check_param

__all__ = ["RunOptions", "RUNTIMES", "PRECISIONS", "ENVIRONMENT", "INSTALL_HINT", "litert_available",
           "resolve_runtime", "check_precision", "default_threads", "decode_threads", "describe_runtime"]

#: Values of the ``runtime`` setting.
RUNTIMES = ("auto", "litert", "keras")
#: Values of the ``precision`` setting.
PRECISIONS = ("float32", "int8")
#: The environment variable of each setting (read by :meth:`RunOptions.from_env`, written by :meth:`RunOptions.to_env`).
ENVIRONMENT = {"runtime": "CVKIT_RUNTIME", "precision": "CVKIT_PRECISION", "num_threads": "CVKIT_NUM_THREADS"}
#: How to install LiteRT (the pin of cvkit's requirements).
INSTALL_HINT = "pip install ai-edge-litert==2.3.0"

_CONSTRAINTS = {"runtime": [Options(RUNTIMES)], "precision": [Options(PRECISIONS)],
                "num_threads": [Interval(int, 1, None), None]}


def litert_available() -> bool:
    """Whether the LiteRT interpreter (``ai_edge_litert``) is installed.

    Example:
        >>> litert_available()
        True
    """
    return importlib.util.find_spec("ai_edge_litert") is not None


def resolve_runtime(runtime: Any) -> str:
    """The runtime that will run, ``"litert"`` or ``"keras"``, for a value of the ``runtime`` setting.

    ``"auto"`` is ``"litert"`` when :func:`litert_available`, else ``"keras"``. A value outside
    :data:`RUNTIMES` raises an error naming it; ``"litert"`` without the package raises
    ``ImportError`` saying how to install it.

    Example:
        >>> resolve_runtime("keras"), resolve_runtime("auto")
        ('keras', 'litert')
        >>> resolve_runtime("tpu")
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: runtime must be one of 'auto', 'litert', 'keras', got 'tpu'
    """
    check_param("runtime", runtime, _CONSTRAINTS["runtime"])
    if runtime == "auto":
        return "litert" if litert_available() else "keras"
    if runtime == "litert" and not litert_available():
        raise ImportError(f"runtime='litert' needs the LiteRT interpreter: {INSTALL_HINT} (or use runtime='keras')")
    return runtime


def check_precision(precision: Any) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else an error naming it.

    Example:
        >>> check_precision("int8")
        'int8'
    """
    return check_param("precision", precision, _CONSTRAINTS["precision"])


def default_threads(environ: Mapping[str, str] | None = None) -> int:
    """``$CVKIT_NUM_THREADS`` when set to a positive number, else the cores this process may use
    (its CPU affinity where the OS reports it, else the CPU count).

    Why: a container or ``taskset`` often grants fewer cores than the machine has, and more
    inference threads than cores only makes them wait for each other; several processes sharing
    the cores (service workers, Ray workers) each get their share through ``CVKIT_NUM_THREADS``.

    Example:
        >>> default_threads({"CVKIT_NUM_THREADS": "3"}), default_threads({}) >= 1
        (3, True)
    """
    value = (os.environ if environ is None else environ).get(ENVIRONMENT["num_threads"], "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover - some sandboxes refuse the call
            pass
    return max(1, os.cpu_count() or 1)


def decode_threads(requested: int | None = None) -> int:
    """Threads that decode images beside a model: ``requested``, else the cores this process may use,
    at least 2 (one decodes while the other hands over) and at most 8 (JPEG decoding scales no further
    beside one model). The one rule for every decode pool in cvkit.

    Example:
        >>> decode_threads(3), 2 <= decode_threads() <= 8
        (3, True)
    """
    if requested is not None:
        return int(check_param("decode_threads", requested, [Interval(int, 1, None)]))
    cores = default_threads({})  # the process's cores, not the inference threads of CVKIT_NUM_THREADS
    return max(2, min(8, cores))


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What runs a model: ``runtime``, ``precision`` and ``num_threads``, checked when made.

    Frozen, so one object can be handed to every part of a job. ``precision="int8"`` with
    ``runtime="keras"`` is refused (int8 runs on LiteRT).

    Example:
        >>> options = RunOptions(precision="int8", num_threads=2)
        >>> options.to_env()
        {'CVKIT_RUNTIME': 'auto', 'CVKIT_PRECISION': 'int8', 'CVKIT_NUM_THREADS': '2'}
        >>> options.resolve().runtime
        'litert'
    """

    runtime: str = "auto"
    precision: str = "float32"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_param(field.name, getattr(self, field.name), _CONSTRAINTS[field.name])
        if self.num_threads is not None:
            object.__setattr__(self, "num_threads", int(self.num_threads))
        if self.precision == "int8" and self.runtime == "keras":
            raise InvalidParameterError("precision='int8' runs on LiteRT: use runtime='auto' or 'litert'")

    # ------------------------------------------------------------------ where values come from
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> RunOptions:
        """Options from keyword values (those not None), else the environment's ``CVKIT_*``, else the defaults.

        A bad environment value is an error naming the variable.

        Example:
            >>> RunOptions.from_env({"CVKIT_NUM_THREADS": "4"}, runtime=None).num_threads
            4
            >>> RunOptions.from_env({"CVKIT_RUNTIME": "gpu"})
            Traceback (most recent call last):
            ...
            cvkit._validation.InvalidParameterError: CVKIT_RUNTIME must be one of 'auto', 'litert', 'keras', got 'gpu'
        """
        unknown = set(given) - set(ENVIRONMENT)
        if unknown:
            raise TypeError(f"RunOptions has no setting {', '.join(sorted(unknown))}")
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            if given.get(name) is not None:
                values[name] = given[name]
                continue
            text = environ.get(variable, "").strip()
            if not text:
                continue
            value: Any = int(text) if name == "num_threads" and text.isdigit() else text
            check_param(variable, value, _CONSTRAINTS[name])
            values[name] = value
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``CVKIT_*`` variables that give these options to a child process (unset ones left out)."""
        return {ENVIRONMENT[name]: str(value) for name, value in dataclasses.asdict(self).items()
                if value is not None}

    @staticmethod
    def add_arguments(parser: Any, threads: bool = True) -> Any:
        """Add ``--runtime``, ``--precision`` (and ``--num-threads``) to a command's ``argparse`` parser.

        (Library modules never import argparse: the command hands its parser in.)

        Their defaults are None, so an option not given on the command line leaves the environment
        (``CVKIT_RUNTIME`` ...) in charge: read them back with :meth:`from_args`.

        Example:
            >>> import argparse
            >>> parser = RunOptions.add_arguments(argparse.ArgumentParser())
            >>> RunOptions.from_args(parser.parse_args(["--precision", "int8"]), environ={}).precision
            'int8'
        """
        parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                            help="what runs the model: litert (LiteRT with XNNPACK, no TensorFlow), keras "
                                 "(TensorFlow), or auto (litert when installed); default $CVKIT_RUNTIME, else auto")
        parser.add_argument("--precision", choices=PRECISIONS, default=None,
                            help="float32 (Keras-equal answers) or int8 (about 3x faster, answers differ "
                                 "slightly; needs the folder's int8 graph: cvkit quantize); default "
                                 "$CVKIT_PRECISION, else float32")
        if threads:
            parser.add_argument("--num-threads", type=int, default=None, metavar="N",
                                help="threads of each LiteRT interpreter; default $CVKIT_NUM_THREADS, else "
                                     "the cores this process may use")
        return parser

    @classmethod
    def from_args(cls, args: Any, environ: Mapping[str, str] | None = None) -> RunOptions:
        """The options of parsed command-line arguments (see :meth:`add_arguments`), over the environment."""
        return cls.from_env(environ, **{name: getattr(args, name, None) for name in ENVIRONMENT})

    # ------------------------------------------------------------------ what runs
    def resolve(self) -> RunOptions:
        """These options with ``runtime`` resolved to what will run (``"litert"`` or ``"keras"``).

        Raises ``ImportError`` for ``runtime="litert"`` without LiteRT, and refuses int8 when
        ``"auto"`` falls back to Keras.
        """
        return dataclasses.replace(self, runtime=resolve_runtime(self.runtime))

    @property
    def threads(self) -> int:
        """``num_threads``, or :func:`default_threads` when it is None."""
        return self.num_threads if self.num_threads is not None else default_threads()


def describe_runtime(model: Any) -> str:
    """How a loaded model runs, for summaries: e.g. ``"litert float32"``.

    Example:
        >>> class Loaded:
        ...     runtime_, precision_ = "litert", "int8"
        >>> describe_runtime(Loaded())
        'litert int8'
    """
    return f"{getattr(model, 'runtime_', 'python')} {getattr(model, 'precision_', 'float32')}"
