"""See, trim and clear the on-disk feature cache (``cvkit cache info`` / ``cvkit cache clear``).

Why: :class:`~cvkit.features._featurizer.ImageFeaturizer` keeps every image's features in one SQLite file per
backbone, weights and input size under :func:`~cvkit.features._store.default_cache_dir`, so a second
pass over the same photos is a lookup. This module reports what that folder holds and frees it.
It only ever touches cvkit's own cache files, recognised by their names
(``features-v<N>-<backbone>-<size>px-<16 hex digits>.sqlite`` and its ``-wal``/``-shm``/``-journal``
companions) directly inside the folder: ``CVKIT_CACHE_DIR`` may point at a folder shared with
other tools, and nothing else in it is read, changed or deleted.

Each cache file is also capped in size (``CVKIT_CACHE_MAX_MB``, default 1024 MB per file, 0 = no
limit; or ``ImageFeaturizer(cache_max_mb=...)``): beyond it the least recently used features are
evicted as new ones are stored.

Example:
    >>> import tempfile
    >>> from cvkit.data import list_images
    >>> from cvkit.features import ImageFeaturizer, cache_info, clear_cache
    >>> folder = tempfile.mkdtemp()
    >>> fz = ImageFeaturizer(cache_dir=folder, verbose=False)
    >>> _ = fz.transform(list_images("sample_data/bird")[:5])  # 5 images featurized, their features cached in folder
    >>> print(cache_info(folder))  # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
    cvkit feature cache in ... (limit 1024 MB per file)
      images     size  last used         file
           5  ...  features-v1-efficientnet_lite0-224px-...sqlite
      total: 5 images, ... in 1 file
    >>> clear_cache(folder, older_than_days=30)  # all were used just now: nothing to remove
    0
    >>> clear_cache(folder) > 0, cache_info(folder).files
    (True, [])
"""
from __future__ import annotations

import os
import re
import sqlite3
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cvkit._validation import Interval, check_param
from cvkit.features._store import FeatureCache, cache_max_bytes, default_cache_dir

__all__ = ["cache_info", "clear_cache", "CacheInfo", "CacheFile", "CacheProblem", "is_cache_file_name",
           "human_size"]

#: Names of the SQLite files :class:`~cvkit.features._featurizer.ImageFeaturizer` creates.
CACHE_FILE_NAME = re.compile(r"features-v\d+-[^/\\]+-\d+(?:x\d+)?px-[0-9a-f]{16}\.sqlite")
#: Files SQLite keeps next to a database (write-ahead log, shared memory, rollback journal).
COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MB = 1024 * 1024


def is_cache_file_name(name: str) -> bool:
    """True if ``name`` is a cvkit feature cache file or one of its SQLite companions.

    Example:
        >>> is_cache_file_name("features-v1-efficientnet_lite0-224px-0123456789abcdef.sqlite-wal")
        True
        >>> is_cache_file_name("features-v1-mobilenet_v2-320x240px-0123456789abcdef.sqlite")  # (width, height)
        True
        >>> is_cache_file_name("holiday.sqlite")
        False
    """
    return _main_name(name) is not None


def _main_name(name: str) -> str | None:
    """The cache file ``name`` belongs to (itself, or the database of a companion), or None."""
    for suffix in COMPANION_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    return name if CACHE_FILE_NAME.fullmatch(name) else None


@dataclass(frozen=True)
class CacheFile:
    """One healthy cache file: its features for one backbone, weights and input size.

    ``bytes`` counts the database and its companions; ``modified`` is the latest change of any of
    them; ``last_used`` the latest :meth:`~cvkit.features._store.FeatureCache.get` or ``put`` (None for a
    file from before cvkit recorded it).
    """

    name: str
    path: Path
    entries: int
    bytes: int
    modified: datetime
    last_used: datetime | None


@dataclass(frozen=True)
class CacheProblem:
    """A file named like a cache file that cannot be used (damaged, not SQLite, unreadable)."""

    name: str
    path: Path
    bytes: int
    reason: str


@dataclass
class CacheInfo:
    """What the cache folder holds; ``str()`` (and the repr) is a small table.

    ``exists`` is False when the folder has not been created yet (nothing featurized).
    ``max_bytes_per_file`` is the size limit in force (None: no limit).
    """

    folder: Path
    exists: bool
    files: list[CacheFile] = field(default_factory=list)
    problems: list[CacheProblem] = field(default_factory=list)
    max_bytes_per_file: int | None = None

    @property
    def total_entries(self) -> int:
        """Cached images over all files."""
        return sum(f.entries for f in self.files)

    @property
    def total_bytes(self) -> int:
        """Bytes of every cvkit cache file in the folder, damaged ones included (what clearing frees)."""
        return sum(f.bytes for f in self.files) + sum(p.bytes for p in self.problems)

    def to_dict(self) -> dict:
        """JSON-ready form (paths as strings, times as ISO 8601)."""
        def stamp(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat(timespec="seconds")
        return {
            "folder": os.fspath(self.folder), "exists": self.exists,
            "max_bytes_per_file": self.max_bytes_per_file,
            "total_entries": self.total_entries, "total_bytes": self.total_bytes,
            "files": [{"name": f.name, "entries": f.entries, "bytes": f.bytes, "modified": stamp(f.modified),
                       "last_used": stamp(f.last_used)} for f in self.files],
            "problems": [{"name": p.name, "bytes": p.bytes, "reason": p.reason} for p in self.problems],
        }

    def __str__(self) -> str:
        limit = "no size limit" if self.max_bytes_per_file is None else \
            f"limit {self.max_bytes_per_file / _MB:g} MB per file"
        lines = [f"cvkit feature cache in {os.fspath(self.folder)} ({limit})"]
        if not self.exists:
            lines.append("  empty (the folder does not exist yet)")
        elif not self.files and not self.problems:
            lines.append("  empty")
        if self.files:
            lines.append(f"  {'images':>8}  {'size':>9}  {'last used':<16}  file")
            for f in self.files:
                used = f.last_used or f.modified
                lines.append(f"  {f.entries:>8}  {human_size(f.bytes):>9}  {used:%Y-%m-%d %H:%M}  {f.name}")
        if self.files or self.problems:
            n = len(self.files) + len(self.problems)
            lines.append(f"  total: {self.total_entries} images, {human_size(self.total_bytes)} in {n} "
                         f"file{'s' if n != 1 else ''}")
        if self.problems:
            lines.append("  unusable files (skipped; `cvkit cache clear` removes them):")
            lines.extend(f"    {p.name} ({human_size(p.bytes)}): {p.reason}" for p in self.problems)
        return "\n".join(lines)

    __repr__ = __str__


def human_size(n: float) -> str:
    """A byte count for people: ``human_size(1536)`` is ``'1.5 KB'`` (B, KB, MB, GB; 1 KB = 1024 B).

    Example:
        >>> human_size(512), human_size(3 * 1024 * 1024)
        ('512 B', '3.0 MB')
    """
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def _folder(cache_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """The cache folder and whether it exists; a folder given explicitly must exist."""
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: not a folder (cache folder)")
    if not folder.exists():
        if cache_dir is not None:
            raise FileNotFoundError(f"{folder}: no such cache folder")
        return folder, False
    return folder, True


def _groups(folder: Path) -> dict[str, list[Path]]:
    """Cache files directly in ``folder``, grouped by database name (main file first, if present).

    Only regular files whose names match; never follows symlinks or enters sub-folders.
    """
    groups: dict[str, list[Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            main = _main_name(entry.name)
            if main is not None and entry.is_file(follow_symlinks=False):
                groups.setdefault(main, []).append(Path(entry.path))
    for main, paths in groups.items():
        paths.sort(key=lambda p: (p.name != main, p.name))
    return dict(sorted(groups.items()))


def _size(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except FileNotFoundError:  # SQLite removed a -wal/-shm meanwhile
            pass
    return total


def _mtime(paths: list[Path]) -> float:
    times = []
    for p in paths:
        try:
            times.append(p.stat().st_mtime)
        except FileNotFoundError:
            pass
    return max(times, default=0.0)


def _diagnose(path: Path) -> str | None:
    """Why ``path`` is not a usable SQLite file, from its first bytes; None if it looks like one."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if not head:
        return "empty file, not a SQLite database"
    if head != _SQLITE_MAGIC:
        return "not a SQLite database"
    return None


def _read_stats(path: Path) -> tuple[tuple[int, float | None] | None, str | None]:
    """``((entries, last_used), None)`` read without changing the file, or ``(None, reason)``."""
    reason = _diagnose(path)
    if reason is not None:
        return None, reason
    try:
        with FeatureCache(path, readonly=True) as cache:
            return (len(cache), cache.last_used()), None
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None, "a SQLite database, but not a cvkit feature cache (no features table)"
        return None, f"cannot read ({exc})"
    except sqlite3.DatabaseError as exc:  # SQLITE_NOTADB, SQLITE_CORRUPT
        return None, f"damaged SQLite file ({exc})"


def cache_info(cache_dir: str | os.PathLike | None = None) -> CacheInfo:
    """What the feature cache holds: per file its images, bytes and times; totals; unusable files.

    ``cache_dir`` defaults to ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit`` (which may not exist yet:
    then the report is empty); a folder given explicitly must exist. Files are opened read-only and
    never changed; a damaged file or a foreign file with a cache file's name is listed under
    ``problems`` with the reason, never raised.

    Example:
        >>> import tempfile
        >>> info = cache_info(tempfile.mkdtemp())  # a folder with no cache files yet
        >>> info.exists, info.total_entries, info.total_bytes, info.files
        (True, 0, 0, [])
    """
    folder, exists = _folder(cache_dir)
    info = CacheInfo(folder=folder, exists=exists, max_bytes_per_file=cache_max_bytes())
    if not exists:
        return info
    for main, paths in _groups(folder).items():
        size = _size(paths)
        if paths[0].name != main:
            names = ", ".join(p.name[len(main):] for p in paths)
            info.problems.append(CacheProblem(main, folder / main, size,
                                              f"leftover {names} file(s) without their database"))
            continue
        stats, reason = _read_stats(paths[0])
        if stats is None:
            info.problems.append(CacheProblem(main, paths[0], size, reason))
            continue
        entries, last_used = stats
        info.files.append(CacheFile(main, paths[0], entries, _size(paths), datetime.fromtimestamp(_mtime(paths)),
                                    None if last_used is None else datetime.fromtimestamp(last_used)))
    return info


def clear_cache(cache_dir: str | os.PathLike | None = None,
                older_than_days: float | None = None) -> int:
    """Delete cached features; returns the bytes freed on disk.

    Without ``older_than_days``, removes every cvkit cache file (and its ``-wal``/``-shm``) in the
    folder; a featurizer simply starts a new one. With it, removes only the features not used (read
    or written) for that many days, in place, and gives the space back to the file system; files
    damaged beyond use are removed either way. Anything in the folder not named like a cvkit cache
    file is left alone. Safe while another process featurizes: entries are deleted in SQLite
    transactions, and a removed file only costs that process its cache writes, never a result.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from cvkit.features._store import FeatureCache, cache_file_path
        >>> folder = tempfile.mkdtemp()
        >>> with FeatureCache(cache_file_path(folder, "demo", 224, "0" * 16), dim=2) as cache:
        ...     cache.put({"k": np.zeros(2, np.float32)})
        >>> clear_cache(folder, older_than_days=30)  # used just now: kept
        0
        >>> clear_cache(folder) > 0  # everything
        True
    """
    check_param("older_than_days", older_than_days, [Interval(float, 0, None), None])
    folder, exists = _folder(cache_dir)
    if not exists:
        return 0
    freed = 0
    failed: list[str] = []
    cutoff = None if older_than_days is None else time.time() - float(older_than_days) * 86400.0
    for main, paths in _groups(folder).items():
        if cutoff is None or paths[0].name != main:  # everything, or companions left without their database
            freed += _remove(paths, failed)
            continue
        stats, reason = _read_stats(paths[0])
        if stats is None:
            if reason.startswith("cannot read"):  # locked or no permission right now: not damaged, keep it
                failed.append(f"{main}: {reason}")
            else:
                freed += _remove(paths, failed)
            continue
        before = _size(paths)
        try:
            _trim(paths[0], cutoff)
        except (OSError, sqlite3.Error) as exc:
            failed.append(f"{main}: {exc}")
        freed += max(0, before - _size(_groups(folder).get(main, [])))
    if failed:
        warnings.warn("clear_cache: could not clear " + "; ".join(failed), RuntimeWarning, stacklevel=2)
    return freed


def _remove(paths: list[Path], failed: list[str]) -> int:
    freed = 0
    for p in paths:
        try:
            size = p.stat().st_size
            p.unlink()
            freed += size
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{p.name}: {exc.strerror or exc}")
    return freed


def _trim(path: Path, cutoff: float) -> None:
    """Delete entries of one cache file last used before ``cutoff``; give the space back."""
    with FeatureCache(path) as cache:  # migrates a file from before last-used times, in place
        if cache.remove_unused(cutoff):
            try:
                cache.compact()
            except sqlite3.OperationalError as exc:  # busy: the free pages are reused by later writes
                warnings.warn(f"clear_cache: {path.name}: entries removed, but the file could not be "
                              f"compacted now ({exc})", RuntimeWarning, stacklevel=3)
