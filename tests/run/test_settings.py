"""Tests of `nst_jax.run.settings`: a Config as the core's values, and the blend of a job's styles."""


import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CONTENT, OTHER, STYLE

from nst_jax import Config, stylize
from nst_jax.run import settings
from nst_jax.run.settings import layer_blend, style_blend


def test_a_blend_of_one_style_with_weight_1_and_another_with_0_is_the_single_style_run(random_weights):
    """Issue 38's check: step by step, the same losses and the same image."""
    config = Config(size=48, steps=6, chunk_size=3, optimizer="adam", lr=0.02)
    single = stylize(CONTENT, STYLE, random_weights, config)
    blended = stylize(CONTENT, [STYLE, OTHER], random_weights, config.replace(style_blend=(1.0, 0.0)))
    for k in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(blended.history[k], single.history[k], rtol=1e-6)
    np.testing.assert_allclose(blended.image, single.image, atol=1e-6)


def test_blend_weights_must_match_the_styles_and_be_usable():
    assert style_blend(Config(style_blend=(2, 6)), 2) == (0.25, 0.75) and style_blend(Config(), 4) == (0.25,) * 4
    with pytest.raises(ValueError, match="style_blend has 3 weights for 2 style images"):
        style_blend(Config(style_blend=(1, 1, 1)), 2)
    for bad in ((1.0, -1.0), (0.0, 0.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match="style_blend must be finite weights >= 0, not all zero"):
            Config(style_blend=bad)


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
