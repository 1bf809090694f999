"""Pixel conventions of the VGG19 weights: RGB images in [0, 1] <-> the network's input. Pure JAX.

"caffe" (the Oxford/Caffe weights and their Keras port: x255, RGB->BGR, minus the BGR means; Keras' "caffe" mode)
and "torchvision" ((x - mean) / std per RGB channel).
"""

from __future__ import annotations

import jax.numpy as jnp

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # B, G, R means of the Caffe/Keras VGG, in [0, 255] units
TORCHVISION_MEAN = (0.485, 0.456, 0.406)  # R, G, B
TORCHVISION_STD = (0.229, 0.224, 0.225)
PREPROCESSINGS = ("caffe", "torchvision")


def _as_float(x) -> jnp.ndarray:
    """float64 stays float64 (verification runs); everything else becomes float32."""
    x = jnp.asarray(x)
    return x if x.dtype == jnp.float64 else x.astype(jnp.float32)


def _per_channel(values, like: jnp.ndarray) -> jnp.ndarray:
    """Per-channel constants shaped [1, ..., 1, 3] like `like` (explicit rank: no implicit rank promotion)."""
    return jnp.asarray(values, like.dtype).reshape((1,) * (like.ndim - 1) + (3,))


def preprocess(image: jnp.ndarray, convention: str) -> jnp.ndarray:
    """Turn RGB images in [0, 1] into network input for weights trained with `convention`.

    Args:
      image: [..., H, W, 3] RGB in [0, 1].
      convention: "caffe" (x255, RGB->BGR, minus the BGR means; Keras' "caffe" mode) or "torchvision"
        ((x - mean) / std per RGB channel).
    Returns:
      [..., H, W, 3] network input (float32, or float64 for float64 input).
    """
    image = _as_float(image)
    if convention == "caffe":
        return image[..., ::-1] * 255.0 - _per_channel(CAFFE_BGR_MEAN, image)
    if convention == "torchvision":
        return (image - _per_channel(TORCHVISION_MEAN, image)) / _per_channel(TORCHVISION_STD, image)
    raise ValueError(f"unknown preprocessing {convention!r}; expected one of {PREPROCESSINGS}")


def deprocess(x: jnp.ndarray, convention: str) -> jnp.ndarray:
    """The inverse of `preprocess`: network input [..., H, W, 3] -> RGB images (in [0, 1] where valid)."""
    x = _as_float(x)
    if convention == "caffe":
        return ((x + _per_channel(CAFFE_BGR_MEAN, x)) / 255.0)[..., ::-1]
    if convention == "torchvision":
        return x * _per_channel(TORCHVISION_STD, x) + _per_channel(TORCHVISION_MEAN, x)
    raise ValueError(f"unknown preprocessing {convention!r}; expected one of {PREPROCESSINGS}")
