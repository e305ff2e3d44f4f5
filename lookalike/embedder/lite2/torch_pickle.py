"""Read a legacy (non-zip) PyTorch ``.pth`` state dict into numpy arrays, without torch.

Why: the only offline EfficientNet-Lite2 weights we have ship as a legacy torch pickle, and torch is far
too heavy a dependency just to read one file. The legacy format is a sequence of pickles:

1. the magic number, 2. the protocol version, 3. a dict of system info (endianness, type sizes),
4. the object itself, whose tensors reference storages through ``persistent_id`` tuples
   ``('storage', storage_type, key, location, numel[, view_metadata])``,
5. the list of storage keys, followed by each storage's raw bytes, preceded by its element count as an
   8-byte little-endian integer.

Only the handful of classes a state dict needs are resolved; anything else is refused, so a hostile file
cannot make the unpickler import arbitrary code.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

_STORAGE_DTYPES: dict[str, np.dtype] = {
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


class TorchPickleError(ValueError):
    """The file is not a legacy torch state dict this reader understands (or it is unsafe)."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` etc.: only its element dtype matters here."""

    name: str
    dtype: np.dtype


@dataclass
class _Storage:
    """A storage announced by ``persistent_id``; its bytes arrive after the main pickle."""

    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _LazyTensor:
    """A tensor view onto a storage whose data has not been read yet."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchPickleError(f"storage {self.storage.key!r} has no data")
        if not self.shape:
            return data[self.offset : self.offset + 1].reshape(()).copy()
        extent = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True)) + 1
        if any(n == 0 for n in self.shape):
            return np.zeros(self.shape, dtype=data.dtype)
        if self.offset < 0 or extent > data.size:
            raise TorchPickleError(f"tensor view runs past the end of storage {self.storage.key!r}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.shape, strides=tuple(s * item for s in self.stride)
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(
    storage: _Storage,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> _LazyTensor:
    if not isinstance(storage, _Storage):
        raise TorchPickleError("tensor does not reference a storage")
    return _LazyTensor(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


def _rebuild_parameter(data: _LazyTensor, requires_grad: bool = False, backward_hooks: object = None) -> Any:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only tensors, storages and OrderedDict; storages are collected for the byte section."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise TorchPickleError(f"refusing to load {module}.{name} from a torch pickle")

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchPickleError(f"unsupported persistent id {pid!r:.80}")
        if len(pid) < 5:
            raise TorchPickleError("truncated storage reference")
        storage_type, key, _location, numel = pid[1:5]
        view_metadata = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise TorchPickleError("storage reference without a known storage type")
        if view_metadata is not None:
            raise TorchPickleError("storage views (pre-1.0 torch files) are not supported")
        key = str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type.dtype, int(numel))
        return storage


class _SafeUnpickler(pickle.Unpickler):
    """For the header pickles, which hold only plain Python values."""

    def find_class(self, module: str, name: str) -> Any:
        raise TorchPickleError(f"refusing to load {module}.{name} from a torch pickle header")


def _materialise(obj: Any) -> Any:
    if isinstance(obj, _LazyTensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return {k: _materialise(v) for k, v in obj.items()}
    return obj


def read_state_dict(source: str | Path | IO[bytes]) -> dict[str, np.ndarray]:
    """Read a legacy-format torch state dict; tensors come back as C-contiguous numpy arrays."""
    if isinstance(source, str | Path):
        with open(source, "rb") as f:
            return read_state_dict(f)
    f = source
    try:
        magic = _SafeUnpickler(f).load()
        if magic != LEGACY_MAGIC_NUMBER:
            raise TorchPickleError("not a legacy torch file (bad magic number; zip-format files unsupported)")
        version = _SafeUnpickler(f).load()
        if version != LEGACY_PROTOCOL_VERSION:
            raise TorchPickleError(f"unsupported torch protocol version {version!r}")
        sys_info = _SafeUnpickler(f).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise TorchPickleError("only little-endian torch files are supported")
        unpickler = _StateDictUnpickler(f)
        result = unpickler.load()
        keys = _SafeUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, struct.error) as e:
        raise TorchPickleError(f"corrupt torch pickle: {e}") from e
    if not isinstance(keys, list):
        raise TorchPickleError("storage key list missing")
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise TorchPickleError(f"storage {key!r} listed but never referenced")
        header = f.read(8)
        if len(header) != 8:
            raise TorchPickleError("file truncated in storage section")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise TorchPickleError(f"storage {key!r}: {count} elements on disk, {storage.numel} expected")
        nbytes = count * storage.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise TorchPickleError("file truncated in storage data")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    missing = [k for k, s in unpickler.storages.items() if s.data is None]
    if missing:
        raise TorchPickleError(f"storages without data: {missing[:3]}")
    if not isinstance(result, dict):
        raise TorchPickleError(f"expected a state dict, got {type(result).__name__}")
    out = _materialise(result)
    bad = [k for k, v in out.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise TorchPickleError(f"state dict entries that are not tensors: {bad[:3]}")
    return out


def read_state_dict_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Convenience for tests and in-memory blobs."""
    return read_state_dict(io.BytesIO(data))
