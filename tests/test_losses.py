"""Losses against hand computations in NumPy and closed forms (the paper's formulas, FACTS.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.core import losses

rng = np.random.default_rng(0)


def test_gram_is_sum_over_positions_of_outer_products():
    f = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    expected = np.zeros((2, 5, 5))
    for b in range(2):
        for y in range(3):
            for x in range(4):
                expected[b] += np.outer(f[b, y, x], f[b, y, x])
    np.testing.assert_allclose(losses.gram(jnp.asarray(f)), expected, rtol=1e-5, atol=1e-5)


def test_gram_of_constant_features_closed_form():
    # F_ik = c for all i, k: G_ij = M c^2.
    g = losses.gram(jnp.full((1, 6, 7, 3), 2.0))
    np.testing.assert_allclose(g, np.full((1, 3, 3), 6 * 7 * 4.0))


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_gram_gradient_closed_form(dtype):
    """L = sum_ij W_ij G_ij with W not symmetric: dL/dF_mi = sum_j F_mj (W_ij + W_ji), in NumPy (float64)."""
    f = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    weights = rng.standard_normal((2, 5, 5)).astype(np.float32)
    f_in = jnp.asarray(f).astype(dtype)
    grad = jax.grad(lambda x: jnp.sum(losses.gram(x) * weights))(f_in)
    assert grad.dtype == f_in.dtype and grad.shape == f.shape
    f64 = np.asarray(f_in.astype(jnp.float32), np.float64).reshape(2, 12, 5)
    expected = np.einsum("bmj,bij->bmi", f64, weights + weights.transpose(0, 2, 1)).reshape(f.shape)
    tol = 1e-5 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(np.asarray(grad, np.float64), expected, rtol=tol, atol=tol * np.abs(expected).max())
    # under vmap (jobs) too
    batched = jax.vmap(jax.grad(lambda x, w: jnp.sum(losses.gram(x) * w)))(f_in[:, None], jnp.asarray(weights)[:, None])
    np.testing.assert_allclose(np.asarray(batched[:, 0], np.float64), expected, rtol=tol,
                               atol=tol * np.abs(expected).max())


def test_content_loss_is_half_sum_of_squares_per_image():
    f = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    p = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    expected = [0.5 * np.sum((f[b] - p[b]) ** 2) for b in range(2)]
    np.testing.assert_allclose(losses.content_loss(jnp.asarray(f), jnp.asarray(p)), expected, rtol=1e-6)


def test_style_layer_loss_matches_paper_formula():
    f = rng.standard_normal((1, 4, 5, 3)).astype(np.float32)
    a = rng.standard_normal((1, 3, 3)).astype(np.float32)
    n, m = 3, 20
    flat = f[0].reshape(m, n).astype(np.float64)
    g = flat.T @ flat
    expected = np.sum((g - a[0]) ** 2) / (4 * n**2 * m**2)
    np.testing.assert_allclose(losses.style_layer_loss(jnp.asarray(f), jnp.asarray(a)), [expected], rtol=1e-5)


def test_style_layer_loss_zero_at_own_gram_and_no_int_overflow_at_high_resolution():
    f = jnp.ones((1, 512, 512, 64), jnp.float32)  # 4 N^2 M^2 ~ 1.1e15: would overflow int32
    assert float(losses.style_layer_loss(f, losses.gram(f))[0]) == 0.0
    # G = M * ones, A = 0: sum (G - A)^2 = N^2 M^2, so E = 1/4 exactly.
    value = jax.jit(losses.style_layer_loss)(f, jnp.zeros((1, 64, 64)))
    np.testing.assert_allclose(value, [0.25], rtol=1e-6)


def test_style_loss_weights_layers():
    feats = {"a": jnp.ones((1, 2, 2, 2)), "b": 2 * jnp.ones((1, 1, 1, 3))}
    targets = {"a": jnp.zeros((1, 2, 2)), "b": jnp.zeros((1, 3, 3))}
    # E_a: G = 4 * ones(2x2) -> sum 4*16 = 64 / (4 * 4 * 16) = 0.25; E_b: G = 4 * ones(3x3) -> 9*16 / (4*9*1) = 4.
    value = losses.style_loss(feats, targets, ["a", "b"], [0.5, 0.25])
    np.testing.assert_allclose(value, [0.5 * 0.25 + 0.25 * 4.0], rtol=1e-6)


def test_total_variation_hand_computed():
    img = np.zeros((1, 2, 3, 1), np.float32)
    img[0, :, :, 0] = [[0, 1, 3], [2, 2, 2]]
    # horizontal diffs: (1, 2), (0, 0) -> 1 + 4; vertical diffs: (2, 1, -1) -> 4 + 1 + 1.
    np.testing.assert_allclose(losses.total_variation(jnp.asarray(img)), [11.0])


def test_total_loss_weighted_sum():
    np.testing.assert_allclose(losses.total_loss(jnp.array([2.0]), jnp.array([3.0]), jnp.array([5.0]), 1.0, 1e3, 0.1),
                               [2.0 + 3e3 + 0.5])


@pytest.mark.parametrize("fn", [losses.content_loss, losses.style_layer_loss])
def test_losses_are_batched_per_image(fn):
    f = rng.standard_normal((3, 4, 4, 2)).astype(np.float32)
    t = rng.standard_normal((1, 4, 4, 2) if fn is losses.content_loss else (1, 2, 2)).astype(np.float32)
    batched = fn(jnp.asarray(f), jnp.asarray(t))
    singles = [fn(jnp.asarray(f[i : i + 1]), jnp.asarray(t))[0] for i in range(3)]
    np.testing.assert_allclose(batched, singles, rtol=1e-6)


def test_mean_normalisation_closed_form_and_size_invariance():
    """"mean" (the default): E_l = mean_ij (G_ij / (N M) - A_ij / (N M_s))^2, each Gram matrix over its own image's
    positions. Constant features c (generated, M positions) and s (style, M_s positions): G/(NM) = c^2/N and
    A/(N M_s) = s^2/N everywhere, so E_l = (c^2 - s^2)^2 / N^2 whatever M and M_s. Content: the mean of (F - P)^2."""
    n = 4
    style_feats = jnp.full((1, 5, 9, n), 3.0)  # M_s = 45
    target = losses.style_target(style_feats, "mean")
    np.testing.assert_allclose(target, np.full((1, n, n), 9.0 / n), rtol=1e-6)
    for h, w in ((2, 3), (6, 7), (16, 16)):
        e = losses.style_layer_loss(jnp.full((1, h, w, n), 2.0), target, "mean")
        np.testing.assert_allclose(e, [(4.0 - 9.0) ** 2 / n**2], rtol=1e-6)
    # unnormalised targets (the other normalisations) are plain Gram matrices
    np.testing.assert_allclose(losses.style_target(style_feats, "mse"), losses.gram(style_feats))
    f, p = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(losses.content_loss(jnp.asarray(f), jnp.asarray(p), "mean"),
                               ((f - p) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_mean_normalisation_is_the_same_for_an_enlarged_copy():
    """Features repeated 2x2 (the same image at twice the size, as far as the statistics go) give the same style
    and content losses under "mean"; under "paper" the content term grows 4x and the style term does not."""
    f, p = rng.standard_normal((1, 3, 4, 8)), rng.standard_normal((1, 3, 4, 8))
    s = rng.standard_normal((1, 5, 3, 8))
    big = lambda x: jnp.asarray(np.repeat(np.repeat(x, 2, axis=1), 2, axis=2))  # noqa: E731
    for norm, content_ratio in (("mean", 1.0), ("paper", 4.0)):
        small_e = losses.style_layer_loss(jnp.asarray(f), losses.style_target(jnp.asarray(s), norm), norm)
        big_e = losses.style_layer_loss(big(f), losses.style_target(big(s), norm), norm)
        np.testing.assert_allclose(big_e, small_e, rtol=1e-5)
        small_c = losses.content_loss(jnp.asarray(f), jnp.asarray(p), norm)
        np.testing.assert_allclose(losses.content_loss(big(f), big(p), norm), content_ratio * small_c, rtol=1e-5)
