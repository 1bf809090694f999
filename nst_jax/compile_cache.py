"""JAX's persistent compilation cache, so that a second run of the same image size does not recompile.

The CLI enables it by default; notebooks and other Python callers call `enable_compilation_cache()` themselves
(the library never touches files on its own). Location: $NST_JAX_COMPILATION_CACHE if it names a folder,
else $XDG_CACHE_HOME/nst_jax/xla (~/.cache/nst_jax/xla); NST_JAX_COMPILATION_CACHE=0 switches it off.
"""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path
from typing import Optional

CACHE_ENV = "NST_JAX_COMPILATION_CACHE"
VERIFIED = ".nst_jax-verified"  # its modification time: when the entries were last checked
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def cache_dir() -> Optional[Path]:
    """The cache folder, or None when switched off."""
    value = os.environ.get(CACHE_ENV, "")
    if value.lower() in ("0", "off", "false", "no"):
        return None
    if value:
        return Path(value).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nst_jax" / "xla"


def enable_compilation_cache(path: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """Turn on JAX's persistent compilation cache in `path` (default `cache_dir()`). Returns the folder used,
    or None if the cache is switched off or its folder cannot be created."""
    import jax

    folder = Path(path) if path is not None else cache_dir()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def remove_damaged_entries(folder: str | os.PathLike) -> list[Path]:
    """Check the cache entries written since the last check (JAX's `*-cache` files: zlib or zstd compressed
    executables) by decompressing them, and delete those that do not decompress, so that JAX compiles and writes
    them again. JAX writes an entry in place and never replaces one that exists: an entry cut short (a run killed
    while writing it, a full disk) otherwise warns on every later run and is never repaired. Returns the removed
    files. A zstd entry is checked only where a zstd decompressor is installed."""
    folder = Path(folder)
    marker = folder / VERIFIED
    since = marker.stat().st_mtime - 1.0 if marker.exists() else float("-inf")
    started, removed = time.time(), []
    for entry in folder.glob("*-cache"):
        try:
            if entry.stat().st_mtime < since or _decompresses(entry.read_bytes()):
                continue
            entry.unlink()
            removed.append(entry)
        except OSError:
            continue  # gone meanwhile (another process), or unreadable: leave it to JAX
    try:
        marker.touch()
        os.utime(marker, (started, started))
    except OSError:
        pass
    return removed


def _decompresses(data: bytes) -> bool:
    """Whether `data` is a whole zlib or zstd stream (True for zstd when no decompressor is installed)."""
    if data.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            return True
        try:
            zstandard.ZstdDecompressor().decompress(data)
        except zstandard.ZstdError:
            return False
        return True
    try:
        d = zlib.decompressobj()
        d.decompress(data)
        return d.eof and not d.unused_data
    except zlib.error:
        return False
