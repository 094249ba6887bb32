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
    >>> from cvkit.featurize import ImageFeaturizer
    >>> ds = ImageDataset.from_directory("sample_data")  # doctest: +SKIP
    >>> X = ImageFeaturizer().transform(ds)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((104, 1280), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import warnings
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .data.dataset import BadImageWarning
from .data.images import ImageReadError, check_image_batch, read_image

__all__ = ["ImageFeaturizer", "FeatureCache", "default_cache_dir"]

# Bump when anything that changes features for the same bytes changes (resizing, preprocessing).
_CACHE_FORMAT = 1
_SQL_CHUNK = 500  # keys per SELECT ... IN (...)


def default_cache_dir() -> Path:
    """Where features are cached: ``$CVKIT_CACHE_DIR``, else ``~/.cache/cvkit``.

    Example:
        >>> default_cache_dir().name  # doctest: +SKIP
        'cvkit'
    """
    env = os.environ.get("CVKIT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cvkit"


class FeatureCache:
    """One SQLite file of float32 feature vectors keyed by the SHA-1 of each image file's bytes.

    SQLite because it is in the standard library, writes atomically (a crash never leaves a half
    written entry), and reads hundreds of vectors in one query. One file per backbone, weights and
    input size, so keys need only identify the image.

    Example:
        >>> cache = FeatureCache("/tmp/features.sqlite", dim=1280)  # doctest: +SKIP
        >>> cache.put({"ab12...": vec}); cache.get(["ab12..."])  # doctest: +SKIP
    """

    def __init__(self, path: Union[str, os.PathLike], dim: int):
        self.path = Path(path)
        self.dim = int(dim)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(os.fspath(self.path), timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS features (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        self._db.commit()

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``keys`` (missing keys are simply absent from the result)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _SQL_CHUNK):
            chunk = unique[start:start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT key, vec FROM features WHERE key IN ({marks})", chunk):
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.size == self.dim:  # ignore anything malformed rather than return wrong features
                    found[key] = vec
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (one transaction)."""
        if items:
            rows = [(k, np.ascontiguousarray(v, dtype="<f4").tobytes()) for k, v in items.items()]
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO features (key, vec) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    def close(self) -> None:
        """Close the database file."""
        self._db.close()


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
    from .backbones.blocks import _flat_layers

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

    Attributes (set by :meth:`fit`, which :meth:`transform` calls when needed)
    ----------
    model_ : the Keras backbone. ``input_size_`` : int. ``n_features_out_`` : feature width ``d``.
    cache_path_ : the SQLite file, or None. ``skipped_`` : ``(path, reason)`` for each image the last
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
                 n_workers: Optional[int] = None):
        self.backbone = backbone
        self.weights = weights
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.progress = progress
        self.input_size = input_size
        self.pooling = pooling
        self.n_workers = n_workers

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
        if isinstance(self.backbone, str):
            from . import backbones
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

    def _open_cache(self) -> Optional[FeatureCache]:
        if self.cache_path_ is None:
            return None
        try:
            return FeatureCache(self.cache_path_, self.n_features_out_)
        except (OSError, sqlite3.Error) as exc:
            warnings.warn(f"ImageFeaturizer: feature cache disabled, cannot open {self.cache_path_} ({exc})",
                          RuntimeWarning, stacklevel=3)
            return None

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
