"""`python -m nst_jax` end to end on tiny images and random (not pretrained) weights, and its bad-input contract."""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from nst_jax import Config
from nst_jax.cli import command as cli
from nst_jax.cli import plan, reporter
from nst_jax.errors import InputError
from nst_jax.io import files, images


def main(args):
    """The CLI in this process (argv as strings, as a shell gives them)."""
    return cli.main([str(a) for a in args])


def run_cli(*args, env=None):
    """Run `python -m nst_jax` in a fresh process: returns (exit status, stderr)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "nst_jax", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=300)
    return proc.returncode, proc.stderr


def test_tiny_run_writes_output_log_and_intermediates(h5_files, image_files, tmp_path):
    out, log = tmp_path / "out.png", tmp_path / "run.jsonl"
    status = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                   "--weights", h5_files["nested"], "--size", "32", "--steps", "5", "--optimizer", "adam",
                   "--init", "content", "--log", log, "--save-every", "2", "--quiet"])
    assert status == 0
    assert Image.open(out).size == (32, 24)  # content is 64x48, longer side -> 32
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert all(set(r) == {"step", "content", "style", "tv", "total"} for r in records)
    for r in records:  # the default weights: alpha 1, beta 500, tv 0
        assert r["total"] == pytest.approx(r["content"] + 500 * r["style"], rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.00002.png", "out.00004.png", "out.json", "out.png",
                                                          "run.jsonl"]
    summary = json.loads((tmp_path / "out.json").read_text())  # the record of the run, next to the image
    assert summary["output"] == str(out) and summary["content"] == str(image_files["content"])
    settings = summary["settings"]
    assert (settings["size"], settings["steps"], settings["optimizer"], settings["init"]) == (32, 5, "adam", "content")
    assert settings["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    weights_bytes = h5_files["nested"].read_bytes()
    assert summary["weights"] == {"source": "keras-h5", "file": str(h5_files["nested"]),
                                  "sha256": hashlib.sha256(weights_bytes).hexdigest()}
    assert summary["final_losses"] == pytest.approx({k: records[-1][k] for k in ("content", "style", "tv", "total")})
    assert summary["environment"]["backend"] == "cpu" and summary["environment"]["jax"] == jax.__version__
    t = summary["time"]
    assert t["total_s"] == pytest.approx(t["startup_s"] + t["steps_s"]) and 0 < t["first_chunk_s"] <= t["steps_s"]
    assert t["steps_per_s"] > 0


def test_module_entry_point_runs_end_to_end(h5_files, image_files, tmp_path):
    out = tmp_path / "out.jpg"
    status, err = run_cli("--content", image_files["content"], "--style", image_files["style"], "--output", out,
                          "--weights", h5_files["legacy"], "--size", "32", "--steps", "3")
    assert status == 0, err
    assert Image.open(out).format == "JPEG"
    assert "wrote" in err


def _bad_input(tmp_path, image_files, h5_files, case):
    args = {"--content": image_files["content"], "--style": image_files["style"],
            "--output": tmp_path / "out.png", "--weights": h5_files["legacy"]}
    env = {}
    if case == "missing content":
        args["--content"] = tmp_path / "nope.jpg"
    elif case == "not an image":
        args["--style"] = tmp_path / "style.png"
        args["--style"].write_text("not an image")
    elif case == "weights not VGG19":
        args["--weights"] = tmp_path / "other.h5"
        args["--weights"].write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    elif case == "no output folder":
        args["--output"] = tmp_path / "missing" / "out.png"
    elif case == "no weights, downloads off":
        del args["--weights"]
        env["NST_JAX_WEIGHTS_DIR"] = str(tmp_path / "empty")
        env["NST_JAX_NO_DOWNLOAD"] = "1"
    elif case == "no weights, offline":
        del args["--weights"]
        env["NST_JAX_WEIGHTS_DIR"] = str(tmp_path / "empty")
        env["NST_JAX_DOWNLOAD_URL"] = "http://127.0.0.1:9/vgg19.h5"  # nothing listens there
        args["--quiet"] = None
    return [x for kv in args.items() for x in kv if x is not None] + ["--size", "32", "--steps", "2"], env


CASES = {
    "missing content": "image file not found",
    "not an image": "not an image file",
    "weights not VGG19": "cannot read HDF5 weights",
    "no output folder": "does not exist",
    "no weights, downloads off": "no VGG19 weights found at",
    "no weights, offline": "cannot download http://127.0.0.1:9/vgg19.h5",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_error_no_traceback_nothing_written(tmp_path, image_files, h5_files, case):
    out = tmp_path / "out.png"
    out.write_bytes(b"previous good output")
    args, env = _bad_input(tmp_path, image_files, h5_files, case)
    status, err = run_cli(*args, env=env)
    assert status != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert CASES[case] in err
    assert out.read_bytes() == b"previous good output"
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_sizes_and_memory_are_checked_before_any_work(image_files, h5_files, tmp_path, capsys):
    """Images too small for relu5_1 (after resizing, at any scale) and a size that cannot fit in memory are refused
    with one line naming the file, before anything is resized or compiled; a good output is kept."""
    wide = tmp_path / "wide.png"
    Image.new("RGB", (200, 10)).save(wide)
    out = tmp_path / "out.png"
    out.write_bytes(b"previous good output")
    cases = [  # (extra arguments, the error's expected text); the content is 48x64
        (["--size", "20"], f"{image_files['content']}: resized to 15x20, too small: relu5_1 needs at least 16 px"),
        (["--size", "24", "--scales", "2"], f"{image_files['content']}: resized to 13x17 for scale 1 of 2, too small"),
        (["--size", "32", "--style", wide], f"{wide}: resized to 2x32, too small"),  # the last --style wins
        (["--size", "60000"], "a 45000x60000 run (1 job(s)) needs about"),  # 32 GB to resize in float32: refused
    ]
    for extra, expected in cases:
        status = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                       "--weights", h5_files["legacy"], "--steps", "2", *extra])
        err = capsys.readouterr().err
        assert status == 1 and expected in err and len(err.strip().splitlines()) == 1, err
    assert out.read_bytes() == b"previous good output"


def test_contents_of_different_shapes_run_one_per_batch(h5_files, image_files, tmp_path, capsys):
    """A folder of contents with two aspect ratios runs by default (one job per program on a CPU) and keeps each
    output's shape; asked to batch them, it names the content that differs."""
    contents = tmp_path / "contents"
    contents.mkdir()
    (contents / "a.png").write_bytes(image_files["content"].read_bytes())  # 48x64
    (contents / "b.png").write_bytes(image_files["style"].read_bytes())  # 64x64
    out = tmp_path / "out"
    out.mkdir()
    args = ["--content", contents, "--style", image_files["style"], "--output", out, "--weights", h5_files["legacy"],
            "--size", "32", "--steps", "2", "--optimizer", "adam", "--quiet"]
    assert main(args) == 0
    assert [Image.open(out / n).size for n in ("a_style.png", "b_style.png")] == [(32, 24), (32, 32)]
    assert main(args + ["--batch-size", "2"]) == 1
    assert f"{contents / 'b.png'}: resized to 32x32, unlike {contents / 'a.png'} (24x32)" in capsys.readouterr().err


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
    (["--size", "x"], "argument --size: must be an int, got 'x'"),
    (["--chunk-size", "1.5"], "argument --chunk-size: must be an int, got '1.5'"),
    (["--lr", "1e"], "argument --lr: must be a float, got '1e'"),
    (["--adam-betas", "a,0.9"], "argument --adam-betas: must be floats separated by commas, got 'a,0.9'"),
    (["--scale-sizes", "64,128.5"], "argument --scale-sizes: must be ints separated by commas, got '64,128.5'"),
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


def test_several_contents_and_styles_make_one_batch(h5_files, image_files, tmp_path, capsys):
    """Two contents x one style folder -> two jobs in one run; outputs CONTENT_STYLE.png, log lines per job; the
    closing message gives the range of the jobs' final losses."""
    second = tmp_path / "second.png"
    Image.open(image_files["content"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "s.png").write_bytes(image_files["style"].read_bytes())
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    out.mkdir()
    status = main(["--content", image_files["content"], second, "--style", styles, "--output", out,
                   "--weights", h5_files["legacy"], "--size", "32", "--steps", "2", "--optimizer", "adam",
                   "--log", log])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["content_s.json", "content_s.png", "second_s.json",
                                                     "second_s.png"]  # each image with its run record
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((r["job"], r["step"]) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert records[0]["total"] != records[1]["total"]
    last = sorted(r["total"] for r in records if r["step"] == 1)
    assert f"final loss {last[0]:.4g} to {last[1]:.4g} over 2 jobs)" in capsys.readouterr().err


def test_several_jobs_need_an_output_folder(h5_files, image_files, tmp_path):
    status, err = run_cli("--content", image_files["content"], image_files["style"], "--style",
                          image_files["style"], "--output", tmp_path / "o.png", "--weights", h5_files["legacy"])
    assert status == 2 and "must be an existing folder" in err and "Traceback" not in err  # a usage error (was 1)


def _free_port(candidates=(0,)) -> int:
    """A port on localhost that nothing listens on: the first of `candidates` that binds (0: any)."""
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("localhost", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def run_processes(args_and_envs):
    """Run `python -m nst_jax` in several processes at once ([(argv, extra env)], 2 forced CPU devices each);
    assert that all succeed."""
    procs = [subprocess.Popen([sys.executable, "-m", "nst_jax", *map(str, args)], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", **env})
             for args, env in args_and_envs]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(procs), errors


@pytest.mark.slow
def test_two_processes_split_the_jobs_and_equal_one_process(h5_files, image_files, tmp_path):
    """A multi-host run on this machine: two CLI processes joined by jax.distributed (each with 2 forced CPU
    devices, so each runs its 2 jobs as one sharded program) write the same 4 images and losses as one process."""
    second = tmp_path / "second.png"
    Image.open(image_files["content"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    flipped_style = tmp_path / "style2.png"
    Image.open(image_files["style"]).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(flipped_style)
    common = ["--content", image_files["content"], second, "--style", image_files["style"], flipped_style,
              "--weights", h5_files["legacy"], "--size", "32", "--steps", "3", "--optimizer", "adam", "--quiet"]
    (tmp_path / "hosts").mkdir()
    (tmp_path / "one").mkdir()
    port = _free_port()
    run_processes([([*common, "--output", tmp_path / "hosts", "--log", tmp_path / "hosts" / "log.jsonl",
                     "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", i], {})
                   for i in range(2)])
    assert main([*common, "--output", tmp_path / "one", "--log", tmp_path / "one" / "log.jsonl"]) == 0

    names = ["content_style.png", "content_style2.png", "second_style.png", "second_style2.png"]
    logs = ["log.process0.jsonl", "log.process1.jsonl"]
    summaries = [n.replace(".png", ".json") for n in names]
    assert sorted(p.name for p in (tmp_path / "hosts").iterdir()) == sorted(names + summaries + logs)
    for name in names:
        hosts, one = (np.asarray(Image.open(tmp_path / d / name), np.int16) for d in ("hosts", "one"))
        assert np.abs(hosts - one).max() <= 1  # 8-bit rounding of images equal to 1e-4
    one = {(r["job"], r["step"]): r for r in map(json.loads, (tmp_path / "one" / "log.jsonl").open())}
    for index, jobs in ((0, {0, 1}), (1, {2, 3})):  # contiguous shares, global job numbers
        records = [json.loads(line) for line in (tmp_path / "hosts" / f"log.process{index}.jsonl").open()]
        assert {r["job"] for r in records} == jobs and len(records) == 3 * len(jobs)
        for r in records:
            assert r["total"] == pytest.approx(one[r["job"], r["step"]]["total"], rel=1e-4)


@pytest.mark.slow
def test_distributed_detects_a_slurm_cluster(h5_files, image_files, tmp_path):
    """`--distributed` alone, in two processes whose environment is what SLURM sets for a 2-task job step on one
    node: JAX detects the cluster, and the processes run one job each."""
    job_id = _free_port(range(61440, 65536)) - 61440  # JAX's coordinator port for SLURM: 61440 + job id % 4096
    slurm = {"SLURM_JOB_ID": str(job_id), "SLURM_STEP_NODELIST": "localhost", "SLURM_NTASKS": "2",
             "SLURM_STEP_NUM_NODES": "1"}
    args = ["--content", image_files["content"], "--style", image_files["style"], image_files["content"],
            "--weights", h5_files["legacy"], "--size", "32", "--steps", "1", "--optimizer", "adam", "--quiet",
            "--output", tmp_path, "--log", tmp_path / "log.jsonl", "--distributed"]
    run_processes([(args, {**slurm, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)}) for i in range(2)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["content_content.png", "content_style.png"]
    for index in range(2):
        records = [json.loads(line) for line in (tmp_path / f"log.process{index}.jsonl").open()]
        assert [r["job"] for r in records] == [index]


def test_each_process_share_is_checked_as_that_process_batches_it(image_files, tmp_path):
    """Contents of one program need one aspect ratio: 4 jobs in one program with two ratios are refused, but split
    over 2 processes (2 jobs, one ratio, each) they pass, and split so that a share mixes them they are refused."""
    wide, style = image_files["content"], image_files["style"]
    tall = tmp_path / "tall.png"
    Image.open(wide).transpose(Image.Transpose.ROTATE_90).save(tall)
    loaded = {p: images.load(p) for p in (wide, tall, style)}
    config = Config(size=32, batch_size=4)
    grouped = [(wide, (style,)), (wide, (style,)), (tall, (style,)), (tall, (style,))]  # (content, styles)
    with pytest.raises(InputError, match="one aspect ratio"):
        plan.check_shares(grouped, loaded, config, count=1)
    plan.check_shares(grouped, loaded, config, count=2)
    assert plan.check_shares(grouped, loaded, config, count=3) == [range(0, 2), range(2, 3), range(3, 4)]
    with pytest.raises(InputError, match="one aspect ratio"):
        plan.check_shares([grouped[0], grouped[2], grouped[1], grouped[3]], loaded, config, count=2)


@pytest.mark.parametrize("extra, expected", [
    (["--coordinator", "localhost:1"], "go together"),
    (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"], "is not in 0..1"),
    (["--coordinator", "localhost:1", "--num-processes", "0", "--process-id", "0"], "must be >= 1"),
])
def test_bad_multi_host_options_are_usage_errors(image_files, tmp_path, capsys, extra, expected):
    assert expected in usage_error(capsys, image_files, tmp_path, *extra)


def test_distributed_without_a_cluster_is_a_one_line_error(h5_files, image_files, tmp_path):
    out = tmp_path / "o.png"
    status, err = run_cli("--content", image_files["content"], "--style", image_files["style"], "--output", out,
                          "--weights", h5_files["legacy"], "--distributed")
    assert status == 1 and "--distributed: could not join" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("quiet", [False, True])
def test_unusable_compilation_cache_folder_is_one_warning_and_no_cache(tmp_path, monkeypatch, capsys, quiet):
    """A cache folder that cannot be created (its parent is a file) leaves JAX's cache setting alone and says so in
    one line; --quiet silences it."""
    import jax

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NST_JAX_COMPILATION_CACHE", str(blocker / "xla"))
    before = jax.config.jax_compilation_cache_dir
    cli.use_compilation_cache(quiet)
    assert jax.config.jax_compilation_cache_dir == before
    err = capsys.readouterr().err
    assert err == "" if quiet else (err.count("\n") == 1 and f"{blocker / 'xla'}" in err and "warning" in err)


def test_damaged_compilation_cache_entries_are_removed_and_compiled_again(tmp_path):
    """Issue 37 defect 14: JAX writes a cache entry in place and never replaces one that exists, so an entry cut
    short (a run killed while writing it) warned on every later run and was never repaired. Every entry of a real
    cache is cut in half: the next start removes them (one warning line), JAX compiles and writes them again, and
    the run after that is silent and reads them."""
    script = ("import jax, jax.numpy as jnp\nfrom nst_jax.cli import command as cli\ncli.use_compilation_cache(False)\n"
              "print(float(jax.jit(lambda x: jnp.sin(x) * 3 + 1)(jnp.ones(5))[0]))\n")
    env = {**os.environ, "NST_JAX_COMPILATION_CACHE": str(tmp_path / "xla")}

    def start() -> str:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0 and proc.stdout.strip() == "3.5244128704071045", proc.stderr
        return proc.stderr

    assert start() == ""
    entries = sorted((tmp_path / "xla").glob("*-cache"))
    sizes = {e: e.stat().st_size for e in entries}
    assert entries
    for e in entries:
        e.write_bytes(e.read_bytes()[: sizes[e] // 2])
    err = start()
    assert "Error reading persistent compilation cache" not in err
    assert f"removed {len(entries)} damaged entries from the compilation cache" in err and err.count("\n") == 1
    assert {e: e.stat().st_size for e in entries} == sizes  # written again, whole
    assert start() == ""


def test_only_entries_that_do_not_decompress_are_removed(tmp_path):
    """A whole zlib entry stays; a cut zlib stream and one with trailing bytes go; bytes that are no compressed
    stream at all are not JAX's format and stay (a user's file); entries older than the last check are not read
    again."""
    import zlib

    from nst_jax.io.compile_cache import remove_damaged_entries

    key = "0123456789abcdef" * 4  # JAX's entries: MODULE-SHA256-cache
    good = zlib.compress(b"executable" * 1000)
    files = {"good": good, "garbage": b"not compressed", "cut": good[:-5], "trailing": good + b"x"}
    for name, data in files.items():
        (tmp_path / f"jit_{name}-{key}-cache").write_bytes(data)
    (tmp_path / f"jit_good-{key}-atime").write_bytes(b"12345678")  # JAX's access times are not entries
    removed = remove_damaged_entries(tmp_path)
    assert sorted(p.name for p in removed) == [f"jit_cut-{key}-cache", f"jit_trailing-{key}-cache"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".nst_jax-verified", f"jit_garbage-{key}-cache",
                                                          f"jit_good-{key}-atime", f"jit_good-{key}-cache"]
    old = tmp_path / f"jit_old-{key}-cache"
    old.write_bytes(b"garbage written before the last check")
    os.utime(old, (1e9, 1e9))
    assert remove_damaged_entries(tmp_path) == [] and old.exists()


def test_outputs_never_overwrite_inputs(h5_files, image_files, tmp_path, capsys):
    """--output or --log naming a content, style or weights file (by any spelling of its path) is refused before
    any work, and the file is kept (the --init image too: tests/test_outputs.py)."""
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    content.write_bytes(image_files["content"].read_bytes())
    style.write_bytes(image_files["style"].read_bytes())
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)  # another spelling of the same folder
    base = ["--content", content, "--style", style, "--weights", h5_files["legacy"], "--size", "32", "--steps", "2",
            "--optimizer", "adam", "--quiet"]
    for extra, role, kept in [
        (["--output", tmp_path / "link" / "c.png"], "content image", content),
        (["--output", tmp_path / "o.png", "--log", style], "style image", style),
        (["--output", tmp_path / "o.png", "--log", h5_files["legacy"]], "weights file", h5_files["legacy"]),
    ]:
        before = kept.read_bytes()
        assert main(base + extra) == 1
        err = capsys.readouterr().err
        assert f"would overwrite the {role} {kept}" in err and len(err.strip().splitlines()) == 1, err
        assert kept.read_bytes() == before


def test_a_diverged_run_writes_no_image_and_keeps_the_old_one(h5_files, image_files, tmp_path, capsys):
    """Adam with lr 1e30 and no box overflows after its first update (random weights): the loss of step 1 is not
    finite, so the output is not written (the previous one is kept), the log is (strict JSON: null for that loss),
    and the exit status is 1."""
    out, log = tmp_path / "out.png", tmp_path / "log.jsonl"
    out.write_bytes(b"previous good output")
    status = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                   "--weights", h5_files["legacy"], "--size", "32", "--steps", "2", "--optimizer", "adam",
                   "--lr", "1e30", "--box", "none", "--log", log, "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert f"{out}: not written: the optimisation diverged (loss not finite from step 1)" in err
    assert out.read_bytes() == b"previous good output"
    def strict(constant):  # what json.loads calls for NaN and Infinity, which strict JSON parsers refuse
        raise AssertionError(f"not strict JSON: {constant}")

    totals = [json.loads(line, parse_constant=strict)["total"] for line in log.read_text().splitlines()]
    assert np.isfinite(totals[0]) and totals[1] is None


def test_a_diverged_run_with_a_huge_step_count_stops_in_bounded_memory(h5_files, image_files, tmp_path, capsys):
    """Issue 37 defect 7: the history of a run stopped by divergence is the steps it ran, not --steps rows padded
    with NaN (before: 3.6 GB at --steps 1e8, a MemoryError traceback at 1e9)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    status = main(["--content", image_files["content"], "--style", image_files["style"], "--output",
                   tmp_path / "o.png", "--weights", h5_files["legacy"], "--size", "32", "--steps", "1000000000",
                   "--optimizer", "adam", "--lr", "1e30", "--box", "none", "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "diverged (loss not finite from step 1)" in err and "Traceback" not in err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # under 0.5 GB more


def test_divergence_names_each_jobs_first_non_finite_step():
    image, bad_image = np.zeros((2, 2, 3)), np.full((2, 2, 3), np.nan)
    totals = np.array([[1.0, 1.0, 1.0, 1.0], [0.5, np.inf, 2.0, 2.0], [0.2, np.nan, 3.0, 3.0]])  # [steps, jobs]
    # job 1's loss overflows at step 1; job 2's losses are finite but its image is not (counted at the last step)
    assert reporter.divergence([image, image, bad_image, image], totals) == [None, 1, 2, None]
    assert reporter.divergence([image], totals[:0, :1]) == [None]  # no steps


def test_output_folder_naming_for_one_job_and_clashing_names(h5_files, image_files, tmp_path, capsys):
    """--output an existing folder names a single job's image CONTENT_STYLE.png too, and a content named twice (two
    spellings of one file) is one job; two different files that would make the same output name are refused
    before any work."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(image_files["content"].read_bytes())
    (tmp_path / "b" / "x.png").write_bytes(image_files["style"].read_bytes())
    base = ["--style", image_files["style"], "--output", out, "--weights", h5_files["legacy"], "--size", "32",
            "--steps", "2", "--optimizer", "adam", "--quiet"]
    assert main(["--content", tmp_path / "a" / "x.png", tmp_path / "b" / ".." / "a" / "x.png", *base]) == 0
    stem = f"x_{image_files['style'].stem}"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.png"]  # one job: its image, record
    for p in out.iterdir():
        p.unlink()
    assert main(["--content", tmp_path / "a", tmp_path / "b", *base]) == 1
    err = capsys.readouterr().err
    assert f"{out / ('x_' + image_files['style'].stem + '.png')}: would be written by two jobs" in err
    assert list(out.iterdir()) == []


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_a_full_disk_is_one_line_naming_the_log_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    """A log write that fails (simulated ENOSPC) is an error naming the log, and leaves neither the log nor its
    temporary behind (test_images has the same for an image); an OSError from anywhere else still gets one line
    and says what was not written."""

    class FullFile:  # an open file on a full disk
        write, close = _disk_full, lambda self: None
        __enter__, __exit__ = lambda self: self, lambda self, *exc: self.close()

    log = tmp_path / "log.jsonl"
    monkeypatch.setattr(files, "open", lambda fd, *a, **k: (os.close(fd), FullFile())[1], raising=False)
    with pytest.raises(InputError, match=re.escape(f"{log}: cannot write the log (No space left on device)")):
        with reporter.json_lines(log) as write:
            write({"step": 0})
    assert list(tmp_path.iterdir()) == []

    def action():
        raise OSError(28, "No space left on device", str(tmp_path / "x"))

    assert cli.exit_status("prog", action, "o.png was not written") == 1
    err = capsys.readouterr().err
    assert err == f"prog: error: {tmp_path / 'x'}: No space left on device; o.png was not written\n"


def test_log_of_a_multi_scale_run_names_each_records_scale_and_size(h5_files, image_files, tmp_path):
    """With several scales the losses jump where the size changes; each log record says which scale it is from."""
    log = tmp_path / "log.jsonl"
    assert main(["--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
                 "--weights", h5_files["legacy"], "--scale-sizes", "24,32", "--steps", "2", "--optimizer", "adam",
                 "--log", log, "--quiet"]) == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["step"], r["scale"], r["size"]) for r in records] == [
        (0, 0, [18, 24]), (1, 0, [18, 24]), (2, 1, [24, 32]), (3, 1, [24, 32])]  # the content is 48x64


def test_save_every_frames_never_overwrite_inputs_or_the_log(h5_files, image_files, tmp_path, capsys):
    """Frames are OUTPUT_STEM.NNNNN.SUFFIX; a content image, style image or log with the name of a frame the run
    would write is refused before any work, and kept. (Before, --content x.00001.png --output x.png --save-every 1
    replaced the content image with a frame, exit 0.)"""
    frame1, frame2 = tmp_path / "x.00001.png", tmp_path / "x.00002.png"
    for path, source in ((frame1, "content"), (frame2, "style")):
        path.write_bytes(image_files[source].read_bytes())
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    base = ["--weights", h5_files["legacy"], "--size", "32", "--steps", "3", "--optimizer", "adam",
            "--save-every", "1", "--quiet"]
    for extra, role, kept in [
        (["--content", frame1, "--style", image_files["style"], "--output", tmp_path / "x.png"], "content image",
         frame1),
        (["--content", image_files["content"], "--style", frame2, "--output", tmp_path / "link" / "x.png"],
         "style image", frame2),
        (["--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "x.png",
          "--log", frame2], "log", frame2),
    ]:
        before = kept.read_bytes()
        assert main(base + extra) == 1
        err = capsys.readouterr().err
        assert f"{kept}: the --save-every frame of step" in err and f"overwrite this {role}" in err, err
        assert len(err.strip().splitlines()) == 1
        assert kept.read_bytes() == before
    # a plot named as a frame: before, the plot silently replaced the frame of step 2, exit 0
    plot = tmp_path / "y.00002.png"
    assert main(base + ["--content", image_files["content"], "--style", image_files["style"], "--output",
                        tmp_path / "y.png", "--plot", plot]) == 1
    err = capsys.readouterr().err
    assert f"{plot}: the --save-every frame of step 2 of {tmp_path / 'y.png'} would overwrite this plot" in err, err
    assert not list(tmp_path.glob("y*"))
    # frames only at steps 2, 4 of 5: x.00001.png as content is never written, so the run goes ahead
    before = frame1.read_bytes()
    assert main(["--content", frame1, "--style", image_files["style"], "--output", tmp_path / "x.png",
                 "--weights", h5_files["legacy"], "--size", "32", "--steps", "5", "--optimizer", "adam",
                 "--save-every", "2", "--quiet"]) == 0
    assert frame1.read_bytes() == before
    assert (tmp_path / "x.00002.png").read_bytes() != image_files["style"].read_bytes()


def test_plot_writes_a_png_of_the_losses_and_needs_matplotlib(h5_files, image_files, tmp_path, monkeypatch, capsys):
    """--plot PATH saves a PNG of the loss curves; without matplotlib the run is refused before any work, with
    one line that says how to install it."""
    pytest.importorskip("matplotlib")
    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", "32", "--steps", "4", "--optimizer", "adam", "--quiet"]
    assert main(base + ["--output", tmp_path / "a.png", "--plot", tmp_path / "losses.png"]) == 0
    with Image.open(tmp_path / "losses.png") as plot:
        assert plot.format == "PNG" and plot.size == (700, 400)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(base + ["--output", tmp_path / "b.png", "--plot", tmp_path / "b_losses.png"]) == 1
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "nst_jax[plot]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b_losses.png").exists()


def test_two_outputs_of_one_run_that_are_one_file_are_refused(h5_files, image_files, tmp_path, capsys):
    """--log, --plot or the summary (OUTPUT_STEM.json) naming the same file as another output of the run would
    silently replace it (before, --log out.png --output out.png lost the log): refused before any work."""
    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", "32", "--steps", "2", "--optimizer", "adam", "--quiet"]
    for extra, expected in [
        (["--output", tmp_path / "o.png", "--log", tmp_path / "o.png"], "is both the output and the log"),
        (["--output", tmp_path / "o.png", "--log", tmp_path / "o.json"], "is both the summary and the log"),
        (["--output", tmp_path / "o.png", "--plot", tmp_path / "o.png"], "is both the output and the plot"),
    ]:
        assert main(base + extra) == 2  # a usage error, as the parser's (was 1)
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_log_or_plot_naming_the_default_weights_file_is_refused(h5_files, image_files, tmp_path, monkeypatch,
                                                                 capsys):
    """Without --weights the weights are read from the weights folder: a --log or --plot naming that file (present,
    or about to be downloaded) would replace it. Refused before any work, and the file kept. (Before, --plot on the
    auto-chosen file exited 0 and replaced the weights with a PNG.)"""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("NST_JAX_WEIGHTS_DIR", str(folder))
    present = folder / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    present.write_bytes(h5_files["legacy"].read_bytes())
    before = present.read_bytes()
    base = ["--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
            "--size", "32", "--steps", "2", "--optimizer", "adam", "--quiet"]
    for extra in (["--log", present], ["--plot", present],
                  ["--log", folder / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"]):  # not there yet
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert "is both the weights file and the" in err and len(err.strip().splitlines()) == 1, err
    assert present.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == [present.name]
    assert not (tmp_path / "o.png").exists()


def _stop_at_second_batch(monkeypatch, stop):
    """Run the real optimisation for the first batch; `stop()` (raise, or send a signal) once it is written, before
    the second (through the loop's public entry, which the command imports when it runs)."""
    from nst_jax.run import loop

    real, calls = loop.optimize_batches, []

    def optimize_batches(*a, **k):
        for batch in real(*a, **k):
            calls.append(1)
            yield batch
            stop()

    monkeypatch.setattr(loop, "optimize_batches", optimize_batches)
    return calls


@pytest.mark.parametrize("how, status, said", [
    ("ctrl-c", 130, "interrupted; "),
    ("sigterm", 143, "interrupted by SIGTERM; "),
    ("sighup", 129, "interrupted by SIGHUP; "),
])
def test_an_interrupted_batch_keeps_the_jobs_done_and_the_log(h5_files, image_files, tmp_path, monkeypatch, capsys,
                                                               how, status, said):
    """Two jobs run one after another (a lone CPU device): stopped after the first, its image and run record are
    written, the log keeps its steps, nothing temporary is left, and the message says what was not written.
    Before: nothing was written and the log was deleted (Ctrl-C), or the process died leaving .part files
    (SIGTERM, SIGHUP)."""
    import signal

    def stop():
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM if how == "sigterm" else signal.SIGHUP)

    calls = _stop_at_second_batch(monkeypatch, stop)
    out, log = tmp_path / "out", tmp_path / "run.jsonl"
    out.mkdir()
    code = main(["--content", image_files["content"], "--style", image_files["style"], image_files["content"],
                 "--output", out, "--weights", h5_files["legacy"], "--size", 32, "--steps", 4, "--optimizer", "adam",
                 "--log", log, "--quiet"])
    assert (code, len(calls)) == (status, 1)
    assert sorted(p.name for p in out.iterdir()) == ["content_style.json", "content_style.png"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["step"] for line in lines[:-1]] == [0, 1, 2, 3]
    assert lines[-1] == {"event": "interrupted", "status": status}  # marked as such
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run.jsonl"]  # no .part file
    err = capsys.readouterr().err.strip()
    assert err == (f"python -m nst_jax: {said}wrote 1 of 2 images; the log {log} holds the steps so far; "
                   f"{out / 'content_content.png'} not written by this run")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back


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


def test_a_stop_signal_whose_exception_was_swallowed_still_stops_the_run(h5_files, image_files, tmp_path,
                                                                          monkeypatch, capsys):
    """A signal's exception raised inside a callback that swallows exceptions (JAX's garbage-collection callback
    prints "Exception ignored" and goes on) used to be lost: the run finished and exited 0. The signal is
    remembered and acted on at the next safe point: exit 143, no image written."""
    import signal
    import time

    from nst_jax.run import loop
    from nst_jax.stops import Interrupted

    real = loop.optimize_batches

    def optimize_batches(*a, **k):
        try:  # as a callback that swallows the handler's exception
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        except Interrupted:
            pass
        return real(*a, **k)

    monkeypatch.setattr(loop, "optimize_batches", optimize_batches)
    out = tmp_path / "o.png"
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--steps", 4, "--optimizer", "adam", "--quiet"])
    assert code == 143 and not out.exists()
    said = capsys.readouterr().err.strip()
    ckpt, partial = tmp_path / "o.checkpoint.npz", tmp_path / "o.partial.png"
    assert said == (f"python -m nst_jax: interrupted by SIGTERM; the current image {partial} (step 4) and the "
                    f"checkpoint {ckpt} were written; continue with: python -m nst_jax --resume {ckpt}; {out} not "
                    "written by this run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name, partial.name]


@pytest.mark.parametrize("after", [0.5, 1.2])
def test_ctrl_c_while_starting_is_one_line(h5_files, image_files, tmp_path, after):
    """SIGINT during the imports and set-up: one line and exit status 130, no traceback, whenever it comes. Before:
    a KeyboardInterrupt traceback from inside numpy's or JAX's import, or (inside JAX's garbage-collection
    callback) "Exception ignored" and a run that went on."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "nst_jax", "--content", image_files["content"], "--style",
                             image_files["style"], "--output", tmp_path / "o.png", "--weights", h5_files["legacy"],
                             "--size", "64", "--steps", "200", "--quiet"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NST_JAX_HUGE_PAGES": "0"})
    time.sleep(after)  # python is starting or importing (the CLI's imports take a second or more)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err
    assert not (tmp_path / "o.png").exists()


def test_outputs_that_cannot_be_written_are_refused_before_the_run(h5_files, image_files, tmp_path, capsys):
    """A legal 240-character output name (its temporary name used to pass the 255-byte limit), an output under
    /proc, a name over 255 bytes, and a symlink loop as content or output: one line each, before any work. Before:
    the long name and /proc failed after the whole run naming the temporary file; the loops gave tracebacks."""
    long_name = tmp_path / ("y" * 236 + ".png")
    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", 32, "--steps", 2, "--optimizer", "adam", "--quiet"]
    assert main([*base, "--output", long_name]) == 0 and long_name.exists()
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "loopa.png").symlink_to(tmp_path / "loopb.png")
    (tmp_path / "loopb.png").symlink_to(tmp_path / "loopa.png")
    for args, said in (
        (["--output", "/proc/nst_jax_test.png"], "/proc/nst_jax_test.png: cannot write in '/proc'"),
        (["--output", tmp_path / ("z" * 256 + ".png")], "File name too long"),
        (["--content", tmp_path / "loop1", "--output", tmp_path / "o.png"], "cannot follow this path"),
        (["--output", tmp_path / "loopa.png"], "cannot follow this path"),
    ):
        code = main([*base, *args])
        err = capsys.readouterr().err.strip()
        assert code == 1 and said in err and "\n" not in err and "Traceback" not in err, (args, err)
    assert not list(tmp_path.glob(".*part*"))


def test_a_stopped_batch_resumes_from_its_checkpoint_to_the_uninterrupted_images(h5_files, image_files, tmp_path,
                                                                                 monkeypatch, capsys):
    """Issue 37: two jobs in two batches, stopped by SIGINT in the second (step 2 of 6). The first job's image is
    on disk, the second's current image and a checkpoint beside the outputs, the log marked; `--resume CHECKPOINT`
    alone finishes the run: both images equal the uninterrupted run's pixel for pixel, the log holds every step
    and both marks, and the checkpoint and partial image are gone. Before: nothing could be resumed."""

    def command(out, log):
        return ["--content", image_files["content"], "--style", image_files["style"], image_files["content"],
                "--output", out, "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2,
                "--optimizer", "adam", "--batch-size", 1, "--log", log, "--quiet"]

    (whole := tmp_path / "whole").mkdir()
    assert main(command(whole, tmp_path / "whole.jsonl")) == 0
    out, log = tmp_path / "out", tmp_path / "run.jsonl"
    out.mkdir()
    real = stop_in_second_job(monkeypatch)
    assert main(command(out, log)) == 130
    ckpt = out / "nst_jax.checkpoint.npz"
    assert sorted(p.name for p in out.iterdir()) == ["content_content.partial.png", "content_style.json",
                                                     "content_style.png", ckpt.name]
    assert f"continue with: python -m nst_jax --resume {ckpt}" in capsys.readouterr().err
    monkeypatch.setattr(reporter.Reporter, "progress", real)
    assert main(["--resume", ckpt, "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in whole.iterdir())
    for name in ("content_style.png", "content_content.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)), np.asarray(Image.open(whole / name)))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    marks = [line for line in lines if "event" in line]
    assert marks == [{"event": "interrupted", "status": 130, "step": 4, "job": 1},
                     {"event": "resumed", "step": 4, "job": 1}]
    steps = [(line["job"], line["step"]) for line in lines if "event" not in line]
    assert steps == [(0, s) for s in range(6)] + [(1, s) for s in range(6)]


def test_resume_refuses_other_options_a_bad_file_and_changed_inputs(h5_files, image_files, tmp_path, capsys):
    """--resume with other options is a usage error (exit 2); a file that is not a checkpoint, or a checkpoint
    whose content image has changed since, one line and exit 1, nothing written."""
    with pytest.raises(SystemExit) as info:
        main(["--resume", tmp_path / "c.npz", "--size", 64])
    assert info.value.code == 2 and "--resume is given alone" in capsys.readouterr().err
    (tmp_path / "c.npz").write_bytes(b"not a checkpoint")
    assert main(["--resume", tmp_path / "c.npz"]) == 1
    assert "c.npz: not a readable nst_jax checkpoint" in capsys.readouterr().err
    content = tmp_path / "content.png"
    content.write_bytes(image_files["content"].read_bytes())
    out = tmp_path / "o.png"
    _stopped_run(h5_files, {**image_files, "content": content}, tmp_path)
    capsys.readouterr()
    images.save(np.zeros((8, 8, 3)), content)  # changed after the stop
    assert main(["--resume", tmp_path / "o.checkpoint.npz"]) == 1
    err = capsys.readouterr().err
    assert f"the input {content} is missing or changed since the checkpoint was made" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_a_run_that_diverges_later_writes_its_last_image_with_a_finite_loss(h5_files, image_files, tmp_path,
                                                                            monkeypatch, capsys):
    """Issue 37: from the third chunk (of 2 steps) on, everything is NaN, including the loss of the image after
    step 4. The output gets the image after step 2 (vouched for by the second chunk's first loss), the same as a
    2-step run's; the error says which step it is from, the run record says where it diverged, and the exit status
    is 1. Before: nothing was written."""
    import jax.numpy as jnp

    from nst_jax.core import steps
    from nst_jax.run import loop

    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", 32, "--chunk-size", 2, "--optimizer", "adam", "--quiet"]
    assert main([*base, "--steps", 2, "--output", tmp_path / "two.png"]) == 0
    original, calls = steps.run_chunk, []

    def poisoned(*a, **k):
        calls.append(1)
        z, state, terms, lost = original(*a, **k)
        if len(calls) >= 3:
            z, terms, lost = z * jnp.nan, {n: t * jnp.nan for n, t in terms.items()}, jnp.ones_like(lost)
        return z, state, terms, lost

    monkeypatch.setattr(loop, "run_chunk", poisoned)
    out = tmp_path / "o.png"
    assert main([*base, "--steps", 10, "--output", out]) == 1
    err = capsys.readouterr().err
    assert (f"{out}: written from step 2, the last image whose loss was finite: the optimisation diverged (loss not "
            "finite from step 4)") in err and len(err.strip().splitlines()) == 1
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "two.png")))
    run_record = json.loads((tmp_path / "o.json").read_text())
    assert (run_record["diverged_at_step"], run_record["image_step"]) == (4, 2)


def test_an_input_over_the_pixel_limit_is_one_line_before_any_work(h5_files, image_files, tmp_path, capsys):
    """--max-input-pixels (default 10^8) is checked from each image's header (issue 37 defect 6)."""
    out = tmp_path / "o.png"
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--max-input-pixels", 3000, "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and len(err.strip().splitlines()) == 1
    assert f"{image_files['content']}: 64x48 is 3072 pixels, more than the limit of 3000" in err


def stop_in_second_job(monkeypatch):
    """Make the CLI send itself SIGINT once job 1 (the second) has reported step 2; returns the real
    Reporter.progress, to put back."""
    import signal

    real = reporter.Reporter.progress

    def progress(self, p):
        real(self, p)
        if p.first_job == 1 and p.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(reporter.Reporter, "progress", progress)
    return real


def _stopped_run(h5_files, image_files, tmp_path, command=None):
    """A one-job run (or `command`) stopped by SIGINT after its first chunk: returns (its command, the checkpoint
    path)."""
    import signal

    command = command or [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam",
        "--quiet"]
    real = reporter.Reporter.progress

    def progress(self, p):
        real(self, p)
        os.kill(os.getpid(), signal.SIGINT)

    reporter.Reporter.progress = progress
    try:
        assert main(command) == 130
    finally:
        reporter.Reporter.progress = real
    return command, tmp_path / "o.checkpoint.npz"


def test_a_run_with_relative_paths_resumes_from_another_folder(h5_files, image_files, tmp_path, monkeypatch):
    """Found by hostile trials: the inputs' hashes were looked up from the folder --resume ran in, so a run given
    relative paths could only resume from its own folder ("the input content.png is missing or changed"); and a
    resumed run stopped again wrote its checkpoint with the second folder as the run's, so the next resume looked
    for the inputs there. Relative content, a style set A,B, masks and the output, resumed from elsewhere, stopped
    again and resumed again, finish the run in the first folder."""
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    for name in ("content", "style"):
        shutil.copy(image_files[name], run / f"{name}.png")
    shutil.copy(image_files["style"], run / "other.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :4] = 255
    Image.fromarray(mask).save(run / "left.png")
    Image.fromarray(255 - mask).save(run / "right.png")
    monkeypatch.chdir(run)
    _, ckpt = _stopped_run(h5_files, image_files, run, [
        "--content", "content.png", "--style", "style.png,other.png", "--style-masks", "left.png,right.png",
        "--content-mask", "left.png", "--output", "o.png", "--weights", h5_files["legacy"], "--size", 32, "--steps",
        6, "--chunk-size", 2, "--optimizer", "adam", "--quiet"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _stopped_run(h5_files, image_files, run, ["--resume", str(ckpt), "--quiet"])  # stopped again, from elsewhere
    assert ckpt.exists() and main(["--resume", ckpt, "--quiet"]) == 0
    assert (run / "o.png").exists() and not ckpt.exists() and not any(elsewhere.iterdir())


def test_resume_refuses_to_replace_an_output_written_after_the_stop(h5_files, image_files, tmp_path, capsys):
    """Found by a fresh-clone trial: a stopped run's checkpoint survived a later, complete run with the same
    --output (here 2 steps), and `--resume` of the old checkpoint then replaced that newer image with the old run's.
    Now the resume is refused in one line (exit 1), the newer image and its record are kept, and so is the
    checkpoint."""
    command, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    later = [*command[:command.index("--steps")], "--steps", "2", *command[command.index("--steps") + 2:]]
    later.remove("--quiet")
    capsys.readouterr()
    assert main(later) == 0  # another command: the earlier checkpoint is kept, and the closing line says so
    assert f"; kept {ckpt}, the checkpoint of an earlier stopped run of another command" in capsys.readouterr().err
    out = tmp_path / "o.png"
    before = (out.read_bytes(), (tmp_path / "o.json").read_bytes())
    capsys.readouterr()
    assert main(["--resume", ckpt, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: the output {out} was written after this checkpoint was made" in err, err
    assert len(err.strip().splitlines()) == 1
    assert (out.read_bytes(), (tmp_path / "o.json").read_bytes()) == before and ckpt.exists()


def test_a_checkpoint_cannot_make_resume_delete_other_files(h5_files, image_files, tmp_path, capsys):
    """Found by a hostile trial: the checkpoint's list of partial images was trusted, so a tampered list deleted any
    file at the end of --resume. The partial images removed are now this run's own names only."""
    _, ckpt = _stopped_run(h5_files, image_files, tmp_path, [  # not --quiet: the closing line is checked
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam"])
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    with np.load(ckpt) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.asarray(json.dumps({**meta, "partials": [str(victim)]}))
    np.savez(ckpt, **arrays)
    capsys.readouterr()
    assert main(["--resume", ckpt]) == 0
    assert victim.read_text() == "keep me" and not (tmp_path / "o.partial.png").exists() and not ckpt.exists()
    # and the closing line says the run was resumed (the stop took effect at step 4), its time for the last 2 steps
    # only (before: "6 steps in")
    assert f"wrote {tmp_path / 'o.png'} (6 steps, resumed at step 4, in " in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "z": a["z"][:, :, :-1]}, "the checkpoint does not fit this run: its images are"),
    (lambda a: {**a, "history_total": a["history_total"][:1]}, "loss history does not have one row per step"),
    (lambda a: {**a, "state_0": np.asarray([b"x"])}, "optimiser state is not arrays"),
    (lambda a: {**a, "scalars": np.asarray([0, 0, 1000])}, "does not have one row per step"),  # step past the end
])
def test_a_damaged_checkpoint_is_one_line(h5_files, image_files, tmp_path, capsys, change, message):
    """Found by a hostile trial: a checkpoint with a wrong-shaped variable, a short history or a bytes state gave a
    traceback, and a step past the run's end was accepted. Each is now one line, exit 1, nothing written."""
    _, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    capsys.readouterr()
    with np.load(ckpt) as data:
        arrays = change({k: data[k] for k in data.files})
    np.savez(ckpt, **arrays)
    assert main(["--resume", ckpt]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_a_pipe_as_an_input_is_refused_not_waited_on(h5_files, image_files, tmp_path, capsys):
    """Found by a hostile trial: a FIFO as --content, --weights or --resume waited forever."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    base = ["--output", tmp_path / "o.png", "--size", 32, "--steps", 2, "--quiet"]
    for args in (["--content", fifo, "--style", image_files["style"], "--weights", h5_files["legacy"]],
                 ["--content", image_files["content"], "--style", image_files["style"], "--weights", fifo],
                 ["--resume", fifo]):
        assert main([*args, *base] if args[0] != "--resume" else args) == 1
        err = capsys.readouterr().err
        assert f"{fifo}: is not a regular file" in err and len(err.strip().splitlines()) == 1


def test_the_init_image_is_read_within_the_pixel_limit_too(h5_files, image_files, tmp_path, capsys):
    """Found by a hostile trial: --init skipped --max-input-pixels (and the reduced decoding)."""
    out, init = tmp_path / "o.png", tmp_path / "init.png"
    Image.new("RGB", (80, 60), (128, 128, 128)).save(init)
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--init", init, "--max-input-pixels", 4500,
                 "--quiet"])  # the content (3072 px) and the style (4096 px) are within the limit
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and len(err.strip().splitlines()) == 1
    assert f"{init}: 80x60 is 4800 pixels, more than the limit of 4500" in err
