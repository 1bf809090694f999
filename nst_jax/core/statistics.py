"""The style statistics of a layer's features (Gatys et al., arXiv 1508.06576; CVPR 2016), batched over images:
the Gram matrix, its cosine form, the mean and covariance, their guided forms (Gatys et al. 2017), and the sorted
projections on random directions of the sliced Wasserstein statistic (Heitz et al. 2021).

Shapes: feature maps are [B, H, W, N] (N filters, M = H * W positions); statistics are [B, N, N] (or, for the mean
and covariance, [B, N] and [B, N, N]; sorted projections [B, P, M]). `core.losses` measures the distances between
them.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

# Gram matrices sum over up to ~1e6 positions: keep them in full float32 on every backend (TPU/GPU defaults may
# use bf16/TF32 passes for float32 matmuls).
_GRAM_PRECISION = jax.lax.Precision.HIGHEST
# The style statistics (config.STYLE_LOSSES; their distances: `losses.style_layer_loss`): "gram", the paper's
# Gram matrices; "cosine", Gram matrices of the filters' L2-normalised responses; "meancov", per-layer mean and
# covariance under the 2-Wasserstein distance between Gaussians (crowsonkb/style-transfer-pytorch); "swd", sorted
# projections on random directions (sliced Wasserstein, Heitz et al. 2021).
EPS = 1e-8


def accumulation_dtype(dtype) -> jnp.dtype:
    """Losses and Gram matrices accumulate in float32 (bfloat16/float32 features) or float64 (float64 features)."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


@jax.custom_vjp
def gram(features: jax.Array) -> jax.Array:
    """Unnormalised Gram matrix G_ij = sum_k F_ik F_jk.

    Args:
      features: [B, H, W, N] feature maps.
    Returns:
      [B, N, N] Gram matrices, accumulated in float32 (float64 for float64 features) whatever the feature dtype.

    Its gradient is written out (`_gram_bwd`): one matrix product instead of the two, each followed by a transpose
    of the whole feature map, that differentiating the einsum gives (a 512 px step on CPU: 2.43 -> 2.16 s).
    """
    b, h, w, n = features.shape
    f = features.reshape(b, h * w, n)
    return jnp.einsum("bmi,bmj->bij", f, f, precision=_GRAM_PRECISION,
                      preferred_element_type=accumulation_dtype(features.dtype))


def _gram_fwd(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    return gram(features), features


def _gram_bwd(features: jax.Array, d_gram: jax.Array) -> tuple[jax.Array]:
    """dL/dF_mi = sum_j F_mj (dG_ji + dG_ij): [B, M, N] @ [B, N, N], like the forward product: operands in the
    features' dtype, accumulated in the Gram's accumulation dtype. For bfloat16 features the symmetrised dG is
    rounded to bfloat16 (relative 2^-9, the rounding the result gets anyway), so that the product runs at the
    bfloat16 rate instead of the exact-float32 one (docs/performance.md)."""
    b, h, w, n = features.shape
    acc = accumulation_dtype(features.dtype)
    sym = (d_gram + jnp.swapaxes(d_gram, 1, 2)).astype(features.dtype)  # d_gram: [B, N, N] in `acc`, as the Gram
    d_f = jnp.einsum("bmj,bji->bmi", features.reshape(b, h * w, n), sym, precision=_GRAM_PRECISION,
                     preferred_element_type=acc)
    return (d_f.reshape(features.shape).astype(features.dtype),)


gram.defvjp(_gram_fwd, _gram_bwd)


def guided_features(features: jax.Array, guide: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A layer's features weighted by a guide map (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
    Style Transfer": guided Gram matrices are the Gram matrices of T F).

    Args:
      features: [B, H, W, N]; guide: [H, W] weights T in [0, 1] (a mask brought down to this layer).
    Returns:
      (T F [B, H, W, N] in the accumulation dtype, m = sum T^2 (the guided positions, a scalar), and M / m, the
      factor that makes a guided Gram matrix count as many positions as the whole layer's: 0 where m = 0).
    """
    acc = accumulation_dtype(features.dtype)
    t = guide.astype(acc)
    m = jnp.sum(t * t)
    full = float(features.shape[1] * features.shape[2])
    return features.astype(acc) * t[None, :, :, None], m, guided_factor(m, full)


def guided_factor(mass: jax.Array, positions: float) -> jax.Array:
    """positions / mass, the factor that makes a guided statistic (over guided positions of total weight `mass`,
    sum T^2) count `positions` positions; 0 where the mass is 0 (a style applied nowhere)."""
    return jnp.where(mass > 0, positions / jnp.where(mass > 0, mass, 1.0), 0.0)


def layer_statistic(features: jax.Array, normalization: str, statistic: str, guide: Optional[jax.Array] = None):
    """A layer's style statistic, of a style image (a target, before `with_square_root`) or of the generated image (what
    `losses.style_layer_loss` compares), in the form that blends linearly: gram (normalised for "mean"), cosine, or
    {"mean", "cov"}; with a guide
    (`guided_features`), over the guided positions, as the whole layer's would be if every position were like them
    (a guide of ones gives the unguided statistic)."""
    if guide is not None:
        if statistic == "meancov":
            mean, cov = guided_mean_cov(features, guide)
            return {"mean": mean, "cov": cov}
        weighted, _, factor = guided_features(features, guide)
        if statistic == "cosine":
            return cosine_gram(weighted)
        _, h, w, n = features.shape
        g = gram(weighted) * factor
        return g / (float(n) * float(h * w)) if normalization == "mean" else g
    if statistic == "cosine":
        return cosine_gram(features)
    if statistic == "meancov":
        mean, cov = mean_cov(features)
        return {"mean": mean, "cov": cov}
    g = gram(features)
    if normalization != "mean":
        return g
    _, h, w, n = features.shape
    return g / (float(n) * float(h * w))


def guided_mean_cov(features: jax.Array, guide: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`mean_cov` over the positions weighted by T^2 (T: the guide [H, W]): mean = sum T^2 F / m and
    cov = sum T^2 (F - mean)(F - mean)^T / m, m = sum T^2 (both 0 where m = 0)."""
    weighted, m, factor = guided_features(features, guide)
    full = float(features.shape[1] * features.shape[2])
    t = guide.astype(weighted.dtype)[None, :, :, None]
    mean = jnp.sum(weighted * t, axis=(1, 2)) * factor / full
    return mean, gram(weighted - t * mean[:, None, None, :]) * factor / full


def with_square_root(stat, statistic: str):
    """The target from its statistic: for meancov, the covariance's symmetric square root added."""
    if statistic != "meancov":
        return stat
    values, vectors = jnp.linalg.eigh(stat["cov"])
    root = (vectors * jnp.sqrt(jnp.maximum(values, 0.0))[:, None, :]) @ jnp.swapaxes(vectors, 1, 2)
    return {**stat, "cov_sqrt": root}


def cosine_gram(features: jax.Array) -> jax.Array:
    """C_ij = <F_i, F_j> / (|F_i| |F_j|): the cosine similarity of filters i and j's responses over the positions.

    Args:
      features: [B, H, W, N].
    Returns:
      [B, N, N], entries in [-1, 1] (a filter that never responds: a zero row and column).
    """
    acc = accumulation_dtype(features.dtype)
    f = features.astype(acc)
    norm = jnp.sqrt(jnp.sum(f * f, axis=(1, 2), keepdims=True) + EPS)  # [B, 1, 1, N]
    return gram(f / norm)


def mean_cov(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each filter's mean response and the covariance over the positions.

    Args:
      features: [B, H, W, N] (M = H W positions).
    Returns:
      mean [B, N] and covariance [B, N, N] = (F - mean)^T (F - mean) / M.
    """
    b, h, w, n = features.shape
    f = features.astype(accumulation_dtype(features.dtype))
    mean = jnp.mean(f, axis=(1, 2))
    return mean, gram(f - mean[:, None, None, :]) / float(h * w)


def random_directions(key: jax.Array, n: int, count: int, dtype=jnp.float32) -> jax.Array:
    """`count` random unit directions in the N-dimensional feature space (Heitz et al. 2021: drawn from a normal
    distribution and normalised, so uniform on the sphere).

    Returns:
      [N, count], each column of unit length.
    """
    v = jax.random.normal(key, (n, count), dtype)
    return v / jnp.sqrt(jnp.sum(v * v, axis=0, keepdims=True))


def sorted_projections(features: jax.Array, directions: jax.Array) -> jax.Array:
    """The features projected on each direction, sorted over the positions: each row is the empirical quantile
    function of the layer's responses along that direction (the sliced distribution of Heitz et al. 2021).

    Args:
      features: [B, H, W, N]; directions: [N, P].
    Returns:
      [B, P, M] (M = H W positions) in the accumulation dtype, ascending along M. Its gradient reaches each
      position through the sorting permutation (`_ascending_order`, held constant: a sort's derivative).
    """
    b, h, w, n = features.shape
    acc = accumulation_dtype(features.dtype)
    proj = jnp.einsum("bmn,np->bpm", features.reshape(b, h * w, n).astype(acc), directions.astype(acc),
                      precision=_GRAM_PRECISION)
    return ascending(proj)


def ascending(values: jax.Array) -> jax.Array:
    """`values` [..., M] sorted along the last axis, its gradient reaching each entry through the sorting
    permutation (held constant)."""
    return jnp.take_along_axis(values, _ascending_order(jax.lax.stop_gradient(values)), axis=-1)


def _ascending_order(values: jax.Array) -> jax.Array:
    """The permutation that sorts `values` [..., M] along its last axis, int32 (stable). On a CPU NumPy's argsort
    through a callback: XLA's CPU sort calls its comparator for each comparison, and the swd distance's value and
    gradient took 2.5x as long with it (benchmarks/swd_sort.py, docs/performance.md); elsewhere XLA's own sort."""
    def host(v):
        return jax.pure_callback(lambda a: np.argsort(a, axis=-1, kind="stable").astype(np.int32),
                                 jax.ShapeDtypeStruct(v.shape, jnp.int32), v, vmap_method="expand_dims")

    return jax.lax.platform_dependent(values, cpu=host,
                                      default=lambda v: jnp.argsort(v, axis=-1, stable=True).astype(jnp.int32))


def quantiles(sorted_values: jax.Array, m: int) -> jax.Array:
    """The quantile functions `sorted_values` [B, P, M_s] (ascending along M_s) read at the M levels (i + 1/2) / M,
    by linear interpolation between neighbouring order statistics: the style's sorted projections brought to the
    generated image's count of positions (the same values when M = M_s).

    Returns:
      [B, P, m].
    """
    m_s = sorted_values.shape[-1]
    if m_s == m:
        return sorted_values
    at = jnp.clip((jnp.arange(m, dtype=jnp.float32) + 0.5) * (m_s / m) - 0.5, 0.0, m_s - 1.0)
    lo = jnp.floor(at).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, m_s - 1)
    frac = (at - lo).astype(sorted_values.dtype)[None, None, :]
    return sorted_values[..., lo] * (1.0 - frac) + sorted_values[..., hi] * frac
