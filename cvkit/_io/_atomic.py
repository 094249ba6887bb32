"""Writing files so that a reader sees the old content or the new, never half of one.

Every file cvkit writes (model folders, split manifests, reports, labels and corrections, score
tables, converted graphs, job manifests) goes through here, so each gets the same care:

- the data goes to a hidden temporary file in the target's own folder (same file system, so the
  final rename is atomic), named ``.<name>.<random>.tmp`` (one naming scheme, so a stale one left
  by a killed process is recognisable: :func:`remove_stale_temporaries`);
- it is flushed and ``fsync``-ed, given the old file's permissions (or ``0o644``), renamed over
  the target with :func:`os.replace`, and the folder is ``fsync``-ed so the rename itself lasts;
- if anything fails before the rename, the temporary file is removed and the target is untouched.

:func:`staged_folder` does the same for a whole folder (a model folder): it is assembled under a
temporary name beside the target and renamed into place.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write(os.path.join(folder, "notes.txt"), "hello\\n")
    >>> with atomic_open(os.path.join(folder, "table.csv"), "w") as fh:
    ...     _ = fh.write("path,label\\n")
    >>> sorted(os.listdir(folder))
    ['notes.txt', 'table.csv']
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_open", "staged_folder", "folder_lock", "remove_stale_temporaries",
           "TEMP_SUFFIX"]

PathLike = str | os.PathLike

#: The suffix of every temporary file cvkit writes beside a target (``.<name>.<random>.tmp``).
TEMP_SUFFIX = ".tmp"

#: Permissions of a new file (an existing file keeps its own).
NEW_FILE_MODE = 0o644


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8",
                newline: str | None = "") -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` ``"w"`` or ``"wb"``) so that it appears whole or not at all.

    The block writes to a temporary file beside ``path``; when it ends normally the file is synced
    and renamed over ``path`` (which may exist: it is replaced). When the block raises, ``path`` is
    left as it was and the temporary file is removed. The folder must exist. Text mode writes
    ``encoding`` (UTF-8) with ``newline=""`` (what the csv module wants) unless told otherwise.

    Example:
        >>> import tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "scores.csv")
        >>> with atomic_open(target) as fh:
        ...     _ = fh.write("a,b\\n")
        >>> open(target).read()
        'a,b\\n'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, **({"encoding": encoding, "newline": newline} if text else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            shutil.copymode(path, tmp)
        except OSError:  # no old file (or it cannot be read): a new file's permissions
            os.chmod(tmp, NEW_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def atomic_write(path: PathLike, data: str | bytes, encoding: str = "utf-8") -> None:
    """Write ``data`` (text or bytes) to ``path`` atomically: readers see the old file or the new one.

    Example:
        >>> import tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "labels.tsv")
        >>> atomic_write(target, "path\\tlabel\\n")
        >>> atomic_write(target, b"path\\tlabel\\ncat.jpg\\tcat\\n")
        >>> open(target).read().splitlines()
        ['path\\tlabel', 'cat.jpg\\tcat']
    """
    if isinstance(data, str):
        with atomic_open(path, "w", encoding=encoding, newline="") as fh:
            fh.write(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        with atomic_open(path, "wb") as fh:
            fh.write(bytes(data))
    else:
        raise TypeError(f"data must be str or bytes, got {type(data).__name__}")


@contextlib.contextmanager
def staged_folder(path: PathLike, replace: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``path``; rename it into place when the block ends.

    Yields the temporary folder to fill. On success it becomes ``path``; an existing ``path`` is
    replaced only with ``replace=True`` (the caller decides whether it may be: the old folder is
    moved aside, the new one renamed in, then the old one deleted), else ``FileExistsError``. On
    failure the temporary folder is deleted and ``path`` is untouched.

    Example:
        >>> import tempfile
        >>> target = os.path.join(tempfile.mkdtemp(), "model")
        >>> with staged_folder(target) as tmp:
        ...     atomic_write(tmp / "metadata.json", "{}")
        >>> os.listdir(target)
        ['metadata.json']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        _fsync_folder(tmp)
        if path.exists() or path.is_symlink():
            if not replace:
                raise FileExistsError(f"{path}: already exists; it is not replaced")
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=TEMP_SUFFIX, dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_folder(path.parent)


@contextlib.contextmanager
def folder_lock(folder: PathLike, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself) while the block runs.

    Yields True when the lock is held; False when ``blocking=False`` and another process holds it,
    or when the system has no such lock (Windows, some network file systems), in which case the
    block runs unlocked. The kernel releases the lock when a process dies, so a killed writer never
    leaves a stale lock behind, and no lock file is left in the folder.

    Example:
        >>> import tempfile
        >>> with folder_lock(tempfile.mkdtemp()) as held:
        ...     held
        True
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        yield False
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            held = True
        except OSError:  # busy (non-blocking), or locks unsupported here
            held = False
        yield held
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def remove_stale_temporaries(path: PathLike) -> list[str]:
    """Delete the hidden ``.<name>.*.tmp`` files that killed writes of ``path`` left behind.

    Only done while holding :func:`folder_lock` on the file's folder (a writer that uses the lock
    holds it while its temporary file exists, so what is found then is stale); when another
    process holds it, nothing is removed. Returns the removed paths.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> open(f"{folder}/.labels.tsv.abc123.tmp", "w").close()
        >>> [os.path.basename(p) for p in remove_stale_temporaries(f"{folder}/labels.tsv")]
        ['.labels.tsv.abc123.tmp']
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    with folder_lock(path.parent, blocking=False) as held:
        if not held:
            return []
        pattern = os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*{TEMP_SUFFIX}")
        for tmp in glob.glob(pattern):
            try:
                if stat.S_ISREG(os.lstat(tmp).st_mode):
                    os.unlink(tmp)
                    removed.append(tmp)
            except OSError:
                pass
    return removed
