"""Turn images into feature vectors with a pretrained backbone, fast, with an on-disk cache.

Why: a linear model on pretrained features is the quickest strong baseline, and you featurize the
same photos again and again while you try classifiers. :class:`ImageFeaturizer` decodes and resizes
images on a thread pool while the backbone computes (so reading is hidden behind compute), keeps
memory bounded (only a few batches in flight), shows a ``tqdm`` progress bar in images/s, and
stores each image's features in a SQLite file keyed by the image's content, so the second run over
the same photos is a lookup and an edited photo is recomputed alone. Unreadable images never stop a
run: their rows are NaN, one warning lists them, and ``skipped_`` says why.

Example:
    >>> from cvkit.data import ImageDataset
    >>> from cvkit.features.featurizer import ImageFeaturizer
    >>> ds = ImageDataset.from_directory("sample_data")  # doctest: +SKIP
    >>> X = ImageFeaturizer().transform(ds)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((104, 1280), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import warnings
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from cvkit.data.dataset import BadImageWarning
from cvkit.data.images import ImageReadError, check_image_batch, read_image

__all__ = ["ImageFeaturizer", "FeatureCache", "default_cache_dir", "cache_max_bytes", "DEFAULT_CACHE_MAX_MB"]

# Bump when anything that changes features for the same bytes changes (resizing, preprocessing).
_CACHE_FORMAT = 1
# Bump when the tables of a cache file change; FeatureCache migrates older files in place.
# 0: features only. 1: + last_used (key -> time of the last get or put), for LRU eviction and
# `clear_cache(older_than_days=...)`.
_SCHEMA_VERSION = 1
_SQL_CHUNK = 500  # keys per SELECT ... IN (...)
#: Default size limit of each cache file, in MB (``$CVKIT_CACHE_MAX_MB`` overrides it; 0 = no limit).
#: 1024 MB hold ~180,000 EfficientNet-Lite0 feature vectors (1280 floats, ~5.8 KB each on disk),
#: hours of CPU featurizing: far beyond a typical project, yet the disk use is bounded.
DEFAULT_CACHE_MAX_MB = 1024.0
_EVICT_TO = 0.9  # evict down to 90% of the limit, so eviction runs once per 10% of new data


def default_cache_dir() -> Path:
    """Where features are cached: ``$CVKIT_CACHE_DIR``, else ``~/.cache/cvkit``.

    Example:
        >>> default_cache_dir().name  # doctest: +SKIP
        'cvkit'
    """
    env = os.environ.get("CVKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cvkit"


def cache_max_bytes(max_mb: Optional[float] = None) -> Optional[int]:
    """The size limit of one cache file in bytes, or None for no limit.

    ``max_mb`` wins; if None, ``$CVKIT_CACHE_MAX_MB``; if unset, :data:`DEFAULT_CACHE_MAX_MB`.
    ``0`` means no limit (as in ccache). Why: every featurizer and ``cvkit cache info`` agree on it.

    Example:
        >>> cache_max_bytes(1.5)
        1572864
        >>> cache_max_bytes(0) is None
        True
    """
    source = "cache_max_mb"
    if max_mb is None:
        env = os.environ.get("CVKIT_CACHE_MAX_MB", "").strip()
        if not env:
            max_mb = DEFAULT_CACHE_MAX_MB
        else:
            source = "CVKIT_CACHE_MAX_MB"
            try:
                max_mb = float(env)
            except ValueError:
                raise ValueError(f"CVKIT_CACHE_MAX_MB must be a number of MB (0 = no limit), got {env!r}") from None
    if isinstance(max_mb, bool) or not isinstance(max_mb, (int, float, np.integer, np.floating)) \
            or not np.isfinite(max_mb) or max_mb < 0:
        raise ValueError(f"{source} must be a number of MB >= 0 (0 = no limit), got {max_mb!r}")
    return None if max_mb == 0 else int(max_mb * 1024 * 1024)


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
        >>> cache = FeatureCache("/tmp/features.sqlite", dim=1280, max_bytes=2**30)  # doctest: +SKIP
        >>> cache.put({"ab12...": vec}); cache.get(["ab12..."])  # doctest: +SKIP
    """

    def __init__(self, path: Union[str, os.PathLike], dim: Optional[int] = None,
                 max_bytes: Optional[int] = None, readonly: bool = False):
        self.path = Path(path)
        self.dim = None if dim is None else int(dim)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.readonly = bool(readonly)
        self._count: Optional[int] = None  # entries, kept up to date by put() when max_bytes is set
        self._entry_bytes = 1.0  # bytes on disk per entry, measured when counting
        self._version: Optional[int] = None  # PRAGMA data_version at our last write
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
            if self._schema_version() < _SCHEMA_VERSION:
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
            if self._schema_version() >= _SCHEMA_VERSION:
                return
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self._db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS last_used (key TEXT PRIMARY KEY, used REAL NOT NULL) "
                             "WITHOUT ROWID")
            if "features" in tables:  # an old file: its entries were last used when it was last written
                self._db.execute("INSERT OR IGNORE INTO last_used (key, used) SELECT key, ? FROM features",
                                 (written,))
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

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
            >>> FeatureCache("/tmp/features.sqlite").shrink_to(100 * 2**20)  # doctest: +SKIP
            0
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
            >>> week_ago = time.time() - 7 * 86400  # doctest: +SKIP
            >>> FeatureCache("/tmp/features.sqlite").remove_unused(week_ago)  # doctest: +SKIP
            12
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

    def last_used(self) -> Optional[float]:
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

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _warn_cache_disabled(path: Path, what: str, exc: BaseException) -> None:
    hint = ""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        hint = "; `cvkit cache clear` removes damaged cache files"
    warnings.warn(f"ImageFeaturizer: feature cache disabled, {what} {path} ({exc}){hint}",
                  RuntimeWarning, stacklevel=4)


class _GuardedCache:
    """A :class:`FeatureCache` whose failures (a damaged or deleted file, a full disk) warn once
    and turn it off: features are still computed and returned, only not cached."""

    def __init__(self, cache: FeatureCache):
        self.cache: Optional[FeatureCache] = cache

    def _fail(self, what: str, exc: BaseException) -> None:
        _warn_cache_disabled(self.cache.path, what, exc)
        self.close()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        if self.cache is not None:
            try:
                return self.cache.get(keys)
            except (OSError, sqlite3.Error) as exc:
                self._fail("cannot read", exc)
        return {}

    def put(self, items: dict[str, np.ndarray]) -> None:
        if self.cache is not None:
            try:
                self.cache.put(items)
            except (OSError, sqlite3.Error) as exc:
                self._fail("cannot write", exc)

    def close(self) -> None:
        if self.cache is not None:
            try:
                self.cache.close()
            finally:
                self.cache = None


# Traced predict functions per Keras model and input size: tracing takes seconds, so featurizers
# that share a backbone model share the trace. Weak keys: a discarded model frees its function.
_PREDICT_FNS: "weakref.WeakKeyDictionary[Any, dict[int, Any]]" = weakref.WeakKeyDictionary()


def _trace(model, size: int):
    """``model`` as a ``tf.function`` taking uint8 ``(batch, size, size, 3)``; any batch size, one trace.

    A plain traced call is about twice as fast per batch as ``model.predict`` on NumPy arrays.
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    def predict(x):
        return model(tf.cast(x, tf.float32), training=False)

    return predict


def _architecture_id(model) -> str:
    """A name-independent description of ``model``: each layer's type and config minus its name.

    Keras numbers auto-named layers per session (``activation_17``), so names are left out: the same
    architecture built twice gets the same id.
    """
    import json
    from cvkit.backbones.blocks import _flat_layers

    parts = [repr(model.input_shape), repr(model.output_shape)]
    for layer in _flat_layers(model):
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
        except Exception:  # a layer that cannot describe itself: its type still counts
            config = {}
        parts.append(type(layer).__name__ + json.dumps(config, sort_keys=True, default=repr))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _read_bytes(path: str) -> tuple[Optional[bytes], Optional[str]]:
    """File bytes, or the reason they cannot be read (never raises)."""
    try:
        with open(path, "rb") as f:
            return f.read(), None
    except FileNotFoundError:
        return None, "file not found"
    except IsADirectoryError:
        return None, "not a regular file"
    except OSError as exc:
        return None, f"cannot read file ({exc.strerror or exc})"


def _file_key(path: str) -> tuple[Optional[str], Optional[str]]:
    data, reason = _read_bytes(path)
    if data is None:
        return None, reason
    return hashlib.sha1(data).hexdigest(), None


def _resize_array(img: np.ndarray, size: int) -> np.ndarray:
    """Resize an RGB uint8 array exactly as :func:`read_image` resizes files (bilinear, squash)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    from PIL import Image
    out = Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.Resampling.BILINEAR,
                                                             reducing_gap=2.0)
    return np.asarray(out, dtype=np.uint8)


class ImageFeaturizer(TransformerMixin, BaseEstimator):
    """Pretrained-backbone features for images: ``transform(images) -> float32 (n, d)``.

    Parameters
    ----------
    backbone : name from :func:`cvkit.backbones.available` (default ``"efficientnet_lite0"``, whose
        ImageNet weights work offline), or a Keras model taking RGB 0..255 and returning ``(n, d)``.
    weights : ``"imagenet"``, ``None`` or a local weights file, passed to :func:`cvkit.backbones.get`.
    batch_size : images per forward pass.
    cache : keep features on disk, keyed by file content, backbone, weights and input size. Only
        image *files* are cached; in-memory arrays (often augmented on the fly) are not.
    cache_dir : folder for the cache; default ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``.
    progress : show a ``tqdm`` progress bar (images/s).
    input_size : square side images are resized to; default the backbone's native size.
    pooling : ``"avg"`` or ``"max"`` global pooling of the backbone's last feature map.
    n_workers : threads decoding images; default the number of CPUs.
    cache_max_mb : size limit of the cache file in MB; least recently used features are evicted
        beyond it. Default ``$CVKIT_CACHE_MAX_MB``, else 1024 (about 180,000 images at 1280 floats);
        0 = no limit. See :mod:`cvkit.features.admin` (and ``cvkit cache info``/``clear``) to see or clear it.

    Attributes (set by :meth:`fit`, which :meth:`transform` calls when needed)
    ----------
    model_ : the Keras backbone. ``input_size_`` : int. ``n_features_out_`` : feature width ``d``.
    cache_path_ : the SQLite file, or None. ``cache_max_bytes_`` : the size limit in bytes, or None
    (no limit). ``skipped_`` : ``(path, reason)`` for each image the last
    :meth:`transform` could not read (their rows are NaN).

    Example:
        >>> feats = ImageFeaturizer(batch_size=64).transform(["a.jpg", "b.png"])  # doctest: +SKIP
        >>> from sklearn.pipeline import make_pipeline  # doctest: +SKIP
        >>> from sklearn.linear_model import LogisticRegression  # doctest: +SKIP
        >>> clf = make_pipeline(ImageFeaturizer(), LogisticRegression(max_iter=1000))  # doctest: +SKIP
        >>> clf.fit(train.paths, train.targets).score(test.paths, test.targets)  # doctest: +SKIP
    """

    def __init__(self, backbone: Any = "efficientnet_lite0", weights: Union[str, os.PathLike, None] = "imagenet",
                 batch_size: int = 32, cache: bool = True, cache_dir: Union[str, os.PathLike, None] = None,
                 progress: bool = True, input_size: Optional[int] = None, pooling: str = "avg",
                 n_workers: Optional[int] = None, cache_max_mb: Optional[float] = None):
        self.backbone = backbone
        self.weights = weights
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.progress = progress
        self.input_size = input_size
        self.pooling = pooling
        self.n_workers = n_workers
        self.cache_max_mb = cache_max_mb

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any = None, y: Any = None) -> "ImageFeaturizer":
        """Load the backbone (nothing is learned from ``X``); returns ``self``.

        Example:
            >>> fz = ImageFeaturizer().fit()  # doctest: +SKIP
            >>> fz.model_.output_shape  # doctest: +SKIP
            (None, 1280)
        """
        if not isinstance(self.batch_size, (int, np.integer)) or isinstance(self.batch_size, bool) \
                or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        max_bytes = cache_max_bytes(self.cache_max_mb)  # a bad value or $CVKIT_CACHE_MAX_MB fails here
        if isinstance(self.backbone, str):
            from cvkit import backbones
            spec = backbones.info(self.backbone)
            size = int(self.input_size or spec.input_size)
            model = backbones.get(spec.name, weights=self.weights, include_top=False, pooling=self.pooling,
                                  input_shape=(size, size, 3))
            name = spec.name
        elif hasattr(self.backbone, "predict_on_batch") and hasattr(self.backbone, "input_shape"):
            model = self.backbone
            shape = model.input_shape
            size = int(self.input_size or shape[1] or 224)
            if shape[1] is not None and shape[1] != size:
                raise ValueError(f"input_size={size} does not match the model's input shape {shape}")
            name = model.name
        else:
            raise TypeError("backbone must be a name from cvkit.backbones.available() or a Keras model, "
                            f"got {type(self.backbone).__name__}")
        if len(model.output_shape) != 2:
            raise ValueError(f"the backbone must output (n, d) features; {name!r} gives {model.output_shape} "
                             "(use a pooled backbone, e.g. cvkit.backbones.get(name, pooling='avg'))")
        self.model_ = model
        self.input_size_ = size
        self.n_features_out_ = int(model.output_shape[-1])
        self.skipped_: list[tuple[str, str]] = []
        self._predict = None
        self.cache_path_ = self._cache_path(name) if self._cache_enabled() else None
        self.cache_max_bytes_ = max_bytes
        return self

    def _cache_enabled(self) -> bool:
        return bool(self.cache) and not (isinstance(self.backbone, str) and self.weights is None)

    def _cache_path(self, name: str) -> Path:
        """One file per (architecture, weights, input size); weights identified by their bytes.

        The architecture is identified too (layer types and settings, in order, ignoring layer
        names), since two models can share weights but differ in weightless layers such as pooling.
        """
        digest = hashlib.sha1()
        digest.update(_architecture_id(self.model_).encode())
        for w in self.model_.weights:
            value = np.asarray(w.numpy())
            digest.update(str(value.shape).encode())
            digest.update(value.tobytes())
        weights_id = digest.hexdigest()[:16]
        folder = Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        return folder / f"features-v{_CACHE_FORMAT}-{safe}-{self.input_size_}px-{weights_id}.sqlite"

    def _predict_fn(self):
        """The backbone as a traced ``tf.function`` on uint8 batches, shared by featurizers of one model."""
        if self._predict is None:
            per_model = _PREDICT_FNS.setdefault(self.model_, {})
            if self.input_size_ not in per_model:
                per_model[self.input_size_] = _trace(self.model_, self.input_size_)
            self._predict = per_model[self.input_size_]
        return self._predict

    def __getstate__(self):
        """Copies (pickle, ``copy.deepcopy``) keep the parameters; a backbone given by name is not
        copied but rebuilt from its name on the next :meth:`transform`, so a copy stays small."""
        state = self.__dict__.copy()
        state.pop("_predict", None)  # a traced tf.function cannot be copied; rebuilt on demand
        if isinstance(self.backbone, str):
            state.pop("model_", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._predict = None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # pretrained: transform works without fit
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<backbone>_0 ... <backbone>_{d-1}`` for the output columns."""
        if not hasattr(self, "model_"):
            self.fit()
        return np.asarray([f"{self.model_.name}_{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ transforming
    def transform(self, X: Any, return_mask: bool = False):
        """Features of each image in ``X``: float32 ``(n, d)``; rows of unreadable images are NaN.

        ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of image paths, a uint8 array
        ``(n, H, W, 3)``, or a list mixing paths and ``(H, W, 3)`` uint8 arrays. Images are resized
        (squashed, bilinear) to ``input_size_``. With ``return_mask=True`` returns
        ``(features, ok_mask)`` where ``ok_mask[i]`` is False for unreadable images.

        Example:
            >>> X, ok = ImageFeaturizer().transform(paths, return_mask=True)  # doctest: +SKIP
            >>> X[ok].shape  # doctest: +SKIP
            (98, 1280)
        """
        items = _as_items(X)
        if not hasattr(self, "model_"):
            self.fit()
        n, d = len(items), self.n_features_out_
        features = np.full((n, d), np.nan, dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        skipped: list[tuple[str, str]] = []
        if n:
            self._run(items, features, ok, skipped)
        self.skipped_ = skipped
        if skipped:
            shown = "\n".join(f"  {p}: {r}" for p, r in skipped[:10])
            more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
            warnings.warn(f"ImageFeaturizer: {len(skipped)} of {n} image(s) could not be read; their feature "
                          f"rows are NaN (see .skipped_):\n{shown}{more}", BadImageWarning, stacklevel=2)
        return (features, ok) if return_mask else features

    def fit_transform(self, X: Any, y: Any = None, **fit_params) -> np.ndarray:
        """``fit()`` then ``transform(X)``."""
        return self.fit(X, y).transform(X)

    def _open_cache(self) -> Optional["_GuardedCache"]:
        if self.cache_path_ is None:
            return None
        try:
            cache = FeatureCache(self.cache_path_, self.n_features_out_,
                                 max_bytes=getattr(self, "cache_max_bytes_", None))
        except (OSError, sqlite3.Error) as exc:
            _warn_cache_disabled(self.cache_path_, "cannot open", exc)
            return None
        return _GuardedCache(cache)

    def _run(self, items: list, features: np.ndarray, ok: np.ndarray, skipped: list) -> None:
        from tqdm.auto import tqdm

        n = len(items)
        workers = int(self.n_workers or os.cpu_count() or 2)
        bar = tqdm(total=n, desc=f"Featurizing ({self.model_.name})", unit="img", disable=not self.progress,
                   smoothing=0.1)
        cache = self._open_cache()
        reasons: dict[int, str] = {}
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvkit-featurize") as pool:
                todo = list(range(n))
                if cache is not None:
                    todo = self._lookup(items, cache, pool, features, ok, reasons, bar)
                self._compute(items, todo, cache, pool, features, ok, reasons, bar)
        finally:
            bar.close()
            if cache is not None:
                cache.close()
        for i in sorted(reasons):
            skipped.append((_describe(items[i], i), reasons[i]))

    def _lookup(self, items, cache, pool, features, ok, reasons, bar) -> list[int]:
        """Pass 1: hash every file and fill rows found in the cache; returns indices still to compute."""
        files = [i for i, item in enumerate(items) if isinstance(item, str)]
        todo = [i for i, item in enumerate(items) if not isinstance(item, str)]
        keys = list(pool.map(_file_key, [items[i] for i in files], chunksize=16))
        found = cache.get([k for k, _ in keys if k is not None])
        for i, (key, reason) in zip(files, keys):
            if key is None:
                reasons[i] = reason
                bar.update(1)
            elif key in found:
                features[i] = found[key]
                ok[i] = True
                bar.update(1)
            else:
                todo.append(i)
        todo.sort()
        return todo

    def _compute(self, items, todo, cache, pool, features, ok, reasons, bar) -> None:
        """Pass 2: decode on the pool while the backbone runs; at most a few batches in flight."""
        if not todo:
            return
        size, batch_size = self.input_size_, int(self.batch_size)
        predict = self._predict_fn()
        window = 3 * batch_size  # bounded memory: ~3 batches decoded ahead
        buffer = np.empty((batch_size, size, size, 3), dtype=np.uint8)
        rows: list[int] = []
        keys: list[Optional[str]] = []
        pending: deque = deque()
        order = iter(todo)

        def submit() -> None:
            i = next(order, None)
            if i is not None:
                pending.append((i, pool.submit(_load, items[i], size)))

        def flush() -> None:
            out = predict(buffer[:len(rows)]).numpy()
            features[rows] = out
            ok[rows] = True
            if cache is not None:
                cache.put({k: out[j] for j, k in enumerate(keys) if k is not None})
            bar.update(len(rows))
            rows.clear()
            keys.clear()

        for _ in range(window):
            submit()
        while pending:
            i, future = pending.popleft()
            submit()
            pixels, key, reason = future.result()
            if pixels is None:
                reasons[i] = reason
                bar.update(1)
                continue
            buffer[len(rows)] = pixels
            rows.append(i)
            keys.append(key)
            if len(rows) == batch_size:
                flush()
        if rows:
            flush()


def _load(item: Union[str, np.ndarray], size: int) -> tuple[Optional[np.ndarray], Optional[str], Optional[str]]:
    """Decode one item to ``(pixels, cache key or None, None)`` or ``(None, None, reason)``; never raises."""
    if isinstance(item, str):
        data, reason = _read_bytes(item)
        if data is None:
            return None, None, reason
        try:
            pixels = read_image(data, size=size)
        except ImageReadError as exc:
            return None, None, exc.reason
        except Exception as exc:  # a reader bug must not stop the run either
            return None, None, f"cannot decode image ({type(exc).__name__}: {exc})"
        return pixels, hashlib.sha1(data).hexdigest(), None
    try:
        return _resize_array(item, size), None, None
    except Exception as exc:
        return None, None, f"cannot resize array ({type(exc).__name__}: {exc})"


def _describe(item: Union[str, np.ndarray], index: int) -> str:
    return item if isinstance(item, str) else f"<array #{index}>"


def _as_items(X: Any) -> list:
    """Normalise the accepted inputs to a list of path strings and (H, W, 3) uint8 arrays."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"transform takes a list of images, not a single path ({X!r}); wrap it: [path]")
    if hasattr(X, "paths") and not isinstance(X, np.ndarray):  # ImageDataset
        return [os.fspath(p) for p in X.paths]
    if isinstance(X, np.ndarray) and X.dtype.kind in "iufb":
        check_image_batch(X)
        return list(X)
    if not isinstance(X, Iterable):
        raise TypeError(f"cannot featurize a {type(X).__name__}: pass an ImageDataset, a list of paths "
                        "or a uint8 array (n, H, W, 3)")
    items: list = []
    for i, item in enumerate(X):
        if isinstance(item, (str, os.PathLike)):
            items.append(str(os.fspath(item)))
        elif isinstance(item, np.ndarray):
            if item.ndim != 3 or item.shape[-1] != 3 or item.dtype != np.uint8:
                raise ValueError(f"item {i}: an image array must be uint8 (height, width, 3), got "
                                 f"{item.dtype} {item.shape}")
            items.append(item)
        else:
            raise TypeError(f"item {i}: expected an image path or a uint8 (H, W, 3) array, got {type(item).__name__}")
    return items
