"""The objective, in pure JAX: what is optimised (the variable and its image), the targets (content features P,
style statistics A), and the loss terms at a variable. Static settings travel as a `LossSpec` (hashable: a jit
static argument); weights and targets are traced arrays, so changing them never recompiles."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import losses, pixels, statistics, vgg

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
    normalize_gradients: bool = False
    block_tile: int = 0  # > 0: images larger than this side run by blocks of it (`core.blocks`); 0: never

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


def to_variable(image: jax.Array, spec: LossSpec) -> jax.Array:
    """RGB image in [0, 1] -> the optimised variable (itself, or the network input when pixel_space="network")."""
    return pixels.preprocess(image, spec.preprocess) if spec.pixel_space == "network" else image


def to_image(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The optimised variable -> RGB image (not clipped)."""
    return pixels.deprocess(z, spec.preprocess) if spec.pixel_space == "network" else z


def project(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The variable with its image clipped to [0, 1]."""
    return to_variable(jnp.clip(to_image(z, spec), 0.0, 1.0), spec)


def net_input(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The network input for the optimised variable z [B, H, W, 3], in the compute dtype."""
    x = z if spec.pixel_space == "network" else pixels.preprocess(z, spec.preprocess)
    return x.astype(spec.compute_dtype)


def cast_params(params, spec: LossSpec):
    """Conv params in the compute dtype (on the device)."""
    return jax.tree.map(lambda a: jnp.asarray(a, spec.compute_dtype), params)


def features(params, z, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """Every layer the loss uses, for variables z [B, H, W, 3] (flipped: see `vgg.flipped_kernels`)."""
    return vgg.features(params, net_input(z, spec), spec.layers, spec.pooling, spec.conv_precision, spec.remat,
                        flipped)


def layer_guides(masks: jax.Array, layer: str) -> jax.Array:
    """Guide maps brought down to a layer's resolution: masks [K, H, W] (at the image's size, values in [0, 1])
    -> [K, H_l, W_l], averaged over the 2x2 cells of each pooling before the layer's block, flooring odd sizes as
    the pooling does, so that every guide value covers the image region its layer's position sees through the
    poolings (Gatys et al. 2017's guide channels, downsampled)."""
    x = masks[..., None]
    for _ in range(int(layer[len("conv")]) - 1):  # conv4_2 and relu4_2: block 4, after three poolings
        x = vgg.pool2x2(x, "avg")
    return x[..., 0]


@functools.partial(jax.jit, static_argnames=("spec",))
def compute_targets(params, content: jax.Array, style, spec: LossSpec, blend=None, style_masks=None,
                    content_mask=None, key=None) -> dict:
    """Content features P and style statistics A of one job.

    Args:
      params: VGG19 conv params.
      content: [B, H, W, 3] content images and style: [B or 1, H_s, W_s, 3] style images, or a tuple of K such
        (several styles, sizes may differ), all as optimised variables (`to_variable`: made the same way as the
        start variable, so that a run started from the content image has exactly zero content loss, as in PyTorch).
      blend: [K, L] weights of the K styles at each of the L style layers, each column summing to 1
        (`Config.layer_blend`; `losses.blended_target`); None for one style.
      style_masks: [K, H, W] where each style applies in the output (spatial control; values in [0, 1], at the
        content's size): the K styles' targets are kept apart, stacked, and each mask brought to every style layer.
      content_mask: [H, W] where the content loss applies (`losses.content_loss`'s guide).
      key: a PRNG key, for the sliced Wasserstein statistic (`style_statistic="swd"`): each style layer's random
        directions (`statistics.random_directions`, as many as the layer has filters, as Heitz et al. do).
    Returns:
      {"content": {layer: [B, H_l, W_l, N_l]}, "style": {layer: the style statistic, `losses.style_target`}}, and
      with masks "style_guides": {layer: [K, H_l, W_l]} (the style targets then [K, ...]) and "content_guides":
      {layer: [H_l, W_l]}.
    """
    # Every image goes through the very forward pass the loss uses (same requested layers), so XLA compiles the
    # features the same way as in the loss.
    content_feats = features(params, content, spec)
    styles = style if isinstance(style, (tuple, list)) else (style,)
    style_feats = [features(params, s, spec) for s in styles]
    out = {"content": {l: content_feats[l] for l in spec.content_layers}}
    out["style"] = {l: _style_target(spec, l, i, [f[l] for f in style_feats], content_feats[l].shape, blend,
                                     style_masks, key)
                    for i, l in enumerate(spec.style_layers)}
    if style_masks is not None:
        out["style_guides"] = {l: layer_guides(style_masks, l) for l in spec.style_layers}
    if content_mask is not None:
        out["content_guides"] = {l: layer_guides(content_mask[None], l)[0] for l in spec.content_layers}
    return out


def _style_target(spec: LossSpec, layer: str, index: int, feats, shape, blend, style_masks, key):
    """One style layer's target of `compute_targets`: the K styles' stacked (masks), one style's, or their blend.
    shape: the content's features at the layer, [B, H_l, W_l, N] (the generated image's positions M = H_l W_l);
    the swd directions are drawn from `key`, one stream per layer."""
    directions, positions = None, shape[1] * shape[2]
    if spec.style_statistic == "swd":
        if key is None:
            raise ValueError("the swd statistic needs a key for its random directions")
        directions = swd_directions(key, index, feats[0].shape[-1], feats[0].dtype)
    target = functools.partial(losses.style_target, normalization=spec.normalization,
                               statistic=spec.style_statistic, directions=directions, positions=positions)
    if style_masks is not None:
        return jax.tree.map(lambda *t: jnp.stack(t), *[target(f) for f in feats])
    if len(feats) == 1:
        return target(feats[0])
    return losses.blended_target(feats, blend[:, index], spec.normalization, spec.style_statistic,
                                 directions=directions, positions=positions)


def swd_directions(key: jax.Array, index: int, n: int, dtype) -> jax.Array:
    """The swd statistic's random directions [n, n] of the `index`-th style layer (n filters): one stream of `key`
    per layer, as many directions as filters (as Heitz et al. do)."""
    return statistics.random_directions(jax.random.fold_in(key, index), n, n, dtype)


def loss_terms(z: jax.Array, params, targets, coefficients, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """The loss terms at the variable z [B, H, W, 3] (see `to_variable`), each [B]: unweighted content, style, tv
    (on z), and total, the sum weighted by `coefficients` (`run.settings.loss_weights`: alpha, beta, tv weight and
    the style layers' w_l; the VGG19 parameters are `params`). flipped: `vgg.flipped_kernels(params)`, made once
    outside a loop of steps (same values)."""
    feats = features(params, z, spec, flipped)
    zeros = jnp.zeros((z.shape[0],), statistics.accumulation_dtype(spec.compute_dtype))
    content = sum((_content_term(spec, l, targets)(feats[l], targets["content"][l]) for l in spec.content_layers),
                  zeros)
    style = zeros + losses.style_loss(feats, targets["style"], spec.style_layers, coefficients["layers"],
                                      spec.normalization, spec.style_statistic, spec.normalize_gradients,
                                      targets.get("style_guides"))
    tv = losses.total_variation(z, spec.tv_form)
    total = losses.total_loss(content, style, tv, coefficients["content"], coefficients["style"], coefficients["tv"])
    return {"content": content, "style": style, "tv": tv, "total": total}


def _content_term(spec: LossSpec, layer: str, targets):
    """The content loss at `layer` as a function of (features, target): guided by the content mask if the targets
    carry one, its gradient L1-normalised under `normalize_gradients`."""
    guide = targets.get("content_guides", {}).get(layer)

    def term(f, target):
        return losses.content_loss(f, target, spec.normalization, guide)

    return losses.normalized_gradient(term) if spec.normalize_gradients else term
