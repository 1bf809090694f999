"""The style statistics against NumPy and closed forms: Gram matrices and their gradient, cosines, means and
covariances, guided and not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_features, random_guide

from nst_jax.core import statistics

rng = np.random.default_rng(0)


def test_gram_is_sum_over_positions_of_outer_products():
    f = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    expected = np.zeros((2, 5, 5))
    for b in range(2):
        for y in range(3):
            for x in range(4):
                expected[b] += np.outer(f[b, y, x], f[b, y, x])
    np.testing.assert_allclose(statistics.gram(jnp.asarray(f)), expected, rtol=1e-5, atol=1e-5)


def test_gram_of_constant_features_closed_form():
    # F_ik = c for all i, k: G_ij = M c^2.
    g = statistics.gram(jnp.full((1, 6, 7, 3), 2.0))
    np.testing.assert_allclose(g, np.full((1, 3, 3), 6 * 7 * 4.0))


@pytest.mark.parametrize("dtype", [np.float32, jnp.bfloat16])
def test_gram_gradient_closed_form(dtype):
    """L = sum_ij W_ij G_ij with W not symmetric: dL/dF_mi = sum_j F_mj (W_ij + W_ji), in NumPy (float64)."""
    f = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    weights = rng.standard_normal((2, 5, 5)).astype(np.float32)
    f_in = jnp.asarray(f).astype(dtype)
    grad = jax.grad(lambda x: jnp.sum(statistics.gram(x) * weights))(f_in)
    assert grad.dtype == f_in.dtype and grad.shape == f.shape
    f64 = np.asarray(f_in.astype(jnp.float32), np.float64).reshape(2, 12, 5)
    expected = np.einsum("bmj,bij->bmi", f64, weights + weights.transpose(0, 2, 1)).reshape(f.shape)
    tol = 1e-5 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(np.asarray(grad, np.float64), expected, rtol=tol, atol=tol * np.abs(expected).max())
    # under vmap (jobs) too
    grad_of = jax.grad(lambda x, w: jnp.sum(statistics.gram(x) * w))
    batched = jax.vmap(grad_of)(f_in[:, None], jnp.asarray(weights)[:, None])
    np.testing.assert_allclose(np.asarray(batched[:, 0], np.float64), expected, rtol=tol,
                               atol=tol * np.abs(expected).max())


def test_cosine_gram_is_the_cosine_of_each_pair_of_filters_responses():
    f = random_features(0)
    flat = f.reshape(2, 30, 4).astype(np.float64)
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    np.testing.assert_allclose(statistics.cosine_gram(jnp.asarray(f)), np.einsum("bmi,bmj->bij", unit, unit), atol=1e-5)


def test_mean_and_covariance_are_numpys():
    f = random_features(1)
    mean, cov = statistics.mean_cov(jnp.asarray(f))
    flat = f.reshape(2, 30, 4).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(cov, [np.cov(x, rowvar=False, bias=True) for x in flat], atol=1e-5)


def test_guided_mean_and_covariance_are_the_weighted_ones():
    f = random_features(7, (1, 4, 5, 3)).astype(np.float64)
    t = random_guide((4, 5), 1).astype(np.float64)
    w = (t**2).reshape(-1)
    flat = f[0].reshape(-1, 3)
    mean = (w[:, None] * flat).sum(0) / w.sum()
    cov = ((flat - mean) * w[:, None]).T @ (flat - mean) / w.sum()
    got_mean, got_cov = statistics.guided_mean_cov(jnp.asarray(f, jnp.float32), jnp.asarray(t, jnp.float32))
    np.testing.assert_allclose(got_mean[0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_cov[0], cov, rtol=1e-4, atol=1e-6)


def test_random_directions_are_unit_columns_drawn_from_the_key():
    d = np.asarray(statistics.random_directions(jax.random.key(3), 5, 7))
    assert d.shape == (5, 7)
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(d, statistics.random_directions(jax.random.key(3), 5, 7))
    assert not np.allclose(d, statistics.random_directions(jax.random.key(4), 5, 7))


def test_sorted_projections_are_numpys_sorted_products_also_under_vmap_and_jit():
    f = random_features(11, (2, 3, 4, 5))
    d = np.random.default_rng(12).standard_normal((5, 6)).astype(np.float32)
    expected = np.sort(np.einsum("bmn,np->bpm", f.reshape(2, 12, 5).astype(np.float64), d), axis=-1)
    np.testing.assert_allclose(statistics.sorted_projections(jnp.asarray(f), jnp.asarray(d)), expected, rtol=1e-5,
                               atol=1e-5)
    batched = jax.jit(jax.vmap(lambda x: statistics.sorted_projections(x, jnp.asarray(d))))(jnp.asarray(f)[:, None])
    np.testing.assert_allclose(batched[:, 0], expected, rtol=1e-5, atol=1e-5)


def test_quantiles_interpolate_the_order_statistics_at_the_mid_levels():
    """M_s = 5 sorted values read at M = 2 levels (1/4 and 3/4: positions 5/4 - 1/2 = 0.75 and 15/4 - 1/2 = 3.25
    among the order statistics 0..4) and at M = 5 (themselves)."""
    values = jnp.asarray([[[0.0, 1.0, 4.0, 9.0, 16.0]]])
    np.testing.assert_allclose(statistics.quantiles(values, 2), [[[0.75, 9.0 + 0.25 * 7.0]]], rtol=1e-6)
    np.testing.assert_array_equal(statistics.quantiles(values, 5), values)
    levels = (np.arange(8) + 0.5) / 8 * 5 - 0.5
    np.testing.assert_allclose(statistics.quantiles(values, 8)[0, 0], np.interp(levels, np.arange(5), values[0, 0]),
                               rtol=1e-6)
