"""Tests of `nst_jax.run.memory`: the memory preflight."""

import pytest
from conftest import main

from nst_jax import Config
from nst_jax.errors import InputError
from nst_jax.run import memory
from nst_jax.run.memory import estimate_bytes, preflight


def test_a_style_image_too_large_for_memory_is_refused_before_any_work(h5_files, image_files, tmp_path, capsys):
    """--style-scale 64 at --size 100 makes the style 6400 px square: its forward pass alone needs far more than
    this machine has. Before: the preflight checked only the output's size, and the run died in a JAX
    out-of-memory traceback (a 31 GB allocation)."""
    out = tmp_path / "o.png"
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 100, "--style-scale", 64, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and not out.exists() and "\n" not in err
    assert err.startswith(f"python -m nst_jax: error: {image_files['style']}: resized to 6400x6400")
    assert "lower the style scale (--style-scale)" in err


def test_memory_preflight_refuses_what_cannot_fit_and_names_what_would():
    config = Config()
    need = estimate_bytes(1024, 1024, config)
    # peaks measured by benchmarks/memory.py on the 2-core CPU (float32, Adam, one step): the estimate is never
    # below them, and at most 25% above
    for size, peak_gib in ((1024, 2.65), (2048, 8.07), (2927, 15.63), (3231, 18.84)):
        assert peak_gib <= estimate_bytes(size, size, config) / 2**30 <= 1.25 * peak_gib, size
    assert preflight(config, (1024, 1024), 1, limit=need) == 0  # fits exactly, whole: no error, no blocks
    # one byte less: blocks, the largest tile that cuts the longer side into the fewest tiles and fits (issue 52)
    tile = preflight(config, (1024, 1024), 1, limit=need - 1)
    assert tile == 512 and memory.blocked_bytes(1024, 1024, config, 512) <= need - 1
    # four jobs at 768x1024 in a budget of one 1024 px job: blocks of 512 px fit, none larger does (1024 whole)
    tile = preflight(config, (768, 1024), 4, limit=need)
    assert memory.blocked_bytes(768, 1024, config, tile, 4) <= need < estimate_bytes(768, 1024, config, 4)
    # a budget below even blocks of 64 px: refused, naming the largest size that fits (whole or by blocks)
    least = memory.blocked_bytes(768, 1024, config, memory.SMALLEST_TILE, 4)
    with pytest.raises(InputError, match="by blocks of 64 px .* the largest size that fits is") as info:
        preflight(config, (768, 1024), 4, limit=least - 1)
    fits = int(str(info.value).split("fits is ")[1])

    def planned(side):
        tile, need_ = memory.planned_bytes((round(768 * side / 1024), side), config, 4, least - 1)
        return tile >= 0 and need_ <= least - 1

    assert planned(fits) and not planned(fits + 1)
    # the way out it names is one the run has not taken (the trial's finding: Adam was told to use Adam)
    assert "--optimizer adam need less" in str(info.value)
    with pytest.raises(InputError) as adam:
        preflight(config.replace(optimizer="adam"), (768, 1024), 4, limit=least // 4)
    assert "--optimizer adam" not in str(adam.value) and "by blocks of 64 px" in str(adam.value)
    assert estimate_bytes(512, 512, config.replace(optimizer="lbfgs-torch")) > estimate_bytes(512, 512, config)


def test_memory_preflight_never_names_a_size_the_size_checks_refuse():
    """Before, the hint was a binary search floored at 16 px: it named 16 when nothing fitted, and for a 1:16
    panorama a longer side whose shorter side is below relu5_1's 16 px (which the size checks then refused)."""
    config = Config()
    # a 60x1000 panorama: 259 is the least longer side whose shorter side reaches relu5_1's 16 px (60 x 259 / 1000
    # = 15.54 rounds to 16; 60 x 258 / 1000 = 15.48 to 15)
    limit = estimate_bytes(16, 259, config) - 1
    with pytest.raises(InputError, match=r"GiB available; no size fits$"):
        preflight(config, (60, 1000), 1, limit=limit)
    preflight(config, (60, 1000), 1, limit=estimate_bytes(60, 1000, config))  # fits exactly: no error
    with pytest.raises(InputError, match="the largest size that fits is 259$"):
        preflight(config, (60, 1000), 1, limit=estimate_bytes(16, 259, config))
    # 8 jobs in one batch when not even 16x16 fits for all 8: fewer jobs at once is the way out
    with pytest.raises(InputError, match=r"no size fits with this many jobs in one batch; run fewer at once "
                                         r"\(--batch-size\)$"):
        preflight(config, (512, 512), 8, limit=estimate_bytes(16, 16, config, 8) - 1)


def test_the_swd_statistic_counts_its_copies_of_the_style_layers():
    """Its sort keeps about SWD_FACTOR float32 copies of each style layer more (measured: 5.74 against 2.64 GiB at
    1024 px on the 2-core CPU); the style layers of a 64 x 64 picture hold 64*64*64 + 32*32*128 + 16*16*256 +
    8*8*512 + 4*4*512 elements."""
    from nst_jax.config import PAPER_STYLE_LAYERS

    assert memory.layer_elements(64, 64, PAPER_STYLE_LAYERS) == 262144 + 131072 + 65536 + 32768 + 8192
    gram, swd = Config(), Config(style_loss="swd")
    assert memory.estimate_bytes(64, 64, swd) - memory.estimate_bytes(64, 64, gram) == int(
        memory.SWD_FACTOR * 4 * 499712)


@pytest.mark.parametrize("text, expected", [
    ("6GiB", 6 * 2**30), ("512MiB", 512 * 2**20), ("48mib", 48 * 2**20), ("8G", 8 * 2**30), ("1.5g", 3 * 2**29),
    ("2e9", 2_000_000_000), ("2GB", 2_000_000_000), ("100", 100), (" 3 KiB ", 3072), ("1tib", 2**40),
])
def test_memory_sizes_by_hand(text, expected):
    from nst_jax.fields import parse_bytes

    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["0", "-1GiB", "abc", "6 GiBs", "GiB", "0.5", "nan", "inf", "6XB", ""])
def test_a_memory_budget_that_is_no_size_is_refused_naming_the_setting(text):
    with pytest.raises(ValueError, match=f"max_memory must be a memory size such as 6GiB, 512MiB or 2e9 .bytes., "
                                         f"got '{text}'"):
        Config(max_memory=text)


def test_the_memory_budget_replaces_what_the_device_has(h5_files, image_files, tmp_path, capsys):
    """Issue 52, item 2: --max-memory decides what the preflight allows. With 2GiB a 1024 px run (peak measured by
    benchmarks/memory.py: 2.65 GiB whole) runs by blocks; with 1GiB not even blocks of 64 px fit a 2048 px run
    (L-BFGS's 20 image-sized vectors alone are 1 GiB), and a size is named; a budget above the machine and one that
    is no size are usage errors."""
    config = Config(max_memory="2GiB")
    assert memory.budget(config) == (2 * 2**30, "of the max_memory budget 2GiB")
    assert preflight(config, (512, 512), 1) == 0  # fits whole
    assert preflight(config, (1024, 1024), 1) > 0  # by blocks
    with pytest.raises(InputError, match="more than the 1.0 GiB of the max_memory budget 1GiB; the largest size "
                                         "that fits is") as info:
        preflight(Config(max_memory="1GiB"), (2048, 2048), 1)
    assert 512 <= int(str(info.value).split("fits is ")[1]) < 2048
    machine = memory.available_bytes()
    with pytest.raises(InputError, match=f"max_memory {2 * machine} is more than the {machine / 2**30:.1f} GiB this "
                                         f"device has"):
        memory.budget(Config(max_memory=str(2 * machine)))
    out = tmp_path / "o.png"
    base = ["--content", image_files["content"], "--style", image_files["style"], "--output", out, "--weights",
            h5_files["legacy"], "--quiet"]
    for extra, status, words in [
        (["--size", 2048, "--max-memory", "1GiB"], 1, "more than the 1.0 GiB of the --max-memory budget 1GiB; the "
                                                      "largest size that fits is"),
        (["--size", 32, "--max-memory", str(2 * machine)], 2, f"--max-memory {2 * machine} is more than the"),
        (["--size", 2048, "--max-memory", "100KB"], 1, "a 1536x2048 run"),  # two scales: the size asked for named
        (["--size", 32, "--max-memory", "0"], 2, "--max-memory must be a memory size such as 6GiB"),
        (["--size", 32, "--block-size", 24], 2, "--block-size must be a multiple of 16, at least 16, got 24"),
        (["--size", 32, "--block-size", 0], 2, "--block-size must be a multiple of 16, at least 16, got 0"),
        (["--size", 32, "--block-size", "-16"], 2, "--block-size must be a multiple of 16, at least 16, got -16"),
        (["--size", 64, "--block-size", 32, "--normalize-gradients"], 2, "a 48x64 run runs by blocks of 32 px, as "
                                                                          "--block-size asks, and "
                                                                          "--normalize-gradients needs the whole"),
        (["--size", 2048, "--block-size", 2032, "--max-memory", "3GiB"], 1, "a 1536x2048 run by blocks of 2032 px "
                                                                             "needs about"),
    ]:
        try:
            code = main(base + extra)
        except SystemExit as e:  # the parser's own usage errors exit
            code = e.code
        err = capsys.readouterr().err.strip()
        assert code == status, err
        assert words in err and "\n" not in err and not out.exists(), err
