"""The run's outputs never destroy a file the run did not create (issue 49, items 1, 2, 4, 5): every path the run
writes is checked before any work against the inputs and the run's other files, only regular files or links are
replaced (a link itself, never its target), and a failed write removes only the file this run made."""

import os
import stat

import pytest

from nst_jax.cli import command as cli
from nst_jax.cli import reporter
from nst_jax.errors import InputError
from nst_jax.io import files


def main(args):
    return cli.main([str(a) for a in args])


def _base(h5_files, image_files, steps=2):
    return ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", "32", "--steps", str(steps), "--optimizer", "adam", "--quiet"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_as_the_log_is_refused_and_kept(h5_files, image_files, tmp_path, capsys):
    """Item 1: as root, --log /dev/full deleted the device (the failed write unlinked the path). A node like it,
    made here (character device 1:7, /dev/full), is refused before any work and stays a device."""
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    assert main(_base(h5_files, image_files) + ["--output", tmp_path / "o.png", "--log", node]) == 1
    err = capsys.readouterr().err
    assert f"{node}: output path is not a regular file" in err and len(err.strip().splitlines()) == 1, err
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert not (tmp_path / "o.png").exists()


def test_a_pipe_as_the_log_or_plot_is_refused_not_waited_on(h5_files, image_files, tmp_path, capsys):
    """A FIFO as --log made the run wait forever for a reader (item 6); as --plot it would be replaced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for option in ("--log", "--plot"):
        assert main(_base(h5_files, image_files) + ["--output", tmp_path / "o.png", option, fifo]) == 1
        err = capsys.readouterr().err
        assert f"{fifo}: output path is not a regular file" in err, err
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_failed_log_write_removes_only_the_log_this_run_made(tmp_path, monkeypatch):
    """A write that fails (simulated ENOSPC) removes the log the run started; if the name was taken by another
    file meanwhile, that file is kept."""

    class FullFile:
        def __init__(self, fd):
            os.close(fd)

        def write(self, *args):
            raise OSError(28, "No space left on device")

        __enter__, __exit__ = lambda self: self, lambda self, *exc: None

    log = tmp_path / "log.jsonl"
    monkeypatch.setattr(files, "open", lambda fd, *a, **k: FullFile(fd), raising=False)
    with pytest.raises(InputError, match="cannot write the log"):
        with reporter.json_lines(log) as write:
            write({"step": 0})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="cannot write the log"):
        with reporter.json_lines(log) as write:
            os.replace(tmp_path / "log.jsonl", tmp_path / "mine")  # the run's log moved away,
            (tmp_path / "log.jsonl").write_text("someone else's file")  # another file took its name
            write({"step": 0})
    assert (tmp_path / "log.jsonl").read_text() == "someone else's file"


def test_a_symlink_as_the_log_is_replaced_and_its_target_kept(h5_files, image_files, tmp_path):
    """Item 5: --log through a symlink overwrote the link's target. A write replaces the link itself."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "log.jsonl"
    link.symlink_to(target)
    assert main(_base(h5_files, image_files) + ["--output", tmp_path / "o.png", "--log", link]) == 0
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and len(link.read_text().splitlines()) == 2  # two steps, in the new file


@pytest.mark.parametrize("option", ["--log", "--plot", "--output"])
def test_no_output_may_name_the_init_image(h5_files, image_files, tmp_path, capsys, option):
    """Item 4: --log or --plot naming the --init image destroyed it, exit 0. Every input is refused as any output's
    path, the --init image too (the --output as well: write a refined picture to a new name)."""
    pytest.importorskip("matplotlib")
    init = tmp_path / "start.png"
    init.write_bytes(image_files["content"].read_bytes())
    before = init.read_bytes()
    args = _base(h5_files, image_files) + ["--init", init, "--output", tmp_path / "o.png"]
    if option == "--output":
        args[args.index(tmp_path / "o.png")] = init
    else:
        args += [option, init]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"would overwrite the init image {init}" in err and len(err.strip().splitlines()) == 1, err
    assert init.read_bytes() == before and not (tmp_path / "o.png").exists()


def test_resume_refuses_a_run_whose_output_would_replace_the_checkpoint_read(h5_files, image_files, tmp_path,
                                                                            capsys):
    """The checkpoint a run resumes from is an input too: moved to the name of the stopped run's --log, resuming
    would have streamed the log over it (and removed it at the end). Refused; the checkpoint kept."""
    from test_cli import _stopped_run

    log = tmp_path / "run.jsonl"
    _, ckpt = _stopped_run(h5_files, image_files, tmp_path, [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam",
        "--log", log, "--quiet"])
    os.replace(ckpt, log)
    before = log.read_bytes()
    capsys.readouterr()
    assert main(["--resume", log]) == 1
    err = capsys.readouterr().err
    assert f"{log}: would overwrite the checkpoint {log}" in err and len(err.strip().splitlines()) == 1, err
    assert log.read_bytes() == before and not (tmp_path / "o.png").exists()


def test_a_save_every_frame_never_replaces_another_jobs_output(h5_files, image_files, tmp_path, capsys):
    """Item 2: styles s.00005.png and s.png in one batch: job 1 writes out/c_s.00005.png, and job 2's step-5 frame
    has that very name (it replaced job 1's result, exit 0; in the other order job 2's output replaced the frame).
    Refused before any work, whichever order."""
    c, s, s5 = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "s.00005.png"
    c.write_bytes(image_files["content"].read_bytes())
    for path in (s, s5):
        path.write_bytes(image_files["style"].read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    for styles in ([s5, s], [s, s5]):
        assert main(["--content", c, "--style", *styles, "--output", out, "--weights", h5_files["legacy"],
                     "--size", "32", "--steps", "10", "--optimizer", "adam", "--save-every", "5", "--quiet"]) == 1
        err = capsys.readouterr().err
        assert (f"{out / 'c_s.00005.png'}: the --save-every frame of step 5 of {out / 'c_s.png'} would overwrite "
                f"this output") in err and len(err.strip().splitlines()) == 1, err
        assert list(out.iterdir()) == []


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
    assert main(_base(h5_files, image_files) + ["--output", tmp_path / "o.png"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'o.json'}: output path is a folder" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "p.00002.png").mkdir()
    assert main(_base(h5_files, image_files, steps=4) + ["--output", tmp_path / "p.png", "--save-every", 2]) == 1
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


def test_a_name_is_checked_without_its_folder():
    """`files.check_name`, the check of each --save-every frame: the name's length and what is there now."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        assert files.check_name(Path(folder) / ("x" * 251 + ".png")) == Path(folder) / ("x" * 251 + ".png")
        with pytest.raises(InputError, match=r"file name too long \(256 bytes; at most 255\)"):
            files.check_name(Path(folder) / ("x" * 246 + ".00002.png"))
        with pytest.raises(InputError, match="output path is a folder"):
            files.check_name(Path(folder))


def _meta_changed(arrays, **changes):
    import json

    import numpy as np

    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if value is KeyError:
            meta.pop(key)
        else:
            meta[key] = value
    return {**arrays, "meta": np.asarray(json.dumps(meta))}


def _nan_in(arrays, name):
    import numpy as np

    a = arrays[name].copy()
    a.reshape(-1)[0] = np.nan
    return {**arrays, name: a}


@pytest.mark.parametrize("change, message", [
    (lambda a: _meta_changed(a, argv=KeyError), "its metadata has no 'argv'"),  # item 9: KeyError tracebacks
    (lambda a: _meta_changed(a, weights_sha256=KeyError), "its metadata has no 'weights_sha256'"),
    (lambda a: _meta_changed(a, inputs=["c.png"]), "its metadata's 'inputs' is not a mapping of paths to hashes"),
    (lambda a: _meta_changed(a, cwd=None), "its metadata's 'cwd' is not a string"),
    (lambda a: _nan_in(a, "z"), "its variables hold NaN where the loss was finite"),  # item 17: resumed, exit 0
    (lambda a: _nan_in(a, "state_1"), "its optimiser state hold NaN where the loss was finite"),
])
def test_a_tampered_checkpoint_is_one_line_and_writes_nothing(h5_files, image_files, tmp_path, capsys, change,
                                                              message):
    """Issue 49, items 9 and 17: a checkpoint whose metadata lacks argv or weights_sha256, has inputs as a list or
    cwd null gave KeyError, AttributeError or TypeError tracebacks; one with NaN in the image or the optimiser state
    (Adam's first moment, state_1) beside a finite loss resumed and exited 0 with a frozen loss."""
    import numpy as np
    from test_cli import _stopped_run

    _, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    capsys.readouterr()
    with np.load(ckpt) as data:
        arrays = change({k: data[k] for k in data.files})
    np.savez(ckpt, **arrays)
    assert main(["--resume", ckpt]) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: not a readable nst_jax checkpoint ({message}" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o.png").exists()


def test_a_stop_keeps_the_checkpoint_when_a_partial_image_cannot_be_written(h5_files, image_files, tmp_path,
                                                                           capsys):
    """Issue 49, item 13: Ctrl-C when the partial image could not be written (here a folder of its name made during
    the run) silently lost the checkpoint too. The checkpoint is written, and the line says what was not."""
    from test_cli import _stopped_run

    from nst_jax.cli import reporter as reporter_module

    real = reporter_module.Reporter.stopped

    def stopped(self, state):  # the partial image's name taken by a folder after the planning checked it
        (tmp_path / "o.partial.png").mkdir(exist_ok=True)
        return real(self, state)

    reporter_module.Reporter.stopped = stopped
    try:
        command, ckpt = _stopped_run(h5_files, image_files, tmp_path, [
            "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
            "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam"])
    finally:
        reporter_module.Reporter.stopped = real
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"the current image {tmp_path / 'o.partial.png'} was not written (output path is a folder)" in err, err
    import re

    assert re.search(re.escape(f"the checkpoint {ckpt} (step ") + r"\d+" + re.escape(
        f") was written; continue with: python -m nst_jax --resume {ckpt}; {tmp_path / 'o.png'} not written"), err), err
    assert ckpt.is_file() and (tmp_path / "o.partial.png").is_dir()


def test_a_fresh_run_removes_the_stale_checkpoint_of_its_own_outputs(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 18: a fresh run after an interrupted one left the stale o.checkpoint.npz and o.partial.png
    beside its new output. The same command run again from the start removes them when it finishes; a file at the
    checkpoint's name that is not a checkpoint is kept (another command's checkpoint is kept and named:
    test_cli.py::test_resume_refuses_to_replace_an_output_written_after_the_stop)."""
    from test_cli import _stopped_run

    command, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    partial = tmp_path / "o.partial.png"
    assert ckpt.is_file() and partial.is_file()
    assert main(command) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.png"]
    ckpt.write_text("my notes, not a checkpoint")
    assert main(command) == 0
    assert ckpt.read_text() == "my notes, not a checkpoint"


def test_closing_lines_say_what_was_written(h5_files, image_files, tmp_path, monkeypatch, capsys):
    """Issue 49, item 8: Ctrl-C while --plot drew said "o.png was not written" when it was; and a resumed batch
    whose earlier image had been deleted said "wrote 2 images" with one missing."""

    from nst_jax.cli import reporter as reporter_module

    pytest.importorskip("matplotlib")

    def stop_while_drawing(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(reporter_module, "plot_losses", stop_while_drawing)
    out = tmp_path / "o.png"
    assert main(_base(h5_files, image_files) + ["--output", out, "--plot", tmp_path / "p.png"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"python -m nst_jax: interrupted; wrote {out}; the plot {tmp_path / 'p.png'} was not written", err
    assert out.is_file()
    monkeypatch.undo()

    folder = tmp_path / "out"
    folder.mkdir()
    command = ["--content", image_files["content"], "--style", image_files["style"], image_files["content"],
               "--output", folder, "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2,
               "--optimizer", "adam", "--batch-size", 1]
    from test_cli import stop_in_second_job

    real = stop_in_second_job(monkeypatch)
    assert main(command) == 130
    monkeypatch.setattr(reporter_module.Reporter, "progress", real)
    (folder / "content_style.png").unlink()  # the first job's image, written before the stop
    capsys.readouterr()
    assert main(["--resume", folder / "nst_jax.checkpoint.npz"]) == 0
    err = capsys.readouterr().err
    assert (f"wrote 1 image to {folder} (0 more from before the stop; {folder / 'content_style.png'}, written "
            "before the stop, is missing)") in err, err


def test_one_checkpoint_is_resumed_by_one_run_at_a_time(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 11: two --resume runs of one checkpoint both ran, appending the same steps twice to one log.
    While one process holds the checkpoint, another's --resume is one line, exit 1, and writes nothing."""
    import subprocess
    import sys

    from test_cli import _stopped_run

    _, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'rb'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(ckpt)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["--resume", ckpt]) == 1
        err = capsys.readouterr().err
        assert f"{ckpt}: another run is resuming this checkpoint now" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "o.png").exists() and ckpt.exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(["--resume", ckpt]) == 0 and (tmp_path / "o.png").exists()


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


def test_a_checkpoint_claiming_a_huge_image_is_refused_before_reading_it(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 10: a 1.3 MB checkpoint whose image array claimed 9000x9000 was allocated (1.26 GB) before
    its refusal. The sizes are checked from the .npy headers first; compressed arrays (save never writes them) are
    refused too."""
    import io
    import zipfile

    import numpy as np
    from test_cli import _stopped_run

    _, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    with np.load(ckpt) as data:
        arrays = {k: data[k] for k in data.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1, 1, 9000, 9000, 3)})
    with zipfile.ZipFile(ckpt, "w") as archive:  # every array as save stores it, but z's header lies
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", header.getvalue() + bytes(1_000_000) if name == "z" else buffer.getvalue())
    capsys.readouterr()
    assert main(["--resume", ckpt]) == 1
    err = capsys.readouterr().err
    assert "its array z.npy claims 972000000 bytes in a member of" in err and len(err.strip().splitlines()) == 1, err
    with zipfile.ZipFile(ckpt, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    assert main(["--resume", ckpt]) == 1
    assert "is compressed; nst_jax stores checkpoints uncompressed" in capsys.readouterr().err


def _stopped_with_log(h5_files, image_files, tmp_path):
    from test_cli import _stopped_run

    log = tmp_path / "run.jsonl"
    command, ckpt = _stopped_run(h5_files, image_files, tmp_path, [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam",
        "--log", log, "--quiet"])
    return command, ckpt, log


def test_resume_never_appends_to_a_log_that_is_not_the_stopped_runs(h5_files, image_files, tmp_path, capsys):
    """A second hostile trial: after a stop, another run wrote its own log at the same --log path (or the user put
    a hard link to another file there), and --resume appended the stopped run's steps to it. Refused, file kept."""
    _, ckpt, log = _stopped_with_log(h5_files, image_files, tmp_path)
    own = log.read_bytes()
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    log.unlink()
    os.link(precious, log)
    capsys.readouterr()
    assert main(["--resume", ckpt]) == 1
    err = capsys.readouterr().err
    assert f"the log {log} is missing or changed since the checkpoint was made" in err, err
    assert precious.read_text() == "keep me" and not (tmp_path / "o.png").exists()
    log.unlink()
    log.write_bytes(own)  # the stopped run's own log back: the resume appends to it
    assert main(["--resume", ckpt]) == 0 and log.read_bytes().startswith(own) and len(log.read_bytes()) > len(own)


def test_resume_removes_only_what_the_stopped_run_wrote(h5_files, image_files, tmp_path):
    """A second hostile trial: --resume deleted o.partial.png although a user's file had replaced it, and resuming
    a copy of the checkpoint deleted the copy (the user's) and left the run's own. Now a partial image is removed
    only while it is the image the stopped run wrote (its SHA-256), and a checkpoint only at the run's own path."""
    from test_cli import _stopped_run

    _, ckpt = _stopped_run(h5_files, image_files, tmp_path)
    partial = tmp_path / "o.partial.png"
    partial.write_bytes(b"a user's picture now")
    copy = tmp_path / "keep.npz"
    copy.write_bytes(ckpt.read_bytes())
    assert main(["--resume", copy]) == 0
    assert copy.is_file() and partial.read_bytes() == b"a user's picture now"
    assert not ckpt.exists()  # the run's own checkpoint, used up
