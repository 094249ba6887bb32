"""The on-disk feature store: one SQLite file of feature vectors per backbone, weights and input size.

Why a module of its own: :class:`~cvkit.features._featurizer.ImageFeaturizer` computes features,
this module keeps them. :class:`FeatureCache` stores float32 vectors keyed by the SHA-1 of an
image file's bytes (so an edited photo is a new key and a copy under another name is a hit),
bounds its size by evicting the least recently used entries, and lets several processes share one
file. :class:`GuardedCache` wraps it for the featurizer so a damaged or vanished file never stops a
run. :func:`default_cache_dir`, :func:`cache_max_bytes` and :func:`cache_file_path` say where the
files live, how big they may grow and what they are called; :mod:`cvkit.features._admin` reports on
them and clears them.

Example:
    >>> import tempfile
    >>> path = cache_file_path(tempfile.mkdtemp(), "efficientnet_lite0", 224, "0123456789abcdef")
    >>> path.name
    'features-v1-efficientnet_lite0-224px-0123456789abcdef.sqlite'
    >>> with FeatureCache(path, dim=3) as cache:
    ...     cache.put({"key-a": np.array([1, 2, 3], np.float32)})
    ...     found = cache.get(["key-a", "key-b"])
    >>> sorted(found), found["key-a"].tolist()
    (['key-a'], [1.0, 2.0, 3.0])
"""
from __future__ import annotations

import os
import sqlite3
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cvkit._validation import Interval, check_param
from cvkit.data._images import PathLike
from cvkit.data._source import as_size

__all__ = ["FeatureCache", "GuardedCache", "warn_cache_disabled", "default_cache_dir", "cache_max_bytes",
           "cache_file_path",
           "size_text", "as_size", "DEFAULT_CACHE_MAX_MB", "CACHE_MAX_MB_CONSTRAINTS", "CACHE_FORMAT", "SCHEMA_VERSION"]

#: Version of the features themselves, part of every file name: bump it when anything that changes
#: the features of the same bytes changes (resizing, preprocessing), so old files are not read.
CACHE_FORMAT = 1
#: Version of the tables of a cache file (SQLite ``user_version``); :class:`FeatureCache` migrates
#: older files in place. 0: ``features`` only. 1: + ``last_used`` (key -> time of the last get or
#: put), for LRU eviction and ``clear_cache(older_than_days=...)``.
SCHEMA_VERSION = 1
_SQL_CHUNK = 500  # keys per SELECT ... IN (...)
#: Default size limit of each cache file, in MB (``$CVKIT_CACHE_MAX_MB`` overrides it; 0 = no limit).
#: 1024 MB hold ~180,000 EfficientNet-Lite0 feature vectors (1280 floats, ~5.8 KB each on disk),
#: hours of CPU featurizing: far beyond a typical project, yet the disk use is bounded.
DEFAULT_CACHE_MAX_MB = 1024.0
#: What ``cache_max_mb`` may be: MB (0 = no limit), or None for ``$CVKIT_CACHE_MAX_MB`` / the default.
CACHE_MAX_MB_CONSTRAINTS = [Interval(float, 0, None), None]
_EVICT_TO = 0.9  # evict down to 90% of the limit, so eviction runs once per 10% of new data


def default_cache_dir() -> Path:
    """Where features are cached: ``$CVKIT_CACHE_DIR``, else ``~/.cache/cvkit``.

    Why an environment variable: one setting moves every featurizer's cache (to a bigger disk, or
    a folder shared by a team) without touching code.

    Example:
        >>> isinstance(default_cache_dir(), Path)
        True
    """
    env = os.environ.get("CVKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cvkit"


def cache_max_bytes(max_mb: float | None = None) -> int | None:
    """The size limit of one cache file in bytes, or None for no limit.

    ``max_mb`` wins; if None, ``$CVKIT_CACHE_MAX_MB``; if unset, :data:`DEFAULT_CACHE_MAX_MB`.
    ``0`` means no limit (as in ccache). Why: every featurizer and ``cvkit cache info`` agree on it.

    Example:
        >>> cache_max_bytes(1.5)
        1572864
        >>> cache_max_bytes(0) is None
        True
    """
    check_param("cache_max_mb", max_mb, CACHE_MAX_MB_CONSTRAINTS)
    if max_mb is None:
        env = os.environ.get("CVKIT_CACHE_MAX_MB", "").strip()
        if not env:
            max_mb = DEFAULT_CACHE_MAX_MB
        else:
            try:
                max_mb = float(env)
            except ValueError:
                max_mb = env  # type: ignore[assignment] - refused below, naming the variable
            check_param("CVKIT_CACHE_MAX_MB", max_mb, CACHE_MAX_MB_CONSTRAINTS[:1])
    return None if max_mb == 0 else int(max_mb * 1024 * 1024)


def size_text(size: int | Sequence[int]) -> str:
    """How file names show an input size: ``"224"`` for a square, ``"320x240"`` for ``(width, height)``.

    Example:
        >>> size_text(224), size_text((224, 224)), size_text((320, 240))
        ('224', '224', '320x240')
    """
    width, height = as_size(size)
    return str(width) if width == height else f"{width}x{height}"


def cache_file_path(folder: PathLike, backbone: str, input_size: int | Sequence[int], weights_id: str) -> Path:
    """The cache file of one backbone (its name), input size (see :func:`size_text`) and weights (an id of their bytes).

    The name carries :data:`CACHE_FORMAT`, so features computed differently never mix; characters
    other than letters, digits, ``-`` and ``_`` in ``backbone`` become ``_``.
    :data:`cvkit.features._admin.CACHE_FILE_NAME` recognises these names.

    Example:
        >>> cache_file_path("cache", "my model", 192, "0123456789abcdef").name
        'features-v1-my_model-192px-0123456789abcdef.sqlite'
    """
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in backbone)
    return Path(folder) / f"features-v{CACHE_FORMAT}-{safe}-{size_text(input_size)}px-{weights_id}.sqlite"


class FeatureCache:
    """One SQLite file of float32 feature vectors keyed by the SHA-1 of each image file's bytes.

    SQLite because it is in the standard library, writes atomically (a crash never leaves a half
    written entry), lets several processes share one file (WAL mode: readers never wait for a
    writer) and reads hundreds of vectors in one query. One file per backbone, weights and input
    size, so keys need only identify the image.

    Each entry also has a last-used time (set by :meth:`put` and :meth:`get`), kept in a small
    table of its own and not indexed, so that marking a few thousand hits writes a few pages, not
    every vector again (``bench/cache.py``: a warm lookup costs ~7% more than without it).

    With ``max_bytes``, :meth:`put` evicts the least recently used entries once the entries take
    more than that on disk, down to 90% of it, so eviction is rare (and then sorts the last-used
    table: ~0.2 s for 200,000 entries). The check is cheap: the entries are counted once (again
    only after another process wrote), then each put adds the keys it really added.

    Files written before last-used times existed are migrated in place on opening; their entries
    count as last used when the file was last written.

    ``dim`` : vector length; vectors of another length are ignored by :meth:`get`. None accepts any
    (for maintenance). ``readonly=True`` never writes: no migration, no last-used times (for reports).

    Example:
        >>> import tempfile
        >>> cache = FeatureCache(f"{tempfile.mkdtemp()}/features.sqlite", dim=4, max_bytes=2**30)
        >>> cache.put({"ab12": np.ones(4, np.float32)})
        >>> cache.get(["ab12", "cd34"])
        {'ab12': array([1., 1., 1., 1.], dtype=float32)}
        >>> len(cache)
        1
        >>> cache.close()
    """

    def __init__(self, path: PathLike, dim: int | None = None,
                 max_bytes: int | None = None, readonly: bool = False):
        self.path = Path(path)
        self.dim = None if dim is None else int(dim)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.readonly = bool(readonly)
        self._count: int | None = None  # entries, kept up to date by put() when max_bytes is set
        self._entry_bytes = 1.0  # bytes on disk per entry, measured when counting
        self._version: int | None = None  # PRAGMA data_version at our last write
        if self.readonly:
            # No writes are issued; mode=rw never creates a missing file. Not mode=ro: a read-only
            # connection cannot remove the -wal/-shm files it needs, the last normal one does on close.
            self._db = sqlite3.connect(self.path.resolve().as_uri() + "?mode=rw", uri=True, timeout=30.0,
                                       isolation_level=None)
            try:
                self._db.execute("SELECT 1 FROM sqlite_master").fetchone()  # "file is not a database" here
            except BaseException:
                self._db.close()
                raise
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        written = self._file_mtime()  # before connecting, which creates a fresh -wal file
        # Autocommit; writes use explicit BEGIN IMMEDIATE, which waits (up to `timeout`) for another
        # process's write instead of failing half-way through a read-then-write transaction.
        self._db = sqlite3.connect(os.fspath(self.path), timeout=30.0, isolation_level=None)
        try:
            # Only takes effect on a new, empty file: lets clear_cache() free pages without a VACUUM.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA journal_size_limit=8388608")  # the -wal file shrinks back to 8 MB
            if self._schema_version() < SCHEMA_VERSION:
                self._migrate(written)
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ schema
    def _schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, written: float) -> None:
        """Create the tables, or bring an older file up to date, in one write transaction.

        Checked again inside the transaction, so two processes opening an old file at once migrate
        it once.
        """
        with self._write():
            if self._schema_version() >= SCHEMA_VERSION:
                return
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self._db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS last_used (key TEXT PRIMARY KEY, used REAL NOT NULL) "
                             "WITHOUT ROWID")
            if "features" in tables:  # an old file: its entries were last used when it was last written
                self._db.execute("INSERT OR IGNORE INTO last_used (key, used) SELECT key, ? FROM features",
                                 (written,))
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _file_mtime(self) -> float:
        times = []
        for suffix in ("", "-wal"):
            try:
                times.append(os.stat(os.fspath(self.path) + suffix).st_mtime)
            except OSError:
                pass
        return max(times, default=time.time())

    @contextmanager
    def _write(self):
        """One write transaction; waits for other writers, rolls back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _check_writable(self) -> None:
        if self.readonly:
            raise ValueError(f"{self.path}: opened read-only")

    # ------------------------------------------------------------------ entries
    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are simply absent from the result).

        Found keys get their last-used time set to now (one batched write; skipped if the file
        cannot be written: the lookup itself never fails for that).
        """
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _SQL_CHUNK):
            chunk = unique[start:start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vec FROM features WHERE key IN ({marks})", chunk):
                vec = np.frombuffer(blob, dtype="<f4")
                if self.dim is None or vec.size == self.dim:  # ignore malformed rows rather than return wrong features
                    found[key] = vec
        if found and not self.readonly:
            try:
                self._touch(list(found), time.time())
            except sqlite3.OperationalError:  # read-only file or folder, or locked too long: use is advisory
                pass
        return found

    def _touch(self, keys: list[str], now: float) -> None:
        # Keys without a last-used row (stored meanwhile by an older cvkit) get one when evicting.
        with self._write():
            for start in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[start:start + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"UPDATE last_used SET used = ? WHERE key IN ({marks})", [now, *chunk])

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (one transaction); then, over ``max_bytes``, evict least recently used entries."""
        self._check_writable()
        if not items:
            return
        rows = [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in items.items()]
        now = time.time()
        with self._write():
            limited = self.max_bytes is not None
            # Another connection (process) committed since our last write: our entry count is stale.
            version = self._db.execute("PRAGMA data_version").fetchone()[0] if limited else None
            fresh = limited and self._count is not None and version == self._version
            new = len(rows) - self._count_present([k for k, _ in rows]) if fresh else 0
            self._db.executemany("INSERT OR REPLACE INTO features (key, vec) VALUES (?, ?)", rows)
            self._db.executemany("INSERT OR REPLACE INTO last_used (key, used) VALUES (?, ?)",
                                 ((k, now) for k, _ in rows))
            if limited:
                if fresh:
                    self._count += new
                else:
                    self._recount()
                if fresh and self._count * self._entry_bytes > self.max_bytes:
                    self._recount()  # measure again before evicting: the first measure was of a few entries
                if self._count * self._entry_bytes > self.max_bytes:
                    self._evict(int(self._count - self.max_bytes * _EVICT_TO // self._entry_bytes))
                self._version = version

    def _count_present(self, keys: list[str]) -> int:
        present = 0
        for start in range(0, len(keys), _SQL_CHUNK):
            chunk = keys[start:start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            present += self._db.execute(f"SELECT COUNT(*) FROM features WHERE key IN ({marks})", chunk).fetchone()[0]
        return present

    def _recount(self) -> None:
        """Count entries (a scan of the key index) and measure the bytes one entry takes on disk.

        Done on the first limited :meth:`put` and after another process wrote; otherwise the count
        is kept up to date from the keys each :meth:`put` adds (one indexed lookup per put).
        """
        self._count = len(self)
        self._entry_bytes = max(1.0, self.size_bytes() / self._count) if self._count else 1.0

    def size_bytes(self) -> int:
        """Bytes of the database in use (pages holding data; free pages are reused before the file grows)."""
        page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def shrink_to(self, max_bytes: int) -> int:
        """Evict least recently used entries until they take at most ``max_bytes``; returns how many.

        Example:
            >>> import tempfile
            >>> with FeatureCache(f"{tempfile.mkdtemp()}/features.sqlite", dim=1280) as cache:
            ...     cache.put({f"key{i}": np.zeros(1280, np.float32) for i in range(200)})
            ...     removed = cache.shrink_to(500_000)
            ...     (removed > 0, cache.size_bytes() <= 500_000)
            (True, True)
        """
        self._check_writable()
        removed = 0
        with self._write():
            for _ in range(5):  # the estimate counts the tables' fixed pages too; a few rounds settle it
                self._recount()
                over = self.size_bytes() - int(max_bytes)
                if over <= 0 or not self._count:
                    break
                removed += self._evict(max(1, int(np.ceil(over / self._entry_bytes))))
            self._version = self._db.execute("PRAGMA data_version").fetchone()[0]
        return removed

    def _evict(self, n: int) -> int:
        """Inside a write transaction: delete the ``n`` least recently used entries; returns how many."""
        if n <= 0:
            return 0
        # Entries stored by an older cvkit, which kept no last-used times, count as the oldest.
        self._db.execute("INSERT OR IGNORE INTO last_used (key, used) SELECT key, 0 FROM features")
        keys = [k for (k,) in self._db.execute("SELECT key FROM last_used ORDER BY used, key LIMIT ?", (n,))]
        self._delete(keys)
        if self._count is not None:
            self._count = max(0, self._count - len(keys))
        return len(keys)

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _SQL_CHUNK):
            chunk = keys[start:start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM features WHERE key IN ({marks})", chunk)
            self._db.execute(f"DELETE FROM last_used WHERE key IN ({marks})", chunk)

    def remove_unused(self, since: float) -> int:
        """Delete entries last used before the UNIX time ``since``; returns how many.

        Example:
            >>> import tempfile, time
            >>> week_ago = time.time() - 7 * 86400
            >>> with FeatureCache(f"{tempfile.mkdtemp()}/features.sqlite", dim=2) as cache:
            ...     cache.put({"fresh": np.zeros(2, np.float32)})
            ...     cache.remove_unused(week_ago)
            0
        """
        self._check_writable()
        with self._write():
            # Entries an older cvkit stored meanwhile have no time: count them as used now (kept).
            self._db.execute("INSERT OR IGNORE INTO last_used (key, used) SELECT key, ? FROM features",
                             (time.time(),))
            keys = [k for (k,) in self._db.execute("SELECT key FROM last_used WHERE used < ?", (float(since),))]
            self._delete(keys)
        self._count = None  # recounted by the next limited put()
        return len(keys)

    def compact(self) -> None:
        """Give free pages back to the file system and empty the ``-wal`` file.

        Files created with incremental auto-vacuum release free pages cheaply; older files are
        rewritten once by ``VACUUM`` (which also switches them to incremental auto-vacuum).
        """
        self._check_writable()
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            # executescript steps the pragma to the end (execute() frees only the first page)
            self._db.executescript("PRAGMA incremental_vacuum;")
        else:
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def last_used(self) -> float | None:
        """UNIX time of the most recent :meth:`get` or :meth:`put`, or None (empty, or an old file opened read-only)."""
        try:
            value = self._db.execute("SELECT MAX(used) FROM last_used").fetchone()[0]
        except sqlite3.OperationalError:  # no last_used table: an old file opened read-only
            return None
        return None if value is None else float(value)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    def close(self) -> None:
        """Close the database file."""
        self._db.close()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def warn_cache_disabled(path: PathLike, what: str, exc: BaseException, stacklevel: int = 4) -> None:
    """Warn (``RuntimeWarning``) that the feature cache at ``path`` is off for this run, and why.

    A damaged file gets the hint that ``cvkit cache clear`` removes it.
    """
    hint = ""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        hint = "; `cvkit cache clear` removes damaged cache files"
    warnings.warn(f"ImageFeaturizer: feature cache disabled, {what} {os.fspath(path)} ({exc}){hint}",
                  RuntimeWarning, stacklevel=stacklevel + 1)


class GuardedCache:
    """A :class:`FeatureCache` whose failures (a damaged or deleted file, a full disk) warn once
    and turn it off: features are still computed and returned, only not cached.

    Why: the cache only saves time; a problem with it must never cost a result.

    Example:
        >>> import tempfile
        >>> cache = GuardedCache.open(f"{tempfile.mkdtemp()}/features.sqlite", dim=2)
        >>> cache.put({"k": np.zeros(2, np.float32)})
        >>> list(cache.get(["k"]))
        ['k']
        >>> cache.close()
    """

    def __init__(self, cache: FeatureCache):
        self.cache: FeatureCache | None = cache

    @classmethod
    def open(cls, path: PathLike, dim: int | None = None,
             max_bytes: int | None = None) -> GuardedCache | None:
        """Open the cache file at ``path``; None (after one warning) when it cannot be opened."""
        try:
            return cls(FeatureCache(path, dim, max_bytes=max_bytes))
        except (OSError, sqlite3.Error) as exc:
            warn_cache_disabled(path, "cannot open", exc)
            return None

    def _fail(self, what: str, exc: BaseException) -> None:
        warn_cache_disabled(self.cache.path, what, exc)
        self.close()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """:meth:`FeatureCache.get`, or ``{}`` once the cache is off."""
        if self.cache is not None:
            try:
                return self.cache.get(keys)
            except (OSError, sqlite3.Error) as exc:
                self._fail("cannot read", exc)
        return {}

    def put(self, items: dict[str, np.ndarray]) -> None:
        """:meth:`FeatureCache.put`, or nothing once the cache is off."""
        if self.cache is not None:
            try:
                self.cache.put(items)
            except (OSError, sqlite3.Error) as exc:
                self._fail("cannot write", exc)

    def close(self) -> None:
        """Close the file (if still open); the cache is off from then on."""
        if self.cache is not None:
            try:
                self.cache.close()
            finally:
                self.cache = None


