"""JAX's persistent compilation cache, so that a second run of the same image size does not recompile.

The CLI enables it by default; notebooks and other Python callers call `enable_compilation_cache()` themselves
(the library never touches files on its own). Location: $NST_JAX_COMPILATION_CACHE if it names a folder,
else $XDG_CACHE_HOME/nst_jax/xla (~/.cache/nst_jax/xla); NST_JAX_COMPILATION_CACHE=0 switches it off.
"""

from __future__ import annotations

import os
import re
import stat
import time
import zlib
from pathlib import Path
from typing import BinaryIO, Optional

from .files import remove_if_made

CACHE_ENV = "NST_JAX_COMPILATION_CACHE"
VERIFIED = ".nst_jax-verified"  # its modification time: when the entries were last checked
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ENTRY_NAME = re.compile(r".+-[0-9a-f]{64}-cache")  # JAX's entries: MODULE-SHA256-cache
CHUNK = 1 << 20  # bytes read (and decompressed) at a time


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


def is_entry_name(name: str) -> bool:
    """Whether `name` is the name of one of JAX's cache entries: MODULE-SHA256HEX-cache (`jax._src.cache_key` makes
    the key, `jax._src.lru_cache` adds "-cache"). Nothing else in the folder is ever touched."""
    return ENTRY_NAME.fullmatch(name) is not None


def remove_damaged_entries(folder: str | os.PathLike) -> list[Path]:
    """Check the cache entries written since the last check (JAX's `*-cache` files: zlib or zstd compressed
    executables) by decompressing them, and delete those that do not decompress, so that JAX compiles and writes
    them again. JAX writes an entry in place and never replaces one that exists: an entry cut short (a run killed
    while writing it, a full disk) otherwise warns on every later run and is never repaired. Only regular files
    named as JAX names its entries (`is_entry_name`) are read or removed: a user's file, a link, a pipe or a device
    in the folder is left as it is, and so is a file of such a name that does not begin as a zlib or zstd stream.
    An entry is read in chunks, so a huge file costs no memory. Returns the removed
    files. A zstd entry is checked only where a zstd decompressor is installed."""
    folder = Path(folder)
    marker = folder / VERIFIED
    since = marker.stat().st_mtime - 1.0 if marker.exists() else float("-inf")
    started, removed = time.time(), []
    for entry in folder.glob("*-cache"):
        try:
            info = entry.lstat()
            if not (is_entry_name(entry.name) and stat.S_ISREG(info.st_mode)) or info.st_mtime < since:
                continue
            with open(entry, "rb") as f:
                if not _looks_compressed(f.read(4)):  # not JAX's format: a user's file of that name is kept
                    continue
                f.seek(0)
                if _decompresses(f):
                    continue
            if remove_if_made(entry, info):  # still the file that was read
                removed.append(entry)
        except OSError:
            continue  # gone meanwhile (another process), or unreadable: leave it to JAX
    try:
        marker.touch()
        os.utime(marker, (started, started))
    except OSError:
        pass
    return removed


def _looks_compressed(head: bytes) -> bool:
    """Whether `head`, a file's first bytes, opens a zstd frame or a zlib stream (deflate, a header whose check
    bits are right): the formats JAX writes its entries in, whole or cut short."""
    if head.startswith(ZSTD_MAGIC):
        return True
    return len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


def _decompresses(f: BinaryIO) -> bool:
    """Whether the file `f` (read in chunks, from its start) holds one whole zlib or zstd stream and nothing after it
    (True for zstd when no decompressor is installed)."""
    head = f.read(len(ZSTD_MAGIC))
    f.seek(0)
    if head == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            return True
        try:
            for _ in zstandard.ZstdDecompressor().read_to_iter(f, read_size=CHUNK, write_size=CHUNK):
                pass
        except zstandard.ZstdError:
            return False
        return f.read(1) == b""
    d = zlib.decompressobj()
    try:
        while chunk := f.read(CHUNK):
            if d.eof:
                return False  # data after the stream
            d.decompress(chunk, CHUNK)
            while d.unconsumed_tail:  # bounded output: a small file may expand without limit
                d.decompress(d.unconsumed_tail, CHUNK)
    except zlib.error:
        return False
    return d.eof and not d.unused_data
