"""Keras VGG19 weight files (HDF5, read with h5py): the Oxford/Caffe weights as Keras publishes them."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .core import DAMAGED_FILE_ERRORS, Weights, as_float32, check_claimed_size, checked, reason

_KERAS_LAYER = re.compile(r"^block(\d)_conv(\d)$")


def _attr_strings(value) -> list[str]:
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]


def load_keras_h5(path: str | os.PathLike) -> Weights:
    """Read a Keras VGG19 weights file (legacy or nested dataset names, optional `model_weights/` wrapper).

    Follows the root attribute `layer_names` to each layer group and its `weight_names` attribute, so it does not
    depend on how the datasets are named. Layers `block{b}_conv{i}` become `conv{b}_{i}`; others are ignored.
    """
    import h5py  # imported here so that .npz users never need it

    path = Path(path)
    params: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise InputError(path, "HDF5 file has no 'layer_names' attribute: not a Keras weights file")
            for layer in _attr_strings(root.attrs["layer_names"]):
                match = _KERAS_LAYER.match(layer)
                if not match:
                    continue
                if layer not in root:
                    raise InputError(path, f"layer {layer} is listed in layer_names but has no group")
                group = root[layer]
                arrays = []
                for name in _attr_strings(group.attrs.get("weight_names", [])):
                    if name not in group:
                        raise InputError(path, f"layer {layer} lists weight {name!r} that is not in the file")
                    check_claimed_size(path, f"{layer}/{name}", getattr(group[name], "shape", ()))
                    arrays.append(as_float32(path, f"{layer}/{name}", group[name][()]))
                kernels = [a for a in arrays if a.ndim == 4]
                biases = [a for a in arrays if a.ndim == 1]
                if len(arrays) != 2 or len(kernels) != 1 or len(biases) != 1:
                    shapes = [a.shape for a in arrays]
                    raise InputError(path,
                                     f"layer {layer} has weights of shapes {shapes}, expected a kernel and a bias")
                params[f"conv{match[1]}_{match[2]}"] = {"kernel": kernels[0], "bias": biases[0]}
    except InputError:
        raise
    except DAMAGED_FILE_ERRORS as e:
        raise InputError(path, f"cannot read HDF5 weights ({reason(e)})") from None
    return checked(path, params, "caffe", "keras-h5")


