"""Batches, sharding, multi-scale, remat, the memory preflight and the compilation cache, on random (not
pretrained) weights at tiny sizes."""

import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smooth_image

from nst_jax import Config, stylize, stylize_batch
from nst_jax.cli.options import build_parser, config_from_args
from nst_jax.core import objective, steps
from nst_jax.core.optimizers import OPTIMIZERS
from nst_jax.errors import InputError
from nst_jax.io.record import run_record, timing
from nst_jax.presets import PRESETS, preset_config
from nst_jax.run import planning, settings
from nst_jax.run.memory import estimate_bytes, preflight
from nst_jax.schedule import schedule_note

CONTENTS = [smooth_image((24, 32), 20), smooth_image((24, 32), 21)]
STYLES = [smooth_image((32, 32), 22), smooth_image((28, 36), 23)]  # styles may differ in shape


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs-torch", pytest.param("lbfgs", marks=pytest.mark.slow),
                                       "lbfgs-armijo"])  # lbfgs: a long run, left to CI (pytest -m slow)
def test_batch_equals_one_by_one(random_weights, optimizer):
    # Chunks of 2 steps (3 chunks per run: state carried within and between them).
    config = Config(size=32, steps=6, chunk_size=2, optimizer=optimizer,
                    init="content" if optimizer == "adam" else "noise")
    batch = stylize_batch(CONTENTS, STYLES, random_weights, config.replace(batch_size=2))  # one vmapped program
    for job, (c, s) in enumerate(zip(CONTENTS, STYLES)):
        alone = stylize(c, s, random_weights, config)
        for term in ("content", "style", "total"):
            np.testing.assert_allclose(batch[job].history[term], alone.history[term], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batch[job].image, alone.image, atol=1e-4)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_jobs_run_in_batches_of_batch_size(random_weights):
    """Three jobs in programs of 2 and 1: every job's history equals its run in one 3-job program, and each
    Progress names its first job."""
    contents, styles = CONTENTS + CONTENTS[:1], STYLES + STYLES[:1]
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    seen = []
    grouped = stylize_batch(contents, styles, random_weights, config.replace(batch_size=2),
                            callback=lambda p: seen.append((p.first_job, p.losses["total"].shape[1])))
    together = stylize_batch(contents, styles, random_weights, config.replace(batch_size=3))
    assert seen == [(0, 2), (2, 1)]
    for g, t in zip(grouped, together):
        np.testing.assert_allclose(g.history["total"], t.history["total"], rtol=1e-4)
        np.testing.assert_allclose(g.image, t.image, atol=1e-4)
    assert planning.jobs_per_program(config, 16) == 1  # default on this lone CPU device
    assert planning.jobs_per_program(config.replace(batch_size=4), 3) == 3


@pytest.mark.slow
def test_sharded_over_four_devices_equals_one_by_one(random_weights, tmp_path):
    """Four jobs laid across 4 (forced) CPU devices in a fresh process, against one-by-one runs here."""
    np.savez(tmp_path / "in.npz", c=np.stack(CONTENTS * 2), s=np.stack([STYLES[0]] * 4))
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from nst_jax import Config, Weights
        from nst_jax.api import stylize_batch
        from nst_jax.reference.random_vgg import random_params
        assert jax.local_device_count() == 4
        w = Weights(jax.tree.map(np.asarray, random_params(jax.random.key(0))), "caffe")
        d = np.load({str(tmp_path / "in.npz")!r})
        out = stylize_batch(list(d["c"]), list(d["s"]), w, Config(size=32, steps=4, chunk_size=2,
                            optimizer="adam", init="content"))
        np.save({str(tmp_path / "out.npy")!r}, np.stack([r.history["total"] for r in out]))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    sharded = np.load(tmp_path / "out.npy")
    config = Config(size=32, steps=4, chunk_size=2, optimizer="adam", init="content")
    for job in range(4):
        alone = stylize(CONTENTS[job % 2], STYLES[0], random_weights, config)
        np.testing.assert_allclose(sharded[job], alone.history["total"], rtol=1e-4)


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_process_shares_cover_the_jobs_in_order_and_balance(count):
    for n_jobs in range(10):
        shares = [planning.process_share(n_jobs, index, count) for index in range(count)]
        assert [job for share in shares for job in share] == list(range(n_jobs))  # each job once, in order
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert [list(planning.process_share(5, i, 2)) for i in range(2)] == [[0, 1, 2], [3, 4]]
    assert planning.process_share(3) == range(3)  # one process (this one) runs everything
    with pytest.raises(ValueError, match="not in"):
        planning.process_share(3, count, count)


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
    assert Config(size=2048, steps=301).schedule == ((512, 301), (2048, 151))
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


def test_steps_per_second_leave_out_the_first_chunk_of_every_scale():
    """Found by a fresh-clone trial: a two-scale run's steps_per_s counted the second scale's first chunk, which
    compiles that scale's program. By hand: scale 0 reports 5 steps at 10 s and 10 at 11 s; scale 1 (its
    compilation in the 19 s before) 15 at 30 s and 20 at 32 s: 5 + 5 steps in 1 + 2 s, 10/3 steps per second (the
    old count, (20 - 5) / (32 - 10), was 0.68)."""
    t = timing(0.0, 2.0, 35.0, [(5, 10.0, 0), (10, 11.0, 0), (15, 30.0, 1), (20, 32.0, 1)])
    assert t == {"total_s": 35.0, "startup_s": 2.0, "first_chunk_s": 10.0, "steps_s": 33.0,
                 "steps_per_s": pytest.approx(10 / 3)}
    assert timing(0.0, 1.0, 3.0, [(5, 1.5, 0), (10, 2.0, 1)])["steps_per_s"] is None  # no scale reported twice
    assert timing(0.0, 1.0, 3.0, [])["first_chunk_s"] is None


def test_adam_state_is_carried_across_scales_and_lbfgs_restarts():
    z_shape, new = (1, 1, 8, 8, 3), (1, 1, 16, 16, 3)
    adam = jax.vmap(__import__("optax").adam(0.1).init)(jnp.ones(z_shape))
    carried = steps.carry_state(adam, z_shape, new)
    assert carried is not None and carried[0].mu.shape == new
    lbfgs = jax.vmap(lambda z: OPTIMIZERS["lbfgs-torch"].init(z, {"lr": 1.0}, 10))(jnp.ones(z_shape))
    assert steps.carry_state(lbfgs, z_shape, new) is None


def test_remat_gives_the_same_run(random_weights):
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    a = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(remat="off")).history["total"]
    b = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(remat="on")).history["total"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def loss_gradient_hlo(precision: str, random_weights) -> str:
    """The lowered (StableHLO) program of the gradient of the paper's total loss, --precision `precision`, 16x16."""
    config = Config(precision=precision)
    spec = settings.loss_spec(config, "caffe")
    params = objective.cast_params(random_weights.params, spec)
    z = jnp.full((1, 16, 16, 3), 0.5)
    targets = objective.compute_targets(params, z, z, spec)
    coefficients = settings.loss_weights(config)

    def loss(z_):
        return jnp.sum(objective.loss_terms(z_, params, targets, coefficients, spec)["total"])

    return jax.jit(jax.grad(loss)).lower(z).as_text()


def conv_precisions(precision: str, random_weights) -> list[str]:
    """The precision_config of every convolution in the lowered loss-and-gradient program of `precision`."""
    return re.findall(r"convolution\(.*precision_config = \[([^\]]*)\]", loss_gradient_hlo(precision, random_weights))


def test_float32_convolutions_are_exact_and_tf32_uses_the_fast_default(random_weights):
    # On a GPU the default precision of a float32 convolution is TF32 (measured on an H100: activations 3.5e-4 off
    # the float32 reference), so --precision float32 must ask for HIGHEST in every convolution, gradients included.
    for precision, expected in [("float32", "HIGHEST"), ("tf32", "DEFAULT")]:
        found = conv_precisions(precision, random_weights)
        assert len(found) == 26  # conv1_1 .. conv5_1: 13 convolutions forward, 13 for the gradient
        assert set(found) == {f"#stablehlo<precision {expected}>, #stablehlo<precision {expected}>"}, precision


def test_bfloat16_gram_products_take_bfloat16_operands_and_accumulate_in_float32(random_weights):
    # --precision bfloat16: every Gram product, forward and gradient, multiplies bfloat16 operands into float32 (the
    # gradient once cast its operands to float32, which on a GPU runs at the slow exact-float32 rate).
    dots = re.findall(r"dot_general.*?: \((tensor<[^>]*>), (tensor<[^>]*>)\) -> (tensor<[^>]*>)",
                      loss_gradient_hlo("bfloat16", random_weights))
    assert len(dots) == 10  # five style layers: the Gram matrix and its gradient
    for a, b, out in dots:
        assert a.endswith("xbf16>") and b.endswith("xbf16>") and out.endswith("xf32>"), (a, b, out)


def test_tf32_is_exact_float32_on_cpu(random_weights):
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    a = stylize(CONTENTS[0], STYLES[0], random_weights, config).history["total"]
    b = stylize(CONTENTS[0], STYLES[0], random_weights, config.replace(precision="tf32")).history["total"]
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_memory_preflight_refuses_what_cannot_fit_and_names_what_would():
    config = Config()
    need = estimate_bytes(1024, 1024, config)
    # peaks measured by benchmarks/memory.py on the 2-core CPU (float32, Adam, one step): the estimate is never
    # below them, and at most 25% above
    for size, peak_gib in ((1024, 2.65), (2048, 8.07), (2927, 15.63), (3231, 18.84)):
        assert peak_gib <= estimate_bytes(size, size, config) / 2**30 <= 1.25 * peak_gib, size
    preflight(config, (1024, 1024), 1, limit=need)  # fits exactly: no error
    with pytest.raises(InputError, match="the largest size that fits is") as info:
        preflight(config, (768, 1024), 4, limit=need)
    fits = int(str(info.value).split("fits is ")[1])
    h = round(768 * fits / 1024)
    assert estimate_bytes(h, fits, config, 4) <= need < estimate_bytes(round(768 * (fits + 1) / 1024), fits + 1,
                                                                            config, 4)
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


@pytest.mark.slow
def test_second_run_hits_the_persistent_compilation_cache(tmp_path):
    script = textwrap.dedent("""
        import sys, jax, numpy as np
        hits = []
        jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name) if "cache_hits" in name else 0)
        import nst_jax
        from nst_jax.reference.random_vgg import random_params
        nst_jax.enable_compilation_cache(sys.argv[1])
        w = nst_jax.Weights(jax.tree.map(np.asarray, random_params(jax.random.key(0))), "caffe")
        c = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
        nst_jax.stylize(c, c[::-1], w, nst_jax.Config(size=32, steps=2, optimizer="adam"))
        print(len(hits))
    """)
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / "xla")], capture_output=True, text=True,
                           check=True).stdout.split()[-1] for _ in range(2)]
    assert runs[0] == "0" and int(runs[1]) > 0
    assert any("run_chunk" in p.name for p in (tmp_path / "xla").iterdir())
