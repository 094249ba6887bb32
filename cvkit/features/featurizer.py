"""Turn images into feature vectors with a pretrained backbone, fast, with an on-disk cache.

Why: a linear model on pretrained features is the quickest strong baseline, and you featurize the
same photos again and again while you try classifiers. :class:`ImageFeaturizer` decodes and resizes
images on a thread pool while the backbone computes (so reading is hidden behind compute), keeps
memory bounded (only a few batches in flight), shows a ``tqdm`` progress bar in images/s, and
stores each image's features in the on-disk store of :mod:`cvkit.features.store`, keyed by the
image's content, so the second run over the same photos is a lookup and an edited photo is
recomputed alone. Unreadable images never stop a run: their rows are NaN, one warning lists them,
and ``skipped_`` says why.

Example:
    >>> from cvkit.features.featurizer import ImageFeaturizer
    >>> X = ImageFeaturizer(progress=False).fit_transform(train)  # EfficientNet-Lite0, offline
    >>> X.shape, X.dtype
    ((68, 1280), dtype('float32'))
"""
from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from cvkit import backbones
from cvkit.backbones.blocks import flat_layers
from cvkit.data.checks import warn_skipped
from cvkit.data.images import ImageReadError, PathLike, check_image_batch, read_file, read_image, resize
from cvkit.features.store import GuardedCache, cache_file_path, cache_max_bytes, default_cache_dir
from cvkit.runtime import import_tensorflow

__all__ = ["ImageFeaturizer"]

# Traced predict functions per Keras model and input size: tracing takes seconds, so featurizers
# that share a backbone model share the trace. Weak keys: a discarded model frees its function.
_PREDICT_FNS: "weakref.WeakKeyDictionary[Any, dict[int, Any]]" = weakref.WeakKeyDictionary()


class ImageFeaturizer(TransformerMixin, BaseEstimator):
    """Pretrained-backbone features for images: ``transform(images) -> float32 (n, d)``.

    Parameters
    ----------
    backbone : name from :func:`cvkit.backbones.available` (default ``"efficientnet_lite0"``, whose
        ImageNet weights work offline), or a Keras model taking RGB 0..255 and returning ``(n, d)``.
    weights : ``"imagenet"``, ``None`` or a local weights file, passed to :func:`cvkit.backbones.get`.
    batch_size : images per forward pass (a positive int).
    cache : keep features on disk, keyed by file content, backbone, weights and input size. Only
        image *files* are cached; in-memory arrays (often augmented on the fly) are not.
    cache_dir : folder for the cache; default ``$CVKIT_CACHE_DIR`` or ``~/.cache/cvkit``.
    progress : show a ``tqdm`` progress bar (images/s); :meth:`transform` can override it per call.
    input_size : square side images are resized to; default the backbone's native size.
    pooling : ``"avg"`` or ``"max"`` global pooling of the backbone's last feature map.
    n_workers : threads decoding images; default the number of CPUs.
    cache_max_mb : size limit of the cache file in MB; least recently used features are evicted
        beyond it. Default ``$CVKIT_CACHE_MAX_MB``, else 1024 (about 180,000 images at 1280 floats);
        0 = no limit. See :mod:`cvkit.features.admin` (and ``cvkit cache info``/``clear``) to see or clear it.

    The scikit-learn contract: ``__init__`` only stores the parameters, and nothing ever changes
    them (so :func:`sklearn.base.clone` and ``get_params``/``set_params`` work). :meth:`fit` checks
    them, with an error naming a bad one, and builds the backbone; nothing is learned from data.
    Because of that, :meth:`transform` on a featurizer never fitted builds the same fitted state
    first (``ImageFeaturizer().transform(images)`` works); ``check_is_fitted`` fails before the
    first ``fit`` or ``transform`` and passes after.

    Attributes (set by :meth:`fit`, or by the first :meth:`transform`)
    ----------
    model_ : the Keras backbone. ``input_size_`` : int. ``n_features_out_`` : feature width ``d``.
    cache_path_ : the SQLite file, or None. ``cache_max_bytes_`` : the size limit in bytes, or None
    (no limit). ``skipped_`` : ``(path, reason)`` for each image the last :meth:`transform` could
    not read (their rows are NaN).

    Example:
        >>> fz = ImageFeaturizer(clf.featurizer_.model_, batch_size=8, progress=False)  # a built Lite0
        >>> X, ok = fz.transform([photo, "no-such-file.jpg"], return_mask=True)  # warns: 1 of 2 unreadable
        >>> X.shape, ok.tolist(), fz.skipped_
        ((2, 1280), [True, False], [('no-such-file.jpg', 'file not found')])
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.linear_model import LogisticRegression
        >>> probe = make_pipeline(fz, LogisticRegression(max_iter=1000))
        >>> probe.fit(train.paths, train.targets).score(test.paths, test.targets) > 0.9
        True
    """

    def __init__(self, backbone: Any = "efficientnet_lite0", weights: Union[PathLike, None] = "imagenet",
                 batch_size: int = 32, cache: bool = True, cache_dir: Union[PathLike, None] = None,
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
        """Check the parameters and build the backbone (nothing is learned from ``X``); returns ``self``.

        A bad parameter raises ``ValueError`` (or ``TypeError``) naming it. The parameters are
        never changed; the fitted attributes end in ``_``.

        Example:
            >>> fz = ImageFeaturizer(clf.featurizer_.model_, progress=False).fit()
            >>> fz.model_.output_shape, fz.input_size_, fz.n_features_out_
            ((None, 1280), 224, 1280)
            >>> ImageFeaturizer(batch_size=0).fit()
            Traceback (most recent call last):
            ...
            ValueError: batch_size must be a positive int, got 0
        """
        self._build()
        return self

    def _build(self) -> None:
        """Set every fitted attribute from the parameters: what :meth:`fit` does, and what
        :meth:`transform` does first on a featurizer never fitted (or a copy, whose named backbone
        was not copied)."""
        max_bytes = self._check_params()  # a bad value or $CVKIT_CACHE_MAX_MB fails here, before any work
        model, name, size = self._load_backbone()
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

    def _check_params(self) -> Optional[int]:
        """Validate the parameters (each error names the parameter); returns the cache limit in bytes."""
        _check_int("batch_size", self.batch_size)
        _check_int("input_size", self.input_size, optional=True)
        _check_int("n_workers", self.n_workers, optional=True)
        for name in ("cache", "progress"):
            value = getattr(self, name)
            if not (isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1))):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        for name in ("weights", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a path or None, got {type(value).__name__}")
        return cache_max_bytes(self.cache_max_mb)

    def _load_backbone(self) -> tuple[Any, str, int]:
        """The Keras model to run, the name its cache file carries, and the input side in pixels."""
        if isinstance(self.backbone, str):
            spec = backbones.info(self.backbone)
            size = int(self.input_size or spec.input_size)
            model = backbones.get(spec.name, weights=self.weights, include_top=False, pooling=self.pooling,
                                  input_shape=(size, size, 3))
            return model, spec.name, size
        if hasattr(self.backbone, "predict_on_batch") and hasattr(self.backbone, "input_shape"):
            model = self.backbone
            shape = model.input_shape
            size = int(self.input_size or shape[1] or 224)
            if shape[1] is not None and shape[1] != size:
                raise ValueError(f"input_size={size} does not match the model's input shape {shape}")
            return model, model.name, size
        raise TypeError("backbone must be a name from cvkit.backbones.available() or a Keras model, "
                        f"got {type(self.backbone).__name__}")

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
        folder = Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()
        return cache_file_path(folder, name, self.input_size_, digest.hexdigest()[:16])

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

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<backbone>_0 ... <backbone>_{d-1}`` for the output columns (builds the backbone
        first if needed, as :meth:`transform` does).

        Example:
            >>> ImageFeaturizer(clf.featurizer_.model_).get_feature_names_out()[:2].tolist()
            ['efficientnet_lite0_0', 'efficientnet_lite0_1']
        """
        if not hasattr(self, "model_"):
            self._build()
        return np.asarray([f"{self.model_.name}_{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ transforming
    def transform(self, X: Any, return_mask: bool = False, progress: Optional[bool] = None):
        """Features of each image in ``X``: float32 ``(n, d)``; rows of unreadable images are NaN.

        ``X`` is an :class:`~cvkit.data.ImageDataset`, a list of image paths, a uint8 array
        ``(n, H, W, 3)``, or a list mixing paths and ``(H, W, 3)`` uint8 arrays. Images are resized
        (squashed, bilinear) to ``input_size_``. With ``return_mask=True`` returns
        ``(features, ok_mask)`` where ``ok_mask[i]`` is False for unreadable images. ``progress``
        shows or hides the progress bar for this call (default: the ``progress`` parameter).
        A featurizer never fitted is fitted first (see the class); ``skipped_`` is then set anew.

        Example:
            >>> fz = ImageFeaturizer(clf.featurizer_.model_)
            >>> pixels = np.zeros((2, 100, 80, 3), np.uint8)  # arrays of any size are resized
            >>> X, ok = fz.transform([photo, *pixels], return_mask=True, progress=False)
            >>> X.shape, ok.tolist()
            ((3, 1280), [True, True, True])
        """
        items = _as_items(X)
        if not hasattr(self, "model_"):
            self._build()
        if progress is None:
            progress = self.progress
        n, d = len(items), self.n_features_out_
        features = np.full((n, d), np.nan, dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        skipped: list[tuple[str, str]] = []
        if n:
            self._run(items, features, ok, skipped, bool(progress))
        self.skipped_ = skipped
        warn_skipped(skipped, "ImageFeaturizer", stacklevel=4,  # the caller of the set_output wrapper
                     summary=f"{len(skipped)} of {n} image(s) could not be read; their feature rows are NaN "
                             "(see .skipped_)")
        return (features, ok) if return_mask else features

    def fit_transform(self, X: Any, y: Any = None, **fit_params) -> np.ndarray:
        """``fit()`` then ``transform(X)``."""
        return self.fit(X, y).transform(X)

    def _open_cache(self) -> Optional[GuardedCache]:
        if self.cache_path_ is None:
            return None
        return GuardedCache.open(self.cache_path_, self.n_features_out_,
                                 max_bytes=getattr(self, "cache_max_bytes_", None))

    def _run(self, items: list, features: np.ndarray, ok: np.ndarray, skipped: list,
             progress: bool) -> None:
        from cvkit.runtime import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks

        n = len(items)
        workers = int(self.n_workers or os.cpu_count() or 2)
        bar = tqdm(total=n, desc=f"Featurizing ({self.model_.name})", unit="img", disable=not progress,
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


def _check_int(name: str, value: Any, optional: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive int (or None if ``optional``)."""
    if optional and value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "a positive int or None" if optional else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _trace(model, size: int):
    """``model`` as a ``tf.function`` taking uint8 ``(batch, size, size, 3)``; any batch size, one trace.

    A plain traced call is about twice as fast per batch as ``model.predict`` on NumPy arrays.
    """
    tf = import_tensorflow()

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
    def predict(x):
        return model(tf.cast(x, tf.float32), training=False)

    return predict


def _architecture_id(model) -> str:
    """A name-independent description of ``model``: each layer's type and config minus its name.

    Keras numbers auto-named layers per session (``activation_17``), so names are left out: the same
    architecture built twice gets the same id.
    """
    parts = [repr(model.input_shape), repr(model.output_shape)]
    for layer in flat_layers(model):
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
        except Exception:  # a layer that cannot describe itself: its type still counts
            config = {}
        parts.append(type(layer).__name__ + json.dumps(config, sort_keys=True, default=repr))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()


def _read(path: str) -> tuple[Optional[bytes], Optional[str]]:
    """File bytes, or the reason they cannot be read (never raises): :func:`cvkit.data.images.read_file`'s
    checks, so a FIFO, a device or an enormous file named ``x.jpg`` is refused before it is read."""
    try:
        return read_file(path), None
    except ImageReadError as exc:
        return None, exc.reason


def _file_key(path: str) -> tuple[Optional[str], Optional[str]]:
    data, reason = _read(path)
    if data is None:
        return None, reason
    return hashlib.sha1(data).hexdigest(), None


def _load(item: Union[str, np.ndarray], size: int) -> tuple[Optional[np.ndarray], Optional[str], Optional[str]]:
    """Decode one item to ``(pixels, cache key or None, None)`` or ``(None, None, reason)``; never raises."""
    if isinstance(item, str):
        data, reason = _read(item)
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
        return resize(item, size), None, None
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
