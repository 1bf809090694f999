"""Tests of `nst_jax.cli.options`: the parser built from Config, and its usage errors."""


import pytest
from conftest import main

from nst_jax import Config
from nst_jax.cli import command as cli
from nst_jax.cli.options import option_message


def usage_error(capsys, image_files, tmp_path, *extra) -> str:
    """stderr of a command line on the test images that the CLI must refuse as a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as info:
        main(["--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
              *extra])
    assert info.value.code == 2
    return capsys.readouterr().err


def test_bad_setting_is_a_usage_error(image_files, tmp_path, capsys):
    assert "size must be at least 16" in usage_error(capsys, image_files, tmp_path, "--size", "4")


@pytest.mark.parametrize("extra, expected", [
    (["--style-weight", "nan"], "--style-weight must be a number >= 0 and at most 3.403e+38, got nan"),
    (["--content-weight", "inf"], "--content-weight must be a number >= 0 and at most 3.403e+38, got inf"),
    (["--tv-weight", "-1"], "--tv-weight must be a number >= 0 and at most 3.403e+38, got -1.0"),
    (["--lr", "inf"], "--lr must be a positive number, got inf"),
    (["--style-scale", "nan"], "--style-scale must be a positive number up to 64.0, got nan"),
    (["--style-layer-weights", "1,1,1,1,nan"], "--style-layer-weights must be numbers >= 0"),
    (["--style-layer-weights", "1,1,1,1,-2"], "--style-layer-weights must be numbers >= 0"),
    (["--seed", str(2**64)], f"--seed must be in 0..2^63-1, got {2**64}"),  # was an OverflowError traceback
    (["--seed", "-1"], "--seed must be in 0..2^63-1, got -1"),
    (["--save-every", "0"], "--save-every must be >= 1, got 0"),  # was exit status 1, unlike other settings
    (["--max-input-pixels", "0"], "--max-input-pixels must be >= 1, got 0"),
])
def test_weights_and_rates_must_be_finite_numbers_in_range(image_files, tmp_path, capsys, extra, expected):
    """NaN passes every `x < 0` test; it (and inf) must still be refused, not run to a loss of inf or NaN."""
    assert expected in usage_error(capsys, image_files, tmp_path, *extra)


@pytest.mark.parametrize("extra, expected", [
    (["--size", "x"], "--size must be an int, got 'x'"),
    (["--chunk-size", "1.5"], "--chunk-size must be an int, got '1.5'"),
    (["--lr", "1e"], "--lr must be a float, got '1e'"),
    (["--adam-betas", "a,0.9"], "--adam-betas must be floats separated by commas, got 'a,0.9'"),
    (["--scale-sizes", "64,128.5"], "--scale-sizes must be ints separated by commas, got '64,128.5'"),
])
def test_malformed_values_are_a_usage_error_naming_the_option(image_files, tmp_path, capsys, extra, expected):
    """One line (before: argparse's 25-line usage, then the error)."""
    assert usage_error(capsys, image_files, tmp_path, *extra) == f"python -m nst_jax: error: {expected} (see --help)\n"


@pytest.mark.parametrize("option", ["--content", "--style", "--output", "--weights", "--log", "--plot"])
def test_an_empty_path_is_a_usage_error_naming_the_option(image_files, tmp_path, capsys, monkeypatch, option):
    """`--content ''` read the current folder ("no images in this folder") and `--output ''` wrote into it."""
    monkeypatch.chdir(tmp_path)
    err = usage_error(capsys, image_files, tmp_path, option, "")
    assert err == f"python -m nst_jax: error: argument {option}: an empty path (see --help)\n"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_checkpoint_path_is_a_usage_error(capsys):
    """`--resume ''` went to the checkpoint loader: "no such checkpoint file", naming no file."""
    with pytest.raises(SystemExit) as info:
        main(["--resume", ""])
    assert info.value.code == 2
    assert capsys.readouterr().err == "python -m nst_jax: error: argument --resume: an empty path (see --help)\n"


def test_values_parse_to_the_declared_types():
    args = cli.build_parser().parse_args(
        ["--content", "c", "--style", "s", "--output", "o", "--size", "64", "--lr", "0.5", "--adam-betas", "0.5, 0.9",
         "--style-layers", "relu1_1,,relu3_1", "--style-layer-weights", "1,2e-1", "--scale-steps", "3,4",
         "--scales", "2", "--init", "start.png"])
    assert cli.config_from_args(args) == Config(
        size=64, lr=0.5, adam_betas=(0.5, 0.9), style_layers=("relu1_1", "relu3_1"), style_layer_weights=(1.0, 0.2),
        scale_steps=(3, 4), scales=2, init="start.png")


@pytest.mark.parametrize("extra, expected", [
    (["--size", "48", "--scale-sizes", "32,64"], "--size 48 conflicts with --scale-sizes"),
    (["--scales", "3", "--scale-sizes", "32,64"], "--scales 3 conflicts with the 2 --scale-sizes"),
    (["--size", "1024", "--scale-steps", "300"], "--scale-steps needs 2 non-negative step counts (above 768 px the "
     "default is two scales: give two, or --scales 1 for one), got (300,)"),
])
def test_conflicting_sizes_are_a_usage_error(image_files, tmp_path, capsys, extra, expected):
    assert expected in usage_error(capsys, image_files, tmp_path, *extra)
    agreeing = ["--content", "c", "--style", "s", "--output", "o", "--size", "64", "--scales", "2",
                "--scale-sizes", "32,64", "--steps", "7"]
    assert cli.config_from_args(cli.build_parser().parse_args(agreeing)).schedule == ((32, 7), (64, 7))


def test_layers_parse_and_unknown_layer_is_rejected(image_files, tmp_path, capsys):
    assert "unknown VGG19 layer 'fc7'" in usage_error(capsys, image_files, tmp_path, "--style-layers", "relu1_1,fc7")


@pytest.mark.parametrize("extra, expected", [
    (["--coordinator", "localhost:1"], "go together"),
    (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"], "is not in 0..1"),
    (["--coordinator", "localhost:1", "--num-processes", "0", "--process-id", "0"], "must be >= 1"),
])
def test_bad_multi_host_options_are_usage_errors(image_files, tmp_path, capsys, extra, expected):
    assert expected in usage_error(capsys, image_files, tmp_path, *extra)


def test_original_colors_is_preserve_colors_original_on_the_command_line():
    from nst_jax.cli.options import build_parser, config_from_args

    parse = lambda *extra: config_from_args(build_parser().parse_args(  # noqa: E731
        ["--content", "c.png", "--style", "s.png", "--output", "o.png", *extra]))
    assert parse("--original-colors").preserve_colors == parse("--preserve-colors", "original").preserve_colors
    assert parse().preserve_colors is None and parse("--style-loss", "meancov").style_loss == "meancov"


@pytest.mark.parametrize("field, value", [("remat", "yes"), ("optimizer", "sgd"), ("style_loss", "texture"),
                                          ("precision", "float16")])
def test_a_value_outside_the_choices_is_refused_in_the_same_words_by_the_api_and_the_command_line(
        image_files, tmp_path, capsys, field, value):
    """Found by a newcomer's trial: Config(remat="yes") said "remat must be one of on, off, got 'yes'" and --remat yes
    argparse's "argument --remat: invalid choice: 'yes' (choose from 'on', 'off')"."""
    with pytest.raises(ValueError) as refused:
        Config(**{field: value})
    err = usage_error(capsys, image_files, tmp_path, "--" + field.replace("_", "-"), value)
    assert err == f"python -m nst_jax: error: {option_message(str(refused.value))} (see --help)\n"
