"""The compilation cache's repair touches JAX's own entries only (issue 49, items 3, 6 and 10)."""

import os
import subprocess
import sys
import zlib

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
