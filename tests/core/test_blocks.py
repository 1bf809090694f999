"""Tests of `nst_jax.core.blocks`: the objective by spatial blocks equals the whole image's, loss and gradient.

The expected values are the whole image's loss (`objective.loss_terms`, itself checked against PyTorch in
tests/test_parity.py) and its `jax.grad`: an independent computation (one forward pass over the whole image, JAX's
own differentiation) of what the blocks compute tile by tile with their own backward pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CONTENT, STYLE

from nst_jax import Config, stylize
from nst_jax.core import blocks, objective, vgg
from nst_jax.run import settings

PAPER = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def test_receptive_fields_are_the_known_ones_and_the_halo_keeps_the_pooling_grid():
    """../shared/FACTS.md: relu1_1 3 px, relu2_1 10, relu3_1 24, relu4_1 68, relu4_2 84, relu5_1 156; the halo is
    the radius (156 - 1) / 2 = 77.5 rounded up to the 16-px grid: 80."""
    fields = {l: blocks.receptive_field(l) for l in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2",
                                                      "relu5_1")}
    assert fields == {"relu1_1": 3, "relu2_1": 10, "relu3_1": 24, "relu4_1": 68, "relu4_2": 84, "relu5_1": 156}
    assert blocks.halo(PAPER + ("relu4_2",)) == 80 and blocks.halo(("relu2_1",)) == 16
    assert blocks.halo(("conv2_2", "conv3_1")) == 16  # the pytorch-tutorial preset's layers: 28 px field


def test_a_grid_covers_the_image_with_windows_on_the_pooling_grid():
    grid = blocks.grid_for((64, 80), 32, PAPER)
    assert (grid.rows, grid.cols, grid.count, grid.window) == (2, 3, 6, 192)
    origins = grid.origins()
    assert origins.tolist() == [[-80, -80], [-80, -48], [-80, -16], [-48, -80], [-48, -48], [-48, -16]]
    assert (origins % 16 == 0).all()
    assert grid.padding() == ((80, 80), (80, 96))  # the last column's tile reaches 16 px past the image
    assert blocks.grid_for((64, 64), 64, PAPER) is None  # fits in one tile: the whole image
    assert blocks.grid_for((64, 64), 0, PAPER) is None
    with pytest.raises(ValueError, match="multiple of 16"):
        blocks.grid_for((64, 64), 24, PAPER)


def test_a_window_mask_marks_the_image_at_each_layer():
    """A window whose origin is 16 px above and left of a 40x24 image: at relu1_1 (stride 1) rows 16..55 and
    columns 16..39 are inside; at relu3_1 (stride 4) the image's map is 10x6 (40 / 4, 24 / 4), from (4, 4)."""
    at1 = np.asarray(vgg.window_mask(jnp.asarray([-16, -16]), (40, 24), "relu1_1", (64, 64)))
    assert at1.sum() == 40 * 24 and at1[16:56, 16:40].all()
    at3 = np.asarray(vgg.window_mask(jnp.asarray([-16, -16]), (40, 24), "relu3_1", (16, 16)))
    assert at3.sum() == 10 * 6 and at3[4:14, 4:10].all()


def _image(seed, shape, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, (1, *shape, 3)), dtype)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _compare(random_weights, config, *, masks=False, styles=1, shape=(64, 64), tile=16, values=False):
    """The whole image's terms and gradient against the blocks' (tile 16 on 64x64: 16 blocks), random weights,
    random images; returns the largest relative error of the terms and the gradient's relative L2 error (values:
    the whole image's and the blocks' (total, gradient) instead)."""
    spec = settings.loss_spec(config, "caffe")
    dtype = spec.variable_dtype
    blocked = spec._replace(block_tile=tile)
    assert blocks.grid_for(shape, tile, spec.layers).count == (shape[0] // tile) * (shape[1] // tile)
    params = objective.cast_params(random_weights.params, spec)
    content, z = _image(1, shape, dtype), _image(2, shape, dtype)
    style = tuple(_image(3 + k, (48 + 16 * k, 56), dtype) for k in range(styles))
    key = jax.random.key(5) if config.style_loss == "swd" else None
    blend = jnp.asarray(np.tile([[0.3], [0.7]], (1, len(spec.style_layers))), dtype) if styles == 2 else None
    style_masks = content_mask = None
    if masks:
        rows = np.linspace(0, 1, shape[0])[:, None] * np.ones((1, shape[1]))
        style_masks = jnp.asarray(np.stack([rows, 1 - rows][:styles]), dtype)
        content_mask = jnp.asarray(0.25 + 0.75 * rows[::-1], dtype)
        blend = None
    coefficients = settings.loss_weights(config, dtype)
    results = []
    for s in (spec, blocked):
        targets = blocks.compute_targets(params, content, style, s, blend, style_masks, content_mask, key)

        def loss(v, s=s, targets=targets):
            terms = blocks.loss_terms(v, params, targets, coefficients, s)
            return jnp.sum(terms["total"]), terms

        (_, terms), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(z)
        results.append((terms, grad))
    (whole, g_whole), (by_blocks, g_blocks) = results
    if values:
        return (whole["total"], g_whole), (by_blocks["total"], g_blocks)
    assert np.abs(np.asarray(g_whole)).max() > 0
    terms = max(_rel(by_blocks[k], whole[k]) for k in ("content", "style", "total"))
    return terms, _rel(g_blocks, g_whole)


@pytest.mark.parametrize("layers", [
    ("relu2_2", ("relu1_1", "relu2_1", "relu3_1")),  # halo 16 px: windows of 48 px, quick to compile
    pytest.param(("relu4_2", PAPER), marks=pytest.mark.slow),  # halo 80 px: windows of 176 px
])
def test_blocks_give_the_whole_images_loss_and_gradient_with_masks_and_two_styles(random_weights, layers):
    """Issue 52: a 64x64 image in 16 blocks, two styles each where its mask says and a content mask; within
    float32 rounding (1e-5 relative). The contributor's loop runs shallow layers (the same code, a smaller halo);
    CI's slow run the paper's."""
    content, style = layers
    config = Config(content_layers=(content,), style_layers=style, tv_weight=1e-3)
    terms, grad = _compare(random_weights, config, masks=True, styles=2)
    assert terms < 1e-5 and grad < 1e-5, (terms, grad)


@pytest.mark.slow
@pytest.mark.parametrize("statistic, kind", [
    ("gram", "blend"), ("cosine", "masks"), ("cosine", "blend"), ("swd", "blend"), ("swd", "masks"),
])
def test_blocks_give_the_whole_images_loss_and_gradient_for_every_statistic(random_weights, statistic, kind):
    """Every statistic, two styles blended or each where its mask says (meancov: the next test)."""
    config = Config(style_loss=statistic, tv_weight=1e-3)
    terms, grad = _compare(random_weights, config, masks=kind == "masks", styles=2)
    assert terms < 1e-5 and grad < 1e-5, (terms, grad)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["blend", "masks"])
def test_meancov_by_blocks_is_exact_in_float64_and_as_close_as_the_whole_image_in_float32(random_weights, kind):
    """meancov's Wasserstein term takes square roots of eigenvalues of the covariances, most of them 0 here (random
    weights leave many filters dead, and at relu3_1..relu5_1 of a 64x64 image the filters outnumber the
    positions): there the square root turns rounding in the last bit into relative errors of 1e-4 to 1e-3, and
    the order of any sum moves the float32 value that much, the whole image's too. So: in float64 the blocks give
    the whole image's loss and gradient to 1e-7 (measured 2.7e-9 and 7.3e-9 with the paper's layers, 1.6e-14 and
    3.6e-13 with relu1_1 and relu2_1 only); in float32 they are as far from the float64 value as the whole
    image's float32 evaluation is, within 3x (measured, paper's layers, two masked styles: gradient 6.9e-3 against
    4.0e-3; relu1_1 and relu2_1 blended: loss 4.9e-4 against 6.4e-4, gradient 2.6e-3 against 2.6e-3)."""
    config = Config(style_loss="meancov", tv_weight=1e-3)
    with jax.enable_x64(True):
        terms, grad = _compare(random_weights, config.replace(precision="float64"), masks=kind == "masks", styles=2)
        assert terms < 1e-7 and grad < 1e-7, (terms, grad)
        exact = _compare(random_weights, config.replace(precision="float64"), masks=kind == "masks", styles=2,
                         values=True)[0]
        whole32, blocks32 = _compare(random_weights, config, masks=kind == "masks", styles=2, values=True)
    for i in (0, 1):  # the total loss, the gradient
        assert _rel(blocks32[i], exact[i]) <= 3 * _rel(whole32[i], exact[i]) + 1e-6, i


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["gatys", "pytorch-tutorial", "jcjohnson", "yunjey"])
def test_blocks_give_the_whole_images_loss_and_gradient_for_every_preset(random_weights, preset):
    """Each preset's layers (pre-ReLU conv outputs for pytorch-tutorial, content on five layers for yunjey),
    pooling (max for three of them), normalisation and pixel space; a 64x80 image (the last column's tiles reach
    past it) in 20 blocks."""
    from nst_jax.presets import preset_config

    terms, grad = _compare(random_weights, preset_config(preset), shape=(64, 80))
    assert terms < 1e-5 and grad < 1e-5, (terms, grad)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs-armijo", "lbfgs-torch", "lbfgs"])
def test_each_optimizers_first_steps_by_blocks_are_the_whole_images(random_weights, optimizer):
    """Six steps of each optimiser at 64x80, whole and by blocks of 32 px (6 blocks): the same losses (1e-4) and
    images to float32 rounding carried through the steps. The L-BFGS variants without a line search's projection
    (lbfgs-torch, optax's lbfgs) amplify the gradients' last-bit differences through their curvature pairs and
    the clamp: their images agree on average (measured mean 1.2e-5 and 4.0e-5), a few pixels by up to 5e-3 and
    1.4e-2."""
    config = Config(size=80, steps=6, chunk_size=3, optimizer=optimizer, init="content" if optimizer == "adam"
                    else "noise")
    seen = []
    whole = stylize(CONTENT, STYLE, random_weights, config)
    by_blocks = stylize(CONTENT, STYLE, random_weights, config.replace(block_size=32),
                        callback=lambda p: seen.append(p.blocks))
    assert seen[-1]["count"] == 6 and seen[-1]["tile"] == 32
    for term in ("content", "style", "total"):
        np.testing.assert_allclose(by_blocks.history[term], whole.history[term], rtol=1e-4)
    if optimizer in ("adam", "lbfgs-armijo"):
        np.testing.assert_allclose(by_blocks.image, whole.image, atol=1e-4)
    else:
        assert np.abs(by_blocks.image - whole.image).mean() < 1e-4


@pytest.mark.slow
def test_a_picture_made_by_blocks_has_no_seams(random_weights):
    """The picture's own gradient magnitude on the block borders (the two pixel rows and columns each side of
    every tile edge) is within 5% of its mean elsewhere: 60 Adam steps at 128x128 by 16 blocks of 32 px. (With
    a halo too small, a 16 px one, each tile's features near its edges would be wrong and the borders would show.)"""
    config = Config(size=128, steps=60, chunk_size=20, optimizer="adam", lr=0.02, init="noise", block_size=32,
                    content_weight=0.0)
    image = stylize(CONTENT, STYLE, random_weights, config).image
    dy, dx = np.diff(image, axis=0)[:, :-1], np.diff(image, axis=1)[:-1]
    magnitude = np.sqrt((dy ** 2 + dx ** 2).sum(-1))  # [127, 127]: the gradient between pixel i and i + 1
    border = np.zeros(magnitude.shape, bool)
    for edge in (32, 64, 96):  # the difference across an edge is at index edge - 1
        border[edge - 3:edge + 2] = True
        border[:, edge - 3:edge + 2] = True
    ratio = magnitude[border].mean() / magnitude[~border].mean()
    assert abs(ratio - 1) < 0.05, ratio


@pytest.mark.slow
def test_the_command_line_says_and_records_that_a_scale_ran_by_blocks(h5_files, image_files, tmp_path, capsys):
    """--block-size 32 at 64 px (48x64: 2 x 2 blocks): one line on stderr says so with the planned peak, the log
    has a "blocks" event, the run record's `blocks` names the tiles (issue 52: no silent fallback)."""
    import json

    from conftest import main

    out, log = tmp_path / "o.png", tmp_path / "o.log"
    assert main(["--content", image_files["content"], "--style", image_files["style"], "--output", out, "--weights",
                 h5_files["legacy"], "--size", 64, "--steps", 2, "--block-size", 32, "--log", log]) == 0
    err = capsys.readouterr().err
    assert "scale 1: 48x64 by 4 blocks of 32 px (halo 80 px), planned peak" in err
    blocks_used = json.loads(out.with_suffix(".json").read_text())["blocks"]
    assert len(blocks_used) == 1 and {k: blocks_used[0][k] for k in ("tile", "halo", "count", "rows", "cols")} == {
        "tile": 32, "halo": 80, "count": 4, "rows": 2, "cols": 2}
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["count"] for e in events if e.get("event") == "blocks"] == [4]
