"""Atomic file writes: a reader (or a crash) never sees a half-written output."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator, TextIO

from ..errors import InputError

NAME_MAX = 255  # bytes in a file name on Linux and macOS file systems


def check_writable_target(path: str | os.PathLike) -> Path:
    """Fail early (before any work) if `path`'s folder does not exist or is not a writable folder."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(path, f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(path, f"output folder {str(folder)!r} is not writable")
    check_name(path)
    try:  # a folder that takes no new file (/proc, /sys, a read-only mount) is refused now, not after the run
        fd, probe = tempfile.mkstemp(prefix=".nst_jax_probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(path, f"cannot write in {str(folder)!r} ({e.strerror or e})") from None
    return path


def check_name(path: str | os.PathLike) -> Path:
    """The checks of `check_writable_target` that concern the name itself, not its folder (cheap: one lstat, for
    the many frames of a run whose folder is checked once): a name the file system takes, and nothing there but a
    file or a link that a write may replace."""
    path = Path(path)
    if len(path.name.encode()) > NAME_MAX:
        raise InputError(path, f"file name too long ({len(path.name.encode())} bytes; at most {NAME_MAX})")
    _check_replaceable(path)
    return path


def _check_replaceable(path: Path) -> None:
    """Refuse (InputError) an output path that names something other than a regular file, a symlink or nothing: a
    write replaces a file or a link of that name (never what a link points to), but a folder, a device node or a
    pipe is never replaced (as root, replacing /dev/full would delete the device)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(path, f"cannot use this path ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise InputError(path, "output path is a folder")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise InputError(path, "output path is not a regular file (a device or a pipe); give a file name")
    if stat.S_ISLNK(mode):  # a link to a file (or to nothing) is replaced; one to a device, a pipe or a folder
        try:                # is a system's or a user's plumbing (/dev/stdout as root), never replaced
            target = os.stat(path).st_mode
        except OSError:
            return
        if not stat.S_ISREG(target):
            raise InputError(path, "output path is a link to a device, a pipe or a folder (writing would replace "
                                   "the link); give a file name")


def check_regular_file(path: str | os.PathLike) -> None:
    """Refuse (InputError) a path that exists but is not a regular file or a folder: a FIFO or a device would make a
    reader wait forever or read without end. (A missing file or a folder is left to the reader's own message.)"""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(path, "is not a regular file (a pipe or a device): give a file")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "the file",
                keep_on: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """Yield a temporary path in the same folder as `path`; on success rename it over `path`, else delete it.

    The temporary name keeps `path`'s suffix, so writers that pick a format from the extension still work. An
    OSError inside the block or in the rename (a full disk) is an InputError naming `path`: "cannot write `what`";
    so the block should hold the writing only. `keep_on`: exceptions on which what was written so far still gets
    `path`'s name before the exception goes on (a log of whole lines, interrupted).
    """
    path = check_writable_target(path)
    fd, tmp = _temporary(path)
    os.close(fd)
    try:
        yield tmp
        _commit(tmp, path)
    except OSError as e:
        raise InputError(path, f"cannot write {what} ({e.strerror or e})") from None
    except keep_on:
        _commit(tmp, path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _temporary(path: Path) -> tuple[int, Path]:
    """A new, open (fd) temporary file beside `path`, keeping its suffix. The name is short: one as long as any
    legal output name would pass NAME_MAX with the random part added."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".part{path.suffix}", dir=path.parent)
    return fd, Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def streamed_file(path: str | os.PathLike, what: str = "the file", append: bool = False) -> Iterator[TextIO]:
    """Yield a line-buffered text file written at `path` as it goes (a log that `tail -f` follows).

    A new file is made under a temporary name and renamed to `path` before the first line, so an earlier file or a
    symlink of that name is replaced, never written through. `append`: continue the regular file at `path` (a
    resumed run's own log), refusing a link or anything that is not a regular file. An OSError while writing is an
    InputError naming `path` ("cannot write `what`"); the file is then removed only if this call made it and it is
    still the file at `path`.
    """
    path = check_writable_target(path)
    if append:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
        except OSError as e:
            raise InputError(path, f"cannot append to {what} ({e.strerror or e})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise InputError(path, f"cannot append to {what}: not a regular file")
    else:
        fd, tmp = _temporary(path)
        try:
            _commit(tmp, path)
        except OSError as e:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise InputError(path, f"cannot write {what} ({e.strerror or e})") from None
    made = None if append else os.fstat(fd)
    try:
        with open(fd, "a", buffering=1) as f:
            yield f
    except OSError as e:
        if made is not None:
            remove_if_made(path, made)
        raise InputError(path, f"cannot write {what} ({e.strerror or e})") from None


def remove_if_made(path: str | os.PathLike, made: os.stat_result) -> bool:
    """Delete `path` if it is still the very file `made` describes (the same device and inode: a file this run
    created), never anything else that took its name meanwhile. Returns whether it was deleted."""
    try:
        now = os.lstat(path)
        if (now.st_dev, now.st_ino) != (made.st_dev, made.st_ino) or not stat.S_ISREG(now.st_mode):
            return False
        os.unlink(path)
    except OSError:
        return False
    return True
