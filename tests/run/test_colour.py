"""Tests of `nst_jax.run.colour`: colour control (YIQ, colour matching, original colours)."""

import numpy as np
import pytest
from conftest import CONTENT, STYLE, mid_range

from nst_jax import Config, stylize
from nst_jax.run import colour


def test_yiq_round_trip_and_the_luminance_weights():
    rgb = mid_range(CONTENT)
    np.testing.assert_allclose(colour.from_yiq(colour.to_yiq(rgb)), rgb, atol=1e-6)
    np.testing.assert_allclose(colour.luminance(np.array([[[1.0, 0.0, 0.0]]])), [[0.299]])  # NTSC Y of pure red


def test_original_colors_keeps_the_results_luminance_and_the_contents_colour():
    result, content = mid_range(STYLE[:48, :64]), mid_range(CONTENT)
    out = colour.original_colors(result, content)
    yiq, want = colour.to_yiq(out), colour.to_yiq(content)
    np.testing.assert_allclose(yiq[..., 0], colour.luminance(result), atol=1e-6)
    np.testing.assert_allclose(yiq[..., 1:], want[..., 1:], atol=1e-6)


def test_luminance_only_gives_gray_images_whose_luminance_statistics_match():
    content, style = colour.luminance_only(mid_range(CONTENT), mid_range(STYLE))
    assert np.all(content[..., 0] == content[..., 1]) and np.all(style[..., 1] == style[..., 2])
    np.testing.assert_allclose(content[..., 0], colour.luminance(mid_range(CONTENT)), atol=1e-6)
    y_c = colour.luminance(mid_range(CONTENT))
    assert abs(style[..., 0].mean() - y_c.mean()) < 1e-5 and abs(style[..., 0].std() - y_c.std()) < 1e-5


def test_colour_matching_gives_the_style_the_contents_mean_and_covariance():
    rng = np.random.default_rng(0)
    style = np.clip(0.5 + 0.1 * rng.standard_normal((40, 50, 3)) @ np.array([[1, .5, 0], [0, 1, .3], [0, 0, 1]]),
                    0, 1).astype(np.float32)
    content = mid_range(CONTENT, 0.5)
    out = colour.match_colour_statistics(style, content).reshape(-1, 3).astype(np.float64)
    c = content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(out.mean(axis=0), c.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.cov(c, rowvar=False), atol=1e-5)


def test_luminance_only_transfer_keeps_the_contents_colour_channels(random_weights):
    content = mid_range(CONTENT)
    config = Config(size=64, steps=6, chunk_size=3, optimizer="adam", lr=0.01, preserve_colors="luminance")
    result = stylize(content, STYLE, random_weights, config)
    got, want = colour.to_yiq(result.image), colour.to_yiq(content)
    inside = ((result.image > 1e-3) & (result.image < 1 - 1e-3)).all(axis=-1)  # not clipped by the recombination
    assert inside.mean() > 0.9
    np.testing.assert_allclose(got[inside][:, 1:], want[inside][:, 1:], atol=2e-6)


def test_luminance_correlation_by_hand():
    """1 for the image itself and for a contrast change of it, -1 for its negative, near 0 for noise."""
    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 3)).astype(np.float32)
    assert colour.luminance_correlation(image, image) == pytest.approx(1.0)
    assert colour.luminance_correlation(0.5 * image + 0.2, image) == pytest.approx(1.0)
    assert colour.luminance_correlation(1.0 - image, image) == pytest.approx(-1.0)
    assert abs(colour.luminance_correlation(rng.random((16, 16, 3)), image)) < 0.2
