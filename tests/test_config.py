"""Config takes settings as a notebook writes them (lists, comma-separated strings, numpy scalars) and stores its
declared types; wrong types are a TypeError naming the setting."""

import re
from pathlib import Path

import numpy as np
import pytest

from nst_jax import Config
from nst_jax.presets import preset_config
from nst_jax.run.settings import style_blend


def test_sequences_strings_and_numpy_scalars_become_the_declared_types():
    given = Config(style_layers="relu1_1, relu3_1", content_layers=["relu4_2"], style_layer_weights="1,5e-1",
                   scale_sizes=np.array([32, 64]), scale_steps=[3, 4], adam_betas=[0.5, 0.9], size=np.int64(64),
                   lr=1, init=Path("start.png"))
    written = Config(style_layers=("relu1_1", "relu3_1"), content_layers=("relu4_2",), style_layer_weights=(1.0, 0.5),
                     scale_sizes=(32, 64), scale_steps=(3, 4), adam_betas=(0.5, 0.9), size=64, lr=1.0,
                     init="start.png")
    assert given == written and hash(given) == hash(written)  # hashable: no lists inside
    assert type(given.size) is int and type(given.lr) is float and type(given.scale_sizes[0]) is int
    assert given.replace(steps=7) == written.replace(steps=7)


@pytest.mark.parametrize("kw, message", [
    (dict(size="512"), "size must be an int, got '512'"),
    (dict(steps=2.5), "steps must be an int, got 2.5"),
    (dict(steps=True), "steps must be an int, got True"),
    (dict(style_weight="1e3"), "style_weight must be a float, got '1e3'"),
    (dict(scale_sizes=64), "scale_sizes must be a sequence of ints or a comma-separated string, got 64"),
    (dict(scale_sizes="64,128.5"), "scale_sizes must be ints separated by commas, got '64,128.5'"),
    (dict(style_layers=("relu1_1", 3)), "style_layers must be a str, got 3"),
])
def test_wrong_types_name_the_setting(kw, message):
    with pytest.raises(TypeError) as info:
        Config(**kw)
    assert str(info.value) == message


def test_huge_blend_weights_blend_as_their_ratio():
    """Issue 49, item 7: --style-blend 1e308,1e308 summed to inf and the blend became (0, 0): no style at all."""
    assert style_blend(Config(style_blend=(1e308, 1e308)), 2) == (0.5, 0.5)
    assert style_blend(Config(style_blend=(1.5e308, 0.5e308)), 2) == pytest.approx((0.75, 0.25))
    assert style_blend(Config(style_blend=(3.0, 1.0)), 2) == pytest.approx((0.75, 0.25))


@pytest.mark.parametrize("kw, message", [
    ({"style_scale": 1e300}, "style_scale must be a positive number up to 64"),  # item 9: an OverflowError
    ({"style_weight": 1e308}, "style_weight must be a number >= 0 and at most 3.403e+38"),  # item 14: warnings
    ({"tv_weight": 1e39}, "tv_weight must be a number >= 0 and at most 3.403e+38"),
    ({"content_layers": ()}, "content_layers must name at least one layer"),  # item 16: ran with no content term
    ({"init": ""}, "init must be one of noise, randn, gauss, gray, content, style or an image file"),
])
def test_settings_that_ran_wrongly_or_crashed_are_refused(kw, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**kw)


@pytest.mark.parametrize("option, value, message", [
    ("--style-scale", "1e300", "--style-scale must be a positive number up to 64"),
    ("--style-weight", "1e308", "--style-weight must be a number >= 0 and at most 3.403e+38"),
    ("--tv-weight", "1e308", "--tv-weight must be a number >= 0"),
    ("--content-layers", "", "--content-layers must name at least one layer"),
])
def test_the_command_line_says_so_in_one_line_without_warnings(option, value, message, tmp_path, capsys):
    import warnings

    from nst_jax.cli import command

    with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exit_:
        warnings.simplefilter("always")
        command.main(["--content", "c.png", "--style", "s.png", "--output", str(tmp_path / "o.png"),
                      f"{option}={value}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert [str(w.message) for w in caught] == []


def test_every_field_with_choices_is_checked_against_the_one_list_it_declares():
    """Issue 50: Config(remat="yes") was accepted and meant off, because check() listed the fields' choices a
    second time and left remat out. Now each field's `choices` metadata is the one list, and every one is checked."""
    import dataclasses

    with pytest.raises(ValueError, match="remat must be one of on, off, got 'yes'"):
        Config(remat="yes")
    for f in dataclasses.fields(Config):
        if f.metadata.get("choices") and f.name != "preserve_colors":
            with pytest.raises(ValueError, match=f"{f.name} must be one of "):
                Config(**{f.name: "not-a-choice"})


@pytest.mark.parametrize("settings, message", [
    (dict(init_noise_ratio=1.5), "init_noise_ratio must be in [0, 1], got 1.5"),
    (dict(preserve_colors="sepia"), "preserve_colors must be one of luminance, histogram, original or None"),
    (dict(style_loss="wasserstein"), "style_loss must be one of gram, cosine, meancov"),
    (dict(tv_form="l2"), "tv_form must be one of sum, jcjohnson, l1"),
])
def test_bad_control_settings_are_one_line(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**settings)


def test_average_is_for_adam_and_a_decay_below_1():
    with pytest.raises(ValueError, match="average .iterate averaging. is for optimizer adam"):
        Config(average=0.9)
    for bad in (1.0, 0.99999999, -0.5, float("nan")):  # 0.99999999 is 1 in float32: the average was 0/0
        with pytest.raises(ValueError, match=re.escape("average must be a decay in [0, 0.99999]")):
            Config(optimizer="adam", average=bad)


def test_the_api_refuses_the_size_and_scales_that_contradict_scale_sizes_as_the_cli_does():
    """Issue 50: `Config(size=1024, scale_sizes=(256, 512))` ran at 512 px while the CLI refused the same pair. Now
    a chosen size or scale count must agree with the scale sizes; one nobody chose (the default, a preset's) follows
    them, through `replace` too."""
    with pytest.raises(ValueError, match=r"^size 1024 conflicts with scale_sizes, whose last size \(512\) is the "
                                         r"output size; give one of them$"):
        Config(size=1024, scale_sizes=(256, 512))
    with pytest.raises(ValueError, match=r"^scales 3 conflicts with the 2 scale_sizes; give one$"):
        Config(scales=3, scale_sizes=(256, 512))
    with pytest.raises(ValueError, match="size 1024 conflicts"):
        Config(size=1024).replace(scale_sizes=(256, 512))
    assert Config(size=512, scales=2, scale_sizes=(256, 512)).schedule == ((256, 200), (512, 200))
    followed = Config(scale_sizes=(256, 512)).replace(scale_sizes=(128, 256, 384))
    assert (followed.size, followed.scales) == (384, 3)
    assert type(followed.size) is int and type(followed.scales) is int  # plain values in the fields
    assert preset_config("gatys", scale_sizes=(64, 128)).schedule == ((64, 500), (128, 500))
    assert preset_config("gatys").replace(scale_sizes=(64, 128)).scales == 2


def test_swd_settings_that_contradict_are_refused_by_the_api_and_the_command_line(image_files, tmp_path):
    """swd compares whole layers' distributions: it takes no style masks (weighted quantiles are not built), and
    its resampling means nothing for another statistic."""
    from conftest import run_cli

    for kwargs, message in ((dict(style_loss="swd", style_masks=("m.png",)), "style_loss swd compares whole layers"),
                            (dict(swd_resample=10), "swd_resample is for style_loss swd, got gram")):
        with pytest.raises(ValueError, match=message):
            Config(**kwargs)
    status, err = run_cli("--content", image_files["content"], "--style", image_files["style"], "--output",
                          tmp_path / "o.png", "--swd-resample", "10")
    assert status == 2 and "--swd-resample is for --style-loss swd, got gram" in err, err
