"""TensorFlow and Keras, imported quietly: the one way cvkit imports them.

Why: a user should see cvkit's own messages, progress bars and results, not TensorFlow's start-up
chatter (``All log messages before absl::InitializeLog()``, ``oneDNN custom operations are on``,
``cpu_feature_guard ... AVX2``, ``Memory patch applied``), nor its Python warnings about
``tf.function`` retracing, which read like errors in a notebook's pink stderr box.

- :func:`quiet_tensorflow_env` sets ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ INFO and WARNING lines off,
  errors still shown) unless the caller chose a level. TensorFlow reads it once, when its library
  loads, so cvkit calls this when ``cvkit`` is imported and again before each import of TensorFlow.
  It changes no numerics: oneDNN stays as TensorFlow configures it; only its notice is not logged.
- :func:`import_tensorflow` / :func:`import_keras` import the module after that, and the first time
  also lower TensorFlow's Python logger and absl's logging to errors (the retracing warning comes
  from there). The import sites of cvkit go through them, whatever the caller imported first.
- :func:`import_extra` imports a module of an optional extra (cleanlab, imgaug, ipywidgets ...); when
  it is not installed, :class:`MissingExtraError` says in one line which call needs it and which
  extra to install (``pip install 'cvkit[train]'``). :func:`import_tensorflow` does the same.
- :func:`quiet_stderr` hides what native code prints straight to the process's stderr (the TFLite
  converter's MLIR dump), and shows it again when the block fails.
- :func:`user_stacklevel` points a warning at the caller's line, outside cvkit, so a warning
  shows the user's code rather than a line of cvkit.
- :func:`progress_bar` is ``tqdm.auto.tqdm`` whose notebook widget also leaves its final text
  ("100% 68/68") in the saved notebook, where tqdm's own leaves the text it started with ("0%").

Importing this module imports neither TensorFlow nor anything else of cvkit.

Example:
    >>> import os
    >>> quiet_tensorflow_env()
    >>> os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("1", "2", "3")
    True
    >>> keras = import_keras()
    >>> import logging
    >>> logging.getLogger("tensorflow").level >= logging.ERROR
    True
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

__all__ = ["quiet_tensorflow_env", "import_tensorflow", "import_keras", "import_extra", "require_extra",
           "MissingExtraError", "EXTRAS", "quiet_stderr", "user_stacklevel", "progress_bar", "CPP_LOG_LEVEL"]

#: ``TF_CPP_MIN_LOG_LEVEL`` cvkit sets when the caller set none: 2 hides INFO and WARNING, keeps errors.
CPP_LOG_LEVEL = "2"

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_CLI_DIR = os.path.join(_PACKAGE_DIR, "cli") + os.sep
_HERE = (os.path.abspath(__file__), os.path.join(_PACKAGE_DIR, "_lazy.py"))
_python_logs_quieted = False
_notebook_bar: type | None = None


def quiet_tensorflow_env() -> None:
    """Set the environment that keeps TensorFlow's C++ start-up lines off stderr.

    Takes effect for a TensorFlow imported after it (in this process or a child process); a
    level the caller set (``TF_CPP_MIN_LOG_LEVEL=0`` to debug) is kept.

    Example:
        >>> quiet_tensorflow_env()
        >>> "TF_CPP_MIN_LOG_LEVEL" in os.environ
        True
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", CPP_LOG_LEVEL)


#: The optional top-level modules cvkit imports: module -> (its name for people, the extra that installs it).
EXTRAS = {
    "tensorflow": ("TensorFlow", "train"), "keras": ("Keras", "train"), "imgaug": ("imgaug", "train"),
    "cleanlab": ("cleanlab", "train"), "ipywidgets": ("ipywidgets", "notebooks"),
    "anywidget": ("anywidget", "notebooks"),
}


class MissingExtraError(ImportError):
    """A call needs an optional part of cvkit that is not installed; the message names the extra to install.

    Example:
        >>> print(MissingExtraError.for_module("cleanlab", "cvkit.evaluation.find_label_issues"))
        cvkit.evaluation.find_label_issues needs cleanlab, which is not installed: pip install 'cvkit[train]'
    """

    @classmethod
    def for_module(cls, module: str, caller: str | None = None) -> MissingExtraError:
        """The error for the missing top-level ``module`` (a key of :data:`EXTRAS`), needed by ``caller``."""
        top = module.partition(".")[0]
        what, extra = EXTRAS[top]
        return cls(f"{caller or _public_caller()} needs {what}, which is not installed: pip install 'cvkit[{extra}]'",
                   name=top)


def _public_caller() -> str:
    """The call the user made into cvkit (its outermost frame in the package, the CLI aside), e.g.
    ``cvkit.classifiers.FeatureClassifier.fit``: named in the message of a missing extra."""
    frame, outermost = sys._getframe(1), None
    while frame is not None:
        file = os.path.abspath(frame.f_code.co_filename)
        if file.startswith(_PACKAGE_DIR + os.sep) and not file.startswith(_CLI_DIR) and file not in _HERE:
            outermost = frame
        frame = frame.f_back
    if outermost is None:
        return "this call"
    parts = str(outermost.f_globals.get("__name__", "cvkit")).split(".")
    face = ".".join(parts[:next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))])
    name = outermost.f_code.co_qualname.split(".<locals>")[0]
    owner = outermost.f_locals.get("self")
    if owner is not None and "." in name:  # a method: named on the user's class, not the base defining it
        name = f"{type(owner).__name__}.{outermost.f_code.co_name}"
    return face if name == "<module>" else f"{face}.{name}"


def _is_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """Whether ``exc`` says ``module``'s own package is not installed (not one of its dependencies)."""
    return (exc.name or "").partition(".")[0] == module.partition(".")[0]


def import_extra(module: str) -> ModuleType:
    """``importlib.import_module(module)`` for a module of an optional extra (a key of :data:`EXTRAS`).

    Not installed: :class:`MissingExtraError` naming the caller and the extra. Any other failure
    (a broken install, a missing dependency of that package) is raised as it is.

    Example:
        >>> import_extra("cleanlab.filter").__name__
        'cleanlab.filter'
    """
    if module.partition(".")[0] not in EXTRAS:
        raise ValueError(f"{module!r} is not a module of an optional extra ({', '.join(EXTRAS)})")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if _is_missing(exc, module):
            raise MissingExtraError.for_module(module) from None
        raise


def require_extra(module: str, caller: str) -> None:
    """Fail now if ``module`` (of an optional extra) is not installed, before a long run that would need it.

    Finds the module without importing it; raises :class:`MissingExtraError` naming ``caller``.

    Example:
        >>> require_extra("cleanlab", "cvkit audit")
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtraError.for_module(module, caller)


def _quiet_python_logs(tf: ModuleType) -> None:
    """Once per process: TensorFlow's and absl's Python logs show errors only."""
    global _python_logs_quieted
    if _python_logs_quieted:
        return
    _python_logs_quieted = True
    tf.get_logger().setLevel(logging.ERROR)  # "N out of the last M calls ... triggered tf.function retracing"
    tf.autograph.set_verbosity(0)
    try:
        from absl import logging as absl_logging
    except ImportError:  # pragma: no cover - absl-py is a TensorFlow dependency
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def import_tensorflow() -> ModuleType:
    """``tensorflow``, imported after :func:`quiet_tensorflow_env`, its Python logs quieted.

    Example:
        >>> tf = import_tensorflow()
        >>> tf.get_logger().level >= logging.ERROR
        True
    """
    quiet_tensorflow_env()
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
    else:
        # On some CPUs (Intel Xeon with AMX or AVX-512 BF16: oneDNN custom operations on) TensorFlow's
        # C++ side writes absl lines ("All log messages before absl::InitializeLog() ...", "oneDNN custom
        # operations are on") while its libraries load, before it reads TF_CPP_MIN_LOG_LEVEL. They go
        # straight to file descriptor 2, so only hiding that descriptor during the import keeps them
        # off the terminal and out of a notebook; an import that fails still shows them.
        try:
            with quiet_stderr():
                import tensorflow as tf
        except ModuleNotFoundError as exc:
            if _is_missing(exc, "tensorflow"):
                raise MissingExtraError.for_module("tensorflow") from None
            raise
    _quiet_python_logs(tf)
    return tf


def import_keras() -> ModuleType:
    """``keras`` (its TensorFlow backend imported quietly by :func:`import_tensorflow`).

    Without TensorFlow or Keras installed: :class:`MissingExtraError` naming ``cvkit[train]``.

    Example:
        >>> import_keras().layers.Dense(2).units
        2
    """
    import_tensorflow()
    return import_extra("keras")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Hide what native code writes to the process's stderr (file descriptor 2) inside the block.

    For libraries that print with C++ streams whatever the log level (the TFLite converter's
    ``fully_quantize: 0, inference_type: 6 ...``). If the block raises, the hidden text is written
    to stderr after all, so a failure keeps its explanation. Python's own ``sys.stderr`` writes
    (warnings, progress bars) are untouched when it is not file descriptor 2 (as in Jupyter).

    Example:
        >>> with quiet_stderr():
        ...     _ = os.write(2, b"native noise\\n")
    """
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else 2
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        for stream in (sys.stderr, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(sink.fileno(), fd)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            if failed:
                sink.seek(0)
                text = sink.read()
                if text:
                    os.write(fd, text)


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` (called right here) that names the first caller outside cvkit.

    So a cvkit warning shows the user's line ("dataset = ImageDataset.from_path(...)") rather than
    the ``warnings.warn`` line inside cvkit.

    Example:
        >>> user_stacklevel() >= 1
        True
    """
    frame = sys._getframe(1)  # the function that calls warnings.warn
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    return level


def _notebook_bar_class() -> type:
    """tqdm's notebook bar, displayed with a display id and re-displayed when it closes (built once)."""
    global _notebook_bar
    if _notebook_bar is None:
        from IPython.display import display
        from tqdm.notebook import tqdm_notebook

        class NotebookBar(tqdm_notebook):
            """A notebook progress bar whose saved output ends at its final state.

            A widget's output also carries a plain-text copy, for viewers without widgets (nbviewer,
            GitHub, papermill's saved notebooks): tqdm writes it once, when the bar appears at 0%.
            This bar updates that output when it closes, so the copy shows where the bar ended.
            """

            def __init__(self, *args, **kwargs) -> None:
                kwargs["display"] = False
                super().__init__(*args, **kwargs)
                self.handle = None
                if not self.disable and hasattr(self, "container"):
                    self.handle = display(self.container, display_id=True)
                    self.displayed = True

            def close(self) -> None:
                if self.disable:
                    return
                super().close()
                if self.handle is not None:
                    self.handle.update(self.container)
                    self.handle = None

        _notebook_bar = NotebookBar
    return _notebook_bar


def progress_bar(*args, **kwargs):
    """``tqdm.auto.tqdm(*args, **kwargs)``, whose notebook widget ends at 100% in saved notebooks too.

    In a terminal it is tqdm's text bar; in Jupyter, tqdm's widget, which also replaces its
    plain-text copy when it closes (use it as a context manager or iterate to the end).

    Example:
        >>> sum(progress_bar(range(3), disable=True))
        3
    """
    from tqdm.auto import tqdm

    notebook = sys.modules.get("tqdm.notebook")  # tqdm.auto imports it only inside Jupyter
    if notebook is not None and isinstance(tqdm, type) and issubclass(tqdm, notebook.tqdm_notebook):
        return _notebook_bar_class()(*args, **kwargs)
    return tqdm(*args, **kwargs)
