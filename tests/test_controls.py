"""Artistic controls (issue 38) against hand computations: the colour functions, the style statistics, the start
images, the L1 total variation; and through the loop on random (not pretrained) weights at tiny sizes."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smooth_image

from nst_jax import Config, stylize
from nst_jax.core import losses
from nst_jax.run import colour, settings
from nst_jax.run.settings import layer_blend, style_blend

CONTENT = smooth_image((48, 64), 1)
STYLE = smooth_image((64, 64), 2)


def _mid(image: np.ndarray, spread: float = 0.3) -> np.ndarray:
    """An image squeezed around mid-gray, so that colour maps do not reach the [0, 1] clip."""
    return (0.5 + spread * (image - 0.5)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Colour


def test_yiq_round_trip_and_the_luminance_weights():
    rgb = _mid(CONTENT)
    np.testing.assert_allclose(colour.from_yiq(colour.to_yiq(rgb)), rgb, atol=1e-6)
    np.testing.assert_allclose(colour.luminance(np.array([[[1.0, 0.0, 0.0]]])), [[0.299]])  # NTSC Y of pure red


def test_original_colors_keeps_the_results_luminance_and_the_contents_colour():
    result, content = _mid(STYLE[:48, :64]), _mid(CONTENT)
    out = colour.original_colors(result, content)
    yiq, want = colour.to_yiq(out), colour.to_yiq(content)
    np.testing.assert_allclose(yiq[..., 0], colour.luminance(result), atol=1e-6)
    np.testing.assert_allclose(yiq[..., 1:], want[..., 1:], atol=1e-6)


def test_luminance_only_gives_gray_images_whose_luminance_statistics_match():
    content, style = colour.luminance_only(_mid(CONTENT), _mid(STYLE))
    assert np.all(content[..., 0] == content[..., 1]) and np.all(style[..., 1] == style[..., 2])
    np.testing.assert_allclose(content[..., 0], colour.luminance(_mid(CONTENT)), atol=1e-6)
    y_c = colour.luminance(_mid(CONTENT))
    assert abs(style[..., 0].mean() - y_c.mean()) < 1e-5 and abs(style[..., 0].std() - y_c.std()) < 1e-5


def test_colour_matching_gives_the_style_the_contents_mean_and_covariance():
    rng = np.random.default_rng(0)
    style = np.clip(0.5 + 0.1 * rng.standard_normal((40, 50, 3)) @ np.array([[1, .5, 0], [0, 1, .3], [0, 0, 1]]),
                    0, 1).astype(np.float32)
    content = _mid(CONTENT, 0.5)
    out = colour.match_colour_statistics(style, content).reshape(-1, 3).astype(np.float64)
    c = content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=0), c.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.cov(c, rowvar=False), atol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Style statistics


def _features(seed: int, shape=(2, 5, 6, 4)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) + 0.3


def test_cosine_gram_is_the_cosine_of_each_pair_of_filters_responses():
    f = _features(0)
    flat = f.reshape(2, 30, 4).astype(np.float64)
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    np.testing.assert_allclose(losses.cosine_gram(jnp.asarray(f)), np.einsum("bmi,bmj->bij", unit, unit), atol=1e-5)


def test_mean_and_covariance_are_numpys():
    f = _features(1)
    mean, cov = losses.mean_cov(jnp.asarray(f))
    flat = f.reshape(2, 30, 4).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(cov, [np.cov(x, rowvar=False, bias=True) for x in flat], atol=1e-5)


def _diagonal_features(means, scales) -> np.ndarray:
    """[1, 2, 2, 2] features whose two filters have the given means and standard deviations and are uncorrelated:
    orthogonal +-1 patterns over the 4 positions."""
    a = np.array([1.0, -1.0, 1.0, -1.0])
    b = np.array([1.0, 1.0, -1.0, -1.0])
    f = np.stack([means[0] + scales[0] * a, means[1] + scales[1] * b], axis=-1)
    return f.reshape(1, 2, 2, 2).astype(np.float32)


def test_meancov_is_the_2_wasserstein_distance_between_gaussians():
    """For uncorrelated filters the squared 2-Wasserstein distance is |mu - mu'|^2 + sum (s - s')^2; divided by N."""
    x, y = _diagonal_features((1.0, -2.0), (3.0, 0.5)), _diagonal_features((0.5, 0.0), (1.0, 2.0))
    target = losses.style_target(jnp.asarray(y), "mean", "meancov")
    got = float(losses.style_layer_loss(jnp.asarray(x), target, "mean", "meancov")[0])
    expected = ((1.0 - 0.5) ** 2 + (-2.0 - 0.0) ** 2 + (3.0 - 1.0) ** 2 + (0.5 - 2.0) ** 2) / 2
    assert got == pytest.approx(expected, rel=1e-4)
    same = float(losses.style_layer_loss(jnp.asarray(x), losses.style_target(jnp.asarray(x), "mean", "meancov"),
                                         "mean", "meancov")[0])
    assert abs(same) < 1e-3


def test_cosine_loss_is_the_mean_squared_difference_of_the_cosines():
    f, g = _features(2), _features(3)
    target = losses.style_target(jnp.asarray(g), "paper", "cosine")
    got = losses.style_layer_loss(jnp.asarray(f), target, "paper", "cosine")
    diff = np.asarray(losses.cosine_gram(jnp.asarray(f))) - np.asarray(target)
    np.testing.assert_allclose(got, (diff ** 2).mean(axis=(1, 2)), rtol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# Total variation, start images


def test_l1_total_variation_is_the_sum_of_absolute_neighbour_differences():
    image = np.zeros((1, 2, 3, 1), np.float32)
    image[0, :, :, 0] = [[0.0, 0.5, 0.2], [1.0, 0.5, 0.0]]
    # horizontal: |0.5| + |-0.3| + |-0.5| + |-0.5| = 1.8; vertical: |1.0| + |0.0| + |-0.2| = 1.2
    assert float(losses.total_variation(jnp.asarray(image), "l1")[0]) == pytest.approx(3.0)


def _start(init, ratio=0.0, preprocess="caffe"):
    from nst_jax.run import inputs

    spec = settings.loss_spec(Config(), preprocess)
    return inputs.initial_variable(init, _mid(CONTENT), STYLE, 3, spec, ratio)


def test_gray_start_and_noise_mixed_into_the_start_image():
    np.testing.assert_allclose(_start("gray"), 0.5)
    content, noise, half = _start("content"), _start("content", 1.0), _start("content", 0.25)
    np.testing.assert_allclose(content, _mid(CONTENT), atol=1e-6)
    assert noise.min() >= 0 and noise.max() <= 1 and abs(noise.mean() - 0.5) < 0.05  # uniform [0, 1]
    np.testing.assert_allclose(half, 0.75 * content + 0.25 * noise, atol=1e-6)


def test_gauss_start_is_unit_normal_in_the_networks_input_space():
    """torchvision's input space is (x - mean) / std: N(0, 1) there is x = mean + std * N(0, 1) per channel."""
    from nst_jax import weights as weights_lib

    image = _start("gauss", preprocess="torchvision")
    net = np.asarray(weights_lib.preprocess(jnp.asarray(image), "torchvision"))
    inside = (image > 0) & (image < 1)  # away from the clip
    assert abs(net[inside].mean()) < 0.1 and abs(net[inside].std() - 1.0) < 0.15


# ----------------------------------------------------------------------------------------------------------------
# Through the loop (random weights, tiny images)


def test_luminance_only_transfer_keeps_the_contents_colour_channels(random_weights):
    content = _mid(CONTENT)
    config = Config(size=64, steps=6, chunk_size=3, optimizer="adam", lr=0.01, preserve_colors="luminance")
    result = stylize(content, STYLE, random_weights, config)
    got, want = colour.to_yiq(result.image), colour.to_yiq(content)
    inside = ((result.image > 1e-3) & (result.image < 1 - 1e-3)).all(axis=-1)  # not clipped by the recombination
    assert inside.mean() > 0.9
    np.testing.assert_allclose(got[inside][:, 1:], want[inside][:, 1:], atol=2e-6)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
@pytest.mark.parametrize("statistic", ["cosine", "meancov"])
def test_other_style_statistics_lower_their_loss(random_weights, statistic):
    """Style alone (content weight 0): lbfgs-armijo lowers the statistic's loss, with finite values and gradients."""
    config = Config(size=32, steps=12, chunk_size=6, init="content", style_loss=statistic,
                    content_weight=0.0)
    history = stylize(CONTENT, STYLE, random_weights, config).history
    assert np.isfinite(history["total"]).all() and history["style"][-1] < 0.9 * history["style"][0]


@pytest.mark.parametrize("settings, message", [
    (dict(init_noise_ratio=1.5), "init_noise_ratio must be in [0, 1], got 1.5"),
    (dict(preserve_colors="sepia"), "preserve_colors must be one of luminance, histogram, original or None"),
    (dict(style_loss="wasserstein"), "style_loss must be one of gram, cosine, meancov"),
    (dict(tv_form="l2"), "tv_form must be one of sum, jcjohnson, l1"),
])
def test_bad_control_settings_are_one_line(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**settings)


def test_original_colors_is_preserve_colors_original_on_the_command_line():
    from nst_jax.cli.options import build_parser, config_from_args

    parse = lambda *extra: config_from_args(build_parser().parse_args(  # noqa: E731
        ["--content", "c.png", "--style", "s.png", "--output", "o.png", *extra]))
    assert parse("--original-colors").preserve_colors == parse("--preserve-colors", "original").preserve_colors
    assert parse().preserve_colors is None and parse("--style-loss", "meancov").style_loss == "meancov"


# ----------------------------------------------------------------------------------------------------------------
# Several styles in one job


OTHER = smooth_image((40, 56), 7)


def test_a_blend_of_one_style_with_weight_1_and_another_with_0_is_the_single_style_run(random_weights):
    """Issue 38's check: step by step, the same losses and the same image."""
    config = Config(size=48, steps=6, chunk_size=3, optimizer="adam", lr=0.02)
    single = stylize(CONTENT, STYLE, random_weights, config)
    blended = stylize(CONTENT, [STYLE, OTHER], random_weights, config.replace(style_blend=(1.0, 0.0)))
    for k in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(blended.history[k], single.history[k], rtol=1e-6)
    np.testing.assert_allclose(blended.image, single.image, atol=1e-6)


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


def test_blend_weights_must_match_the_styles_and_be_usable():
    assert style_blend(Config(style_blend=(2, 6)), 2) == (0.25, 0.75) and style_blend(Config(), 4) == (0.25,) * 4
    with pytest.raises(ValueError, match="style_blend has 3 weights for 2 style images"):
        style_blend(Config(style_blend=(1, 1, 1)), 2)
    for bad in ((1.0, -1.0), (0.0, 0.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match="style_blend must be finite weights >= 0, not all zero"):
            Config(style_blend=bad)


def test_the_command_line_tells_a_style_set_from_several_jobs(h5_files, image_files, tmp_path, capsys):
    """--style A,B is one job blending two styles (CONTENT_A+B.png); --style A B two jobs; a blend with the wrong
    count is a usage error before any work."""
    from nst_jax.cli.command import main

    content, style = image_files["content"], image_files["style"]
    other = tmp_path / "other.png"
    other.write_bytes(content.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    base = ["--content", content, "--weights", h5_files["legacy"], "--size", 32, "--steps", 2, "--optimizer",
            "adam", "--quiet", "--output", out]
    assert main([*base, "--style", f"{style},{other}", "--style-blend", "0.7,0.3"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["content_style+other.png"]
    assert main([*base, "--style", f"{style},", "--style-blend", "1"]) == 2  # an empty name: refused, not dropped
    assert "a style set (--style A,B) has an empty name" in capsys.readouterr().err
    assert main([*base, "--style", f"{style},{other}", "--style-blend", "1,1,1"]) == 2
    err = capsys.readouterr().err
    assert "--style-blend has 3 weights for 2 style images" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------------------------------------------
# Presets check their weights


def test_a_preset_says_when_the_weights_use_another_pixel_convention():
    from nst_jax.presets import preset_weights_note

    note = preset_weights_note("pytorch-tutorial", "caffe")
    assert note.startswith("preset pytorch-tutorial was tuned for torchvision weights (torchvision pixels)")
    assert "--weights-source torchvision" in note and "\n" not in note
    assert preset_weights_note("pytorch-tutorial", "torchvision") is None
    assert preset_weights_note("jcjohnson", "caffe") is None and "keras" in preset_weights_note("jcjohnson",
                                                                                              "torchvision")
    assert preset_weights_note("gatys", "torchvision") is None and preset_weights_note(None, "caffe") is None


def test_the_command_line_prints_the_presets_note_once_and_runs(h5_files, image_files, tmp_path, capsys):
    """Issue 38 item 8: pytorch-tutorial (tuned for torchvision's VGG19) with Caffe-convention weights: one
    warning line, and the run goes on."""
    from nst_jax.cli.command import main

    out = tmp_path / "o.png"
    assert main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--preset", "pytorch-tutorial", "--size", 32, "--steps", 2]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "preset pytorch-tutorial was tuned for torchvision weights" in err[0] and out.exists()


# ----------------------------------------------------------------------------------------------------------------
# Spatial control: guided Gram matrices (Gatys et al. 2017)


def _guide(shape, seed: int = 0) -> np.ndarray:
    """A guide [H, W] with zeros, ones and values between."""
    rng = np.random.default_rng(seed)
    return rng.choice([0.0, 0.5, 1.0], size=shape).astype(np.float32)


@pytest.mark.parametrize("normalization", ["paper", "mean"])
def test_guided_gram_loss_by_hand(normalization):
    """E_l with a guide T: G = sum_m T_m^2 F_m F_m^T * M / m (m = sum T^2), against the target, times m / M."""
    f = _features(3, (1, 3, 4, 5)).astype(np.float64)
    t = _guide((3, 4))
    a = (_features(4, (1, 5, 5, 5))[0, 0] @ _features(4, (1, 5, 5, 5))[0, 0].T)[None].astype(np.float32)
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
    f = jnp.asarray(_features(5, (2, 4, 6, 3)))
    target = losses.style_target(jnp.asarray(_features(6, (1, 5, 5, 3))), "mean", statistic)
    plain = losses.style_layer_loss(f, target, "mean", statistic)
    ones = losses.style_layer_loss(f, target, "mean", statistic, jnp.ones((4, 6)))
    np.testing.assert_allclose(ones, plain, rtol=1e-5)
    zero = lambda x: jnp.sum(losses.style_layer_loss(x, target, "mean", statistic, jnp.zeros((4, 6))))  # noqa: E731
    assert float(zero(f)) == 0.0
    grad = jax.grad(zero)(f)
    assert np.all(np.asarray(grad) == 0.0)


def test_guided_mean_and_covariance_are_the_weighted_ones():
    f = _features(7, (1, 4, 5, 3)).astype(np.float64)
    t = _guide((4, 5), 1).astype(np.float64)
    w = (t**2).reshape(-1)
    flat = f[0].reshape(-1, 3)
    mean = (w[:, None] * flat).sum(0) / w.sum()
    cov = ((flat - mean) * w[:, None]).T @ (flat - mean) / w.sum()
    target = losses.style_target(jnp.asarray(f, jnp.float32), "mean", "meancov", jnp.asarray(t, jnp.float32))
    np.testing.assert_allclose(target["mean"][0], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(target["cov"][0], cov, rtol=1e-4, atol=1e-6)


def test_content_guide_weights_the_differences():
    f, p = _features(8, (1, 3, 4, 2)), _features(9, (1, 3, 4, 2))
    t = _guide((3, 4), 2)
    want = 0.5 * np.sum((t[None, :, :, None] * (f - p)) ** 2)
    got = losses.content_loss(jnp.asarray(f), jnp.asarray(p), "paper", jnp.asarray(t))
    np.testing.assert_allclose(float(got[0]), want, rtol=1e-5)
    np.testing.assert_allclose(losses.content_loss(jnp.asarray(f), jnp.asarray(p), "mean", jnp.ones((3, 4))),
                               losses.content_loss(jnp.asarray(f), jnp.asarray(p), "mean"), rtol=1e-6)


def test_guides_are_averaged_over_each_pooling_cell_flooring_odd_sizes():
    from nst_jax.core.objective import layer_guides

    mask = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7) / 34.0
    np.testing.assert_array_equal(layer_guides(jnp.asarray(mask), "relu1_1"), mask)
    at2 = np.asarray(layer_guides(jnp.asarray(mask), "relu2_1"))[0]
    want = np.array([[mask[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(at2, want, rtol=1e-6)
    assert layer_guides(jnp.asarray(mask), "conv3_4").shape == (1, 1, 1)  # 5x7 -> 2x3 -> 1x1, as VGG's maps


def _mask_file(folder, name, mask):
    from PIL import Image

    path = folder / name
    Image.fromarray(np.round(np.asarray(mask) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_an_all_white_mask_gives_the_unmasked_run(random_weights, tmp_path):
    config = Config(size=48, steps=4, chunk_size=2, optimizer="adam")
    plain = stylize(CONTENT, STYLE, random_weights, config)
    white = _mask_file(tmp_path, "white.png", np.ones((30, 40)))
    masked = stylize(CONTENT, STYLE, random_weights, config.replace(style_masks=(white,), content_mask=white))
    np.testing.assert_allclose(masked.history["total"], plain.history["total"], rtol=1e-5)
    np.testing.assert_allclose(masked.image, plain.image, atol=1e-5)


def test_two_masked_styles_each_shape_their_own_half(random_weights, tmp_path):
    """Left half style A, right half style B (content weight 0): each half's Gram matrix at relu1_1 ends closer to
    its own style's than the other half's is."""
    from nst_jax.core import objective

    left = np.zeros((48, 64)); left[:, :32] = 1  # noqa: E702
    masks = (_mask_file(tmp_path, "l.png", left), _mask_file(tmp_path, "r.png", 1 - left))
    config = Config(size=64, steps=30, content_weight=0.0, style_layers=("relu1_1",), style_masks=masks)
    a, b = STYLE, 1.0 - STYLE  # two styles with different colour statistics
    out = stylize(CONTENT, [a, b], random_weights, config).image
    spec = settings.loss_spec(config, "caffe")
    gram = lambda x: np.asarray(losses.style_target(objective.features(  # noqa: E731
        random_weights.params, jnp.asarray(x)[None], spec)["relu1_1"], "mean"))[0]
    ga, gb = gram(a), gram(b)
    d = lambda g, t: np.sum((g - t) ** 2)  # noqa: E731
    left_g, right_g = gram(out[:, :32]), gram(out[:, 32:])
    assert d(left_g, ga) < d(left_g, gb) and d(right_g, gb) < d(right_g, ga)


def test_masks_are_refused_in_one_line_before_any_compute(h5_files, image_files, tmp_path, capsys):
    from nst_jax.cli.command import main

    white = _mask_file(tmp_path, "white.png", np.ones((8, 8)))
    black = _mask_file(tmp_path, "black.png", np.zeros((8, 8)))
    out = tmp_path / "out.png"
    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", 32, "--steps", 2, "--quiet", "--output", out]
    for extra, status, message in (
            (["--style-masks", f"{white},{white}"], 2, "--style-masks has 2 masks for 1 style image"),
            (["--style-masks", white, "--style-blend", "1"], 2, "--style-blend blends styles over the whole picture; "
                                                                 "with --style-masks each style"),
            (["--style-masks", black], 1, "black.png: the style mask selects nothing"),
            (["--content-mask", black], 1, "black.png: the content mask selects nothing"),
            (["--style-masks", white, "--output", white], 1, "would overwrite the mask")):
        try:
            code = main([*base, *extra])
        except SystemExit as e:  # settings that contradict each other: argparse's usage error
            code = e.code
        assert code == status
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    assert main([*base, "--style-masks", white, "--content-mask", white]) == 0 and out.exists()


# ----------------------------------------------------------------------------------------------------------------
# Style scale across layers


def test_layer_styles_make_a_blend_per_layer():
    config = Config(style_blend=(3, 1), layer_styles=(1, 1, 2, 0, 0))
    assert layer_blend(config, 2) == ((1.0, 1.0, 0.0, 0.75, 0.75), (0.0, 0.0, 1.0, 0.25, 0.25))
    with pytest.raises(ValueError, match="layer_styles names style 3 of a job with 2 style images"):
        layer_blend(Config(layer_styles=(3, 1, 1, 1, 1)), 2)
    with pytest.raises(ValueError, match="layer_styles has 2 values for 5 style layers"):
        Config(layer_styles=(1, 2))


def test_every_layer_from_the_first_style_is_the_first_style_alone(random_weights):
    config = Config(size=48, steps=4, chunk_size=2, optimizer="adam")
    single = stylize(CONTENT, STYLE, random_weights, config)
    split = stylize(CONTENT, [STYLE, OTHER], random_weights, config.replace(layer_styles=(1,) * 5))
    np.testing.assert_allclose(split.history["total"], single.history["total"], rtol=1e-6)
    np.testing.assert_allclose(split.image, single.image, atol=1e-6)


def test_fine_layers_from_one_style_and_coarse_from_another_are_those_targets(random_weights):
    from nst_jax.core import objective

    spec = settings.loss_spec(Config(), "caffe")
    params = objective.cast_params(random_weights.params, spec)
    var = lambda image: objective.to_variable(jnp.asarray(image)[None], spec)  # noqa: E731
    a = objective.compute_targets(params, var(CONTENT), var(STYLE), spec)["style"]
    b = objective.compute_targets(params, var(CONTENT), var(OTHER), spec)["style"]
    blend = jnp.asarray(layer_blend(Config(layer_styles=(1, 1, 2, 2, 2)), 2))
    both = objective.compute_targets(params, var(CONTENT), (var(STYLE), var(OTHER)), spec, blend)["style"]
    for layer, source in zip(spec.style_layers, (a, a, b, b, b)):
        np.testing.assert_array_equal(both[layer], source[layer])


# ----------------------------------------------------------------------------------------------------------------
# Normalised gradients


def test_normalized_gradients_have_the_weights_as_l1_norms():
    """jcjohnson's -normalize_gradients: the weighted term w E contributes w dE/dF / |dE/dF|_1 at its layer."""
    f = jnp.asarray(_features(10, (2, 4, 5, 3)))
    target = losses.style_target(jnp.asarray(_features(11, (1, 6, 6, 3))), "mean")
    p = jnp.asarray(_features(12, (2, 4, 5, 3)))
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


# ----------------------------------------------------------------------------------------------------------------
# Iterate averaging


def test_the_average_is_the_bias_corrected_ema_of_the_iterates(random_weights):
    """--average d: the result is sum_i (1 - d) d^(n - i) z_i / (1 - d^(n + 1)) over the start z_0 and the n Adam
    iterates z_1..z_n, which the plain run shows step by step."""
    d, n = 0.6, 4
    config = Config(size=48, steps=n, chunk_size=1, optimizer="adam", lr=0.05, init="noise")
    iterates = [stylize(CONTENT, STYLE, random_weights, config.replace(steps=0)).image]
    stylize(CONTENT, STYLE, random_weights, config, callback=lambda p: iterates.append(np.asarray(p.image)))
    want = sum((1 - d) * d ** (n - i) * z for i, z in enumerate(iterates)) / (1 - d ** (n + 1))
    averaged = stylize(CONTENT, STYLE, random_weights, config.replace(average=d))
    np.testing.assert_allclose(averaged.image, want, atol=1e-5)


def test_a_job_without_styles_is_a_value_error(random_weights):
    """Found by a hostile trial: an empty list of styles raised ZeroDivisionError from the blend."""
    with pytest.raises(ValueError, match="a job needs at least one style image, got an empty list"):
        stylize(CONTENT, [], random_weights, Config(size=32, steps=1))


def test_average_is_for_adam_and_a_decay_below_1():
    with pytest.raises(ValueError, match="average .iterate averaging. is for optimizer adam"):
        Config(average=0.9)
    for bad in (1.0, 0.99999999, -0.5, float("nan")):  # 0.99999999 is 1 in float32: the average was 0/0
        with pytest.raises(ValueError, match=re.escape("average must be a decay in [0, 0.99999]")):
            Config(optimizer="adam", average=bad)
