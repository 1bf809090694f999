"""Tests of `nst_jax.schedule`: the coarse-to-fine schedule."""

import pytest
from conftest import smooth_image

from nst_jax import Config, stylize
from nst_jax.cli.options import build_parser, config_from_args
from nst_jax.io.record import run_record
from nst_jax.presets import PRESETS, preset_config
from nst_jax.schedule import schedule_note


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_multiscale_schedule_and_run(random_weights):
    config = Config(size=64, scales=3, steps=4, optimizer="adam", init="content", chunk_size=2)
    assert [size for size, _ in config.schedule] == [32, 45, 64]
    seen = []
    result = stylize(smooth_image((48, 64), 3), smooth_image((64, 64), 4), random_weights, config,
                     callback=seen.append)
    assert result.image.shape == (48, 64, 3) and result.history["total"].shape == (12,)
    assert [(p.scale, p.size) for p in seen][::2] == [(0, (24, 32)), (1, (34, 45)), (2, (48, 64))]
    explicit = Config(size=64, scale_sizes=(32, 64), scale_steps=(3, 1), optimizer="lbfgs-torch")
    assert explicit.schedule == ((32, 3), (64, 1))
    assert stylize(smooth_image((48, 64), 3), smooth_image((64, 64), 4), random_weights,
                   explicit).history["total"].shape == (4,)


def test_above_768_px_the_default_is_two_scales_the_coarse_at_512_px_with_half_the_steps_after_it():
    """The default schedule by size (docs/deviations.md): one scale up to 768 px, above it 512 px with --steps
    steps and then the size with half as many (rounded up); --scales, --scale-sizes and --scale-steps still rule,
    and every preset stays one scale at every size, as the implementation it reproduces."""
    assert Config().schedule == ((512, 200),)
    assert Config(size=768).schedule == ((768, 200),)
    assert Config(size=769).schedule == ((512, 200), (769, 100))
    assert Config(size=1024).schedule == ((512, 200), (1024, 100))
    # above 1024 px (issue 52, prints): doublings of 512 px, each at most 1/1.4 of the size, each scale half the
    # steps of the one before
    assert Config(size=1100).schedule == ((512, 200), (1100, 100))  # 1024 is more than 1100 / 1.4
    assert Config(size=2048, steps=301).schedule == ((512, 301), (1024, 151), (2048, 76))
    assert Config(size=3000).schedule == ((512, 200), (1024, 100), (2048, 50), (3000, 25))
    assert Config(size=8192).schedule == ((512, 200), (1024, 100), (2048, 50), (4096, 25), (8192, 13))
    with pytest.raises(ValueError, match="above 768 px the default is 3 scales: give 3, or scales=1 for one"):
        Config(size=2048, scale_steps=(300, 50))
    assert Config(size=1024, steps=1).schedule == ((512, 1), (1024, 1))
    assert Config(size=None).schedule == ((None, 200),)  # the content's own size: one scale
    assert Config(size=1024, scales=1).schedule == ((1024, 200),)
    assert Config(size=1024, scales=2).schedule == ((724, 200), (1024, 200))  # sqrt(2) apart, as asked
    assert Config(size=1024, scale_steps=(300, 50)).schedule == ((512, 300), (1024, 50))
    assert Config(size=1024, scale_sizes=(256, 1024)).schedule == ((256, 200), (1024, 200))
    with pytest.raises(ValueError, match="above 768 px the default is two scales: give two, or scales=1 for one"):
        Config(size=1024, scale_steps=(300,))
    assert Config(size=64, scales=5).schedule[0] == (16, 200)  # the most scales from 64 px: 16 px first
    for too_many in (6, 10**9):  # before, 10**9 overflowed in the schedule (a traceback from the CLI)
        with pytest.raises(ValueError, match="at most 5 from size 64"):
            Config(size=64, scales=too_many)
    with pytest.raises(ValueError, match="must increase"):  # before, two equal sizes ran twice
        Config(scale_sizes=(64, 64))
    for name in PRESETS:
        assert preset_config(name, size=1024).schedule == ((1024, PRESETS[name]["steps"]),), name


def test_the_cli_says_when_it_runs_the_default_two_scales_and_records_the_schedule():
    def parse(*args):
        return config_from_args(build_parser().parse_args(["--content", "c", "--style", "s", "--output", "o", *args]))

    assert schedule_note(parse("--size", "1024")) == ("above 768 px two scales by default: 512 px (200 steps), "
                                                      "then 1024 px (100 steps); --scales 1 for one scale")
    for args in (["--size", "768"], ["--size", "1024", "--scales", "1"], ["--size", "1024", "--preset", "gatys"],
                 ["--scale-sizes", "512,1024"]):
        assert schedule_note(parse(*args)) is None, args
    assert schedule_note(parse("--size", "800", "--steps", "2")).startswith(  # before: "(1 steps)"
        "above 768 px two scales by default: 512 px (2 steps), then 800 px (1 step);")
    assert schedule_note(parse("--size", "2048", "--steps", "3")) == (
        "above 1024 px 3 scales by default: 512 px (3 steps), 1024 px (2 steps), 2048 px (1 step); --scales 1 for "
        "one scale")
    assert parse("--size", "1024", "--preset", "gatys").schedule == ((1024, 500),)
    kept = run_record(Config(size=1024), content="c", style="s", output="o", weights={}, env={}, time={}, final={})
    assert kept["schedule"] == [[512, 200], [1024, 100]] and kept["settings"]["scales"] is None


def test_scale_sizes_set_the_size_and_scales_that_are_recorded_and_their_errors_name_the_real_fault(capsys):
    """Found by a fresh-clone trial: `--scale-sizes 64,128` alone was recorded as size 512 (the default, unused), and
    with `--preset gatys` as scales 1; `--size 900 --scale-sizes 900,512` blamed --size instead of the order; one
    expected step count read "1 ... counts"; `--scale-steps -1,2` was "expected one argument", with no way out
    named. The size and scales now follow the scale sizes, in the Config and in the run record."""
    def parse(*args):
        return config_from_args(build_parser().parse_args(["--content", "c", "--style", "s", "--output", "o", *args]))

    for args in (["--scale-sizes", "64,128"], ["--scale-sizes", "64,128", "--preset", "gatys"]):
        settings = run_record(parse(*args), content="c", style="s", output="o", weights={}, env={}, time={},
                              final={})["settings"]
        assert (settings["size"], settings["scales"], settings["scale_sizes"]) == (128, 2, [64, 128]), args
    assert (Config(scale_sizes="32,64").size, Config(scale_sizes="32,64").scales) == (64, 2)
    assert Config(scale_sizes=(16, 20, 24, 28, 32)).scales == 5  # any increasing sizes, not only sqrt(2) apart
    with pytest.raises(ValueError, match=r"scale_sizes must increase \(coarse to fine\), got \(900, 512\)"):
        parse("--size", "900", "--scale-sizes", "900,512")
    with pytest.raises(ValueError, match=r"size 900 conflicts with scale_sizes, whose last size \(800\)"):
        parse("--size", "900", "--scale-sizes", "512,800")  # increasing, but not ending at --size
    with pytest.raises(ValueError, match=r"scale_steps needs a non-negative step count, got \(1, 2\)"):
        Config(size=256, scale_steps=(1, 2))
    with pytest.raises(ValueError, match="scales 3 need a size to grow to"):  # at once, not when it first runs
        Config(size=None, scales=3)
    with pytest.raises(SystemExit) as exit_info:  # before: "expected one argument", with no way out named
        parse("--scale-steps", "-1,2")
    assert exit_info.value.code == 2
    assert "argument --scale-steps: expected one argument (a value that starts with '-' goes after '=': " \
           "--scale-steps=VALUE) (see --help)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"scale_steps needs a non-negative step count, got \(-1, 2\)"):
        parse("--scale-steps=-1,2")
