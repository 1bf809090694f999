"""Tests of `nst_jax.core.objective`: guides, rematerialisation and precision."""

import re

import jax
import jax.numpy as jnp
import numpy as np
from conftest import CONTENTS, STYLES

from nst_jax import Config, stylize
from nst_jax.core import objective
from nst_jax.run import settings


def loss_gradient_hlo(precision: str, random_weights) -> str:
    """The lowered (StableHLO) program of the gradient of the paper's total loss, --precision `precision`, 16x16."""
    config = Config(precision=precision)
    spec = settings.loss_spec(config, "caffe")
    params = objective.cast_params(random_weights.params, spec)
    z = jnp.full((1, 16, 16, 3), 0.5)
    targets = objective.compute_targets(params, z, z, spec)
    coefficients = settings.loss_weights(config)

    def loss(z_):
        return jnp.sum(objective.loss_terms(z_, params, targets, coefficients, spec)["total"])

    return jax.jit(jax.grad(loss)).lower(z).as_text()


def conv_precisions(precision: str, random_weights) -> list[str]:
    """The precision_config of every convolution in the lowered loss-and-gradient program of `precision`."""
    return re.findall(r"convolution\(.*precision_config = \[([^\]]*)\]", loss_gradient_hlo(precision, random_weights))


def test_guides_are_averaged_over_each_pooling_cell_flooring_odd_sizes():
    from nst_jax.core.objective import layer_guides

    mask = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7) / 34.0
    np.testing.assert_array_equal(layer_guides(jnp.asarray(mask), "relu1_1"), mask)
    at2 = np.asarray(layer_guides(jnp.asarray(mask), "relu2_1"))[0]
    want = np.array([[mask[0, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(at2, want, rtol=1e-6)
    assert layer_guides(jnp.asarray(mask), "conv3_4").shape == (1, 1, 1)  # 5x7 -> 2x3 -> 1x1, as VGG's maps


def test_remat_gives_the_same_run(random_weights):
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    a = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(remat="off")).history["total"]
    b = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(remat="on")).history["total"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_float32_convolutions_are_exact_and_tf32_uses_the_fast_default(random_weights):
    # On a GPU the default precision of a float32 convolution is TF32 (measured on an H100: activations 3.5e-4 off
    # the float32 reference), so --precision float32 must ask for HIGHEST in every convolution, gradients included.
    for precision, expected in [("float32", "HIGHEST"), ("tf32", "DEFAULT")]:
        found = conv_precisions(precision, random_weights)
        assert len(found) == 26  # conv1_1 .. conv5_1: 13 convolutions forward, 13 for the gradient
        assert set(found) == {f"#stablehlo<precision {expected}>, #stablehlo<precision {expected}>"}, precision


def test_bfloat16_gram_products_take_bfloat16_operands_and_accumulate_in_float32(random_weights):
    # --precision bfloat16: every Gram product, forward and gradient, multiplies bfloat16 operands into float32 (the
    # gradient once cast its operands to float32, which on a GPU runs at the slow exact-float32 rate).
    dots = re.findall(r"dot_general.*?: \((tensor<[^>]*>), (tensor<[^>]*>)\) -> (tensor<[^>]*>)",
                      loss_gradient_hlo("bfloat16", random_weights))
    assert len(dots) == 10  # five style layers: the Gram matrix and its gradient
    for a, b, out in dots:
        assert a.endswith("xbf16>") and b.endswith("xbf16>") and out.endswith("xf32>"), (a, b, out)


def test_tf32_is_exact_float32_on_cpu(random_weights):
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    a = stylize(CONTENTS[0], STYLES[0], random_weights, config).history["total"]
    b = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(precision="tf32")).history["total"]
    np.testing.assert_allclose(a, b, rtol=1e-6)
