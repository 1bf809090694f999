"""nst_jax: Gatys et al. neural style transfer in JAX, Flax and Optax.

The names below are imported on first use, so that `python -m nst_jax` can restart itself (`nst_jax.cli.hugepages`)
before JAX is loaded."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Config": "config", "preset_config": "presets", "Progress": "run.records", "Result": "api",
    "stylize": "api", "stylize_batch": "api", "estimate": "api", "Estimate": "api", "Weights": "weights",
    "load_weights": ("weights", "load"), "enable_compilation_cache": "io.compile_cache",
    "default_weights": ("weights.download", "default_weights"), "notebook": ("notebook", None),
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nst_jax' has no attribute {name!r}")
    module, attr = _EXPORTS[name] if isinstance(_EXPORTS[name], tuple) else (_EXPORTS[name], name)
    value = importlib.import_module(f".{module}", __name__)
    value = value if attr is None else getattr(value, attr)  # attr None: the module itself
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
