"""Lazy re-exports for package ``__init__`` modules: names resolve on first use.

Why: ``import cvkit`` (or ``cvkit.widgets``) stays fast, and TensorFlow, ipywidgets or FastAPI load
only when something that needs them is used.

Example (in a package's ``__init__.py``, ``__getattr__, __dir__, __all__ = lazy_exports(...)``):
    >>> getattr_, dir_, all_ = lazy_exports("cvkit.serving", {"Client": "cvkit.serving._client"})
    >>> all_, getattr_("Client").__name__
    (['Client'], 'Client')
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(module: str, exports: dict[str, str], submodules: Mapping[str, str] | Iterable[str] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` for ``module``.

    ``exports`` maps a public name to the module defining it; ``submodules`` are sub-module names
    reachable as attributes (``cvkit.backbones``), or a mapping of attribute name to module. A resolved
    name is cached in the module.
    """
    subs = dict(submodules) if isinstance(submodules, Mapping) else {s: f"{module}.{s}" for s in submodules}

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            setattr(sys.modules[module], name, value)
            return value
        if name in subs:
            return importlib.import_module(subs[name])
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | set(exports) | set(subs))

    return __getattr__, __dir__, sorted(exports)
