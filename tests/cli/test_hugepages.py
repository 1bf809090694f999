"""The command line's restart with glibc's huge-page tunable (`nst_jax.cli.hugepages`)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from nst_jax.cli import hugepages
from nst_jax.cli.hugepages import AUTO_FROM, huge_page_env, requested_size

GLIBC = (2, 36)


BIG = AUTO_FROM  # the smallest output size at which `auto` restarts


FILES = ["--content", "c.png", "--style", "s.png", "--output", "o.png"]


SHOW = ("import sys; from nst_jax.cli.hugepages import reexec_with_huge_pages as r; r(sys.argv[1:]); import os; "
        "print(os.environ.get('GLIBC_TUNABLES'), 'jax' in sys.modules, sys.argv[1:])")


def test_restart_sets_the_tunable_under_glibc_with_thp_on_request():
    env = huge_page_env({"PATH": "/bin"}, GLIBC, "madvise", BIG)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


@pytest.mark.parametrize("mode", ["1", "on", "yes"])
def test_forced_restart_at_any_size(mode):
    env = huge_page_env({"NST_JAX_HUGE_PAGES": mode}, GLIBC, "madvise", 256)
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    assert huge_page_env({"NST_JAX_HUGE_PAGES": mode}, GLIBC, "madvise", None) is not None


def test_restart_keeps_other_tunables_and_does_not_touch_its_input():
    environ = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    env = huge_page_env(environ, GLIBC, "madvise", BIG)
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert environ == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}


@pytest.mark.parametrize("environ, glibc, thp, size", [
    ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, GLIBC, "madvise", BIG),  # the user's own choice
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}, GLIBC, "madvise", BIG),  # restarted
    ({"NST_JAX_HUGE_PAGES": "0"}, GLIBC, "madvise", BIG),
    ({"NST_JAX_HUGE_PAGES": "off"}, GLIBC, "madvise", BIG),
    ({}, GLIBC, "madvise", BIG - 1),  # auto: below the size where it pays
    ({"NST_JAX_HUGE_PAGES": "auto"}, GLIBC, "madvise", 512),
    ({}, GLIBC, "madvise", None),  # a size the CLI will refuse
    ({"NST_JAX_HUGE_PAGES": "1"}, (2, 34), "madvise", BIG),  # the tunable came with glibc 2.35
    ({}, None, "madvise", BIG),  # musl, macOS, Windows
    ({}, GLIBC, "always", BIG),  # the kernel uses huge pages already
    ({}, GLIBC, "never", BIG),
    ({}, GLIBC, None, BIG),  # no transparent huge pages at all
])
def test_no_restart(environ, glibc, thp, size):
    assert huge_page_env(environ, glibc, thp, size) is None


@pytest.mark.parametrize("argv, size", [
    (FILES, 512),  # Config's default
    (FILES + ["--size", "2048"], 2048),
    (["--size=1024", "--steps", "10", *FILES], 1024),
    (FILES + ["--scale-sizes", "256,512,1024"], 1024),
    (FILES + ["--scale-sizes=128,256,"], 256),
    (FILES + ["--size", "1024", "--scales", "3"], 1024),  # the last scale is the output size
    (FILES + ["--siz", "2048"], 2048),  # argparse's abbreviations, as the CLI accepts them
    (FILES + ["--scale-si", "512,1024"], 1024),
    (FILES + ["--scale-s", "512,1024"], None),  # ambiguous (--scale-sizes, --scale-steps): a usage error
    (FILES + ["--preset", "jcjohnson", "--size", "1536"], 1536),
    (FILES + ["--size", "big"], None),  # usage errors: the CLI reports them, no restart first
    (FILES + ["--size"], None),
    (FILES + ["--size", "8"], None),  # below Config's minimum
    (FILES + ["--size", "1024", "--scale-sizes", "512,2048"], None),  # a conflict
    (["--size", "2048"], None),  # no files
    (["--help"], None),
])
def test_requested_size(argv, size, capsys):
    assert requested_size(argv) == size
    assert capsys.readouterr() == ("", "")  # the parser's messages are the CLI's to print, once


def test_thp_mode_reads_the_bracketed_setting(tmp_path, monkeypatch):
    setting = tmp_path / "enabled"
    setting.write_text("always [madvise] never\n")
    monkeypatch.setattr(hugepages, "THP_SETTING", setting)
    assert hugepages.thp_mode() == "madvise"
    monkeypatch.setattr(hugepages, "THP_SETTING", tmp_path / "missing")
    assert hugepages.thp_mode() is None


def test_glibc_version_agrees_with_platform():
    name, version = platform.libc_ver()
    expected = tuple(int(v) for v in version.split(".")[:2]) if name == "glibc" else None
    assert hugepages.glibc_version() == expected


@pytest.mark.parametrize("switch, size", [(None, 2048), ("0", 2048), (None, 256)])
def test_the_process_restarts_itself_once_before_jax(switch, size):
    """A real restart where this machine allows one (glibc >= 2.35, THP "madvise", a large size): the same command
    runs again, once, with its arguments and the tunable in its environment, and nothing has imported JAX."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "NST_JAX_HUGE_PAGES")}
    if switch is not None:
        env["NST_JAX_HUGE_PAGES"] = switch
    args = [*FILES, "--size", str(size)]
    expected = huge_page_env(env, hugepages.glibc_version(), hugepages.thp_mode(), size)
    out = subprocess.run([sys.executable, "-c", SHOW, *args], capture_output=True, text=True, env=env,
                         check=True).stdout
    tunables = "glibc.malloc.hugetlb=1" if expected else "None"
    assert out.splitlines() == [f"{tunables} False {args}"]
    if switch == "0" or size < AUTO_FROM:
        assert expected is None


def test_importing_the_package_does_not_load_jax():
    code = "import nst_jax, sys; assert 'jax' not in sys.modules; nst_jax.stylize; assert 'jax' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_resumed_run_asks_for_the_size_its_checkpoint_records(tmp_path):
    """Issue 50: `requested_size` could not see --resume, so a resumed 2048 px run lost its huge pages. It reads the
    stopped run's arguments from the checkpoint, with the standard library alone (before JAX is imported)."""
    import numpy as np

    from nst_jax.cli.hugepages import checkpoint_argv
    from nst_jax.run import checkpoint
    from nst_jax.run.records import BatchState

    z = np.zeros((1, 1, 4, 4, 3), np.float32)
    state = BatchState(0, 0, 0, z, [z], {k: np.zeros((0, 1), np.float32) for k in ("content", "style", "tv", "total")},
                       np.asarray([0]), [None])
    argv = ["--content", "c.png", "--style", "s.png", "--output", "o.png", "--size", "2048"]
    checkpoint.save(tmp_path / "c.npz", state, {"argv": argv, "cwd": "/", "weights_sha256": "", "inputs": {},
                                                 "partials": []})
    assert checkpoint_argv(str(tmp_path / "c.npz")) == argv
    assert requested_size(["--resume", str(tmp_path / "c.npz")]) == 2048
    assert requested_size([f"--resume={tmp_path / 'c.npz'}", "--quiet"]) == 2048
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert requested_size(["--resume", str(tmp_path / "bad.npz")]) is None
