"""The compilation cache's repair touches JAX's own entries only (issue 49, items 3, 6 and 10)."""

import os
import subprocess
import sys
import textwrap
import zlib

import pytest

from nst_jax.io.compile_cache import is_entry_name, remove_damaged_entries

KEY = "0123456789abcdef" * 4  # a SHA-256 in hex, as JAX's cache keys end


def test_entry_names_are_jaxs_own():
    assert is_entry_name(f"jit_step-{KEY}-cache") and is_entry_name(f"jit__optimize_chunk-{KEY}-cache")
    for name in ("project-cache", f"jit_step-{KEY}-atime", f"jit_step-{KEY[:-1]}-cache", f"{KEY}-cache",
                 f"jit_step-{KEY.upper()}-cache", f"jit_step-{KEY}-cache.bak"):
        assert not is_entry_name(name), name


def test_the_users_files_in_the_cache_folder_are_never_removed(tmp_path):
    """Item 3: NST_JAX_COMPILATION_CACHE=d with d/project-cache (the user's notes) removed the file as 'damaged'.
    Files not named as JAX names its entries, links, pipes, and files so named that are not in JAX's format (a
    zlib or zstd stream) are left as they are."""
    (tmp_path / "project-cache").write_text("notes")
    (tmp_path / "elsewhere.txt").write_text("target")
    (tmp_path / f"jit_link-{KEY}-cache").symlink_to(tmp_path / "elsewhere.txt")
    os.mkfifo(tmp_path / f"jit_fifo-{KEY}-cache")  # item 6: reading it waited forever
    (tmp_path / f"jit_bad-{KEY}-cache").write_bytes(zlib.compress(b"executable" * 100)[:-9])  # cut short
    (tmp_path / f"jit_mine-{KEY}-cache").write_text("my notes, named like an entry")  # not JAX's format: kept
    removed = remove_damaged_entries(tmp_path)
    assert [p.name for p in removed] == [f"jit_bad-{KEY}-cache"]
    assert (tmp_path / f"jit_mine-{KEY}-cache").read_text() == "my notes, named like an entry"
    assert (tmp_path / "project-cache").read_text() == "notes"
    assert (tmp_path / f"jit_link-{KEY}-cache").is_symlink() and (tmp_path / "elsewhere.txt").read_text() == "target"
    assert (tmp_path / f"jit_fifo-{KEY}-cache").exists()


def test_a_huge_entry_is_checked_in_bounded_memory(tmp_path):
    """Item 10: a 1.5 GB sparse file in the cache folder was read whole (3.25 GB peak). A zlib stream that expands
    to 1 GB, and a sparse 1.5 GB file, are checked chunk by chunk."""
    bomb = tmp_path / f"jit_bomb-{KEY}-cache"
    compressor = zlib.compressobj()
    with open(bomb, "wb") as f:
        block = bytes(1 << 20)
        for _ in range(1024):
            f.write(compressor.compress(block))
        f.write(compressor.flush())
    sparse = tmp_path / f"jit_sparse-{KEY}-cache"  # a zlib header, then 1.5 GB of zeros: a stream cut short
    with open(sparse, "wb") as f:
        f.write(b"\x78\x9c")
        f.truncate(1_500_000_000)
    # VmHWM: the fresh process's own peak (ru_maxrss would start at the parent's size, carried over by fork and exec)
    script = ("import sys\nfrom nst_jax.io.compile_cache import remove_damaged_entries\n"
              "removed = remove_damaged_entries(sys.argv[1])\n"
              "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
              "print(peak, *sorted(p.name for p in removed))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak, *removed = proc.stdout.split()
    assert removed == [sparse.name] and bomb.exists()  # the whole stream is a good entry
    assert int(peak) < 200 * 1024, f"peak {peak} KiB"  # VmHWM in KiB; Python alone is about 10 MB


def test_damaged_compilation_cache_entries_are_removed_and_compiled_again(tmp_path):
    """Issue 37 defect 14: JAX writes a cache entry in place and never replaces one that exists, so an entry cut
    short (a run killed while writing it) warned on every later run and was never repaired. Every entry of a real
    cache is cut in half: the next start removes them (one warning line), JAX compiles and writes them again, and
    the run after that is silent and reads them."""
    script = ("import jax, jax.numpy as jnp\nfrom nst_jax.cli import command as cli\ncli.use_compilation_cache(False)\n"
              "print(float(jax.jit(lambda x: jnp.sin(x) * 3 + 1)(jnp.ones(5))[0]))\n")
    env = {**os.environ, "NST_JAX_COMPILATION_CACHE": str(tmp_path / "xla")}

    def start() -> str:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0 and proc.stdout.strip() == "3.5244128704071045", proc.stderr
        return proc.stderr

    assert start() == ""
    entries = sorted((tmp_path / "xla").glob("*-cache"))
    sizes = {e: e.stat().st_size for e in entries}
    assert entries
    for e in entries:
        e.write_bytes(e.read_bytes()[: sizes[e] // 2])
    err = start()
    assert "Error reading persistent compilation cache" not in err
    assert f"removed {len(entries)} damaged entries from the compilation cache" in err and err.count("\n") == 1
    assert {e: e.stat().st_size for e in entries} == sizes  # written again, whole
    assert start() == ""


def test_only_entries_that_do_not_decompress_are_removed(tmp_path):
    """A whole zlib entry stays; a cut zlib stream and one with trailing bytes go; bytes that are no compressed
    stream at all are not JAX's format and stay (a user's file); entries older than the last check are not read
    again."""
    import zlib

    from nst_jax.io.compile_cache import remove_damaged_entries

    key = "0123456789abcdef" * 4  # JAX's entries: MODULE-SHA256-cache
    good = zlib.compress(b"executable" * 1000)
    files = {"good": good, "garbage": b"not compressed", "cut": good[:-5], "trailing": good + b"x"}
    for name, data in files.items():
        (tmp_path / f"jit_{name}-{key}-cache").write_bytes(data)
    (tmp_path / f"jit_good-{key}-atime").write_bytes(b"12345678")  # JAX's access times are not entries
    removed = remove_damaged_entries(tmp_path)
    assert sorted(p.name for p in removed) == [f"jit_cut-{key}-cache", f"jit_trailing-{key}-cache"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".nst_jax-verified", f"jit_garbage-{key}-cache",
                                                          f"jit_good-{key}-atime", f"jit_good-{key}-cache"]
    old = tmp_path / f"jit_old-{key}-cache"
    old.write_bytes(b"garbage written before the last check")
    os.utime(old, (1e9, 1e9))
    assert remove_damaged_entries(tmp_path) == [] and old.exists()


@pytest.mark.slow
def test_second_run_hits_the_persistent_compilation_cache(tmp_path):
    script = textwrap.dedent("""
        import sys, jax, numpy as np
        hits = []
        jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name) if "cache_hits" in name else 0)
        import nst_jax
        from nst_jax.reference.random_vgg import random_params
        nst_jax.enable_compilation_cache(sys.argv[1])
        w = nst_jax.Weights(jax.tree.map(np.asarray, random_params(jax.random.key(0))), "caffe")
        c = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
        nst_jax.stylize(c, c[::-1], w, nst_jax.Config(size=32, steps=2, optimizer="adam"))
        print(len(hits))
    """)
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / "xla")], capture_output=True, text=True,
                           check=True).stdout.split()[-1] for _ in range(2)]
    assert runs[0] == "0" and int(runs[1]) > 0
    assert any("run_chunk" in p.name for p in (tmp_path / "xla").iterdir())
