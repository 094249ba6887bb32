"""Find the blocks of a backbone by layer name, to unfreeze "the top of the backbone" for fine-tuning.

Why: fine-tuning usually trains only the last block or two of a pretrained backbone (plus the new
head) and keeps BatchNormalization frozen, so a small data set does not wreck the early features.
Every cvkit backbone names its layers by block (the ``keras.applications`` convention):

- EfficientNet-Lite and EfficientNetB0: ``stem_*``, ``block1a_*`` ... ``block7a_*``, ``top_*``
- MobileNetV2: ``Conv1`` ..., ``expanded_conv_*``, ``block_1_*`` ... ``block_16_*``, ``Conv_1*``
- MobileNetV3: ``conv*``, ``expanded_conv_*``, ``expanded_conv_1_*`` ..., ``conv_1*``
- ResNet50: ``conv1_*``, ``conv2_block1_*`` ... ``conv5_block3_*``

:func:`blocks` groups a model's layers into ``stem``, the numbered blocks in order, and ``top``
(everything after the last block: head conv, pooling, and any classifier head you added).

Example:
    >>> from cvkit.backbones import blocks, get, top_layers
    >>> backbone = get("efficientnet_lite0", weights=None)  # random weights: quick to build
    >>> backbone.trainable = True
    >>> for layer in backbone.layers:  # freeze all ...
    ...     layer.trainable = False
    >>> for layer in top_layers(backbone, 2):  # ... then unfreeze the head conv and the last block
    ...     layer.trainable = True
    >>> [name for name, members in blocks(backbone) if any(layer.trainable for layer in members)]
    ['block7a', 'top']
"""
from __future__ import annotations

import math
import numbers
import re

from cvkit._validation import Interval, check_param

__all__ = ["blocks", "flat_layers", "top_layers"]

# One alternative per naming family; group 1 is the block id.
_BLOCK_RE = re.compile(
    r"^(block\d+[a-z])_"          # EfficientNet(-Lite): block6d_project_conv
    r"|^(block_\d+)_"             # MobileNetV2: block_13_expand
    r"|^(expanded_conv(?:_\d+)?)_"  # MobileNetV2 first block, MobileNetV3: expanded_conv_4_project
    r"|^(conv\d+_block\d+)_"      # ResNet: conv5_block3_out
)


def _block_id(name: str) -> str | None:
    match = _BLOCK_RE.match(name)
    if match is None:
        return None
    return next(g for g in match.groups() if g is not None)


def flat_layers(model) -> list:
    """Layers in order, descending into nested models (a backbone used inside a classifier).

    Why: a classifier holds its backbone as one layer; fine-tuning and the feature cache's
    architecture id need the backbone's own layers.

    Example:
        >>> from cvkit.backbones import get
        >>> len(flat_layers(get("efficientnet_lite0", weights=None))) > 100  # Lite0's layers
        True
    """
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
            out.extend(flat_layers(layer))
        else:
            out.append(layer)
    return out


def blocks(model) -> list[tuple[str, list]]:
    """Group ``model``'s layers into ``[("stem", [...]), (block_id, [...]), ..., ("top", [...])]``.

    Layers whose name carries no block id (e.g. auto-named activations) join the block before them;
    everything after the last named block is ``top``. Nested models are looked into.

    Example:
        >>> from cvkit.backbones import get
        >>> [name for name, _ in blocks(get("efficientnet_lite0", weights=None))][-3:]  # Lite0
        ['block6d', 'block7a', 'top']
    """
    layers = flat_layers(model)
    ids = [_block_id(layer.name) for layer in layers]
    last = max((i for i, b in enumerate(ids) if b is not None), default=-1)
    groups: list[tuple[str, list]] = [("stem", [])]
    for i, (layer, block) in enumerate(zip(layers, ids)):
        if i > last:
            if groups[-1][0] != "top":
                groups.append(("top", []))
        elif block is not None and block != groups[-1][0]:
            groups.append((block, []))
        groups[-1][1].append(layer)
    return [(name, members) for name, members in groups if members]


def top_layers(model, n: int | float = 1, include_batchnorm: bool = False) -> list:
    """The layers of the top ``n`` blocks of ``model`` (``top`` counts as one), to unfreeze for fine-tuning.

    ``n`` is a count of blocks (an int >= 1) or a fraction of them (a float in (0, 1], rounded up).
    Only blocks that hold weights are counted. BatchNormalization layers are left out unless
    ``include_batchnorm=True``: with little data, keep them frozen (in inference mode).

    Example:
        >>> from cvkit.backbones import get
        >>> model = get("efficientnet_lite0", weights=None)  # random weights: quick to build
        >>> quarter = top_layers(model, 0.25)  # the top quarter of Lite0's blocks
        >>> quarter[0].name, quarter[-1].name
        ('block6b_expand_conv', 'avg_pool')
        >>> top_layers(model, 0)
        Traceback (most recent call last):
        ...
        cvkit._validation.InvalidParameterError: n must be a positive int or a number in (0, 1], got 0
    """
    check_param("n", n, [Interval(int, 1, None), Interval(float, 0, 1, closed="right")])
    groups = [(name, members) for name, members in blocks(model) if any(m.weights for m in members)]
    if isinstance(n, numbers.Integral):
        n = int(n)
    else:
        n = max(1, math.ceil(float(n) * len(groups)))
    chosen = [layer for _, members in groups[-n:] for layer in members]
    if not include_batchnorm:
        chosen = [layer for layer in chosen if layer.__class__.__name__ != "BatchNormalization"]
    return chosen
