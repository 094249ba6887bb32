"""Heat maps: where in a photo a model found its evidence for a class (CAM, Grad-CAM, occlusion).

Why: a report says *what* a model got wrong; a heat map says *where it looked*. A model that calls a
photo "bird" because of the sky, or the watermark, shows it here before it shows it in production.

- ``"cam"``: the class activation map (Zhou et al. 2016). cvkit's default heads (a
  :class:`~cvkit.models._head.LinearHead` on a feature classifier, the softmax ``Dense`` layer of a
  fine-tuned one) are linear maps of the *global-average-pooled* last convolutional features
  ``A`` of the backbone, so the class score is the average over positions of
  ``CAM_c(x, y) = sum_k W[k, c] * A_k(x, y)``: the map is exact, and costs one forward pass.
- ``"gradcam"`` (Selvaraju et al. 2017): ``ReLU(sum_k alpha_k A_k)`` with ``alpha_k`` the mean
  gradient of the class score over ``A_k``, through TensorFlow. For any head: a scikit-learn head
  (``head.skops``) is differentiated numerically on the pooled features (central differences); a
  tree's score has no gradient, so its maps are flat: use occlusion there. On a linear head it
  equals CAM (after the ReLU): a check of both.
- ``"occlusion"`` (Zeiler & Fergus 2014): a grey patch slides over the photo and the map is the
  drop of the class's probability, through the model's own ``predict_proba`` on arrays, measured as
  log-odds ``log(p / (1 - p))`` (``1 - p`` summed from the other classes) so that a photo the model
  is sure of (``p`` rounding to 1 in float32) still shows where the evidence is. It needs no
  graph at all (it runs on LiteRT), at about 50 model runs per photo.
- ``"auto"``: CAM where it is exact, else Grad-CAM.

The class score is the logit of the class minus the mean logit of all classes (its log-probability
for a scikit-learn head): a softmax cannot tell the two apart, and a binary head stores one class's
weights as zeros, whose map would otherwise be empty. The calibration temperature divides all
logits alike, so it changes no map. Every map keeps the positive evidence and is divided by its
peak: float32 in [0, 1] (all zeros when nothing speaks for the class), resized (bilinear) from the
model's grid to the photo as :func:`cvkit.data.read_image` gives it (EXIF rotation applied;
``size="input"`` keeps the model's input size). Photos are read exactly as ``predict`` reads them
(draft decode, EXIF rotation, bilinear squash to the input size).

Example:
    >>> import cvkit
    >>> train, test = cvkit.ImageDataset.from_directory("sample_data").split(test_size=0.34, random_state=0)
    >>> clf = cvkit.FeatureClassifier(verbose=False).fit(train)
    >>> result = explain(clf, ["sample_data/bird/owl.jpg"], target="bird")
    >>> result.method, result.targets, result.maps[0].shape == cvkit.read_image("sample_data/bird/owl.jpg").shape[:2]
    ('cam', ['bird'], True)
    >>> float(result.maps[0].min()) >= 0.0, float(result.maps[0].max())
    (True, 1.0)
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvkit._console import require_extra
from cvkit._validation import Interval, Options, check_param
from cvkit.data._images import read_image, resize
from cvkit.data._inputs import warn_unreadable
from cvkit.data._source import ImageSource, as_size
from cvkit.evaluation._heatmaps import overlay_heatmap, plot_heatmaps, resize_map

__all__ = ["explain", "Explanation", "METHODS"]

#: The methods :func:`explain` knows (see the module).
METHODS = ("auto", "cam", "gradcam", "occlusion")
#: Grey of the occluding patch: the zero of EfficientNet-Lite's ``(x - 127) / 128``, mid-grey for others.
GREY = 127
#: Most occluded copies sent to ``predict_proba`` in one call.
OCCLUSION_CHUNK = 196


@dataclass
class Explanation:
    """What :func:`explain` returns: one heat map per image and what it explains.

    ``maps``: float32 ``(height, width)`` in [0, 1] per image (None for an unreadable one);
    ``method``: ``"cam"``, ``"gradcam"`` or ``"occlusion"``, the method that made every map;
    ``targets``: the class each map explains; ``scores``: the model's probability of that class;
    ``predicted``: the model's top class; ``names``: the images; ``skipped``: ``(name, reason)``
    of the unreadable ones. ``len()``, iteration over ``(name, target, map)``, :meth:`overlays`
    and :meth:`plot` work as expected.
    """

    maps: list[np.ndarray | None]
    method: str
    targets: list[str | None]
    scores: np.ndarray
    predicted: list[str | None]
    names: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    items: list[Any] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self):
        return iter(zip(self.names, self.targets, self.maps))

    def images(self, size: int | Sequence[int] | None = None) -> list[np.ndarray | None]:
        """The photos as :func:`cvkit.data.read_image` reads them (own size, or ``size``); None if unreadable."""
        out: list[np.ndarray | None] = []
        for item, heat in zip(self.items, self.maps):
            if heat is None:
                out.append(None)
            elif isinstance(item, np.ndarray):
                out.append(item if size is None else resize(item, as_size(size)))
            else:
                out.append(read_image(item, size=None if size is None else as_size(size)))
        return out

    def overlays(self, alpha: float = 0.45, cmap: str = "jet") -> list[np.ndarray | None]:
        """Each photo with its map blended on (:func:`cvkit.evaluation.plots.overlay_heatmap`): uint8 RGB."""
        return [None if im is None else overlay_heatmap(im, m, alpha=alpha, cmap=cmap)
                for im, m in zip(self.images(), self.maps)]

    def titles(self) -> list[str]:
        """A panel title per image: the class explained, its probability, and the top class when it differs."""
        out = []
        for target, score, top in zip(self.targets, self.scores, self.predicted):
            if target is None:
                out.append("unreadable")
                continue
            text = f"{target} ({float(score):.2f})"
            out.append(text if top == target else f"{text}\ntop: {top}")
        return out

    def plot(self, **kwargs: Any):
        """The grid of :func:`cvkit.evaluation.plots.plot_heatmaps`; returns the Figure."""
        return plot_heatmaps(self, **kwargs)


# ---------------------------------------------------------------------------------------------- the graph
@dataclass
class _Graph:
    """A model's Keras graph cut where the heat maps need it.

    ``conv``: pixels -> the last convolutional features ``A`` (n, h, w, k); ``pool``: the global
    pooling layer that turns ``A`` into features; ``tail``: the Keras layers after it (dropout,
    normalisation, the softmax ``Dense``); ``head``: a head run after the graph (a ``LinearHead`` or a
    scikit-learn classifier) or None; ``temperature``: divides the head's logits.
    """

    conv: Any
    pool: Any
    tail: list
    head: Any
    temperature: float

    def weights(self) -> np.ndarray | None:
        """The class weights ``W`` (k, n_classes), centred over the classes, when the score is linear in the
        pooled features; else None."""
        from cvkit.models._head import LinearHead

        kinds = {type(layer).__name__ for layer in self.tail[:-1]}
        W = None
        if self.head is None and self.tail and kinds <= {"Dropout", "UnitNormalization"}:
            last = self.tail[-1]
            if type(last).__name__ == "Dense" and _activation(last) in ("softmax", "linear"):
                W = np.asarray(last.kernel, np.float64)
        if isinstance(self.head, LinearHead) and not self.tail:
            W = self.head.weights.astype(np.float64)
        return None if W is None else W - W.mean(axis=1, keepdims=True)

    @property
    def cam_exact(self) -> bool:
        """True when the pooling is an average and the score linear: CAM is then exact."""
        return type(self.pool).__name__ == "GlobalAveragePooling2D" and self.weights() is not None

    def scores_tf(self, tf: Any, features: Any, targets: np.ndarray) -> Any:
        """The differentiable class score of each image ``(n,)``: its logit (log-probability for other heads)."""
        h = features
        for layer in self.tail[:-1]:
            h = layer(h, training=False)
        if self.tail:
            last = self.tail[-1]
            if type(last).__name__ == "Dense" and _activation(last) in ("softmax", "linear"):
                out = tf.matmul(h, last.kernel) + last.bias
            else:
                out = tf.math.log(last(h, training=False) + 1e-12)
        elif self.head is not None and hasattr(self.head, "weights") and hasattr(self.head, "normalize"):
            if self.head.normalize:
                h = tf.math.l2_normalize(h, axis=1)
            out = tf.matmul(h, tf.constant(self.head.weights)) + tf.constant(self.head.bias)
        else:  # a scikit-learn head: its numerical gradient, held constant, dotted with the features
            grad = _numerical_gradient(self.head, np.asarray(features), targets)
            return tf.reduce_sum(features * tf.constant(grad, dtype=features.dtype), axis=1)
        out = out - tf.reduce_mean(out, axis=1, keepdims=True)  # the logit against the mean class (see the module)
        return tf.gather(out, tf.constant(targets), axis=1, batch_dims=1)

    def proba(self, features: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities ``(n, n_classes)`` for pooled features, as ``predict_proba`` gives them."""
        from cvkit.models._calibration import softmax, tempered

        if self.tail:
            h = features
            for layer in self.tail:
                h = layer(h, training=False)
            return np.asarray(h, np.float64)
        if hasattr(self.head, "logits"):
            return softmax(self.head.logits(features) / self.temperature)
        return np.asarray(tempered(self.head.predict_proba(features), self.temperature), np.float64)


def _activation(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "")


def _numerical_gradient(head: Any, features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """d log p_target / d features of a scikit-learn head, by central differences (``(n, d)``)."""
    out = np.zeros(features.shape, np.float64)
    d = features.shape[1]
    for i, (f, t) in enumerate(zip(np.asarray(features, np.float64), targets)):
        step = 1e-3 * max(float(np.abs(f).mean()), 1e-3)
        rows = np.repeat(f[None], 2 * d, axis=0)
        rows[np.arange(d), np.arange(d)] += step
        rows[d + np.arange(d), np.arange(d)] -= step
        p = np.log(np.clip(head.predict_proba(rows)[:, t], 1e-12, None))
        out[i] = (p[:d] - p[d:]) / (2 * step)
    return out


def _split(keras_model: Any, head: Any, temperature: float) -> _Graph:
    """Cut a Keras graph at its last global pooling (inside a nested backbone when there is one)."""
    from cvkit._console import import_keras

    keras = import_keras()
    nested = [layer for layer in keras_model.layers if isinstance(layer, keras.Model)]
    inner = nested[-1] if nested else keras_model
    outer_tail = list(keras_model.layers[keras_model.layers.index(inner) + 1:]) if nested else []
    pools = [i for i, layer in enumerate(inner.layers)
             if type(layer).__name__ in ("GlobalAveragePooling2D", "GlobalMaxPooling2D")]
    if not pools:
        raise ValueError(f"the Keras graph {keras_model.name!r} has no global pooling of convolutional features: "
                         "heat maps need a backbone ending in global pooling; use method='occlusion'")
    pool = inner.layers[pools[-1]]
    conv = keras.Model(inner.input, pool.input, name="explain_features")
    return _Graph(conv, pool, list(inner.layers[pools[-1] + 1:]) + outer_tail, head, float(temperature))


def _keras_parts(model: Any) -> tuple[Any, Any, float]:
    """``(Keras graph, head or None, temperature)`` of a fitted classifier or a loaded model folder."""
    if hasattr(model, "featurizer_") and hasattr(model, "estimator_"):  # FeatureClassifier
        from cvkit.models._head import LinearHead
        linear = LinearHead.from_estimator(model.estimator_, model.check_features_)
        return model.featurizer_.model_, linear if linear is not None else model.estimator_, model.temperature_
    if hasattr(model, "metadata_") and hasattr(model, "path_"):  # a loaded model folder
        graph = model.keras_model_ if model.keras_model_ is not None else _folder_keras(model)
        return graph, model.head_, model.temperature_
    if hasattr(model, "model_"):  # FineTuneClassifier: the head (and calibration) is in the graph
        return model.model_, None, 1.0
    raise TypeError(f"explain needs a fitted FeatureClassifier or FineTuneClassifier, a model loaded with "
                    f"cvkit.load_model, or a model folder; got {type(model).__name__}")


def _folder_keras(model: Any) -> Any:
    """The Keras graph of a model folder loaded on LiteRT (loaded and checked once per model)."""
    cached = model.__dict__.get("_explain_keras")
    if cached is not None:
        return cached
    from cvkit.models._trusted import ModelFormatError

    if "model.keras" not in (model.metadata_.get("files") or {}):
        raise ModelFormatError(
            f"{model.path_}: this model folder holds only a LiteRT graph (model.tflite), no Keras graph "
            "(model.keras); CAM and Grad-CAM heat maps need the Keras graph (its last convolutional features "
            "and gradients). Use method='occlusion', which runs the model as predict does, or save the model "
            "again from its classifier (clf.save) to write model.keras")
    from cvkit.models import load_model

    graph = load_model(model.path_, runtime="keras").keras_model_
    model.__dict__["_explain_keras"] = graph
    return graph


# ---------------------------------------------------------------------------------------------- the maps
def _positive(raw: np.ndarray) -> np.ndarray:
    """Each map's positive part divided by its peak: float32 in [0, 1] (zeros when nothing is positive)."""
    pos = np.maximum(np.nan_to_num(np.asarray(raw, np.float64)), 0.0)
    peak = pos.reshape(len(pos), -1).max(axis=1) if len(pos) else np.zeros(0)
    scale = np.where(peak > 0, peak, 1.0)
    return (pos / scale[:, None, None]).astype(np.float32)


def _chosen(targets: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """The class index per image: the one asked for, else (``-1``) the top class."""
    return np.where(targets >= 0, targets, np.argmax(proba, axis=1)).astype(np.int64)


def _cam(graph: _Graph, pixels: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw maps (n, h, w), class index, proba)``: the class weights times the last conv features."""
    A = np.asarray(graph.conv.predict_on_batch(pixels.astype(np.float32)), np.float32)
    proba = graph.proba(np.asarray(graph.pool(A), np.float32))
    chosen = _chosen(targets, proba)
    W = graph.weights()
    return np.einsum("nhwk,kn->nhw", A.astype(np.float64), W[:, chosen]), chosen, proba


def _gradcam(graph: _Graph, pixels: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw maps, class index, proba)``: features weighted by the mean gradient of the class score."""
    from cvkit._console import import_tensorflow

    tf = import_tensorflow()
    A = tf.convert_to_tensor(graph.conv.predict_on_batch(pixels.astype(np.float32)))
    with tf.GradientTape() as tape:
        tape.watch(A)
        features = graph.pool(A)
        proba = graph.proba(np.asarray(features))
        chosen = _chosen(targets, proba)
        score = tf.reduce_sum(graph.scores_tf(tf, features, chosen))
    alpha = tf.reduce_mean(tape.gradient(score, A), axis=(1, 2))
    raw = tf.einsum("nhwk,nk->nhw", A, alpha)
    return np.asarray(raw, np.float64), chosen, proba


def _occlusion(model: Any, pixels: np.ndarray, targets: np.ndarray, patch: float, stride: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw maps at the input size, class index, proba)``: the drop of the class's probability when a
    grey patch hides each place, averaged over the patches covering each pixel."""
    n, height, width = pixels.shape[:3]
    ph, pw = max(1, round(patch * height)), max(1, round(patch * width))
    sh, sw = max(1, round(stride * height)), max(1, round(stride * width))
    ys = sorted(set(range(0, height - ph + 1, sh)) | {height - ph})
    xs = sorted(set(range(0, width - pw + 1, sw)) | {width - pw})
    places = [(y, x) for y in ys for x in xs]
    copies = np.repeat(pixels[:, None], len(places) + 1, axis=1)  # (n, 1 + places, H, W, 3); [:, 0] untouched
    for j, (y, x) in enumerate(places, start=1):
        copies[:, j, y:y + ph, x:x + pw] = GREY
    flat = copies.reshape(-1, height, width, 3)
    proba = np.concatenate([np.asarray(model.predict_proba(flat[s:s + OCCLUSION_CHUNK]), np.float64)
                            for s in range(0, len(flat), OCCLUSION_CHUNK)]).reshape(n, len(places) + 1, -1)
    chosen = _chosen(targets, proba[:, 0])
    mine = proba[np.arange(n), :, chosen]  # (n, 1 + places)
    others = proba.sum(axis=2) - mine  # the rest, summed from the small probabilities: no float32 rounding at p ~ 1
    odds = np.log(np.clip(mine, 1e-300, None)) - np.log(np.clip(others, 1e-300, None))
    drops = odds[:, :1] - odds[:, 1:]  # (n, places)
    total, count = np.zeros((n, height, width)), np.zeros((height, width))
    for j, (y, x) in enumerate(places):
        total[:, y:y + ph, x:x + pw] += drops[:, j, None, None]
        count[y:y + ph, x:x + pw] += 1
    return total / np.maximum(count, 1), chosen, proba[:, 0]


# ---------------------------------------------------------------------------------------------- inputs
def _target_indices(target: Any, classes: Sequence[str], n: int) -> np.ndarray:
    """The class index asked for per image (``-1``: the top class), from a name, an index, or one per image."""
    def index(value: Any) -> int:
        if value is None:
            return -1
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not 0 <= int(value) < len(classes):
                raise ValueError(f"target index {int(value)} is out of range: the model has {len(classes)} classes "
                                 f"({', '.join(classes)})")
            return int(value)
        if isinstance(value, str):
            if value not in classes:
                raise ValueError(f"target {value!r} is not a class of this model (classes: {', '.join(classes)})")
            return list(classes).index(value)
        raise TypeError(f"target must be a class name, a class index or None, got {type(value).__name__}")

    if target is None or isinstance(target, (str, int, np.integer)):
        return np.full(n, index(target), np.int64)
    values = list(target)
    if len(values) != n:
        raise ValueError(f"target: {len(values)} values for {n} images; give one per image, or one for all")
    return np.array([index(v) for v in values], np.int64)


def _display_size(item: Any) -> tuple[int, int]:
    """``(height, width)`` of an image as :func:`cvkit.data.read_image` gives it (EXIF rotation applied),
    read from its header without decoding it."""
    if isinstance(item, np.ndarray):
        return int(item.shape[0]), int(item.shape[1])
    from PIL import Image

    try:
        with Image.open(io.BytesIO(item) if isinstance(item, bytes) else item) as img:
            width, height = img.size
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
        return (width, height) if turned else (height, width)
    except Exception:  # noqa: BLE001 - an odd header: decode it, as predict did
        return read_image(item).shape[:2]


def _resolve_model(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from cvkit.models import load_model
        return load_model(model)
    if hasattr(model, "_check_is_fitted"):
        model._check_is_fitted()
    return model


# ---------------------------------------------------------------------------------------------- explain
def explain(model: Any, images: Any, target: Any = None, method: str = "auto", batch_size: int = 16,
            size: str | int | Sequence[int] = "image", patch: float = 0.25, stride: float = 0.125,
            verbose: bool | None = None) -> Explanation:
    """A heat map per image of where ``model`` found its evidence for a class; returns an :class:`Explanation`.

    ``model``: a fitted :class:`~cvkit.FeatureClassifier` or :class:`~cvkit.FineTuneClassifier`, a model
    loaded with :func:`cvkit.load_model`, or a model folder's path. ``images``: anything ``predict``
    takes (paths, a folder, a table, a dataset, uint8 arrays...). ``target``: None (each image's top
    class), a class name or index for all images, or one per image (None entries: the top class).
    ``method``: ``"auto"`` (CAM when exact, else Grad-CAM), ``"cam"``, ``"gradcam"`` or ``"occlusion"``
    (see the module); ``patch`` and ``stride`` are occlusion's patch side and step, as fractions of the
    input side. ``size``: ``"image"`` (each photo's own height and width, after EXIF rotation),
    ``"input"`` (the model's input size) or ``(width, height)``. ``batch_size`` images per forward
    pass; ``verbose`` a progress bar (default: for 200+ images).

    CAM and Grad-CAM need the model's Keras graph: a model folder with only ``model.tflite`` raises
    :class:`~cvkit.models.ModelFormatError` saying so (occlusion works there). Unreadable images get
    no map (None) and one warning naming them. Maps at the photos' own size take 4 bytes a pixel:
    explain a few hundred photos at a time (``cvkit explain`` does). (Example: see the module.)
    """
    check_param("method", method, [Options(list(METHODS))])
    check_param("batch_size", batch_size, [Interval(int, 1, None)])
    check_param("patch", patch, [Interval(float, 0, 1, closed="right")])
    check_param("stride", stride, [Interval(float, 0, 1, closed="right")])
    pair = isinstance(size, (tuple, list)) and len(size) == 2
    if not (size in ("image", "input") or isinstance(size, int) or pair):
        raise ValueError(f"size must be 'image', 'input', an int or (width, height), got {size!r}")
    model = _resolve_model(model)
    classes = [str(c) for c in model.classes_]
    source = ImageSource.resolve(images)
    wanted = _target_indices(target, classes, len(source))
    graph = None
    if method != "occlusion":
        require_extra("tensorflow", f"cvkit.explain(method={method!r})")
        graph = _split(*_keras_parts(model))
        if method == "auto":
            method = "cam" if graph.cam_exact else "gradcam"
        elif method == "cam" and not graph.cam_exact:
            raise ValueError("method='cam' is exact only for a linear head on globally average-pooled features "
                             "(cvkit's default heads); this model's is not: use method='gradcam' or 'auto'")
    n = len(source)
    maps: list[np.ndarray | None] = [None] * n
    chosen = np.full(n, -1, np.int64)
    scores = np.full(n, np.nan, np.float32)
    top = np.full(n, -1, np.int64)
    skipped: list[tuple[str, str]] = []
    from cvkit._console import progress_bar

    show = n >= 200 if verbose is None else bool(verbose)
    bar = progress_bar(total=n, desc=f"Heat maps ({method})", unit="img", disable=not show)
    try:
        for batch in source.batches(tuple(model.input_size_), int(batch_size)):
            skipped += [(source.name(int(i)), r) for i, r in zip(batch.index, batch.reasons) if r is not None]
            rows = batch.index[batch.ok]
            if len(rows):
                pixels, asked = batch.pixels[batch.ok], wanted[rows]
                if method == "occlusion":
                    raw, picked, proba = _occlusion(model, pixels, asked, float(patch), float(stride))
                else:
                    raw, picked, proba = (_cam if method == "cam" else _gradcam)(graph, pixels, asked)
                for i, heat in zip(rows, _positive(raw)):
                    maps[i] = _peak_one(resize_map(heat, _map_size(size, source.items[i], model.input_size_)))
                chosen[rows], top[rows] = picked, np.argmax(proba, axis=1)
                scores[rows] = proba[np.arange(len(rows)), picked]
            bar.update(len(batch))
    finally:
        bar.close()
    warn_unreadable(skipped, n, "explain", stacklevel=3)
    return Explanation(maps, method, [classes[c] if c >= 0 else None for c in chosen], scores,
                       [classes[c] if c >= 0 else None for c in top], [source.name(i) for i in range(n)],
                       skipped, list(source.items))


def _peak_one(heat: np.ndarray) -> np.ndarray:
    """The map divided by its peak again after resizing (a resize can shave the peak off)."""
    peak = float(heat.max()) if heat.size else 0.0
    return heat / np.float32(peak) if peak > 0 else heat


def _map_size(size: Any, item: Any, input_size: Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` of the map of ``item`` for the ``size`` asked of :func:`explain`."""
    if size == "image":
        return _display_size(item)
    width, height = as_size(input_size if size == "input" else size)
    return height, width
