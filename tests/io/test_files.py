"""Tests of `nst_jax.io.files`: only regular files or links are replaced, and a failed write removes only what the
run made."""

import os
import stat

import pytest
from conftest import base_args, main

from nst_jax.cli import reporter
from nst_jax.errors import InputError
from nst_jax.io import files


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_as_the_log_is_refused_and_kept(h5_files, image_files, tmp_path, capsys):
    """Item 1: as root, --log /dev/full deleted the device (the failed write unlinked the path). A node like it,
    made here (character device 1:7, /dev/full), is refused before any work and stays a device."""
    node = tmp_path / "full"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    assert main(base_args(h5_files, image_files) + ["--output", tmp_path / "o.png", "--log", node]) == 1
    err = capsys.readouterr().err
    assert f"{node}: output path is not a regular file" in err and len(err.strip().splitlines()) == 1, err
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert not (tmp_path / "o.png").exists()


def test_a_pipe_as_the_log_or_plot_is_refused_not_waited_on(h5_files, image_files, tmp_path, capsys):
    """A FIFO as --log made the run wait forever for a reader (item 6); as --plot it would be replaced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for option in ("--log", "--plot"):
        assert main(base_args(h5_files, image_files) + ["--output", tmp_path / "o.png", option, fifo]) == 1
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
    assert main(base_args(h5_files, image_files) + ["--output", tmp_path / "o.png", "--log", link]) == 0
    assert target.read_text() == "keep me"
    assert not link.is_symlink() and len(link.read_text().splitlines()) == 2  # two steps, in the new file


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
