"""Tests of `nst_jax.run.inputs`: start images, masks and style sets."""


import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CONTENT, STYLE, mid_range

from nst_jax import Config, stylize
from nst_jax.core import losses, objective
from nst_jax.errors import InputError
from nst_jax.run import inputs, settings


def _start(init, ratio=0.0, preprocess="caffe"):
    from nst_jax.run import inputs

    spec = settings.loss_spec(Config(), preprocess)
    return inputs.initial_variable(init, mid_range(CONTENT), STYLE, 3, spec, ratio)


def _mask_file(folder, name, mask):
    from PIL import Image

    path = folder / name
    Image.fromarray(np.round(np.asarray(mask) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_gray_start_and_noise_mixed_into_the_start_image():
    np.testing.assert_allclose(_start("gray"), 0.5)
    content, noise, half = _start("content"), _start("content", 1.0), _start("content", 0.25)
    np.testing.assert_allclose(content, mid_range(CONTENT), atol=1e-6)
    assert noise.min() >= 0 and noise.max() <= 1 and abs(noise.mean() - 0.5) < 0.05  # uniform [0, 1]
    np.testing.assert_allclose(half, 0.75 * content + 0.25 * noise, atol=1e-6)


def test_gauss_start_is_unit_normal_in_the_networks_input_space():
    """torchvision's input space is (x - mean) / std: N(0, 1) there is x = mean + std * N(0, 1) per channel."""
    from nst_jax import weights as weights_lib

    image = _start("gauss", preprocess="torchvision")
    net = np.asarray(weights_lib.preprocess(jnp.asarray(image), "torchvision"))
    inside = (image > 0) & (image < 1)  # away from the clip
    assert abs(net[inside].mean()) < 0.1 and abs(net[inside].std() - 1.0) < 0.15


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


def test_a_job_without_styles_is_a_value_error(random_weights):
    """Found by a hostile trial: an empty list of styles raised ZeroDivisionError from the blend."""
    with pytest.raises(ValueError, match="a job needs at least one style image, got an empty list"):
        stylize(CONTENT, [], random_weights, Config(size=32, steps=1))


def test_init_modes(tmp_path):
    content, style = CONTENT, STYLE
    rgb = settings.loss_spec(Config(style_layers=("relu1_1",), pixel_space="rgb"), "caffe")
    net = rgb._replace(pixel_space="network")

    def init(name, seed=0, spec=rgb):
        return inputs.initial_variable(name, content, style, seed, spec)

    np.testing.assert_array_equal(init("content"), content)
    assert init("style").shape == content.shape
    noise = init("noise", 3)
    assert noise.shape == content.shape and 0 <= noise.min() and noise.max() <= 1 and noise.std() > 0.2
    np.testing.assert_array_equal(noise, init("noise", 3))  # seeded
    assert not np.array_equal(noise, init("noise", 4))
    randn = init("randn", 0, net)  # jcjohnson's: N(0, 0.001^2) in the network's (caffe) pixel space
    assert abs(randn.std() - 0.001) < 1e-4 and abs(randn.mean()) < 1e-4
    # the content image in caffe space: BGR * 255 - mean
    expected = content[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(init("content", 0, net), expected, rtol=1e-5, atol=1e-4)
    with pytest.raises(InputError, match="neither noise, randn, gauss, gray, content, style nor an existing image"):
        init(str(tmp_path / "nope.png"))


def test_style_is_sized_relative_to_content():
    content, style = inputs.prepare_images(CONTENT, STYLE, Config(size=32, style_scale=1.5))
    assert content.shape == (24, 32, 3) and style.shape == (48, 48, 3)
