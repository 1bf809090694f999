"""The objective, in pure JAX: what is optimised (the variable and its image), the targets (content features P,
style statistics A), and the loss terms at a variable. Static settings travel as a `LossSpec` (hashable: a jit
static argument); weights and targets are traced arrays, so changing them never recompiles."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import losses, vgg
from . import weights as weights_lib
from .config import Config

TERMS = ("content", "style", "tv", "total")


class LossSpec(NamedTuple):
    """The static (compile-time) part of the objective: layers, pooling, preprocessing, normalisation, the space
    of the optimised variable and the TV form."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pooling: str
    preprocess: str
    normalization: str
    pixel_space: str
    tv_form: str
    precision: str
    remat: bool
    style_statistic: str = "gram"

    @property
    def compute_dtype(self):
        """The dtype of the network's activations."""
        return jnp.dtype("float32" if self.precision == "tf32" else self.precision)

    @property
    def conv_precision(self) -> jax.lax.Precision:
        """float32 and float64: exact arithmetic on every backend; tf32 (and bfloat16 data): the backend's fast
        passes (TF32 on NVIDIA GPUs, bfloat16 passes on TPUs, exact on CPU)."""
        exact = self.precision in ("float32", "float64")
        return jax.lax.Precision.HIGHEST if exact else jax.lax.Precision.DEFAULT

    @property
    def variable_dtype(self):
        """The dtype of the optimised variable and the optimiser state (float32 unless float64)."""
        return jnp.dtype(jnp.float64 if self.precision == "float64" else jnp.float32)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def loss_spec(config: Config, preprocessing: str, remat: bool = False) -> LossSpec:
    return LossSpec(tuple(config.content_layers), tuple(config.style_layers), config.pooling, preprocessing,
                    config.normalization, config.pixel_space, config.tv_form, config.precision, remat,
                    config.style_loss)


def loss_weights(config: Config, dtype=jnp.float32) -> dict[str, jax.Array]:
    """The traced (run-time) loss weights: alpha, beta, tv weight and w_l [L], in the variable's dtype."""
    return {
        "content": jnp.asarray(config.content_weight, dtype),
        "style": jnp.asarray(config.style_weight, dtype),
        "tv": jnp.asarray(config.tv_weight, dtype),
        "layers": jnp.asarray(config.layer_weights, dtype),
    }


def to_variable(image: jax.Array, spec: LossSpec) -> jax.Array:
    """RGB image in [0, 1] -> the optimised variable (itself, or the network input when pixel_space="network")."""
    return weights_lib.preprocess(image, spec.preprocess) if spec.pixel_space == "network" else image


def to_image(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The optimised variable -> RGB image (not clipped)."""
    return weights_lib.deprocess(z, spec.preprocess) if spec.pixel_space == "network" else z


def project(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The variable with its image clipped to [0, 1]."""
    return to_variable(jnp.clip(to_image(z, spec), 0.0, 1.0), spec)


def net_input(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The network input for the optimised variable z [B, H, W, 3], in the compute dtype."""
    x = z if spec.pixel_space == "network" else weights_lib.preprocess(z, spec.preprocess)
    return x.astype(spec.compute_dtype)


def cast_params(params, spec: LossSpec):
    """Conv params in the compute dtype (on the device)."""
    return jax.tree.map(lambda a: jnp.asarray(a, spec.compute_dtype), params)


def features(params, z, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """Every layer the loss uses, for variables z [B, H, W, 3] (flipped: see `vgg.flipped_kernels`)."""
    return vgg.features(params, net_input(z, spec), spec.layers, spec.pooling, spec.conv_precision, spec.remat,
                        flipped)


@functools.partial(jax.jit, static_argnames=("spec",))
def compute_targets(params, content: jax.Array, style, spec: LossSpec, blend=None) -> dict:
    """Content features P and style statistics A of one job.

    Args:
      params: VGG19 conv params.
      content: [B, H, W, 3] content images and style: [B or 1, H_s, W_s, 3] style images, or a tuple of K such
        (several styles, sizes may differ), all as optimised variables (`to_variable`: made the same way as the
        start variable, so that a run started from the content image has exactly zero content loss, as in PyTorch).
      blend: [K] weights summing to 1 for K styles (`losses.blended_target`); None for one style.
    Returns:
      {"content": {layer: [B, H_l, W_l, N_l]}, "style": {layer: the style statistic, `losses.style_target`}}.
    """
    # Every image goes through the very forward pass the loss uses (same requested layers), so XLA compiles the
    # features the same way as in the loss.
    content_feats = features(params, content, spec)
    styles = style if isinstance(style, (tuple, list)) else (style,)
    style_feats = [features(params, s, spec) for s in styles]
    if len(styles) == 1:
        style_targets = {l: losses.style_target(style_feats[0][l], spec.normalization, spec.style_statistic)
                         for l in spec.style_layers}
    else:
        style_targets = {l: losses.blended_target([f[l] for f in style_feats], blend, spec.normalization,
                                                  spec.style_statistic) for l in spec.style_layers}
    return {"content": {l: content_feats[l] for l in spec.content_layers}, "style": style_targets}


def loss_terms(z: jax.Array, params, targets, coefficients, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """The loss terms at the variable z [B, H, W, 3] (see `to_variable`), each [B]: unweighted content, style, tv
    (on z), and total, the sum weighted by `coefficients` (`loss_weights`: alpha, beta, tv weight and the style
    layers' w_l; the VGG19 parameters are `params`). flipped: `vgg.flipped_kernels(params)`, made once outside a
    loop of steps (same values)."""
    feats = features(params, z, spec, flipped)
    zeros = jnp.zeros((z.shape[0],), losses.accumulation_dtype(spec.compute_dtype))
    content = sum(
        (losses.content_loss(feats[l], targets["content"][l], spec.normalization) for l in spec.content_layers),
        zeros,
    )
    style = zeros + losses.style_loss(feats, targets["style"], spec.style_layers, coefficients["layers"],
                                      spec.normalization, spec.style_statistic)
    tv = losses.total_variation(z, spec.tv_form)
    total = losses.total_loss(content, style, tv, coefficients["content"], coefficients["style"], coefficients["tv"])
    return {"content": content, "style": style, "tv": tv, "total": total}
