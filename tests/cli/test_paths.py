"""Tests of `nst_jax.cli.paths`: the no-overwrite rules between a run's inputs and everything it writes."""

import json
import os
from pathlib import Path

import pytest
from conftest import base_args, main, run_cli

from nst_jax.io import images


def test_several_jobs_need_an_output_folder(h5_files, image_files, tmp_path):
    status, err = run_cli("--content", image_files["content"], image_files["style"], "--style",
                          image_files["style"], "--output", tmp_path / "o.png", "--weights", h5_files["legacy"])
    assert status == 2 and "must be an existing folder" in err and "Traceback" not in err  # a usage error (was 1)


def test_outputs_never_overwrite_inputs(h5_files, image_files, tmp_path, capsys):
    """--output or --log naming a content, style or weights file (by any spelling of its path) is refused before
    any work, and the file is kept (the --init image too: tests/cli/test_paths.py)."""
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
    # frames only at steps 2, 4 of 5: x.00001.png as content is never written; x.00002.png, a file nst_jax did not
    # write (a copy of the style image), would be: refused and kept (found by a hostile trial: it was replaced,
    # exit 0); once it is moved away the run goes ahead
    command = ["--content", frame1, "--style", image_files["style"], "--output", tmp_path / "x.png", "--weights",
               h5_files["legacy"], "--size", "32", "--steps", "5", "--optimizer", "adam", "--save-every", "2",
               "--quiet"]
    assert main(command) == 1
    assert f"{frame2}: exists and is not an image nst_jax wrote" in capsys.readouterr().err
    assert frame2.read_bytes() == image_files["style"].read_bytes()
    frame2.unlink()
    before = frame1.read_bytes()
    assert main(command) == 0
    assert frame1.read_bytes() == before and images.written_by_nst_jax(frame2)


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


@pytest.mark.parametrize("option", ["--log", "--plot", "--output"])
def test_no_output_may_name_the_init_image(h5_files, image_files, tmp_path, capsys, option):
    """Item 4: --log or --plot naming the --init image destroyed it, exit 0. Every input is refused as any output's
    path, the --init image too (the --output as well: write a refined picture to a new name)."""
    pytest.importorskip("matplotlib")
    init = tmp_path / "start.png"
    init.write_bytes(image_files["content"].read_bytes())
    before = init.read_bytes()
    args = base_args(h5_files, image_files) + ["--init", init, "--output", tmp_path / "o.png"]
    if option == "--output":
        args[args.index(tmp_path / "o.png")] = init
    else:
        args += [option, init]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"would overwrite the init image {init}" in err and len(err.strip().splitlines()) == 1, err
    assert init.read_bytes() == before and not (tmp_path / "o.png").exists()


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


def test_a_link_to_a_device_or_a_pipe_is_never_replaced(h5_files, image_files, tmp_path, capsys):
    """Found by a hostile trial: --log /dev/stdout (as root) replaced the system's link /dev/stdout with the log, exit
    0; so did --log or --output naming any link to a device or a pipe. Such a link is now refused in one line and
    kept; a link to a file is still replaced, never written through (the rule the docs give)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, option in ((Path("/dev/null"), "--log"), (fifo, "--output"), (tmp_path, "--log")):
        link = tmp_path / f"link-{option[2:]}.png"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        args = base_args(h5_files, image_files) + ["--output", tmp_path / "o.png"] + [option, link]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert f"{link}: output path is a link to a device, a pipe or a folder" in err, err
        assert len(err.strip().splitlines()) == 1 and link.is_symlink() and os.readlink(link) == str(target)
    assert not (tmp_path / "o.png").exists()


def test_files_at_derived_names_that_nst_jax_did_not_write_are_refused_and_kept(h5_files, image_files, tmp_path,
                                                                               capsys):
    """Found by a hostile trial: --output other.png replaced a user's other.json (the run record's name), and a
    stopped run replaced a user's k.checkpoint.npz and k.partial.png, all without a word. Names the run derives
    from --output are now checked before any work: a record must be an nst_jax run record, a partial image or
    frame an image nst_jax wrote, a checkpoint this command's; anything else is refused in one line and kept. What
    nst_jax wrote there itself is replaced as before (the run's own rerun)."""
    out = tmp_path / "k.png"
    args = base_args(h5_files, image_files) + ["--output", out]
    for name, problem in (("k.json", "exists and is not an nst_jax run record"),
                          ("k.partial.png", "exists and is not an image nst_jax wrote"),
                          ("k.checkpoint.npz", "exists and is not an nst_jax checkpoint")):
        path = tmp_path / name
        path.write_text("a user's notes")
        assert main(args) == 1
        err = capsys.readouterr().err
        assert f"{path}: {problem}" in err and len(err.strip().splitlines()) == 1, err
        assert path.read_text() == "a user's notes" and not out.exists()
        path.unlink()
    assert main(args) == 0 and main(args) == 0  # its own record, replaced by the rerun
    assert json.loads((tmp_path / "k.json").read_text())["output"] == str(out)
