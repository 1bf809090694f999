"""Tests of `nst_jax.cli.plan`: every input, path and process share checked before any work; the multi-host join."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import base_args, main, run_cli
from PIL import Image

from nst_jax import Config
from nst_jax.cli import plan
from nst_jax.io import images


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


def test_each_process_share_batches_its_own_shapes(image_files, tmp_path):
    """Issue 51: 4 jobs in one program with two aspect ratios were refused ("one aspect ratio"). Now each share is
    checked as its process batches it, a batch ending where the content shape changes: every split passes."""
    wide, style = image_files["content"], image_files["style"]
    tall = tmp_path / "tall.png"
    Image.open(wide).transpose(Image.Transpose.ROTATE_90).save(tall)
    loaded = {p: images.load(p) for p in (wide, tall, style)}
    config = Config(size=32, batch_size=4)
    grouped = [(wide, (style,)), (wide, (style,)), (tall, (style,)), (tall, (style,))]  # (content, styles)
    assert plan.check_shares(grouped, loaded, config, count=1) == [range(0, 4)]
    assert plan.check_shares(grouped, loaded, config, count=3) == [range(0, 2), range(2, 3), range(3, 4)]
    assert plan.check_shares([grouped[0], grouped[2], grouped[1], grouped[3]], loaded, config, count=2) == [
        range(0, 2), range(2, 4)]


def test_distributed_without_a_cluster_is_a_one_line_error(h5_files, image_files, tmp_path):
    out = tmp_path / "o.png"
    status, err = run_cli("--content", image_files["content"], "--style", image_files["style"], "--output", out,
                          "--weights", h5_files["legacy"], "--distributed")
    assert status == 1 and "--distributed: could not join" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


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


@pytest.mark.parametrize("init, message", [("folder", "is a folder"), ("/dev/zero", "is not a regular file"),
                                           ("missing.png", "image file not found")])
def test_a_bad_init_is_one_line_before_the_weights_and_writes_nothing(image_files, tmp_path, capsys, init,
                                                                       message):
    """Issue 49, item 15: a folder or /dev/zero as --init was caught only after the weights loaded, and left an
    empty log. Refused while planning, before the weights are read (here a weights file that does not exist)."""
    (tmp_path / "folder").mkdir()
    init = init if init.startswith("/") else tmp_path / init
    assert main(["--content", image_files["content"], "--style", image_files["style"], "--output",
                 tmp_path / "o.png", "--weights", tmp_path / "no-weights.h5", "--init", init, "--log",
                 tmp_path / "log.jsonl", "--size", "32", "--steps", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{init}: " in err and message in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_every_path_the_run_writes_is_checked_before_the_first_step(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 12: the run record's path an existing folder, a frame's path a folder, and frame names past
    the file-name limit all failed after the image was computed. Each is refused before any work."""
    (tmp_path / "o.json").mkdir()
    assert main(base_args(h5_files, image_files) + ["--output", tmp_path / "o.png"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'o.json'}: output path is a folder" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "p.00002.png").mkdir()
    assert main(base_args(h5_files, image_files, steps=4) + ["--output", tmp_path / "p.png", "--save-every", 2]) == 1
    assert f"{tmp_path / 'p.00002.png'}: output path is a folder" in capsys.readouterr().err
    # a batch: the output names are legal (253 bytes), their frames (259 bytes) and partial images (261) are not
    content = tmp_path / ("c" * (253 - len("_style.png")) + ".png")
    content.write_bytes(image_files["content"].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    assert main(["--content", content, image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--steps", 4, "--optimizer", "adam",
                 "--save-every", 2, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "_style.partial.png: file name too long (261 bytes; at most 255)" in err, err
    assert len(err.strip().splitlines()) == 1
    assert list(out.iterdir()) == [] and not (tmp_path / "o.png").exists() and not (tmp_path / "p.png").exists()


@pytest.mark.slow  # a multi-process join that waits out its deadline: CI runs it (pytest -m slow)
def test_joining_an_unreachable_coordinator_ends_in_one_line_and_a_stop_ends_the_wait(image_files, tmp_path):
    """Issue 49, item 6: --coordinator 127.0.0.1:9 --num-processes 2 --process-id 1 waited forever and ignored
    SIGINT and SIGTERM (JAX's wait blocks in C++; its own deadline aborts the process with a C++ trace). The wait
    now ends at --join-timeout with one line, exit 1, and SIGTERM ends it at once with 143."""
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "nst_jax", "--content", str(image_files["content"]), "--style",
               str(image_files["style"]), "--output", str(tmp_path / "o.png"), "--size", "32", "--steps", "2",
               "--coordinator", "127.0.0.1:9", "--num-processes", "2", "--process-id", "1"]
    start = time.monotonic()
    done = subprocess.run(command + ["--join-timeout", "3"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and time.monotonic() - start < 30, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [
        "python -m nst_jax: error: --distributed: no multi-process run to join within 3 s (is the coordinator "
        "127.0.0.1:9 up? --join-timeout sets the wait)"]
    waiting = subprocess.Popen(command + ["--join-timeout", "120"], stderr=subprocess.PIPE, text=True)
    time.sleep(4)
    waiting.send_signal(signal.SIGTERM)
    assert waiting.wait(timeout=20) == 143
    assert "interrupted by SIGTERM" in waiting.stderr.read() and not (tmp_path / "o.png").exists()
