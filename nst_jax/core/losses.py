"""Pure, jittable loss functions of Gatys et al. (arXiv 1508.06576; CVPR 2016), batched over images.

Shapes: feature maps are [B, H_l, W_l, N_l] (N_l filters, M_l = H_l * W_l positions); every loss returns one
value per image, [B]. Constants that grow with the image (4 N^2 M^2) are Python floats so they never overflow int32.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp

from .statistics import (
    EPS,
    accumulation_dtype,
    layer_statistic,
    quantiles,
    sorted_projections,
    with_square_root,
)


def content_loss(features: jax.Array, target: jax.Array, normalization: str = "paper",
                 guide: Optional[jax.Array] = None) -> jax.Array:
    """L_content = 1/2 sum_ij (F_ij - P_ij)^2 (paper), or mean_ij (F_ij - P_ij)^2 ("mean", "mse", "yunjey").

    Args:
      features: [B, H, W, N] features F of the generated image.
      target: [B, H, W, N] (or [1, H, W, N]) features P of the content image.
      normalization: "paper", "mean", "mse" or "yunjey" (all but the first: the mean over the N M entries of each
        image, so that the term does not grow with the image).
      guide: [H, W] weights T in [0, 1] of the positions (`--content-mask` brought down to this layer): the
        differences become T (F - P), so that where T = 0 the content is free (T = 1 everywhere: the plain loss).
    Returns:
      [B] losses.
    """
    _, h, w, n = features.shape
    acc = accumulation_dtype(features.dtype)
    diff = features.astype(acc) - target.astype(acc)
    if guide is not None:
        diff = diff * guide.astype(acc)[None, :, :, None]
    return content_scale(n, h * w, normalization) * jnp.sum(diff * diff, axis=(1, 2, 3))


def content_scale(n: int, m: int, normalization: str) -> float:
    """The factor of the content loss's sum of squared differences over a layer of n filters and m positions: 1/2
    (paper), else 1 / (N M) (a mean)."""
    return 0.5 if normalization == "paper" else 1.0 / (float(n) * float(m))


# The constants c_s that put each statistic other than the paper's Gram matrices on the Gram loss's scale
# (`balance`): 1 where the normalisation alone gave pictures of the Gram run's balance at the default style weight;
# meancov's gradient moves the picture further for the same loss, and at 1 it erased the cat (docs/deviations.md,
# "One style weight for every statistic", has the measurement).
BALANCE = {"cosine": 1.0, "meancov": 0.1, "swd": 1.0}


def style_target(features: jax.Array, normalization: str = "paper", statistic: str = "gram",
                 guide: Optional[jax.Array] = None, directions: Optional[jax.Array] = None,
                 positions: Optional[int] = None):
    """The style target A of one layer from the style image's features.

    gram: its Gram matrix, unnormalised (paper, mse, yunjey: the formulas divide by the *generated* image's
    positions M), or for "mean" divided by N M_s, N the filters and M_s the style image's own positions (a
    per-position statistic: the same for a larger copy of the same texture, so --style-scale and --size change the
    strokes' scale, not the loss's balance). The other statistics are dicts with their "scale" (`balance`):
    cosine: {"cosine": [B, N, N]} (`statistics.cosine_gram`); meancov: {"mean": [B, N], "cov": [B, N, N],
    "cov_sqrt": [B, N, N]} (`statistics.mean_cov`; the covariance's symmetric square root, made once here); swd:
    {"quantiles": [B, P, M], "directions": [N, P]} (`statistics.sorted_projections` read at the generated image's
    M positions, `statistics.quantiles`).

    Args:
      features: [B, H_s, W_s, N] features of the style image.
      guide: [H_s, W_s] position weights (`statistics.guided_features`), or None for all positions (not for swd).
      directions: [N, P] unit directions (`statistics.random_directions`), for swd.
      positions: M, the generated image's positions at this layer (default: the style's own): the swd quantiles'
        count and, for the scale of paper, mse and yunjey, the Gram loss's M.
    Returns:
      [B, N, N] Gram targets (float32, or float64 for float64 features), or the statistic's dict.
    """
    return blended_target([features], jnp.ones((1,), accumulation_dtype(features.dtype)), normalization, statistic,
                          guide, directions, positions)


def blended_target(features: Sequence[jax.Array], weights: jax.Array, normalization: str = "paper",
                   statistic: str = "gram", guide: Optional[jax.Array] = None,
                   directions: Optional[jax.Array] = None, positions: Optional[int] = None):
    """The target of several style images, the blend sum_k w_k S_k of their statistics (jcjohnson/neural-style's
    blend of Gram matrices; for meancov the means and covariances are blended, then the square root taken; for swd
    the quantile functions, which is the sliced Wasserstein barycentre of the styles).

    Args:
      features: K feature maps [B, H_k, W_k, N] (sizes may differ); weights: [K], summing to 1; the rest as
        `style_target`.
    Returns:
      as `style_target`.
    """
    m = positions or features[0].shape[1] * features[0].shape[2]

    def stat(k, of):
        if of == "swd":
            return quantiles(sorted_projections(features[k], directions), m)
        return layer_statistic(features[k], normalization, of, guide)

    return target_from_statistics(stat, len(features), weights, normalization, statistic, directions,
                                  features[0].shape[-1], m)


def target_from_statistics(stat: Callable[[int, str], object], count: int, weights: jax.Array, normalization: str,
                           statistic: str, directions: Optional[jax.Array], n: int, m: int):
    """`blended_target` from the styles' statistics: stat(k, of) is style k's `layer_statistic` of kind `of` ("gram"
    or `statistic`; for swd its quantiles at m levels), however it was computed (the whole image's features, or
    sums over blocks, `core.blocks`); count styles blended by `weights` [count]; n filters, m the generated image's
    positions."""
    def blend(of):
        if count == 1:
            return stat(0, of)
        return jax.tree.map(lambda *xs: sum(w * x for w, x in zip(weights, xs)), *[stat(k, of) for k in range(count)])

    if statistic == "gram":
        return blend("gram")
    target = with_square_root(blend(statistic), statistic)
    target = {"cosine": target} if statistic == "cosine" else dict(target) if statistic == "meancov" else {
        "quantiles": target, "directions": directions}
    return {**target, "scale": balance(target, blend("gram"), statistic, normalization, n, m)}


def balance(target: dict, gram: jax.Array, statistic: str, normalization: str, n: int, m: int) -> jax.Array:
    """The factor that puts `statistic`'s distance on the Gram loss's scale, [B]: c_s E_gram(0; A) / r_s(target).

    E_gram(0; A) is the Gram loss a layer would have if the result had none of the style (G = 0) under this
    normalisation: what the style term weighs at that layer in the paper's objective. r_s is the statistic's own
    distance from nothing to the style: cosine, the mean squared cosine; meancov, (|mu|^2 + tr S) / N (the squared
    2-Wasserstein distance from a point at 0, divided by N as the distance is); swd, the mean squared projection.
    So each statistic's E_l is its distance relative to the style's size under it, weighed as the Gram loss weighs
    that layer, times `BALANCE[statistic]` (c_s, measured). The style weight then means the same for every
    statistic, and the factor follows the weights' scale as the Gram loss does.

    Args:
      target: the statistic's dict (`blended_target`); gram: [B, N, N] the style's Gram target under
        `normalization`; n: filters; m: the generated image's positions.
    """
    if normalization == "mean":
        size = jnp.sum(gram * gram, axis=(1, 2)) / float(n) ** 2
    else:
        size = style_factor(n, m, normalization) * jnp.sum(gram * gram, axis=(1, 2))
    if statistic == "cosine":
        own = jnp.sum(target["cosine"] ** 2, axis=(1, 2)) / float(n) ** 2
    elif statistic == "meancov":
        own = (jnp.sum(target["mean"] ** 2, axis=-1) + jnp.trace(target["cov"], axis1=1, axis2=2)) / float(n)
    else:
        own = jnp.mean(target["quantiles"] ** 2, axis=(1, 2))
    return BALANCE[statistic] * size / jnp.maximum(own, EPS)


def style_factor(n: int, m: int, normalization: str = "paper") -> float:
    """The factor c in E_l = c * sum_ij (G_ij - A_ij)^2 (G, A unnormalised Gram matrices; N filters, M positions).

    paper: 1 / (4 N^2 M^2). mse (Gram / (N M), then the mean over N^2 entries): 1 / (N^4 M^2).
    yunjey (mean over N^2 entries, then / (N M)): 1 / (N^3 M). ("mean" normalises G and A each by its own image's
    positions instead: see `style_layer_loss`.)
    """
    n, m = float(n), float(m)
    if normalization == "paper":
        return 1.0 / (4.0 * n**2 * m**2)
    if normalization == "mse":
        return 1.0 / (n**4 * m**2)
    if normalization == "yunjey":
        return 1.0 / (n**3 * m)
    raise ValueError(f"unknown normalization {normalization!r}")


def style_layer_loss(features: jax.Array, target, normalization: str = "paper", statistic: str = "gram",
                     guide: Optional[jax.Array] = None) -> jax.Array:
    """E_l, the distance between the style statistics of `features` and the target (`style_target`).

    gram: E_l = 1 / (4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2, with G the Gram matrix of `features` (other
    normalisations: see `style_factor`). cosine: the mean over the N^2 entries of (C - C_s)^2
    (`statistics.cosine_gram`; the same for every normalisation: cosines do not grow with the image). meancov: the
    squared 2-Wasserstein distance between the Gaussians of the two layers' responses, divided by N:
    (|mu - mu_s|^2 + tr S + tr S_s - 2 tr (S_s^(1/2) S S_s^(1/2))^(1/2)) / N.

    With a guide T (spatial control, Gatys et al. 2017), the statistic is the guided one
    (`statistics.layer_statistic`: of T F, counted as if it covered the whole layer) and E_l is weighted by the
    guided share of the layer, m / M (m = sum T^2): a style applied to a quarter of the picture weighs a quarter,
    one applied nowhere exactly 0.

    Args:
      features: [B, H, W, N] features of the generated image (M = H * W).
      target: [B or 1, N, N] targets of the style image, or the meancov dict.
      guide: [H, W] weights in [0, 1] of the positions this style applies to, or None for all.
    Returns:
      [B] losses.
    """
    _, h, w, _ = features.shape
    distance = _layer_distance(features, target, normalization, statistic, guide)
    if guide is None:
        return distance
    return guided_share(guide, h * w, distance.dtype) * distance


def _layer_distance(features: jax.Array, target, normalization: str, statistic: str, guide) -> jax.Array:
    """`style_layer_loss` before the guided share: the distance between `layer_statistic` of the features (guided or
    not) and the target, times the target's scale for the statistics other than Gram's, [B]."""
    _, h, w, n = features.shape
    if statistic == "swd":
        stat = sorted_projections(features, target["directions"])
    else:
        stat = layer_statistic(features, normalization, statistic, guide)
    return statistic_distance(stat, target, normalization, statistic, n, h * w)


def guided_share(guide: jax.Array, positions: int, dtype) -> jax.Array:
    """A guided style's share of its layer, m / M (m = sum T^2 of the guide [H_l, W_l], in `dtype`; M the layer's
    positions: zeros around the guide, as blocks pad it, change nothing)."""
    t = guide.astype(dtype)
    return jnp.sum(t * t) / float(positions)


def statistic_distance(stat, target, normalization: str, statistic: str, n: int, m: int) -> jax.Array:
    """E_l of `style_layer_loss` (before any guided share) from the generated image's statistic `stat` (its
    `layer_statistic`, or for swd its sorted projections [B, P, M]) and the target, for a layer of n filters and m
    positions, [B]."""
    if statistic == "swd":
        diff = stat - target["quantiles"]
        return target["scale"] * jnp.mean(diff * diff, axis=(1, 2))
    if statistic == "meancov":
        mean, cov = stat["mean"], stat["cov"]
        root = target["cov_sqrt"]
        inner = root @ cov @ root
        roots = jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(0.5 * (inner + jnp.swapaxes(inner, 1, 2))), EPS))
        trace = lambda m: jnp.trace(m, axis1=1, axis2=2)  # noqa: E731
        w2 = (jnp.sum((mean - target["mean"]) ** 2, axis=-1) + trace(cov) + trace(target["cov"])
              - 2.0 * jnp.sum(roots, axis=-1))
        return target["scale"] * w2 / float(n)
    if statistic == "cosine":  # a per-position statistic: the mean over the N^2 entries
        diff = stat - target["cosine"]
        return target["scale"] * jnp.sum(diff * diff, axis=(1, 2)) / float(n) ** 2
    diff = stat - target
    if normalization == "mean":
        return jnp.sum(diff * diff, axis=(1, 2)) / float(n) ** 2
    return style_factor(n, m, normalization) * jnp.sum(diff * diff, axis=(1, 2))


def style_loss(
    features: Mapping[str, jax.Array],
    target_grams: Mapping[str, jax.Array],
    layers: Sequence[str],
    layer_weights: Sequence[float],
    normalization: str = "paper",
    statistic: str = "gram",
    normalize: bool = False,
    guides: Optional[Mapping[str, jax.Array]] = None,
) -> jax.Array:
    """L_style = sum_l w_l E_l over `layers` (E_l: `style_layer_loss` of `statistic`); with guides, K styles each
    applied where its guide says (spatial control, Gatys et al. 2017): sum_k sum_l w_l E_l(F_l, A_kl; T_kl)
    (`style_layer_loss` with a guide: weighted by the style's share).

    Args:
      features: {layer: [B, H_l, W_l, N_l]} features of the generated image.
      target_grams: {layer: target} the style image's statistics (`style_target`); with guides, the K styles'
        targets stacked on a leading axis, [K, B or 1, N, N] (or the meancov dict of such).
      layers: style layers; layer_weights: w_l for each (the paper: 1/5 each for relu1_1..relu5_1).
      normalize: each E_l's gradient L1-normalised (`normalized_gradient`).
      guides: {layer: [K, H_l, W_l]} each style's guide at that layer (`objective.layer_guides`), or None.
    Returns:
      [B] losses.
    """
    def term(f, target, guide=None):
        return style_layer_loss(f, target, normalization, statistic, guide)

    layer_loss = normalized_gradient(term) if normalize else term
    if guides is None:
        return sum(w * layer_loss(features[l], target_grams[l]) for l, w in zip(layers, layer_weights, strict=True))
    total = 0.0
    for l, w in zip(layers, layer_weights, strict=True):
        for k in range(guides[l].shape[0]):
            target = jax.tree.map(lambda a, k=k: a[k], target_grams[l])
            total = total + w * layer_loss(features[l], target, guides[l][k])
    return total


def normalized_gradient(loss: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """`loss(features, *rest)` [B] (`rest`: arrays or pytrees of them) with the same values, whose gradient with
    respect to `features` is L1-normalised per image: dE/dF / (|dE/dF|_1 + 1e-8), as jcjohnson/neural-style's
    -normalize_gradients does in each loss module's backward pass (before the module's weight multiplies it). So
    the weighted term w E contributes a gradient of L1 norm w (to 1e-8) at its layer, whatever the scale of E. The
    other arguments (targets, guides) get no gradient.

    Written as a `jax.custom_vjp`: the gradient is made in the forward pass (a vector-Jacobian product of the
    term alone), kept as the residual, and scaled by the incoming cotangent in the backward pass."""

    @jax.custom_vjp
    def wrapped(features, *rest):
        return loss(features, *rest)

    def forward(features, *rest):
        value, pullback = jax.vjp(lambda f: loss(f, *rest), features)
        (grad,) = pullback(jnp.ones_like(value))
        norm = jnp.sum(jnp.abs(grad), axis=tuple(range(1, grad.ndim)), keepdims=True)
        return value, (grad / (norm + 1e-8), rest)

    def backward(residual, cotangent):
        direction, rest = residual
        scale = cotangent.reshape((-1,) + (1,) * (direction.ndim - 1)).astype(direction.dtype)
        return (direction * scale, *jax.tree.map(jnp.zeros_like, rest))

    wrapped.defvjp(forward, backward)
    return wrapped


def total_variation(image: jax.Array, form: str = "sum") -> jax.Array:
    """Squared total variation of the optimised variable (not in the paper; its tv weight defaults to 0).

    "sum": sum (x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2 over all neighbour pairs and channels (the
    beta = 2 case of Mahendran & Vedaldi). "l1": sum |x[i+1, j] - x[i, j]| + |x[i, j+1] - x[i, j]| (anisotropic
    L1: flat regions with sharp edges). "jcjohnson": the loss whose gradient jcjohnson/neural-style's TVLoss
    computes: 1/2 sum over i < H-1, j < W-1 of (x[i, j] - x[i, j+1])^2 + (x[i, j] - x[i+1, j])^2.

    Args:
      image: [B, H, W, C].
    Returns:
      [B] losses.
    """
    image = image.astype(accumulation_dtype(image.dtype))
    if form == "l1":
        dy = image[:, 1:, :, :] - image[:, :-1, :, :]
        dx = image[:, :, 1:, :] - image[:, :, :-1, :]
        return jnp.sum(jnp.abs(dy), axis=(1, 2, 3)) + jnp.sum(jnp.abs(dx), axis=(1, 2, 3))
    if form == "jcjohnson":
        corner = image[:, :-1, :-1, :]
        dx = corner - image[:, :-1, 1:, :]
        dy = corner - image[:, 1:, :-1, :]
        return 0.5 * (jnp.sum(dx * dx, axis=(1, 2, 3)) + jnp.sum(dy * dy, axis=(1, 2, 3)))
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return jnp.sum(dy * dy, axis=(1, 2, 3)) + jnp.sum(dx * dx, axis=(1, 2, 3))


def total_loss(
    content: jax.Array, style: jax.Array, tv: jax.Array, content_weight: float, style_weight: float, tv_weight: float
) -> jax.Array:
    """L = alpha L_content + beta L_style + tv_weight L_tv (elementwise over the batch)."""
    return content_weight * content + style_weight * style + tv_weight * tv
