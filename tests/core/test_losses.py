"""Losses against hand computations in NumPy and closed forms (the paper's formulas, FACTS.md)."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CONTENT, OTHER, STYLE, random_features, random_guide

from nst_jax import Config, stylize
from nst_jax.core import losses, statistics
from nst_jax.run import settings
from nst_jax.run.settings import layer_blend

rng = np.random.default_rng(0)


def _diagonal_features(means, scales) -> np.ndarray:
    """[1, 2, 2, 2] features whose two filters have the given means and standard deviations and are uncorrelated:
    orthogonal +-1 patterns over the 4 positions."""
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    f = np.stack([means[0] + scales[0] * a, means[1] + scales[1] * b], axis=-1)
    return f.reshape(1, 2, 2, 2).astype(np.float32)


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
    assert float(losses.style_layer_loss(f, statistics.gram(f))[0]) == 0.0
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
    np.testing.assert_allclose(losses.style_target(style_feats, "mse"), statistics.gram(style_feats))
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


def _gram_scale(style: np.ndarray, c: float) -> float:
    """c E_gram(0; A) under "mean" normalisation, in float64: sum(A^2) / N^2 with A = F^T F / (N M), the Gram
    matrix normalised as that normalisation does."""
    flat = style[0].reshape(-1, style.shape[-1]).astype(np.float64)
    a = flat.T @ flat / (len(flat) * style.shape[-1])
    return c * float((a ** 2).sum()) / style.shape[-1] ** 2


def test_meancov_is_the_2_wasserstein_distance_between_gaussians():
    """For uncorrelated filters the squared 2-Wasserstein distance is |mu - mu'|^2 + sum (s - s')^2; divided by N,
    and weighed by E_gram(0; A) / r, r = (|mu'|^2 + sum s'^2) / N, times BALANCE["meancov"]."""
    x, y = _diagonal_features((1.0, -2.0), (3.0, 0.5)), _diagonal_features((0.5, 0.0), (1.0, 2.0))
    target = losses.style_target(jnp.asarray(y), "mean", "meancov")
    got = float(losses.style_layer_loss(jnp.asarray(x), target, "mean", "meancov")[0])
    w2 = ((1.0 - 0.5) ** 2 + (-2.0 - 0.0) ** 2 + (3.0 - 1.0) ** 2 + (0.5 - 2.0) ** 2) / 2
    own = (0.5 ** 2 + 0.0 ** 2 + 1.0 ** 2 + 2.0 ** 2) / 2
    assert got == pytest.approx(w2 * _gram_scale(y, losses.BALANCE["meancov"]) / own, rel=1e-4)
    same = float(losses.style_layer_loss(jnp.asarray(x), losses.style_target(jnp.asarray(x), "mean", "meancov"),
                                         "mean", "meancov")[0])
    assert abs(same) < 1e-3


def test_cosine_loss_is_the_mean_squared_difference_of_the_cosines():
    f, g = random_features(2), random_features(3)
    target = losses.style_target(jnp.asarray(g), "mean", "cosine")
    got = losses.style_layer_loss(jnp.asarray(f), target, "mean", "cosine")
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cos = lambda x: np.einsum("bmi,bmj->bij", unit(x), unit(x))  # noqa: E731
    cf, cg = cos(f.reshape(2, 30, 4).astype(np.float64)), cos(g.reshape(2, 30, 4).astype(np.float64))
    scale = [_gram_scale(g[b:b + 1], losses.BALANCE["cosine"]) / (cg[b] ** 2).mean() for b in range(2)]
    np.testing.assert_allclose(got, ((cf - cg) ** 2).mean(axis=(1, 2)) * scale, rtol=1e-5)


def test_swd_is_the_mean_squared_difference_of_sorted_projections():
    """Heitz et al. 2021 by hand: project both images' features on the directions, sort each column, compare; the
    style's sorted projections read at the generated image's positions when their counts differ (here 30 -> 12, by
    linear interpolation at the levels (i + 1/2) / 12); weighed by E_gram(0; A) over the mean squared projection."""
    f, g = random_features(4, (1, 3, 4, 4)), random_features(5, (1, 5, 6, 4))
    d = np.random.default_rng(6).standard_normal((4, 3))
    d /= np.linalg.norm(d, axis=0)
    target = losses.style_target(jnp.asarray(g), "mean", "swd", directions=jnp.asarray(d, jnp.float32),
                                 positions=12)
    got = float(losses.style_layer_loss(jnp.asarray(f), target, "mean", "swd")[0])
    x = np.sort(f[0].reshape(12, 4).astype(np.float64) @ d, axis=0)
    s = np.sort(g[0].reshape(30, 4).astype(np.float64) @ d, axis=0)
    levels = (np.arange(12) + 0.5) / 12 * 30 - 0.5
    q = np.stack([np.interp(levels, np.arange(30), s[:, p]) for p in range(3)], axis=1)
    scale = _gram_scale(g, losses.BALANCE["swd"]) / (q ** 2).mean()
    assert got == pytest.approx(((x - q) ** 2).mean() * scale, rel=1e-4)
    assert float(losses.style_layer_loss(jnp.asarray(g), losses.style_target(
        jnp.asarray(g), "mean", "swd", directions=jnp.asarray(d, jnp.float32)), "mean", "swd")[0]) < 1e-9


def test_swd_gradient_moves_each_sorted_value_towards_its_quantile():
    """d/dx mean((sort(x) - q)^2) puts 2 (x_(i) - q_i) / (M P) at the position holding the i-th smallest value:
    with one direction along filter 0, only filter 0 gets a gradient, and it is that, by hand."""
    f, g = random_features(8, (1, 2, 3, 2)), random_features(9, (1, 2, 3, 2))
    d = jnp.asarray([[1.0], [0.0]])
    target = losses.style_target(jnp.asarray(g), "mean", "swd", directions=d)
    scale = float(target["scale"][0])
    grad = np.asarray(jax.grad(lambda x: losses.style_layer_loss(x, target, "mean", "swd")[0])(jnp.asarray(f)))
    values, style = f[0, :, :, 0].reshape(-1), np.sort(g[0, :, :, 0].reshape(-1))
    expected = np.zeros(6)
    expected[np.argsort(values)] = 2 * (np.sort(values) - style) / 6 * scale
    np.testing.assert_allclose(grad[0, :, :, 0].reshape(-1), expected, rtol=1e-5, atol=1e-7)
    assert np.all(grad[..., 1] == 0)


@pytest.mark.parametrize("statistic", ["cosine", "meancov", "swd"])
def test_each_statistic_weighs_a_layer_as_the_gram_loss_does(statistic):
    """The balance's meaning: a result with none of the style's statistic (all-zero features: for cosine, every
    cosine 0) has the distance r, so its loss is c_s E_gram(0; A), the Gram loss of that result, for every
    normalisation."""
    g = random_features(10, (1, 5, 6, 4))
    d = jnp.asarray(np.linalg.qr(np.random.default_rng(1).standard_normal((4, 4)))[0], jnp.float32)
    zero = jnp.zeros((1, 5, 6, 4))
    for norm in ("mean", "paper"):
        gram_loss = float(losses.style_layer_loss(zero, losses.style_target(jnp.asarray(g), norm), norm)[0])
        target = losses.style_target(jnp.asarray(g), norm, statistic, directions=d)
        got = float(losses.style_layer_loss(zero, target, norm, statistic)[0])
        # meancov: the square roots of a zero covariance's eigenvalues are clamped at sqrt(1e-8), 2e-4 relative here
        assert got == pytest.approx(losses.BALANCE[statistic] * gram_loss, rel=1e-3), norm


def test_l1_total_variation_is_the_sum_of_absolute_neighbour_differences():
    image = np.zeros((1, 2, 3, 1), np.float32)
    image[0, :, :, 0] = [[0.0, 0.5, 0.2], [1.0, 0.5, 0.0]]
    # horizontal: |0.5| + |-0.3| + |-0.5| + |-0.5| = 1.8; vertical: |1.0| + |0.0| + |-0.2| = 1.2
    assert float(losses.total_variation(jnp.asarray(image), "l1")[0]) == pytest.approx(3.0)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
@pytest.mark.parametrize("statistic", ["cosine", "meancov", "swd"])
def test_other_style_statistics_lower_their_loss(random_weights, statistic):
    """Style alone (content weight 0): lbfgs-armijo lowers the statistic's loss, with finite values and gradients."""
    config = Config(size=32, steps=12, chunk_size=6, init="content", style_loss=statistic,
                    content_weight=0.0)
    history = stylize(CONTENT, STYLE, random_weights, config).history
    assert np.isfinite(history["total"]).all() and history["style"][-1] < 0.9 * history["style"][0]


@pytest.mark.parametrize("statistic", ["gram", "meancov"])
def test_the_blended_target_is_the_weighted_sum_of_the_styles_statistics(random_weights, statistic):
    """Weights 3:1 (normalised to 0.75, 0.25): Gram targets (and meancov's mean and covariance) are 0.75 A + 0.25 B
    of the single-style targets; meancov's square root is that of the blended covariance."""
    from nst_jax.core import objective

    spec = settings.loss_spec(Config(style_loss=statistic), "caffe")
    params = objective.cast_params(random_weights.params, spec)
    var = lambda image: objective.to_variable(jnp.asarray(image)[None], spec)  # noqa: E731
    a = objective.compute_targets(params, var(CONTENT), var(STYLE), spec)["style"]
    b = objective.compute_targets(params, var(CONTENT), var(OTHER), spec)["style"]
    blend = jnp.asarray(layer_blend(Config(style_blend=(3.0, 1.0)), 2))  # [2 styles, 5 layers]
    both = objective.compute_targets(params, var(CONTENT), (var(STYLE), var(OTHER)), spec, blend)["style"]
    for layer in spec.style_layers:
        if statistic == "gram":
            np.testing.assert_allclose(both[layer], 0.75 * a[layer] + 0.25 * b[layer], rtol=1e-5, atol=1e-6)
            continue
        for key in ("mean", "cov"):
            np.testing.assert_allclose(both[layer][key], 0.75 * a[layer][key] + 0.25 * b[layer][key], rtol=1e-4,
                                       atol=1e-5)
        root = np.asarray(both[layer]["cov_sqrt"][0], np.float64)
        np.testing.assert_allclose(root @ root, both[layer]["cov"][0], rtol=1e-3, atol=1e-3 * float(
            np.abs(both[layer]["cov"][0]).max()))


@pytest.mark.parametrize("normalization", ["paper", "mean"])
def test_guided_gram_loss_by_hand(normalization):
    """E_l with a guide T: G = sum_m T_m^2 F_m F_m^T * M / m (m = sum T^2), against the target, times m / M."""
    f = random_features(3, (1, 3, 4, 5)).astype(np.float64)
    t = random_guide((3, 4))
    a = (random_features(4, (1, 5, 5, 5))[0, 0] @ random_features(4, (1, 5, 5, 5))[0, 0].T)[None].astype(np.float32)
    big_m, m, n = 12.0, float(np.sum(t.astype(np.float64) ** 2)), 5
    flat, w = f[0].reshape(-1, n), t.reshape(-1).astype(np.float64) ** 2
    g = sum(w[i] * np.outer(flat[i], flat[i]) for i in range(12)) * big_m / m
    if normalization == "paper":
        want = np.sum((g - a[0]) ** 2) / (4 * n**2 * big_m**2)
    else:
        want = np.mean((g / (n * big_m) - a[0]) ** 2)
    got = losses.style_layer_loss(jnp.asarray(f, jnp.float32), jnp.asarray(a), normalization, "gram", jnp.asarray(t))
    np.testing.assert_allclose(float(got[0]), want * m / big_m, rtol=2e-5)


@pytest.mark.parametrize("statistic", ["gram", "cosine", "meancov"])
def test_a_guide_of_ones_is_no_guide_and_a_guide_of_zeros_gives_exactly_zero(statistic):
    f = jnp.asarray(random_features(5, (2, 4, 6, 3)))
    target = losses.style_target(jnp.asarray(random_features(6, (1, 5, 5, 3))), "mean", statistic)
    plain = losses.style_layer_loss(f, target, "mean", statistic)
    ones = losses.style_layer_loss(f, target, "mean", statistic, jnp.ones((4, 6)))
    np.testing.assert_allclose(ones, plain, rtol=1e-5)
    zero = lambda x: jnp.sum(losses.style_layer_loss(x, target, "mean", statistic, jnp.zeros((4, 6))))  # noqa: E731
    assert float(zero(f)) == 0.0
    grad = jax.grad(zero)(f)
    assert np.all(np.asarray(grad) == 0.0)


def test_content_guide_weights_the_differences():
    f, p = random_features(8, (1, 3, 4, 2)), random_features(9, (1, 3, 4, 2))
    t = random_guide((3, 4), 2)
    want = 0.5 * np.sum((t[None, :, :, None] * (f - p)) ** 2)
    got = losses.content_loss(jnp.asarray(f), jnp.asarray(p), "paper", jnp.asarray(t))
    np.testing.assert_allclose(float(got[0]), want, rtol=1e-5)
    np.testing.assert_allclose(losses.content_loss(jnp.asarray(f), jnp.asarray(p), "mean", jnp.ones((3, 4))),
                               losses.content_loss(jnp.asarray(f), jnp.asarray(p), "mean"), rtol=1e-6)


def test_normalized_gradients_have_the_weights_as_l1_norms():
    """jcjohnson's -normalize_gradients: the weighted term w E contributes w dE/dF / |dE/dF|_1 at its layer."""
    f = jnp.asarray(random_features(10, (2, 4, 5, 3)))
    target = losses.style_target(jnp.asarray(random_features(11, (1, 6, 6, 3))), "mean")
    p = jnp.asarray(random_features(12, (2, 4, 5, 3)))
    plain_term = lambda x: losses.style_layer_loss(x, target, "mean")  # noqa: E731
    for w_style, w_content in ((1e3, 1.0), (0.5, 7.0)):
        normed = jax.grad(lambda x, w=w_style: jnp.sum(w * losses.style_loss({"l": x}, {"l": target}, ["l"], [1.0],
                                                                              "mean", normalize=True)))(f)
        plain = np.asarray(jax.grad(lambda x: jnp.sum(plain_term(x)))(f), np.float64)
        for b in range(2):
            np.testing.assert_allclose(np.abs(np.asarray(normed[b], np.float64)).sum(), w_style, rtol=1e-5)
            want = w_style * plain[b] / (np.abs(plain[b]).sum() + 1e-8)
            np.testing.assert_allclose(normed[b], want, rtol=1e-4, atol=1e-9 * w_style)
        term = losses.normalized_gradient(lambda x, q: losses.content_loss(x, q, "paper"))
        g = jax.grad(lambda x, w=w_content, t=term: jnp.sum(w * t(x, p)))(f)
        np.testing.assert_allclose(np.abs(np.asarray(g[0], np.float64)).sum(), w_content, rtol=1e-5)
        np.testing.assert_allclose(term(f, p), losses.content_loss(f, p, "paper"), rtol=1e-6)  # values unchanged


def test_normalized_gradients_run_and_keep_the_loss_values(random_weights):
    config = Config(size=48, steps=4, chunk_size=2, optimizer="adam")
    plain = stylize(CONTENT, STYLE, random_weights, config.replace(steps=1))
    normed = stylize(CONTENT, STYLE, random_weights, config.replace(normalize_gradients=True))
    np.testing.assert_allclose(normed.history["total"][0], plain.history["total"][0], rtol=1e-6)
    assert np.isfinite(normed.history["total"]).all() and normed.history["style"][-1] < normed.history["style"][0]
