"""The Flax VGG19 against a NumPy hand implementation of conv (SAME, 3x3), ReLU and 2x2 pooling."""

import flax.errors
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import convolution_labels

from nst_jax.core import layers, vgg


def np_conv3x3(x, kernel, bias):
    """x [H, W, Cin], kernel [3, 3, Cin, Cout] (HWIO, cross-correlation as in every DL framework), zero padding 1."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out + bias


def lax_conv(x, kernel):
    """JAX's own convolution (and, differentiated, JAX's own gradient): the reference for `vgg.conv3x3`."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST)


def np_pool(x, mode):
    h, w, c = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2, x.shape[2]  # floor, like VALID pooling in torch and Flax
    blocks = x[:h, :w].reshape(h // 2, 2, w // 2, 2, c)
    return blocks.mean(axis=(1, 3)) if mode == "avg" else blocks.max(axis=(1, 3))


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_first_layers_match_numpy(random_weights, pooling):
    p = random_weights.params
    x = np.random.default_rng(0).standard_normal((1, 7, 9, 3)).astype(np.float32)  # odd sizes: pooling floors
    out = vgg.features(p, jnp.asarray(x), ["conv1_1", "relu1_1", "relu1_2", "conv2_1"], pooling)
    conv11 = np_conv3x3(x[0].astype(np.float64), p["conv1_1"]["kernel"], p["conv1_1"]["bias"])
    np.testing.assert_allclose(out["conv1_1"][0], conv11, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["relu1_1"][0], np.maximum(conv11, 0), rtol=1e-4, atol=1e-4)
    relu12 = np.asarray(out["relu1_2"][0], np.float64)
    conv21 = np_conv3x3(np_pool(relu12, pooling), p["conv2_1"]["kernel"], p["conv2_1"]["bias"])
    assert out["conv2_1"].shape == (1, 3, 4, 128)
    np.testing.assert_allclose(out["conv2_1"][0], conv21, rtol=1e-4, atol=1e-3)


def test_stops_at_deepest_requested_layer(random_weights):
    only_block1 = {k: random_weights.params[k] for k in ("conv1_1", "conv1_2")}  # nothing deeper exists
    out = vgg.features(only_block1, jnp.zeros((1, 8, 8, 3)), ["relu1_2"])
    assert set(out) == {"relu1_2"}
    with pytest.raises(flax.errors.ScopeParamNotFoundError, match="conv2_1"):
        vgg.features(only_block1, jnp.zeros((1, 8, 8, 3)), ["relu2_1"])


def test_returns_exactly_requested_layers_with_spatial_sizes(random_weights):
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
    out = jax.jit(lambda p, x: vgg.features(p, x, layers))(random_weights.params, jnp.zeros((2, 32, 48, 3)))
    assert {k: v.shape for k, v in out.items()} == {
        "relu1_1": (2, 32, 48, 64), "relu2_1": (2, 16, 24, 128), "relu3_1": (2, 8, 12, 256),
        "relu4_1": (2, 4, 6, 512), "relu4_2": (2, 4, 6, 512), "relu5_1": (2, 2, 3, 512),
    }


def test_conv_maps_by_hand():
    """Map sizes written out by hand: odd sizes floor at each pooling; `deepest` may be a conv or a relu name."""
    assert vgg.conv_maps(7, 9, "conv2_1") == [("conv1_1", 7, 9), ("conv1_2", 7, 9), ("conv2_1", 3, 4)]
    assert vgg.conv_maps(7, 9, "relu1_2") == [("conv1_1", 7, 9), ("conv1_2", 7, 9)]
    maps = vgg.conv_maps(512, 512, "relu5_1")
    assert [m[0] for m in maps] == list(layers.CONV_NAMES[:13]) and maps[-1] == ("conv5_1", 32, 32)


def test_smallest_side_keeps_the_deepest_map_non_empty(random_weights):
    """By hand: relu5_1 comes after 4 poolings (16 px), relu4_2 after 3, relu1_2 after none; and the forward pass
    itself gives a 1x1 relu5_1 map at 16x16 and an empty one at 15x16."""
    assert [vgg.smallest_side(l) for l in ("relu5_1", "conv5_1", "relu4_2", "relu2_1", "relu1_2")] == [16, 16, 8, 2, 1]
    for h, expected in ((16, (1, 1)), (15, (0, 1))):
        out = vgg.features(random_weights.params, jnp.zeros((1, h, 16, 3)), ["relu5_1"])["relu5_1"]
        assert out.shape[1:3] == expected


def test_batch_equals_one_by_one(random_weights):
    x = np.random.default_rng(1).uniform(-100, 100, (3, 16, 16, 3)).astype(np.float32)
    batched = vgg.features(random_weights.params, jnp.asarray(x), ["relu3_1"])["relu3_1"]
    for i in range(3):
        single = vgg.features(random_weights.params, jnp.asarray(x[i : i + 1]), ["relu3_1"])["relu3_1"]
        np.testing.assert_allclose(batched[i : i + 1], single, rtol=1e-5, atol=1e-3)


def test_check_params_names_the_problem(random_weights):
    broken = dict(random_weights.params)
    broken["conv3_2"] = {"kernel": np.zeros((3, 3, 256, 128)), "bias": np.zeros(128)}
    with pytest.raises(ValueError, match="conv3_2 kernel has shape"):
        layers.check_params(broken)
    broken["conv3_2"] = random_weights.params["conv3_2"]
    del broken["conv5_4"]
    with pytest.raises(ValueError, match="missing layer conv5_4"):
        layers.check_params(broken)


@pytest.mark.parametrize("given_flip", [False, True])
def test_conv3x3_gradients_equal_jax_autodiff_and_the_adjoint_by_hand(given_flip):
    """conv3x3 writes its gradient out (the input gradient convolves with the flipped kernel, `flip_kernel`, given
    or made on the spot): both gradients equal JAX's own autodiff of lax.conv_general_dilated, and the input
    gradient is the adjoint of the NumPy convolution: <conv(x), g> = <x, dx>."""
    rng = np.random.default_rng(3)
    x, g = rng.normal(size=(2, 5, 7, 3)), rng.normal(size=(2, 5, 7, 4))
    kernel = rng.normal(size=(3, 3, 3, 4))
    x, g, kernel = (jnp.asarray(a, jnp.float32) for a in (x, g, kernel))
    hi = jax.lax.Precision.HIGHEST
    flipped = vgg.flip_kernel(kernel) if given_flip else None

    def ours(x_, k_):
        return jnp.sum(vgg.conv3x3(x_, k_, flipped, hi) * g)

    def jaxs(x_, k_):
        return jnp.sum(lax_conv(x_, k_) * g)

    dx, dk = jax.jit(jax.grad(ours, (0, 1)))(x, kernel)
    ex, ek = jax.grad(jaxs, (0, 1))(x, kernel)
    np.testing.assert_allclose(dx, ex, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dk, ek, rtol=1e-5, atol=1e-5)
    by_hand = sum(np.sum(np_conv3x3(np.asarray(x[i], np.float64), np.asarray(kernel, np.float64), 0) * g[i])
                  for i in range(2))
    np.testing.assert_allclose(np.sum(np.asarray(x, np.float64) * dx), by_hand, rtol=1e-5)


def test_feature_gradients_with_flipped_kernels_equal_without_under_vmap(random_weights):
    """features(..., flipped=flipped_kernels(params)) (what the loop of steps uses) gives the same input gradient,
    also vmapped over jobs and with remat, as the gradient made without it."""
    x = jnp.asarray(np.random.default_rng(4).uniform(-50, 50, (2, 1, 16, 16, 3)), jnp.float32)
    params = random_weights.params
    flipped = vgg.flipped_kernels(params)

    def grad(flip, remat):
        def f(v):
            return jnp.sum(vgg.features(params, v, ["relu1_1", "relu3_1"], remat=remat, flipped=flip)["relu3_1"] ** 2)

        return jax.jit(jax.vmap(jax.grad(f)))(x)

    reference = grad(None, False)
    assert float(jnp.abs(reference).max()) > 0
    for remat in (False, True):
        np.testing.assert_allclose(grad(flipped, remat), reference, rtol=1e-4,
                                   atol=1e-4 * float(jnp.abs(reference).max()))


def test_conv3x3_gradient_in_a_loop_has_an_hwio_kernel():
    """In a loop body JAX's own input gradient of a convolution compiles to one with swapped kernel channels
    (dim labels ..._01oi), which XLA:CPU runs outside its fast library; conv3x3's gradient does not."""
    hi = jax.lax.Precision.HIGHEST

    def labels(conv):
        def loop(x, k):
            def body(v, _):
                return v - jax.grad(lambda u: jnp.sum(conv(jax.nn.relu(conv(u, k)), k) ** 2))(v), None

            return jax.lax.scan(body, x, None, length=2)[0]

        return set(convolution_labels(jax.jit(loop).lower(jnp.ones((1, 8, 8, 4)), jnp.ones((3, 3, 4, 4))).compile()
                                      .as_text()))

    jaxs = labels(lax_conv)
    assert any(l.endswith("_01oi->b01f") for l in jaxs), jaxs
    assert labels(lambda x, k: vgg.conv3x3(x, k, None, hi)) == {"b01f_01io->b01f"}
