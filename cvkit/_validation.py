"""Declared parameter checks: each estimator states its parameters' constraints once, one validator checks them.

As in scikit-learn (``sklearn.utils._param_validation``), a class lists ``_parameter_constraints``:
a dict from parameter name to the constraints it may satisfy (any one is enough), and
:func:`validate_params` raises one :class:`InvalidParameterError` naming the parameter, what is
allowed and what it got. cvkit's messages read as sentences: ``batch_size must be a positive int,
got 0``. The error is both a ``ValueError`` and a ``TypeError``, so callers catching either (a wrong
value or a wrong type) see it.

Constraints:

- :class:`Interval` ``(kind, left, right, closed)``: an ``int`` or a real number in a range (bools are never numbers);
- :class:`Options` ``(values)``: one of a few values (``"avg"``, ``"max"``);
- ``"boolean"`` (``True``/``False``, numpy bools, or 0/1), ``"path"`` (``str`` or ``os.PathLike``),
  ``"array-like"``, ``None`` (the value ``None`` itself), or a type (``dict``, ``str``...):
  an instance of it;
- :class:`Custom` ``(test, description)``: anything else, described for the message.

Example:
    >>> constraints = {"batch_size": [Interval(int, 1, None)], "pooling": [Options({"avg", "max"})],
    ...                "cache_dir": ["path", None]}
    >>> validate_params("ImageFeaturizer", {"batch_size": 32, "pooling": "avg", "cache_dir": None}, constraints)
    >>> validate_params("ImageFeaturizer", {"batch_size": 0}, constraints)
    Traceback (most recent call last):
    ...
    cvkit._validation.InvalidParameterError: batch_size must be a positive int, got 0
"""
from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["InvalidParameterError", "Interval", "Options", "Custom", "validate_params", "describe",
           "check_param", "DEPRECATED", "is_deprecated_default", "param_value", "renamed_param", "renamed_keyword",
           "DEPRECATION_RULE"]

#: cvkit's deprecation rule: a renamed or removed name keeps working, with a ``FutureWarning`` naming
#: its replacement, for one minor version (it goes in the next one); the CHANGELOG lists each.
DEPRECATION_RULE = "kept for one minor version with a FutureWarning, then removed"

#: Default of a renamed parameter's old name (scikit-learn's convention): "not given by the user".
DEPRECATED = "deprecated"


class InvalidParameterError(ValueError, TypeError):
    """A parameter outside its declared constraints; the message names it, what is allowed and what it got."""


class Interval:
    """Numbers of ``kind`` (``int`` or ``float`` for any real) between ``left`` and ``right`` (None: unbounded).

    ``closed`` says which ends are included: ``"both"`` (default), ``"left"``, ``"right"`` or ``"neither"``.

    Example:
        >>> Interval(int, 1, None).is_satisfied_by(3), Interval(int, 1, None).is_satisfied_by(True)
        (True, False)
        >>> str(Interval(float, 0, 1, closed="left"))
        'a number in [0, 1)'
    """

    def __init__(self, kind: type, left: float | None, right: float | None, closed: str = "both"):
        if kind not in (int, float):
            raise ValueError("Interval kind must be int or float")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def is_satisfied_by(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return False
        wanted = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, wanted) or (self.kind is float and not np.isfinite(float(value))):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        noun = "int" if self.kind is int else "number"
        article = "an" if noun == "int" else "a"
        if self.right is None and self.left is not None:
            if self.kind is int and self.left == 1 and self.closed in ("both", "left"):
                return "a positive int"
            op = ">=" if self.closed in ("both", "left") else ">"
            return f"{article} {noun} {op} {self.left:g}"
        if self.left is None and self.right is not None:
            op = "<=" if self.closed in ("both", "right") else "<"
            return f"{article} {noun} {op} {self.right:g}"
        if self.left is None:
            return f"{article} {noun}"
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        return f"{article} {noun} in {lo}{self.left:g}, {self.right:g}{hi}"


class Options:
    """One of a fixed set of values (compared with ``==``, never a bool standing in for an int).

    Example:
        >>> str(Options(["auto", "litert", "keras"]))
        "one of 'auto', 'litert', 'keras'"
    """

    def __init__(self, values: Iterable[Any]):
        self.values = list(values)

    def is_satisfied_by(self, value: Any) -> bool:
        try:
            return any(type(value) is type(v) and value == v for v in self.values)
        except Exception:  # noqa: BLE001 - a value that cannot be compared is not one of them
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class Custom:
    """Any test with a description for the message (``Custom(callable, "a scikit-learn classifier")``)."""

    def __init__(self, test: Callable[[Any], bool], description: str):
        self.test, self.description = test, description

    def is_satisfied_by(self, value: Any) -> bool:
        return bool(self.test(value))

    def __str__(self) -> str:
        return self.description


_NAMED = {
    "boolean": (lambda v: isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)),
                "True or False"),
    "path": (lambda v: isinstance(v, (str, os.PathLike)), "a path"),
    "array-like": (lambda v: hasattr(v, "__len__") and not isinstance(v, (str, bytes)), "an array"),
}


def _satisfied(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, str):
        return _NAMED[constraint][0](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (constraint is not bool and isinstance(value, bool))
    return constraint.is_satisfied_by(value)


def describe(constraints: Iterable[Any]) -> str:
    """What ``constraints`` allow, in words (``"a positive int or None"``).

    Example:
        >>> describe([Interval(int, 1, None), None])
        'a positive int or None'
    """
    words = []
    for c in constraints:
        if c is None:
            continue
        words.append(_NAMED[c][1] if isinstance(c, str) else
                     (f"a {c.__name__}" if isinstance(c, type) else str(c)))
    if any(c is None for c in constraints):
        words.append("None")
    return " or ".join(words)


def check_param(name: str, value: Any, constraints: Iterable[Any]) -> Any:
    """``value`` if it satisfies one of ``constraints``, else :class:`InvalidParameterError` naming ``name``.

    Example:
        >>> check_param("top_k", 3, [Interval(int, 1, None)])
        3
        >>> check_param("workers", 0, [Interval(int, 1, None)])
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: workers must be a positive int, got 0
    """
    constraints = list(constraints)
    if not any(_satisfied(c, value) for c in constraints):
        raise InvalidParameterError(f"{name} must be {describe(constraints)}, got {value!r}")
    return value


def validate_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Iterable[Any]]) -> None:
    """Check every parameter of ``params`` that ``constraints`` declares; the first failure raises.

    ``owner`` (the class or function) is there for parameters with no declaration: a declared
    constraint set must cover every parameter, so a forgotten one is an error of cvkit, not of the
    user, and says so.

    Example:
        >>> validate_params("f", {"cv": 1}, {"cv": [Interval(int, 2, None)]})
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: cv must be an int >= 2, got 1
    """
    for name, value in params.items():
        if name not in constraints:
            raise KeyError(f"{owner}: parameter {name!r} has no declared constraints")
        check_param(name, value, constraints[name])


def is_deprecated_default(value: Any) -> bool:
    """True if ``value`` is :data:`DEPRECATED`, i.e. the user did not give the old parameter name."""
    return isinstance(value, str) and value == DEPRECATED


def param_value(estimator: Any, old: str, new: str) -> Any:
    """The value in effect for parameter ``new``: the deprecated ``old`` one if given, silently.

    (:func:`renamed_param` is the same with its warning.)

    Example:
        >>> class Estimator:
        ...     verbose, progress = True, False
        >>> param_value(Estimator(), "progress", "verbose")
        False
    """
    value = getattr(estimator, old)
    return getattr(estimator, new) if is_deprecated_default(value) else value


def renamed_param(estimator: Any, old: str, new: str, default: Any) -> Any:
    """The value of parameter ``new``, honouring its deprecated former name ``old`` with a ``FutureWarning``.

    The old name stays in ``__init__`` with the default :data:`DEPRECATED`, so ``get_params`` and
    ``clone`` keep working; ``fit`` calls this. Giving both names is an error.

    Example:
        >>> import warnings
        >>> class Estimator:
        ...     def __init__(self, verbose=True, progress=DEPRECATED):
        ...         self.verbose, self.progress = verbose, progress
        >>> old = Estimator(progress=False)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     renamed_param(old, "progress", "verbose", default=True)
        False
        >>> caught[0].category.__name__
        'FutureWarning'
    """
    return renamed_keyword(type(estimator).__name__, old, getattr(estimator, old), new, getattr(estimator, new),
                           default, stacklevel=4)


def renamed_keyword(owner: str, old: str, old_value: Any, new: str, new_value: Any, default: Any,
                    stacklevel: int = 3) -> Any:
    """The value of keyword ``new`` of function ``owner``, honouring its deprecated former name ``old``.

    :func:`renamed_param` for functions: the old keyword keeps the default :data:`DEPRECATED`; when
    the caller gives it, a ``FutureWarning`` names the new one and its value is used. Giving both
    names (``new_value`` other than its ``default``) is an error.

    Example:
        >>> import warnings
        >>> def make(verbose=True, progress=DEPRECATED):
        ...     return renamed_keyword("make", "progress", progress, "verbose", verbose, default=True)
        >>> make(verbose=False)
        False
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     make(progress=False)
        False
        >>> str(caught[0].message).split(";")[0]
        "make: the parameter 'progress' was renamed 'verbose'"
    """
    if is_deprecated_default(old_value):
        return new_value
    if not (new_value is default or (isinstance(new_value, (str, bool, int, type(None))) and new_value == default)):
        raise ValueError(f"{owner}: give {new}= only ({old}= is its deprecated former name)")
    warnings.warn(f"{owner}: the parameter {old!r} was renamed {new!r}; {old!r} is deprecated "
                  f"and will be removed in a future version. Use {new}={old_value!r}", FutureWarning,
                  stacklevel=stacklevel)
    return old_value
