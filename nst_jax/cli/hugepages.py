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

import contextlib
import io
import os
import sys
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
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return config_from_args(build_parser().parse_args(argv)).schedule[-1][0]
    except (SystemExit, ValueError):
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
