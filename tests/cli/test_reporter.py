"""Tests of `nst_jax.cli.reporter`: the log, the closing lines, divergence, and what a stopped run writes."""

import json
import os
import re

import numpy as np
import pytest
from conftest import base_args, main, stop_in_second_job, stopped_run
from PIL import Image

from nst_jax.cli import command as cli
from nst_jax.cli import reporter
from nst_jax.errors import InputError
from nst_jax.io import files


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


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


def test_a_stop_keeps_the_checkpoint_when_a_partial_image_cannot_be_written(h5_files, image_files, tmp_path,
                                                                           capsys):
    """Issue 49, item 13: Ctrl-C when the partial image could not be written (here a folder of its name made during
    the run) silently lost the checkpoint too. The checkpoint is written, and the line says what was not."""

    from nst_jax.cli import reporter as reporter_module

    real = reporter_module.Reporter.stopped

    def stopped(self, state):  # the partial image's name taken by a folder after the planning checked it
        (tmp_path / "o.partial.png").mkdir(exist_ok=True)
        return real(self, state)

    reporter_module.Reporter.stopped = stopped
    try:
        command, ckpt = stopped_run(h5_files, image_files, tmp_path, [
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
    beside its new output. The same command run again from the start removes them when it finishes. A file at the
    checkpoint's name that is not a checkpoint, which a stop would replace, is refused before any work and kept
    (another command's checkpoint too: cli/test_resume.py::test_resume_refuses_to_replace_an_output_written_after_
    the_stop)."""

    command, ckpt = stopped_run(h5_files, image_files, tmp_path)
    partial = tmp_path / "o.partial.png"
    assert ckpt.is_file() and partial.is_file()
    assert main(command) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "o.png"]
    capsys.readouterr()
    ckpt.write_text("my notes, not a checkpoint")
    assert main(command) == 1
    assert ckpt.read_text() == "my notes, not a checkpoint"
    err = capsys.readouterr().err
    assert f"{ckpt}: exists and is not an nst_jax checkpoint; a stop would write" in err and len(err.splitlines()) == 1


def test_closing_lines_say_what_was_written(h5_files, image_files, tmp_path, monkeypatch, capsys):
    """Issue 49, item 8: Ctrl-C while --plot drew said "o.png was not written" when it was; and a resumed batch
    whose earlier image had been deleted said "wrote 2 images" with one missing."""

    from nst_jax.cli import reporter as reporter_module

    pytest.importorskip("matplotlib")

    def stop_while_drawing(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(reporter_module, "plot_losses", stop_while_drawing)
    out = tmp_path / "o.png"
    assert main(base_args(h5_files, image_files) + ["--output", out, "--plot", tmp_path / "p.png"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"python -m nst_jax: interrupted; wrote {out}; the plot {tmp_path / 'p.png'} was not written", err
    assert out.is_file()
    monkeypatch.undo()

    folder = tmp_path / "out"
    folder.mkdir()
    command = ["--content", image_files["content"], "--style", image_files["style"], image_files["content"],
               "--output", folder, "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2,
               "--optimizer", "adam", "--batch-size", 1]

    real = stop_in_second_job(monkeypatch)
    assert main(command) == 130
    monkeypatch.setattr(reporter_module.Reporter, "progress", real)
    (folder / "content_style.png").unlink()  # the first job's image, written before the stop
    capsys.readouterr()
    assert main(["--resume", folder / "nst_jax.checkpoint.npz"]) == 0
    err = capsys.readouterr().err
    assert (f"wrote 1 image to {folder} (0 more from before the stop; {folder / 'content_style.png'}, written "
            "before the stop, is missing)") in err, err
