"""The model-folder format's version, and what a cvkit does with a folder of another version.

``metadata.json`` says ``"format": "cvkit-model"`` and ``"format_version"``: the version of the folder's
layout and fields, which changes only when a reader of the previous version could not read it right
(a new required field, a changed meaning). ``versions.cvkit`` records the cvkit that wrote it.

- A folder of this version or an older one loads: every release reads the folders of the releases
  before it (``tests/models/test_format.py`` keeps a folder from 0.1 as a fixture and loads it).
- A folder of a newer version is refused with a :class:`ModelFormatError` naming both cvkit versions
  and both format versions, and saying to upgrade.

Example:
    >>> check_format_version("m/metadata.json", {"format_version": 9, "versions": {"cvkit": "0.9.0"}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    cvkit.models._trusted.ModelFormatError: m/metadata.json: written by cvkit 0.9.0 in model format 9, newer than ...
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cvkit._version import __version__
from cvkit.models._trusted import ModelFormatError

__all__ = ["FORMAT", "FORMAT_VERSION", "check_format_version", "writer_version"]

FORMAT = "cvkit-model"
#: The format this cvkit writes, and the newest it reads. 2: a linear head as arrays (``head.npz``) and
#: a novelty scorer (``novelty.npz``) beside a graph that ends in features; folders of format 1 still load.
FORMAT_VERSION = 2


def writer_version(meta: dict[str, Any]) -> str:
    """The cvkit version that wrote a folder (``versions.cvkit``), or ``"an unknown version"``.

    Example:
        >>> writer_version({"versions": {"cvkit": "0.1.0"}}), writer_version({})
        ('0.1.0', 'an unknown version')
    """
    versions = meta.get("versions")
    version = versions.get("cvkit") if isinstance(versions, dict) else None
    return version if isinstance(version, str) and version else "an unknown version"


def check_format_version(file: str | Path, meta: dict[str, Any]) -> int:
    """``meta``'s ``format_version`` if this cvkit reads it; else a ModelFormatError naming both versions.

    Example:
        >>> check_format_version("m/metadata.json", {"format_version": 1})
        1
    """
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFormatError(f"{file}: field 'format_version' must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{file}: written by cvkit {writer_version(meta)} in model format {version}, newer than this "
            f"cvkit {__version__} reads (model formats up to {FORMAT_VERSION}); upgrade cvkit "
            "(pip install --upgrade cvkit) to load it")
    return version
