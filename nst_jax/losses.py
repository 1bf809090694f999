"""Pure, jittable loss functions of Gatys et al. (arXiv 1508.06576; CVPR 2016), batched over images.

Shapes: feature maps are [B, H_l, W_l, N_l] (N_l filters, M_l = H_l * W_l positions); every loss returns one
value per image, [B]. Constants that grow with the image (4 N^2 M^2) are Python floats so they never overflow int32.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

# Gram matrices sum over up to ~1e6 positions: keep them in full float32 on every backend (TPU/GPU defaults may
# use bf16/TF32 passes for float32 matmuls).
_GRAM_PRECISION = jax.lax.Precision.HIGHEST


def gram(features: jax.Array) -> jax.Array:
    """Unnormalised Gram matrix G_ij = sum_k F_ik F_jk.

    Args:
      features: [B, H, W, N] feature maps.
    Returns:
      [B, N, N] float32 Gram matrices (accumulated in float32 whatever the feature dtype).
    """
    b, h, w, n = features.shape
    f = features.reshape(b, h * w, n)
    return jnp.einsum("bmi,bmj->bij", f, f, precision=_GRAM_PRECISION, preferred_element_type=jnp.float32)


def content_loss(features: jax.Array, target: jax.Array) -> jax.Array:
    """L_content = 1/2 sum_ij (F_ij - P_ij)^2.

    Args:
      features: [B, H, W, N] features F of the generated image.
      target: [B, H, W, N] (or [1, H, W, N]) features P of the content image.
    Returns:
      [B] losses.
    """
    diff = features.astype(jnp.float32) - target.astype(jnp.float32)
    return 0.5 * jnp.sum(diff * diff, axis=(1, 2, 3))


def style_layer_loss(features: jax.Array, target_gram: jax.Array) -> jax.Array:
    """E_l = 1 / (4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2, with G the Gram matrix of `features`.

    Args:
      features: [B, H, W, N] features of the generated image (M = H * W).
      target_gram: [B, N, N] (or [1, N, N]) unnormalised Gram matrices A of the style image.
    Returns:
      [B] losses.
    """
    _, h, w, n = features.shape
    diff = gram(features) - target_gram
    return jnp.sum(diff * diff, axis=(1, 2)) / (4.0 * float(n) ** 2 * float(h * w) ** 2)


def style_loss(
    features: Mapping[str, jax.Array],
    target_grams: Mapping[str, jax.Array],
    layers: Sequence[str],
    layer_weights: Sequence[float],
) -> jax.Array:
    """L_style = sum_l w_l E_l over `layers`.

    Args:
      features: {layer: [B, H_l, W_l, N_l]} features of the generated image.
      target_grams: {layer: [B or 1, N_l, N_l]} Gram matrices of the style image.
      layers: style layers; layer_weights: w_l for each (the paper: 1/5 each for relu1_1..relu5_1).
    Returns:
      [B] losses.
    """
    return sum(w * style_layer_loss(features[l], target_grams[l]) for l, w in zip(layers, layer_weights, strict=True))


def total_variation(image: jax.Array) -> jax.Array:
    """Squared total variation sum (x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2 over pixels and channels.

    Not in the paper (its tv weight defaults to 0); the beta = 2 case of Mahendran & Vedaldi, as in
    jcjohnson/neural-style. Measured on the optimised RGB image in [0, 1].

    Args:
      image: [B, H, W, C].
    Returns:
      [B] losses.
    """
    image = image.astype(jnp.float32)
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return jnp.sum(dy * dy, axis=(1, 2, 3)) + jnp.sum(dx * dx, axis=(1, 2, 3))


def total_loss(
    content: jax.Array, style: jax.Array, tv: jax.Array, content_weight: float, style_weight: float, tv_weight: float
) -> jax.Array:
    """L = alpha L_content + beta L_style + tv_weight L_tv (elementwise over the batch)."""
    return content_weight * content + style_weight * style + tv_weight * tv
