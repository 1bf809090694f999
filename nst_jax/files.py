"""Atomic file writes: a reader (or a crash) never sees a half-written output."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import InputError

NAME_MAX = 255  # bytes in a file name on Linux and macOS file systems


def check_writable_target(path: str | os.PathLike) -> Path:
    """Fail early (before any work) if `path`'s folder does not exist or is not a writable folder."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(path, f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(path, f"output folder {str(folder)!r} is not writable")
    if path.is_dir():
        raise InputError(path, "output path is a folder")
    if len(path.name.encode()) > NAME_MAX:
        raise InputError(path, f"file name too long ({len(path.name.encode())} bytes; at most {NAME_MAX})")
    try:  # a folder that takes no new file (/proc, /sys, a read-only mount) is refused now, not after the run
        fd, probe = tempfile.mkstemp(prefix=".nst_jax_probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(path, f"cannot write in {str(folder)!r} ({e.strerror or e})") from None
    return path


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
    # a short temporary name: one as long as any legal output name would pass NAME_MAX with the random part added
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:40]}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
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


def _commit(tmp: Path, path: Path) -> None:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
