"""JAX's persistent compilation cache, so that a second run of the same image size does not recompile.

The CLI enables it by default; notebooks and other Python callers call `enable_compilation_cache()` themselves
(the library never touches files on its own). Location: $NST_JAX_COMPILATION_CACHE if it names a folder,
else $XDG_CACHE_HOME/nst_jax/xla (~/.cache/nst_jax/xla); NST_JAX_COMPILATION_CACHE=0 switches it off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

CACHE_ENV = "NST_JAX_COMPILATION_CACHE"


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
