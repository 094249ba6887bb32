"""cvkit's version: one number, written once (pyproject.toml's ``version``) and read from the installed metadata.

:data:`__version__` is ``importlib.metadata.version("cvkit")``: what ``pip install`` recorded, so a
wheel, an editable install and ``cvkit --version`` all say the same. Run from a checkout that is not
installed (``PYTHONPATH=.``), it is the checkout's ``pyproject.toml`` version; failing both, ``0+unknown``.
Model folders record it (``metadata.json``: ``versions.cvkit``).

Example:
    >>> from importlib import metadata
    >>> __version__ == metadata.version("cvkit")
    True
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

__all__ = ["__version__", "installed_version", "UNKNOWN"]

#: The version when cvkit is neither installed nor run from its checkout.
UNKNOWN = "0+unknown"
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _checkout_version(pyproject: Path | None = None) -> str | None:
    """The ``version`` of cvkit's ``pyproject.toml`` beside the package, if cvkit runs from its checkout."""
    try:
        text = (pyproject or _PYPROJECT).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not re.search(r'(?m)^name\s*=\s*"cvkit"\s*$', text):
        return None
    found = re.search(r'(?m)^version\s*=\s*"([^"]+)"\s*$', text)
    return found.group(1) if found else None


def installed_version() -> str:
    """cvkit's version: the installed metadata's, else the checkout's ``pyproject.toml``, else ``0+unknown``.

    Example:
        >>> installed_version() == __version__
        True
    """
    try:
        return metadata.version("cvkit")
    except metadata.PackageNotFoundError:
        return _checkout_version() or UNKNOWN


__version__ = installed_version()
