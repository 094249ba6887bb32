"""``keras.applications`` backbones that take raw RGB pixels, with preprocessing inside the model.

Why: each ``keras.applications`` family wants its own ``preprocess_input`` function, which is easy
to forget and cannot travel inside a saved ``.keras`` file safely (it would need a ``Lambda``).
Here the preprocessing is made of built-in layers placed in front of (and flattened into) the
application, so every backbone takes float32 RGB in 0..255 and models that contain it reload with
``keras.saving.load_model(path, safe_mode=True)``.

- MobileNetV2: ``x / 127.5 - 1`` as a ``Rescaling`` layer.
- MobileNetV3Small/Large and EfficientNetB0: Keras already includes their preprocessing layers.
- ResNet50 ("caffe" style: BGR order, ImageNet mean subtracted, no scaling): the mean subtraction is a
  ``Normalization`` layer with fixed mean and unit variance, and the RGB->BGR swap is folded into the
  input channels of ``conv1_conv``'s kernel, so no extra weights or custom layers are needed.

ImageNet weights are downloaded by Keras on first use (cached in ``~/.keras/models``); with no network
that fails with :class:`~cvkit.backbones._errors.WeightsUnavailableError` naming the offline backbones.

Example:
    >>> from cvkit.backbones._keras_apps import build_keras_app
    >>> model = build_keras_app("mobilenet_v2", weights=None)  # random weights: no download
    >>> model.output_shape
    (None, 1280)
"""
from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from cvkit._console import import_keras
from cvkit.backbones._args import check_build_args
from cvkit.backbones._errors import WeightsUnavailableError

__all__ = ["KERAS_APPS", "KerasApp", "build_keras_app"]

# ImageNet channel means in RGB order, as used by keras.applications' "caffe" preprocessing.
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclass(frozen=True)
class KerasApp:
    """How to build one ``keras.applications`` backbone and feed it raw pixels."""

    constructor: str  # attribute of keras.applications
    input_size: int
    feature_dim: int  # width of the pooled features with include_top=False
    preprocess: str  # "tf" (x/127.5-1), "builtin" (Keras adds it), or "caffe"


KERAS_APPS = {
    "mobilenet_v2": KerasApp("MobileNetV2", 224, 1280, "tf"),
    "mobilenet_v3_small": KerasApp("MobileNetV3Small", 224, 576, "builtin"),
    "mobilenet_v3_large": KerasApp("MobileNetV3Large", 224, 960, "builtin"),
    "efficientnet_b0": KerasApp("EfficientNetB0", 224, 1280, "builtin"),
    "resnet50": KerasApp("ResNet50", 224, 2048, "caffe"),
}


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (urllib.error.URLError, OSError, ConnectionError)):
        return True
    return "URL fetch failure" in str(exc)


def build_keras_app(name: str, weights: str | os.PathLike | None = "imagenet", include_top: bool = False,
                    pooling: str | None = "avg", input_shape: tuple | None = None, **kwargs):
    """Build ``keras.applications`` backbone ``name`` taking float32 RGB pixels in 0..255.

    ``weights``: ``"imagenet"`` (downloaded by Keras; needs the network the first time), ``None``,
    a ``.weights.h5`` saved from a cvkit backbone of the same configuration, or a Keras legacy
    ``.h5`` weights file of the original application (e.g. a copy of Keras' own download).
    Other keyword arguments (``alpha``, ``classifier_activation``, ...) go to the Keras constructor.

    Example:
        >>> model = build_keras_app("mobilenet_v3_small", weights=None, pooling="max", input_shape=(160, 160, 3))
        >>> model.output_shape
        (None, 576)
    """
    keras = import_keras()
    layers = keras.layers

    if name not in KERAS_APPS:
        raise ValueError(f"unknown keras.applications backbone {name!r}; choose one of {sorted(KERAS_APPS)}")
    spec = KERAS_APPS[name]
    input_shape = check_build_args(spec.input_size, pooling, input_shape)

    keras_format_file = None  # a Keras-3 .weights.h5 of the whole cvkit model, loaded after building
    app_weights: str | None = None  # what the Keras constructor loads itself
    if weights == "imagenet":
        app_weights = "imagenet"
    elif weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: weights file not found")
        if path.name.endswith(".weights.h5"):
            keras_format_file = path
        else:
            app_weights = os.fspath(path)

    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    x = inputs
    if spec.preprocess == "tf":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess_rescale")(x)
    elif spec.preprocess == "caffe":
        x = layers.Normalization(mean=list(_CAFFE_MEAN_RGB), variance=[1.0, 1.0, 1.0],
                                 name="preprocess_subtract_mean")(x)
    constructor = getattr(keras.applications, spec.constructor)
    try:
        base = constructor(include_top=include_top, weights=app_weights, input_tensor=x,
                           input_shape=input_shape, pooling=None if include_top else pooling, **kwargs)
    except Exception as exc:
        if app_weights == "imagenet" and _is_network_error(exc):
            from cvkit.backbones import offline_backbones
            raise WeightsUnavailableError(
                f"could not download the ImageNet weights of {name} (keras.applications fetches them at run "
                f"time and this machine seems to have no network: {exc}). Backbones with offline weights: "
                f"{', '.join(offline_backbones())}. Or copy Keras' weights file into ~/.keras/models, or pass "
                f"weights=None or a local weights file.") from exc
        raise
    model = keras.Model(inputs, base.output, name=name)
    if spec.preprocess == "caffe" and app_weights is not None:
        # The original weights expect BGR: reverse conv1's input channels so the model takes RGB.
        conv1 = model.get_layer("conv1_conv")
        kernel, *rest = conv1.get_weights()
        conv1.set_weights([kernel[:, :, ::-1, :].copy(), *rest])
    if keras_format_file is not None:
        model.load_weights(os.fspath(keras_format_file))
    return model
