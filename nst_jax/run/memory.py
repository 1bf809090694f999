"""Preflight memory estimate: refuse a run that cannot fit, before compiling, naming the largest size that would.

The estimate counts the activations up to the deepest layer (times a factor measured by `benchmarks/memory.py`),
the optimiser state (2 x history copies of the image for L-BFGS) and a fixed base for the process.
"""

from __future__ import annotations

import os
from typing import Optional

from ..config import Config
from ..core import layers, vgg
from ..core.optimizers import OPTIMIZERS
from ..errors import InputError, UsageError
from ..fields import parse_bytes
from ..io.images import target_shape

# Calibrated on benchmarks/memory.py (2-core CPU, float32, the paper's layers, Adam, one step): peak resident
# memory 1.19 GiB at 512 px, 2.65 at 1024, 8.07 at 2048, 15.63 at 2927 and 18.84 at 3231 px, i.e. 0.65 GiB + 1.89,
# 1.75, 1.62, 1.60 and 1.59 x the bytes of all activations up to the deepest layer; on an H100 (device memory, no
# process base) 1.64 x at 2048 px and 1.61 x at 4096 px. With 1.8 the estimate is at or above every measured peak
# from 1024 px up (at 512 px 2% below, far from any limit). Rematerialising blocks did not lower the peak: it is the
# backward pass through block 1 at full resolution, which needs block 1's activations either way (on the H100 at
# 4096 px, exact float32, remat raised it: 22.3 -> 29.3 GiB, estimate 33.6).
BASE_BYTES = int(0.65 * 2**30)
ACTIVATION_FACTOR = 1.8
# The sliced Wasserstein statistic (--style-loss swd) keeps about this many float32 copies of every style layer's
# features more: the projections, the sorting permutation (NumPy's argsort makes int64 ones), the sorted values,
# the style's quantiles and their gradients. benchmarks/memory.py --style-losses gram swd --remats off, 2-core CPU,
# 2026-12-07: 5.74 against 2.64 GiB at 1024 px, 6.5 copies of the style layers' 128 M elements.
SWD_FACTOR = 7


def activation_elements(h: int, w: int, deepest: str) -> int:
    """Elements (per image) of every conv output up to `deepest`."""
    return sum(hh * ww * layers.CONV_SHAPES[conv][3] for conv, hh, ww in vgg.conv_maps(h, w, deepest))


def activation_bytes(h: int, w: int, layer_names, config: Config) -> float:
    """The activations' share of the estimate (per image): ACTIVATION_FACTOR x the bytes of every conv output up
    to the deepest of `layer_names`, in the precision's itemsize."""
    return ACTIVATION_FACTOR * activation_elements(h, w, vgg.deepest(layer_names)) * activation_itemsize(config)


def activation_itemsize(config: Config) -> int:
    """Bytes of one activation in the run's precision."""
    return {"float64": 8, "bfloat16": 2}.get(config.precision, 4)


def image_bytes(h: int, w: int, config: Config, copies: int) -> int:
    """Bytes of `copies` image-sized [h, w, 3] arrays of the optimised variable's dtype (float64 or float32)."""
    return copies * h * w * 3 * (8 if config.precision == "float64" else 4)


def estimate_bytes(h: int, w: int, config: Config, jobs: int = 1) -> int:
    """Estimated peak memory of a run at (h, w) with `jobs` images in the batch (within ~20% on the benchmark;
    remat does not change it, see above)."""
    activations = activation_bytes(h, w, tuple(config.content_layers) + tuple(config.style_layers), config)
    if config.style_loss == "swd":
        activations += SWD_FACTOR * 4 * layer_elements(h, w, config.style_layers)
    vectors = OPTIMIZERS[config.optimizer].state_vectors(config.lbfgs_memory)  # image-sized arrays of its state
    state = image_bytes(h, w, config, vectors)
    return int(BASE_BYTES + jobs * (activations + state))


# Image-sized float32 arrays [H, W, 3] a blocked step keeps besides the optimiser's state: the variable, its padded
# copy and gradient, the new variable, the shown image and the ones XLA keeps between the scan's passes.
# Calibrated with benchmarks/print_sizes.py (see docs/print.md).
BLOCK_IMAGE_COPIES = 12
SMALLEST_TILE = 64  # below this the halo (80 px around each side) costs over 10x the tile's own work


def blocked_bytes(h: int, w: int, config: Config, tile: int, jobs: int = 1) -> int:
    """Estimated peak memory of a run at (h, w) by blocks of side `tile` (`core.blocks`): one window's activations
    (tile + 2 halo, with the whole image's factor), the content layers' maps of the whole image (the content
    targets), swd's projections of every style layer, and the image-sized arrays (`BLOCK_IMAGE_COPIES` and the
    optimiser's state)."""
    from ..core import blocks  # JAX: imported when a run is planned, not when the CLI reads its options

    layer_names = tuple(config.content_layers) + tuple(config.style_layers)
    side = tile + 2 * blocks.halo(layer_names)
    window = activation_bytes(side, side, layer_names, config)
    content = layer_elements(h, w, config.content_layers) * activation_itemsize(config)
    swd = SWD_FACTOR * 4 * layer_elements(h, w, config.style_layers) if config.style_loss == "swd" else 0
    vectors = OPTIMIZERS[config.optimizer].state_vectors(config.lbfgs_memory) + BLOCK_IMAGE_COPIES
    return int(BASE_BYTES + jobs * (window + content + swd + image_bytes(h, w, config, vectors)))


def block_tile(config: Config, shape: tuple[int, int], jobs: int, limit: int) -> int:
    """The side of the blocks a run at `shape` (H, W) of `jobs` images uses: `config.block_size` when given (0
    when the image fits in one), else 0 (the whole image) where `estimate_bytes` fits in `limit`, else the largest
    multiple of 16 that cuts the longer side into the fewest tiles whose `blocked_bytes` fits; -1 when none does
    (from `SMALLEST_TILE` up)."""
    longer = max(shape)
    if config.block_size is not None:
        return 0 if longer <= config.block_size else config.block_size
    if estimate_bytes(*shape, config, jobs) <= limit:
        return 0
    for count in range(2, longer // SMALLEST_TILE + 1):
        per_tile = -(-longer // count)  # ceil(longer / count)
        tile = -(-per_tile // 16) * 16  # rounded up to the 16-px grid
        if tile < SMALLEST_TILE:
            break
        if blocked_bytes(*shape, config, tile, jobs) <= limit:
            return tile
    return -1


def layer_elements(h: int, w: int, layer_names) -> int:
    """Elements (per image) of some layers' feature maps (the style layers', the content layers'): positions x
    filters of each."""
    maps = {conv: (hh, ww) for conv, hh, ww in vgg.conv_maps(h, w, vgg.deepest(layer_names))}
    total = 0
    for layer in layer_names:
        conv = layer.replace("relu", "conv")
        hh, ww = maps[conv]
        total += hh * ww * layers.CONV_SHAPES[conv][3]
    return total


def available_bytes() -> int:
    """Memory of the default device: the accelerator's limit, or the machine's physical memory on CPU."""
    import jax

    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def budget(config: Config) -> tuple[int, str]:
    """(bytes, words) a run may use: `config.max_memory`, else 90 percent of `available_bytes` (room for what the
    estimate leaves out). UsageError when the budget is more than the device has."""
    if config.max_memory is None:
        return int(0.9 * available_bytes()), "available"
    limit, have = parse_bytes(config.max_memory), available_bytes()
    if limit > have:
        raise UsageError(None, f"max_memory {config.max_memory} is more than the {have / 2**30:.1f} GiB this device "
                               "has; give at most that, or leave it out")
    return limit, f"of the max_memory budget {config.max_memory}"


def smallest_size(shape: tuple[int, int], config: Config) -> int:
    """The smallest longer side (same aspect ratio as `shape`, rounded as `images.target_shape` rounds), at least
    16, whose shorter side keeps the maps of the deepest content or style layer non-empty (`vgg.smallest_side`)."""
    least = vgg.smallest_side(vgg.deepest(tuple(config.content_layers) + tuple(config.style_layers)))
    lo, hi = 16, 1 << 16
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if min(target_shape(shape, mid)) >= least else (mid + 1, hi)
    return lo


def planned_bytes(shape: tuple[int, int], config: Config, jobs: int, limit: int) -> tuple[int, int]:
    """(tile, bytes): how a run at `shape` fits in `limit` (`block_tile`: 0 whole, > 0 by blocks) and its
    estimate; the tile -1 when nothing fits (its bytes then the whole image's estimate)."""
    tile = block_tile(config, shape, jobs, limit)
    return tile, blocked_bytes(*shape, config, tile, jobs) if tile > 0 else estimate_bytes(*shape, config, jobs)


def largest_size(shape: tuple[int, int], config: Config, jobs: int, limit: int) -> Optional[int]:
    """The largest longer side (same aspect ratio as `shape`, from `smallest_size` up) that fits in `limit` bytes,
    whole or by blocks (`planned_bytes`); None when not even the smallest does."""
    def fits(side):
        tile, need = planned_bytes(target_shape(shape, side), config, jobs, limit)
        return tile >= 0 and need <= limit

    lo, hi = smallest_size(shape, config), 1 << 16
    if not fits(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def preflight(config: Config, shape: tuple[int, int], jobs: int, limit: Optional[int] = None) -> int:
    """The side of the blocks a run at `shape` ([H, W]) of `jobs` images in one batch uses (`block_tile`; 0: the
    whole image). Raise InputError when it cannot fit in memory even by blocks, naming the largest size that
    would; when no size that the layers allow fits, the error says so (and, for a batch, to run fewer jobs at once)
    instead of naming a size that the size checks would refuse."""
    limit, words = (limit, "available") if limit is not None else budget(config)
    tile, need = planned_bytes(shape, config, jobs, limit)
    if tile > 0 and config.normalize_gradients:  # a contradiction of settings: a usage error
        why = (f"runs by blocks of {tile} px, as block_size asks" if config.block_size is not None else
               f"needs blocks (it does not fit whole in the {limit / 2**30:.1f} GiB {words})")  # then ", and ..."
        raise UsageError(None, f"a {shape[0]}x{shape[1]} run {why}, and normalize_gradients needs the whole "
                               "image's gradients: leave out normalize_gradients, or run whole (a smaller size, "
                               "without block_size)")
    if tile >= 0 and need <= limit:
        return tile
    digits = 1 if f"{need / 2**30:.1f}" != f"{limit / 2**30:.1f}" else 2  # never "2.0 GiB, more than 2.0"
    if tile > 0:  # a --block-size too large for the budget
        raise InputError(None, f"a {shape[0]}x{shape[1]} run by blocks of {tile} px needs about "
                               f"{need / 2**30:.{digits}f} GiB, more than the {limit / 2**30:.{digits}f} GiB "
                               f"{words}; give a smaller --block-size, or leave it out to have one chosen")
    fits = largest_size(shape, config, jobs, limit)
    if fits is not None:
        advice = f"the largest size that fits is {fits}"
    elif jobs > 1:
        advice = "no size fits with this many jobs in one batch; run fewer at once (--batch-size)"
    else:
        advice = "no size fits"
    blocked = ""
    if tile < 0 and max(shape) >= 2 * SMALLEST_TILE:
        least = blocked_bytes(*shape, config, SMALLEST_TILE, jobs)
        ways = ("fewer L-BFGS pairs, --lbfgs-memory, or --optimizer adam need less" if config.optimizer != "adam"
                else "they are what any size needs")
        blocked = (f" whole and {least / 2**30:.1f} GiB by blocks of {SMALLEST_TILE} px (its image-sized arrays, "
                   f"the optimiser's state among them: {ways})")
    raise InputError(None, f"a {shape[0]}x{shape[1]} run ({jobs} job(s)) needs about {need / 2**30:.{digits}f} "
                           f"GiB{blocked}, more than the {limit / 2**30:.{digits}f} GiB {words}; {advice}")


def style_bytes(h: int, w: int, config: Config) -> int:
    """Estimated peak memory of the style image's forward pass at (h, w) (its Gram targets): the activations up to
    the deepest style layer, with the same factor as a run (no gradient, no optimiser state: an upper bound)."""
    return int(BASE_BYTES + activation_bytes(h, w, tuple(config.style_layers), config))


def preflight_style(config: Config, shape: tuple[int, int], name: str, limit: Optional[int] = None) -> None:
    """Raise InputError naming the style image `name` when its forward pass at `shape` cannot fit in memory (a
    large --style-scale makes the style image larger than the output)."""
    limit, words = (limit, "available") if limit is not None else budget(config)
    need = style_bytes(*shape, config)
    if need > limit:
        raise InputError(name, f"resized to {shape[1]}x{shape[0]} (width x height), its features need about "
                               f"{need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB {words}; lower "
                               f"the style scale (--style-scale) or the size")
