"""Preflight memory estimate: refuse a run that cannot fit, and choose rematerialisation when it helps.

The estimate counts what the backward pass keeps (one tensor per conv/ReLU up to the deepest layer, or, with
remat, block inputs, requested activations and one block's tensors), the optimiser state (2 x history copies of the
image for L-BFGS), and XLA's working buffers, with factors measured on this project's benchmark
(`benchmarks/memory.py`); it is meant to be within about 30% and on the safe side.
"""

from __future__ import annotations

import os
from typing import Optional

from . import vgg
from .config import Config
from .errors import InputError

BASE_BYTES = 600 * 2**20  # the Python process, JAX, XLA's compiled program
ACTIVATION_FACTOR = 3.0  # kept activations plus the forward/backward working set, per activation byte
REMAT_FACTOR = 3.0
HISTORY = {"lbfgs": 10, "lbfgs-torch": 100, "adam": 1}  # image-sized pairs (Adam: its two moments)


def _layer_sizes(h: int, w: int, deepest: str) -> list[tuple[str, int]]:
    """(conv name, elements per image) of every conv up to `deepest`."""
    out, hh, ww = [], h, w
    for conv in vgg.CONV_NAMES:
        if conv.endswith("_1") and conv != "conv1_1":
            hh, ww = hh // 2, ww // 2
        out.append((conv, hh * ww * vgg.CONV_SHAPES[conv][3]))
        if vgg.LAYER_NAMES.index(conv.replace("conv", "relu")) >= vgg.LAYER_NAMES.index(deepest):
            break
    return out


def estimate_bytes(h: int, w: int, config: Config, remat: bool, jobs: int = 1) -> int:
    """Estimated peak memory of a run at (h, w) with `jobs` images in the batch."""
    layers = tuple(config.content_layers) + tuple(config.style_layers)
    deepest = max(layers, key=vgg.LAYER_NAMES.index)
    itemsize = 8 if config.precision == "float64" else 2 if config.precision == "bfloat16" else 4
    sizes = _layer_sizes(h, w, deepest)
    if remat:
        per_block: dict[str, int] = {}
        for conv, n in sizes:
            per_block[conv.split("_")[0]] = per_block.get(conv.split("_")[0], 0) + n
        kept = max(per_block.values()) + sum(n for conv, n in sizes if conv.endswith("_1")) + sum(
            n for conv, n in sizes if conv.replace("conv", "relu") in layers
        )
        activations = REMAT_FACTOR * kept * itemsize
    else:
        activations = ACTIVATION_FACTOR * sum(n for _, n in sizes) * itemsize
    state = 2 * HISTORY[config.optimizer] * h * w * 3 * (8 if config.precision == "float64" else 4)
    return int(BASE_BYTES + jobs * (activations + state))


def available_bytes() -> int:
    """Memory of the default device: the accelerator's limit, or the machine's physical memory on CPU."""
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def largest_size(shape: tuple[int, int], config: Config, remat: bool, jobs: int, limit: int) -> int:
    """The largest longer side (same aspect ratio) whose estimate fits in `limit` bytes."""
    lo, hi = 16, max(shape) * 4
    while lo < hi:
        mid = (lo + hi + 1) // 2
        h, w = (round(shape[0] * mid / max(shape)), round(shape[1] * mid / max(shape)))
        lo, hi = (mid, hi) if estimate_bytes(h, w, config, remat, jobs) <= limit else (lo, mid - 1)
    return lo


def choose_remat(config: Config, shape: tuple[int, int], jobs: int, limit: Optional[int] = None) -> bool:
    """Whether to rematerialise (config.remat on/off, or auto: only when the run would not fit without it).

    Raises InputError, naming the largest size that would fit, when the run cannot fit even so.
    """
    limit = limit if limit is not None else int(0.9 * available_bytes())
    without, with_remat = (estimate_bytes(*shape, config, r, jobs) for r in (False, True))
    remat = config.remat == "on" or (config.remat == "auto" and without > limit)
    need = with_remat if remat else without
    if need > limit:
        fits = largest_size(shape, config, remat, jobs, limit)
        hint = "" if remat else "; --remat on would allow more"
        raise InputError(None, f"a {shape[0]}x{shape[1]} run needs about {need / 2**30:.1f} GiB, more than the "
                               f"{limit / 2**30:.1f} GiB available; the largest size that fits is {fits}{hint}")
    return remat
