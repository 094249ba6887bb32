"""Turn images into feature vectors with a pretrained backbone, fast, with an on-disk cache.

Why: a linear model on pretrained features is the quickest strong baseline, and you featurize the
same photos again and again while you try classifiers. :class:`ImageFeaturizer` decodes and resizes
images through :meth:`cvkit.data.ImageSource.batches` (cvkit's one decode loop: a few threads a
bounded number of batches ahead, so reading is hidden behind compute and memory stays bounded)
while the backbone computes, shows a ``tqdm`` progress bar in images/s, and stores each image's
features in the on-disk store of :mod:`cvkit.features._store`, keyed by the image's content
(:func:`cvkit.data._source.content_key`), so the second run over the same photos is a lookup and an
edited photo is recomputed alone. Unreadable images never stop a run: their rows are NaN, one
warning lists them, and ``skipped_`` says why. The backbone runs on LiteRT with XNNPACK when it is
installed (1.5x Keras' speed, features within 1e-4 of Keras, no TensorFlow imported once the
backbone's converted graph is cached: :mod:`cvkit.features._compiled`), else on Keras (``runtime=``).

Example:
    >>> from cvkit.data import ImageDataset
    >>> from cvkit.features import ImageFeaturizer
    >>> train, test = ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> X = ImageFeaturizer(verbose=False).fit_transform(train)  # EfficientNet-Lite0, offline
    >>> X.shape, X.dtype
    ((68, 1280), dtype('float32'))
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from cvkit import _litert as litert
from cvkit import backbones, options
from cvkit._validation import (
    DEPRECATED,
    Custom,
    Interval,
    Options,
    param_value,
    renamed_keyword,
    renamed_param,
    validate_params,
)
from cvkit.data._checks import warn_skipped
from cvkit.data._images import PathLike
from cvkit.data._source import ImageSource
from cvkit.features._compiled import (
    cached_graph,
    calibration_images,
    graph_file,
    keras_model_digest,
    keras_predict,
    named_digest,
    weights_identity,
)
from cvkit.features._store import (
    CACHE_MAX_MB_CONSTRAINTS,
    GuardedCache,
    as_size,
    cache_file_path,
    cache_max_bytes,
    default_cache_dir,
)

__all__ = ["ImageFeaturizer", "CALIBRATION_IMAGES"]

#: Most images of ``fit(X)`` an int8 featurizer calibrates on (evenly spaced through ``X``).
CALIBRATION_IMAGES = 200
#: The deprecated former names of parameters (kept for one minor version with a FutureWarning):
#: old name -> (new name, the new one's default).
RENAMED = {"n_workers": ("decode_threads", None), "progress": ("verbose", True)}


def _is_size_pair(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(Interval(int, 1, None).is_satisfied_by(v) for v in value))


def _is_keras_model(value: Any) -> bool:
    return hasattr(value, "predict_on_batch") and hasattr(value, "input_shape")


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
    verbose : show a ``tqdm`` progress bar (images/s); :meth:`transform` can override it per call.
    input_size : the size images are resized to: an int (a square side) or ``(width, height)``;
        default the backbone's native size.
    pooling : ``"avg"`` or ``"max"`` global pooling of the backbone's last feature map.
    decode_threads : threads decoding images; default :func:`cvkit.options.decode_threads`.
    cache_max_mb : size limit of the cache file in MB; least recently used features are evicted
        beyond it. Default ``$CVKIT_CACHE_MAX_MB``, else 1024 (about 180,000 images at 1280 floats);
        0 = no limit. See :mod:`cvkit.features._admin` (and ``cvkit cache info``/``clear``) to see or clear it.
    runtime : ``"auto"`` (LiteRT when ``ai-edge-litert`` is installed, else Keras), ``"litert"`` or
        ``"keras"``. LiteRT runs the backbone converted once (about 10 s) and cached under
        ``<cache_dir>/backbones/`` (with ``cache=True``). Features differ between runtimes by about
        1e-5, so each runtime has its own feature cache file.
    precision : ``"float32"`` (default) or ``"int8"``: about 3x faster on LiteRT, features close to
        float32's (``agreement_`` says how close), calibrated on the images given to :meth:`fit`.
        ``runtime`` and ``precision`` are checked by :class:`cvkit.options.RunOptions`.
    n_workers, progress : deprecated former names of ``decode_threads`` and ``verbose`` (a
        ``FutureWarning``; removed in the next minor version).

    The scikit-learn contract: ``__init__`` only stores the parameters, and nothing ever changes
    them (so :func:`sklearn.base.clone` and ``get_params``/``set_params`` work). :meth:`fit` checks
    them against :attr:`_parameter_constraints`, with an error naming a bad one, and makes the backbone
    ready; nothing is learned from
    data (except int8's calibration).
    Because of that, :meth:`transform` on a featurizer never fitted builds the same fitted state
    first (``ImageFeaturizer().transform(images)`` works); ``check_is_fitted`` fails before the
    first ``fit`` or ``transform`` and passes after.

    Attributes (set by :meth:`fit`, or by the first :meth:`transform`)
    ----------
    runtime_ : ``"litert"`` or ``"keras"``, the runtime that runs. ``model_`` : the Keras backbone
    (for a named backbone on LiteRT, built on first access). ``graph_`` : the ``.tflite`` bytes LiteRT
    runs (None on Keras). ``agreement_`` : int8 only, :func:`cvkit._litert.agreement` of float32 and
    int8 features on the calibration images (else None). ``input_size_`` : ``(width, height)``. ``n_features_out_`` :
    feature width ``d``. ``cache_path_`` : the SQLite file, or None. ``cache_max_bytes_`` : the size
    limit in bytes, or None (no limit). ``skipped_`` : ``(path, reason)`` for each image the last
    :meth:`transform` could not read (their rows are NaN).

    Example:
        >>> import warnings
        >>> fz = ImageFeaturizer(batch_size=8, verbose=False)  # EfficientNet-Lite0, ImageNet weights
        >>> with warnings.catch_warnings(record=True):  # a BadImageWarning: 1 of 2 unreadable
        ...     X, ok = fz.transform(["sample_data/bird/owl.jpg", "no-such-file.jpg"], return_mask=True)
        >>> X.shape, ok.tolist(), fz.skipped_
        ((2, 1280), [True, False], [('no-such-file.jpg', 'file not found')])
        >>> repr(fz).split("  # ")[1]  # the repr ends with the runtime that ran
        "runtime_='litert', float32"
        >>> from cvkit.data import ImageDataset
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.linear_model import LogisticRegression
        >>> train, test = ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
        >>> probe = make_pipeline(fz, LogisticRegression(max_iter=1000))
        >>> probe.fit(train.paths, train.targets).score(test.paths, test.targets) > 0.9
        True
    """

    #: What each parameter may be (checked by :meth:`fit`); ``runtime`` and ``precision`` are
    #: checked by :class:`cvkit.options.RunOptions`, the one home of their values.
    _parameter_constraints: dict = {
        "backbone": [Custom(lambda v: isinstance(v, str), "a name from cvkit.backbones.available()"),
                     Custom(_is_keras_model, "a Keras model")],
        "weights": ["path", None],
        "batch_size": [Interval(int, 1, None)],
        "cache": ["boolean"],
        "cache_dir": ["path", None],
        "verbose": ["boolean"],
        "input_size": [Interval(int, 1, None), Custom(_is_size_pair, "a (width, height) pair of positive ints"), None],
        "pooling": [Options(["avg", "max"])],
        "decode_threads": [Interval(int, 1, None), None],
        "cache_max_mb": CACHE_MAX_MB_CONSTRAINTS,
    }

    def __init__(self, backbone: Any = "efficientnet_lite0", weights: PathLike | None = "imagenet",
                 batch_size: int = 32, cache: bool = True, cache_dir: PathLike | None = None,
                 verbose: bool = True, input_size: int | Sequence[int] | None = None, pooling: str = "avg",
                 decode_threads: int | None = None, cache_max_mb: float | None = None,
                 runtime: str = "auto", precision: str = "float32", n_workers: Any = DEPRECATED,
                 progress: Any = DEPRECATED):
        self.backbone = backbone
        self.weights = weights
        self.batch_size = batch_size
        self.cache = cache
        self.cache_dir = cache_dir
        self.verbose = verbose
        self.input_size = input_size
        self.pooling = pooling
        self.decode_threads = decode_threads
        self.cache_max_mb = cache_max_mb
        self.runtime = runtime
        self.precision = precision
        self.n_workers = n_workers
        self.progress = progress

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any = None, y: Any = None) -> ImageFeaturizer:
        """Check the parameters and make the backbone ready; returns ``self``.

        Nothing is learned from ``X``, except with ``precision="int8"``, which is calibrated on (up
        to :data:`CALIBRATION_IMAGES` of) the images ``X`` and needs them. A bad parameter raises
        ``ValueError`` (or ``TypeError``) naming it. The parameters are never changed; the fitted
        attributes end in ``_``.

        Example:
            >>> fz = ImageFeaturizer(verbose=False).fit()
            >>> fz.input_size_, fz.n_features_out_, fz.runtime_
            ((224, 224), 1280, 'litert')
            >>> ImageFeaturizer(batch_size=0).fit()
            Traceback (most recent call last):
            ...
            cvkit._validation.InvalidParameterError: batch_size must be a positive int, got 0
        """
        self._build(X)
        return self

    def _build(self, X: Any = None) -> None:
        """Set every fitted attribute from the parameters: what :meth:`fit` does, and what
        :meth:`transform` does first on a featurizer never fitted (or a copy, whose named backbone
        was not copied)."""
        max_bytes = self._check_params()  # a bad value or $CVKIT_CACHE_MAX_MB fails here, before any work
        runtime = options.RunOptions(runtime=self.runtime, precision=self.precision).resolve().runtime
        if self.precision == "int8" and X is None:
            raise ValueError("precision='int8' is calibrated on the images passed to fit: call fit(images) "
                             "(e.g. the training images) before transform")
        self._keras_model, self._name, self.input_size_ = self._load_backbone(runtime)
        self.runtime_ = runtime
        self.graph_ = self.agreement_ = None
        self.skipped_: list[tuple[str, str]] = []
        self._predict = self._litert = None
        self.cache_max_bytes_ = max_bytes
        if runtime == "keras":
            self.n_features_out_ = int(self._keras_model.output_shape[-1])
            digest = keras_model_digest(self._keras_model) if self._cache_enabled() else None
        else:
            digest = self._build_litert(X)
        self.cache_path_ = cache_file_path(self._folder(), self._name, self.input_size_, digest) \
            if self._cache_enabled() else None

    def _check_params(self) -> int | None:
        """Validate the parameters against :attr:`_parameter_constraints` (the deprecated names with a
        ``FutureWarning``); returns the cache limit in bytes."""
        values = {name: getattr(self, name) for name in self._parameter_constraints}
        for old, (new, default) in RENAMED.items():
            values[new] = renamed_param(self, old, new, default=default)
        validate_params(type(self).__name__, values, self._parameter_constraints)
        return cache_max_bytes(self.cache_max_mb)

    def _threads(self) -> int:
        """Threads decoding images: the ``decode_threads`` parameter (or its former name), else the default."""
        return options.decode_threads(param_value(self, "n_workers", "decode_threads"))

    def _load_backbone(self, runtime: str) -> tuple[Any, str, tuple[int, int]]:
        """The Keras model (None for a named backbone on LiteRT: built only if needed), the name
        the cache files carry, and the input size ``(width, height)``."""
        if isinstance(self.backbone, str):
            spec = backbones.info(self.backbone)
            size = as_size(self.input_size or spec.input_size)
            return (self._named_model(spec.name, size) if runtime == "keras" else None), spec.name, size
        model = self.backbone
        shape = model.input_shape
        native = (shape[2] or 224, shape[1] or 224) if shape[1] or shape[2] else (224, 224)
        size = as_size(self.input_size or native)
        if (shape[1] is not None and shape[1] != size[1]) or (shape[2] is not None and shape[2] != size[0]):
            given = self.input_size if self.input_size is not None else size
            raise ValueError(f"input_size={given!r} does not match the model's input shape {shape}")
        if len(model.output_shape) != 2:
            raise ValueError(f"the backbone must output (n, d) features; {model.name!r} gives {model.output_shape} "
                             "(use a pooled backbone, e.g. cvkit.backbones.get(name, pooling='avg'))")
        return model, model.name, size

    def _named_model(self, name: str, size: tuple[int, int]) -> Any:
        return backbones.get(name, weights=self.weights, include_top=False, pooling=self.pooling,
                             input_shape=(size[1], size[0], 3))

    @property
    def model_(self) -> Any:
        """The Keras backbone. A named backbone run by LiteRT from its cached graph is built (with
        TensorFlow) only when this is first read: featurizing never needs it."""
        if self.__dict__.get("_keras_model") is None and self.__dict__.get("graph_") is None:
            raise AttributeError("model_: the featurizer is not fitted yet (call fit or transform)")
        return self._keras()

    def _keras(self) -> Any:
        if self._keras_model is None:
            self._keras_model = self._named_model(self._name, self.input_size_)
        return self._keras_model

    def _cache_enabled(self) -> bool:
        return bool(self.cache) and not (isinstance(self.backbone, str) and self.weights is None)

    def _folder(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_cache_dir()

    def _build_litert(self, X: Any) -> str | None:
        """Convert (or read the cached) graph(s); returns the id of the feature cache file."""
        cached = bool(self.cache)
        if isinstance(self.backbone, str):
            wid = weights_identity(self._name, self.weights)
            base = None if wid is None else named_digest(self._folder() if cached else None, self._name,
                                                         self.input_size_, self.pooling, wid, self._keras)
        else:
            base = keras_model_digest(self._keras_model)

        def graph(precision: str, pixels: np.ndarray | None = None, calibration: str | None = None) -> bytes:
            def convert() -> bytes:
                return litert.convert_keras(self._keras(), precision, pixels)
            if base is None:  # random weights: nothing identifies them, convert each time
                return convert()
            path = graph_file(self._folder(), self._name, self.input_size_, None, base, precision, calibration)
            return cached_graph(path.name, path if cached else None, convert, self._valid_graph)

        self.graph_ = graph("float32")
        calibration = None
        if self.precision == "int8":
            pixels, calibration = calibration_images(X, self.input_size_, CALIBRATION_IMAGES, self._threads())
            self.graph_ = graph("int8", pixels, calibration)
            float32 = litert.LiteRTModel(graph("float32"))
            self.agreement_ = litert.agreement(float32.predict(pixels), self._runner().predict(pixels))
        self.n_features_out_ = self._runner().n_outputs
        return None if base is None else hashlib.sha1(
            f"{base}|litert|{self.precision}|{calibration}".encode()).hexdigest()[:16]

    def _valid_graph(self, content: bytes) -> bool:
        """Whether cached graph bytes load and fit this featurizer (else they are converted again)."""
        try:
            graph = litert.LiteRTModel(content, num_threads=1)
        except (ValueError, ImportError):
            return False
        return graph.input_shape[1:3] == (self.input_size_[1], self.input_size_[0])

    def _runner(self) -> litert.LiteRTModel:
        """The LiteRT model running :attr:`graph_` (made on first use, and again after a copy)."""
        if self.__dict__.get("_litert") is None:
            self._litert = litert.LiteRTModel(self.graph_)
        return self._litert

    def _ready(self) -> bool:
        keras_ready = self.__dict__.get("_keras_model") is not None
        graph_ready = self.__dict__.get("graph_") is not None
        return "runtime_" in self.__dict__ and (keras_ready if self.runtime_ == "keras" else graph_ready)

    def _predict_fn(self):
        """The backbone on uint8 batches, returning NumPy: LiteRT, or the traced Keras model."""
        if self._predict is None:
            if self.runtime_ == "litert":
                runner = self._runner()
                self._predict = lambda batch: runner.predict(batch, batch_size=len(batch))
            else:
                self._predict = keras_predict(self._keras_model, self.input_size_)
        return self._predict

    def __getstate__(self):
        """Copies (pickle, ``copy.deepcopy``) keep the parameters; a backbone given by name is not
        copied but made again from its name (and the cached graph) on the next :meth:`transform`,
        so a copy stays small. An int8 graph is kept (it needs the calibration images to make)."""
        state = self.__dict__.copy()
        state.pop("_predict", None)  # a traced tf.function cannot be copied; rebuilt on demand
        state.pop("_litert", None)  # rebuilt from graph_
        if isinstance(self.backbone, str):
            state.pop("_keras_model", None)
            if self.precision != "int8":
                state.pop("graph_", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._predict = self._litert = None

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr, plus which runtime ran once fitted (``# runtime_='litert'``)."""
        text = super().__repr__(N_CHAR_MAX)
        runtime = self.__dict__.get("runtime_")
        return text if runtime is None else f"{text}  # runtime_={runtime!r}, {self.precision}"

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<backbone>_0 ... <backbone>_{d-1}`` for the output columns (builds the backbone
        first if needed, as :meth:`transform` does).

        Example:
            >>> ImageFeaturizer().get_feature_names_out()[:2].tolist()
            ['efficientnet_lite0_0', 'efficientnet_lite0_1']
        """
        if not self._ready():
            self._build()
        return np.asarray([f"{self._name}_{i}" for i in range(self.n_features_out_)], dtype=object)

    # ------------------------------------------------------------------ transforming
    def transform(self, X: Any, return_mask: bool = False, verbose: bool | None = None, *,
                  progress: Any = DEPRECATED):
        """Features of each image in ``X``: float32 ``(n, d)``; rows of unreadable images are NaN.

        ``X`` is anything :meth:`cvkit.data.ImageSource.resolve` takes: an
        :class:`~cvkit.data.ImageDataset`, a folder, a table, a glob, one image file, a list of image
        paths, ``(H, W, 3)`` uint8 arrays or image bytes, or a uint8 array ``(n, H, W, 3)``. Images
        are resized (squashed, bilinear) to ``input_size_``. With ``return_mask=True`` returns
        ``(features, ok_mask)`` where ``ok_mask[i]`` is False for unreadable images. ``verbose``
        shows or hides the progress bar for this call (default: the ``verbose`` parameter;
        ``progress=`` is its deprecated former name). A featurizer never fitted is fitted first
        (see the class); ``skipped_`` is then set anew.

        Example:
            >>> fz = ImageFeaturizer()
            >>> pixels = np.zeros((2, 100, 80, 3), np.uint8)  # arrays of any size are resized
            >>> X, ok = fz.transform(["sample_data/bird/owl.jpg", *pixels], return_mask=True, verbose=False)
            >>> X.shape, ok.tolist()
            ((3, 1280), [True, True, True])
        """
        verbose = renamed_keyword("ImageFeaturizer.transform", "progress", progress, "verbose", verbose, None,
                                   stacklevel=4)  # the caller of scikit-learn's set_output wrapper
        source = ImageSource.resolve(X)
        if not self._ready():
            self._build()
        if verbose is None:
            verbose = param_value(self, "progress", "verbose")
        n, d = len(source), self.n_features_out_
        features = np.full((n, d), np.nan, dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        skipped = self._run(source, features, ok, bool(verbose)) if n else []
        self.skipped_ = skipped
        warn_skipped(skipped, "ImageFeaturizer", stacklevel=4,  # the caller of the set_output wrapper
                     summary=f"{len(skipped)} of {n} image(s) could not be read; their feature rows are NaN "
                             "(see .skipped_)")
        return (features, ok) if return_mask else features

    def fit_transform(self, X: Any, y: Any = None, **fit_params) -> np.ndarray:
        """``fit()`` then ``transform(X)``."""
        return self.fit(X, y).transform(X)

    def _open_cache(self) -> GuardedCache | None:
        if self.cache_path_ is None:
            return None
        return GuardedCache.open(self.cache_path_, self.n_features_out_,
                                 max_bytes=getattr(self, "cache_max_bytes_", None))

    def _run(self, source: ImageSource, features: np.ndarray, ok: np.ndarray, verbose: bool) -> list[tuple[str, str]]:
        """Fill ``features`` and ``ok`` for every image of ``source``; returns ``(name, reason)`` of the failures."""
        from cvkit._console import progress_bar as tqdm  # tqdm.auto, ending at 100% in saved notebooks

        how = self.runtime_ + (" int8" if self.precision == "int8" else "")
        bar = tqdm(total=len(source), desc=f"Featurizing ({self._name}, {how})", unit="img", disable=not verbose,
                   smoothing=0.1)
        cache = self._open_cache()
        reasons: dict[int, str] = {}
        try:
            todo = list(range(len(source)))
            if cache is not None:
                todo = self._lookup(source, cache, features, ok, reasons, bar)
            self._compute(source, todo, cache, features, ok, reasons, bar)
        finally:
            bar.close()
            if cache is not None:
                cache.close()
        return [(source.name(i), reasons[i]) for i in sorted(reasons)]

    def _lookup(self, source, cache, features, ok, reasons, bar) -> list[int]:
        """Pass 1: key every file by its content and fill the rows found in the cache; returns the
        indices still to compute (arrays and bytes are never cached)."""
        files = [i for i, item in enumerate(source.items) if isinstance(item, str)]
        todo = [i for i, item in enumerate(source.items) if not isinstance(item, str)]
        keys = source.content_keys(files, threads=self._threads())
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

    def _compute(self, source, todo, cache, features, ok, reasons, bar) -> None:
        """Pass 2: the backbone on the batches of :meth:`ImageSource.batches` (decoded a few batches ahead)."""
        if not todo:
            return
        predict = self._predict_fn()
        for batch in source.batches(self.input_size_, int(self.batch_size), threads=self._threads(),
                                    keys=cache is not None, indices=todo):
            reasons.update({int(i): r for i, r in zip(batch.index, batch.reasons) if r is not None})
            rows = batch.index[batch.ok]
            if len(rows):
                out = predict(batch.pixels if len(rows) == len(batch) else batch.pixels[batch.ok])
                features[rows] = out
                ok[rows] = True
                if cache is not None:
                    keys = [k for k, good in zip(batch.keys or [], batch.ok) if good]
                    cache.put({k: out[j] for j, k in enumerate(keys) if k is not None})
            bar.update(len(batch))
