"""Tests of `nst_jax.cli.resume`: --resume continues a stopped run, and refuses what it must."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import main, stop_in_second_job, stopped_run
from PIL import Image

from nst_jax.cli import reporter
from nst_jax.io import images


def _stopped_with_log(h5_files, image_files, tmp_path):
    log = tmp_path / "run.jsonl"
    command, ckpt = stopped_run(h5_files, image_files, tmp_path, [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam",
        "--log", log, "--quiet"])
    return command, ckpt, log


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
    stopped_run(h5_files, {**image_files, "content": content}, tmp_path)
    capsys.readouterr()
    images.save(np.zeros((8, 8, 3)), content)  # changed after the stop
    assert main(["--resume", tmp_path / "o.checkpoint.npz"]) == 1
    err = capsys.readouterr().err
    assert f"the input {content} is missing or changed since the checkpoint was made" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


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
    _, ckpt = stopped_run(h5_files, image_files, run, [
        "--content", "content.png", "--style", "style.png,other.png", "--style-masks", "left.png,right.png",
        "--content-mask", "left.png", "--output", "o.png", "--weights", h5_files["legacy"], "--size", 32, "--steps",
        6, "--chunk-size", 2, "--optimizer", "adam", "--quiet"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    stopped_run(h5_files, image_files, run, ["--resume", str(ckpt), "--quiet"])  # stopped again, from elsewhere
    assert ckpt.exists() and main(["--resume", ckpt, "--quiet"]) == 0
    assert (run / "o.png").exists() and not ckpt.exists() and not any(elsewhere.iterdir())


def test_resume_refuses_to_replace_an_output_written_after_the_stop(h5_files, image_files, tmp_path, capsys):
    """Found by fresh-clone trials: a stopped run's checkpoint survived a later, complete run with the same --output,
    and `--resume` of the old checkpoint then replaced that newer image; and an image put at the output's name after
    the stop with an old modification time (as `cp -p` or tar leave it) was replaced. Now another command with the
    same --output is refused while the checkpoint is there (a stop of it would replace the checkpoint), and the
    checkpoint records each output's SHA-256 (or its absence), so a resume over any output changed since is
    refused in one line (exit 1), keeping the image and the checkpoint."""
    command, ckpt = stopped_run(h5_files, image_files, tmp_path)
    later = [*command[:command.index("--steps")], "--steps", "2", *command[command.index("--steps") + 2:]]
    capsys.readouterr()
    assert main(later) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: holds a stopped run of another command; resume it (python -m nst_jax --resume {ckpt})" in err
    out = tmp_path / "o.png"
    assert not out.exists()
    out.write_bytes(image_files["content"].read_bytes())  # someone's image, dated long before the checkpoint
    os.utime(out, (978307200, 978307200))
    before = out.read_bytes()
    assert main(["--resume", ckpt, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: the output {out} was written after this checkpoint was made" in err, err
    assert len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before and ckpt.exists()


def test_a_checkpoint_cannot_make_resume_delete_other_files(h5_files, image_files, tmp_path, capsys):
    """Found by a hostile trial: the checkpoint's list of partial images was trusted, so a tampered list deleted any
    file at the end of --resume. The partial images removed are now this run's own names only."""
    _, ckpt = stopped_run(h5_files, image_files, tmp_path, [  # not --quiet: the closing line is checked
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


def test_resume_refuses_a_run_whose_output_would_replace_the_checkpoint_read(h5_files, image_files, tmp_path,
                                                                            capsys):
    """The checkpoint a run resumes from is an input too: moved to the name of the stopped run's --log, resuming
    would have streamed the log over it (and removed it at the end). Refused; the checkpoint kept."""
    log = tmp_path / "run.jsonl"
    _, ckpt = stopped_run(h5_files, image_files, tmp_path, [
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


def test_one_checkpoint_is_resumed_by_one_run_at_a_time(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 11: two --resume runs of one checkpoint both ran, appending the same steps twice to one log.
    While one process holds the checkpoint, another's --resume is one line, exit 1, and writes nothing."""

    _, ckpt = stopped_run(h5_files, image_files, tmp_path)
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
    only while it is the image the stopped run wrote (its SHA-256), and a checkpoint only at the run's own path.
    (A user's file at the partial image's name, which a stop of the resumed run would replace, is now refused
    before any work: a third trial.)"""
    _, ckpt = stopped_run(h5_files, image_files, tmp_path)
    partial = tmp_path / "o.partial.png"
    partial.write_bytes(b"a user's picture now")
    copy = tmp_path / "keep.npz"
    copy.write_bytes(ckpt.read_bytes())
    assert main(["--resume", copy]) == 1
    assert partial.read_bytes() == b"a user's picture now"
    kept = tmp_path / "kept.png"
    partial.rename(kept)
    assert main(["--resume", copy]) == 0
    assert copy.is_file() and kept.read_bytes() == b"a user's picture now"
    assert not ckpt.exists()  # the run's own checkpoint, used up
