"""Random VGG19 parameters for tests and benchmarks: the network's shapes without the download. Not pretrained:
nothing computed with them says anything about image quality."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..core.layers import CONV_NAMES, CONV_SHAPES


def random_params(key: jax.Array) -> dict[str, dict[str, jax.Array]]:
    """Random VGG19 conv params {conv: {"kernel": [3, 3, C_in, C_out], "bias": [C_out]}}: He-normal kernels, small
    random biases."""
    params = {}
    for conv, key_i in zip(CONV_NAMES, jax.random.split(key, len(CONV_NAMES))):
        k_w, k_b = jax.random.split(key_i)
        shape = CONV_SHAPES[conv]
        std = (2.0 / (shape[0] * shape[1] * shape[2])) ** 0.5
        params[conv] = {
            "kernel": std * jax.random.normal(k_w, shape, jnp.float32),
            "bias": 0.01 * jax.random.normal(k_b, (shape[3],), jnp.float32),
        }
    return params
