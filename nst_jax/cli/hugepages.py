"""Transparent huge pages for the command line: restart `python -m nst_jax` with glibc's malloc told to use them.

XLA:CPU's buffers at high resolution are larger than glibc's mmap threshold, so every execution of a compiled chunk
maps them afresh, and the kernel faults them in 4 KiB at a time. With `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
(glibc 2.35 and later) malloc asks for transparent huge pages (`madvise(MADV_HUGEPAGE)`), and a 2 MiB page is one
fault. glibc reads its tunables only when the process starts, so the command line re-executes itself once, before
importing JAX, with the tunable added. Nothing numeric changes. It pays only at large sizes (docs/experiments.md,
"Huge pages", has the measurements), so by default (`NST_JAX_HUGE_PAGES` unset or `auto`) the restart happens only
when the output's longer side is at least `AUTO_FROM`; `NST_JAX_HUGE_PAGES=1` restarts at every size, `0` never.
The Python API cannot do this for its own process: start Python (or Jupyter) with
`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` instead.

Standard library only (and `nst_jax.cli.options`, which is too): this runs before JAX is imported.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Mapping, Optional, Sequence

from .options import build_parser, config_from_args  # standard library only

ENV = "NST_JAX_HUGE_PAGES"
AUTO_FROM = 1024  # px, the output's longer side from which `auto` restarts
TUNABLE = "glibc.malloc.hugetlb"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def glibc_version() -> Optional[tuple[int, int]]:
    """(major, minor) of the C library if it is glibc (None on musl, macOS, Windows)."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # e.g. "glibc 2.36"
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


def thp_mode() -> Optional[str]:
    """The kernel's transparent huge page setting, "always", "madvise" or "never" (None if it has none)."""
    try:
        text = THP_SETTING.read_text()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")] if "[" in text and "]" in text else None


def requested_size(argv: Sequence[str]) -> Optional[int]:
    """The output's longer side that command-line arguments `argv` ask for (the last scale's size), read by the
    CLI's own parser (`nst_jax.cli.options`); None if the arguments are not a run (`--help`, a usage error: the CLI
    then reports it) or leave the size to the content image."""
    argv = list(argv)
    resumed = [a.split("=", 1)[1] for a in argv if a.startswith("--resume=")] + [
        b for a, b in zip(argv, argv[1:]) if a == "--resume"]
    if resumed:  # the stopped run's own arguments, from its checkpoint (a resumed run keeps its huge pages)
        argv = checkpoint_argv(resumed[-1])
        if argv is None:
            return None
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return config_from_args(build_parser().parse_args(argv)).schedule[-1][0]
    except (SystemExit, ValueError):
        return None


def checkpoint_argv(path: str) -> Optional[list[str]]:
    """The command-line arguments a checkpoint (`run.checkpoint`'s .npz) records, read with the standard library
    alone (its `meta` member: a .npy of one unicode string, JSON); None if that cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as member:
            data = member.read(1 << 20)
        if not data.startswith(b"\x93NUMPY"):
            return None
        width = 2 if data[6] == 1 else 4  # the header's length: 2 bytes in .npy version 1, 4 in 2 and 3
        length = int.from_bytes(data[8:8 + width], "little")
        header = ast.literal_eval(data[8 + width:8 + width + length].decode("latin1"))
        if header.get("descr", "")[:2] != "<U" or header.get("shape") != ():
            return None
        text = data[8 + width + length:].decode("utf-32-le").rstrip("\x00")
        argv = json.loads(text).get("argv")
        return argv if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None
    except (OSError, ValueError, SyntaxError, KeyError, AttributeError, IndexError, zipfile.BadZipFile,
            NotImplementedError, RuntimeError):
        return None


def huge_page_env(environ: Mapping[str, str], glibc: Optional[tuple[int, int]], thp: Optional[str],
                  size: Optional[int]) -> Optional[dict[str, str]]:
    """The environment to re-execute with, or None when a restart would not help or is not wanted.

    A restart helps only under glibc >= 2.35 (the tunable's first release) with transparent huge pages available
    on request ("madvise"; under "always" the kernel already uses them). It is skipped when `GLIBC_TUNABLES`
    already names the tunable (the user's choice, or the restarted process itself), when `NST_JAX_HUGE_PAGES` is
    0 (off, false, no), and by default (unset, `auto`) when the output `size` is below `AUTO_FROM` or unknown;
    `NST_JAX_HUGE_PAGES=1` (on, true, yes) restarts at any size."""
    mode = environ.get(ENV, "auto").strip().lower()
    if mode in ("0", "off", "false", "no"):
        return None
    if mode not in ("1", "on", "true", "yes") and (size is None or size < AUTO_FROM):
        return None
    if glibc is None or glibc < (2, 35) or thp != "madvise":
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if any(item.split("=")[0] == TUNABLE for item in tunables.split(":")):
        return None
    env = dict(environ)
    env["GLIBC_TUNABLES"] = f"{tunables}:{TUNABLE}=1" if tunables else f"{TUNABLE}=1"
    return env


def reexec_with_huge_pages(args: Sequence[str]) -> None:
    """Replace this process by the same command with the tunable set, when `huge_page_env` says so for the
    command-line arguments `args` (sys.argv[1:]). Returns only if it does not restart (or cannot: then the run
    goes on with the default allocator)."""
    env = huge_page_env(os.environ, glibc_version(), thp_mode(), requested_size(args))
    argv = getattr(sys, "orig_argv", None)  # the interpreter's own command line, flags included (Python 3.10+)
    if env is None or not argv or not sys.executable:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError:
        return
