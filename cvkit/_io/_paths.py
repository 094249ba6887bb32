"""Paths as cvkit stores and compares them: one image key, one portable relative form.

- :func:`image_key`: the normalised absolute path that identifies an image file across widgets,
  labels and corrections files (``photos/./a.jpg`` and ``/abs/photos/a.jpg`` are one image).
- :func:`portable_path` / :func:`from_portable`: a path written into a manifest or labels file
  relative to that file's folder with ``/`` separators, so the project can move or change OS,
  and read back against the same folder.

Example:
    >>> import os
    >>> image_key("photos/./a.jpg") == os.path.abspath("photos/a.jpg")
    True
    >>> portable_path("/data/project/photos/a.jpg", "/data/project")
    'photos/a.jpg'
    >>> from_portable("photos/a.jpg", "/data/project")
    '/data/project/photos/a.jpg'
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["image_key", "portable_path", "from_portable"]

PathLike = str | os.PathLike


def image_key(path: PathLike) -> str:
    """The normalised absolute path that identifies an image file (no file is read).

    Example:
        >>> image_key("/a/b/../c.jpg")
        '/a/c.jpg'
    """
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def portable_path(path: PathLike, base: PathLike) -> str:
    """``path`` relative to the folder ``base``, with ``/`` separators; as given when that is
    impossible (another drive on Windows).

    Example:
        >>> portable_path("/x/y/z.jpg", "/x")
        'y/z.jpg'
    """
    try:
        return Path(os.path.relpath(os.path.abspath(os.fspath(path)), os.path.abspath(os.fspath(base)))).as_posix()
    except ValueError:
        return os.fspath(path)


def from_portable(text: str, base: PathLike) -> str:
    """A path read from a file back to a usable one: absolute paths as they are, relative ones
    against the folder ``base``, normalised.

    Example:
        >>> from_portable("/abs/a.jpg", "/x"), from_portable("../a.jpg", "/x/y")
        ('/abs/a.jpg', '/x/a.jpg')
    """
    return text if os.path.isabs(text) else os.path.normpath(os.path.join(os.fspath(base), text))
