"""The paper's normalised VGG19: every filter rescaled so that its mean activation over images and positions is 1.

Gatys et al. rescale each conv layer's filters (weights and bias) by 1/m, with m the filter's mean ReLU activation,
and scale the next layer's input weights by m to compensate. Because ReLU and pooling commute with positive scaling,
every normalised activation is the original one divided by m: the ReLU pattern and the relative geometry of the
features stay the same; only their scale changes. All means come from one forward pass of the original network.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..core import layers, vgg
from .core import Weights, preprocess


def mean_activations(weights: Weights, images: Sequence[np.ndarray], pooling: str = "avg") -> dict[str, np.ndarray]:
    """Mean of each filter's ReLU output over all images and positions, {conv: [C_out]} (float64).

    Args:
      images: [H, W, 3] RGB arrays in [0, 1] (sizes may differ; each position of each image counts once).
    """
    relus = [c.replace("conv", "relu") for c in layers.CONV_NAMES]
    forward = jax.jit(lambda p, x: vgg.features(p, preprocess(x, weights.preprocess), relus, pooling))
    sums = {c: np.zeros(layers.CONV_SHAPES[c][3]) for c in layers.CONV_NAMES}
    counts = {c: 0 for c in layers.CONV_NAMES}
    params = jax.device_put(weights.params)
    for image in images:
        feats = forward(params, jnp.asarray(image, jnp.float32)[None])
        for conv, relu in zip(layers.CONV_NAMES, relus):
            f = np.asarray(feats[relu], np.float64)
            sums[conv] += f.sum(axis=(0, 1, 2))
            counts[conv] += f.shape[1] * f.shape[2]
    return {c: sums[c] / counts[c] for c in layers.CONV_NAMES}


def normalize(weights: Weights, images: Sequence[np.ndarray], pooling: str = "avg") -> tuple[Weights, dict]:
    """Rescale filters so each has mean activation 1 over `images`.

    Filters that never fire (mean 0) keep their scale. Returns the normalised weights and a report
    {"dead": {conv: count}, "means": {conv: [C_out]}} of the original means.
    """
    means = mean_activations(weights, images, pooling)
    scale_out = {c: np.where(m > 0, m, 1.0) for c, m in means.items()}
    params, previous = {}, None
    for conv in layers.CONV_NAMES:
        kernel = np.asarray(weights.params[conv]["kernel"], np.float64)
        bias = np.asarray(weights.params[conv]["bias"], np.float64)
        if previous is not None:  # undo the previous layer's scaling on this layer's inputs
            kernel = kernel * scale_out[previous][None, None, :, None]
        params[conv] = {
            "kernel": (kernel / scale_out[conv]).astype(np.float32),
            "bias": (bias / scale_out[conv]).astype(np.float32),
        }
        previous = conv
    report = {"dead": {c: int(np.sum(m <= 0)) for c, m in means.items()}, "means": means}
    return Weights(params, weights.preprocess, f"normalized({weights.source})"), report
