"""Tests of `nst_jax.core.steps`: the compiled chunk, its length, and the state carried across scales."""


import jax
import jax.numpy as jnp
import numpy as np
from conftest import CONTENT, STYLE, convolution_labels

from nst_jax import Config, stylize
from nst_jax.core import objective, steps
from nst_jax.core.optimizers import OPTIMIZERS
from nst_jax.run import settings


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


def test_adam_state_is_carried_across_scales_and_lbfgs_restarts():
    z_shape, new = (1, 1, 8, 8, 3), (1, 1, 16, 16, 3)
    adam = jax.vmap(__import__("optax").adam(0.1).init)(jnp.ones(z_shape))
    carried = steps.carry_state(adam, z_shape, new)
    assert carried is not None and carried[0].mu.shape == new
    lbfgs = jax.vmap(lambda z: OPTIMIZERS["lbfgs-torch"].init(z, {"lr": 1.0}, 10))(jnp.ones(z_shape))
    assert steps.carry_state(lbfgs, z_shape, new) is None


def test_chunk_length_divides_steps_and_report_points():
    assert steps.chunk_length(25, 10) == 5
    assert steps.chunk_length(500, 10) == 10
    assert steps.chunk_length(24, 10, report_every=9) == 3
    assert steps.chunk_length(37, 10) == 1
    assert steps.chunk_length(0, 10) == 1


def test_chunk_is_one_loop_whose_convolutions_all_have_hwio_kernels(random_weights):
    """A chunk is a loop over one step: its compiled program has the same convolutions at any length. Every one of
    them takes its kernel as [3, 3, C_in, C_out] (dim labels ..._01io): the input gradients convolve with kernels
    flipped beforehand (vgg.conv3x3), because XLA:CPU runs a loop body's convolution with swapped kernel channels
    (..._01oi, JAX's own gradient) outside its fast library (README, "Speed and scale"; test_vgg shows the
    detection on JAX's own gradient)."""
    config = Config(size=16, steps=3, optimizer="adam", init="content")
    spec = settings.loss_spec(config, random_weights.preprocess)
    params = objective.cast_params(random_weights.params, spec)
    image = objective.to_variable(jnp.asarray(CONTENT[:16, :16])[None], spec)
    targets = jax.tree.map(lambda a: a[None], objective.compute_targets(params, image, image, spec))
    hyper = settings.hyperparams(config)
    z = image[None]
    state = jax.vmap(lambda v: steps.init_state(config.optimizer, hyper, v, config.lbfgs_memory))(z)

    def compiled(length):
        return steps.run_chunk.lower(z, state, params, targets, settings.loss_weights(config), hyper, spec=spec,
                                     optimizer=config.optimizer, box=config.box_mode, memory=config.lbfgs_memory,
                                     length=length).compile().as_text()

    one, three = compiled(1), compiled(3)
    assert " while(" in three
    labels = convolution_labels(three)
    assert len(labels) == len(convolution_labels(one)) >= 2 * 13  # forward and input gradient of relu5_1's 13 convs
    assert not [l for l in labels if "_01oi->" in l], sorted(set(labels))
