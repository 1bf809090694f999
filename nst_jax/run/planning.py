"""Host-side planning before any compilation: every scale's image shapes per job, checked (maps deep enough, the
memory preflight); which jobs run together (one shape per batch), on how many devices; which jobs
each process of a multi-host run takes. Plain Python on shapes: no arrays are made here."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import jax

from ..config import Config
from ..core import vgg
from ..errors import InputError
from ..io import images
from .memory import blocked_bytes, preflight, preflight_style


def scaled_shapes(content: tuple[int, int], style: tuple[int, int], size: Optional[int], style_scale: float):
    """The (H, W) shapes `scale_images` gives images of shapes `content` and `style`, without resizing them."""
    content = images.target_shape(content, size) if size is not None else tuple(content)
    return content, images.target_shape(style, max(16, round(style_scale * max(content))))


def needed_sides(config: Config) -> tuple[Optional[int], Optional[int]]:
    """The longest sides a run resizes its content and style images to, (content, style): the largest scale's size
    and style_scale times it (`scaled_shapes`); (None, None) when a scale keeps the content's own size."""
    sizes = [size for size, _ in config.schedule]
    if any(size is None for size in sizes):
        return None, None
    return max(sizes), max(16, round(config.style_scale * max(sizes)))


def plan_scales(contents: Sequence[tuple[int, int]], styles: Sequence[tuple[int, int]], config: Config,
                jobs_per_batch: int, names: Optional[Sequence[tuple[str, str]]] = None) -> list[list[tuple]]:
    """Every scale's (content shape, (style shape, ...)) for every job (the original (H, W) shapes in contents[j],
    and styles[j]: one shape, or a list of them for several styles), checked before any image is resized or any
    program compiled: every image keeps non-empty maps down to the deepest layer it goes through, and every batch
    (`batch_ranges` of `jobs_per_batch`) passes the memory preflight. `names`: (content, style or [style, ...])
    file names per job for the messages. Raises InputError."""
    sets = [[tuple(s)] if isinstance(s[0], int) else [tuple(x) for x in s] for s in styles]  # one style or several
    names = names or [(f"job {j + 1}'s content image", [f"job {j + 1}'s style image"] * len(sets[j]))
                      for j in range(len(contents))]
    names = [(c, [s] if isinstance(s, (str, os.PathLike)) else list(s)) for c, s in names]
    plans = [[(scaled_shapes(c, ss[0], size, config.style_scale)[0],
               tuple(scaled_shapes(c, s, size, config.style_scale)[1] for s in ss)) for c, ss in zip(contents, sets)]
             for size, _ in config.schedule]
    deepest = {"content": vgg.deepest(tuple(config.content_layers) + tuple(config.style_layers)),
               "style": vgg.deepest(config.style_layers)}
    batches = batch_ranges(plans, jobs_per_batch)
    for scale, plan in enumerate(plans):
        at = f" for scale {scale + 1} of {len(plans)}" if len(plans) > 1 else ""
        for j, shapes in enumerate(plan):
            for role, (h, w), name in [("content", shapes[0], names[j][0]),
                                       *(("style", shape, name) for shape, name in zip(shapes[1], names[j][1]))]:
                least = vgg.smallest_side(deepest[role])
                if min(h, w) < least:
                    hint = "the size (--size, Config.size)" + (
                        " or the style scale (--style-scale)" if role == "style" else "") + (
                        " (or use fewer or larger scales)" if len(plans) > 1 else "")
                    raise InputError(name, f"resized to {h}x{w}{at}, too small: {deepest[role]} needs at least "
                                           f"{least} px on each side; raise {hint}")
    tiles = {}
    for scale in reversed(range(len(plans))):  # the largest scale first: the message names the size asked for
        for shape, jobs in dict.fromkeys((plans[scale][b.start][0], len(b)) for b in batches):
            tiles[scale] = max(tiles.get(scale, 0), preflight(config, shape, jobs))
    for scale, plan in enumerate(plans):
        if tiles[scale]:
            continue  # by blocks, the styles' statistics too (core.blocks)
        for j, (_, style_shapes) in enumerate(plan):
            for shape, name in zip(style_shapes, names[j][1]):
                preflight_style(config, shape, name)
    return plans


def blocks_used(config: Config, shape: tuple[int, int], jobs: int) -> Optional[dict]:
    """How a batch of `jobs` images of `shape` (H, W) runs at one scale, as the preflight of `plan_scales` chose:
    None for the whole image, else {"tile": side px, "halo": px, "count": tiles, "rows", "cols",
    "planned_peak_bytes"} (the run record's `blocks`, the progress line's)."""
    from ..core import blocks

    tile = preflight(config, shape, jobs)
    grid = blocks.grid_for(shape, tile, tuple(config.content_layers) + tuple(config.style_layers))
    if grid is None:
        return None
    return {"tile": grid.tile, "halo": grid.halo, "count": grid.count, "rows": grid.rows, "cols": grid.cols,
            "planned_peak_bytes": blocked_bytes(*shape, config, grid.tile, jobs)}


def batch_ranges(plans: Sequence[Sequence[tuple]], jobs_per_batch: int) -> list[range]:
    """The batches jobs run in, one compiled program each: consecutive jobs, at most `jobs_per_batch` of them,
    whose content shapes agree at every scale (`plans[scale][job]` = (content shape, style shapes), as
    `plan_scales` gives). A batch ends where the content shape changes, so contents of several aspect ratios run on
    any number of devices, one program per shape; order the jobs by shape to fill the batches.

    E.g. shapes a, a, b, a, a, a with 2 jobs per batch: range(0, 2), range(2, 3), range(3, 5), range(5, 6)."""
    n_jobs = len(plans[0]) if plans else 0
    shape = [tuple(plan[j][0] for plan in plans) for j in range(n_jobs)]
    batches, start = [], 0
    for j in range(1, n_jobs + 1):
        if j == n_jobs or j - start == jobs_per_batch or shape[j] != shape[start]:
            batches.append(range(start, j))
            start = j
    return batches


def jobs_per_program(config: Config, n_jobs: int) -> int:
    """How many jobs one compiled program runs: `config.batch_size`, or by default all of them, except on a
    lone CPU device, where a batch measured no faster per image than one by one (and 16 jobs 11-18% slower)."""
    if config.batch_size is not None:
        return max(1, min(config.batch_size, n_jobs))
    lone_cpu = jax.default_backend() == "cpu" and jax.local_device_count() == 1
    return 1 if lone_cpu else n_jobs


def padded_jobs(n_jobs: int, n_devices: int) -> int:
    """How many jobs a batch of `n_jobs` runs as, so that it is laid across all `n_devices` local devices: rounded
    up to a multiple of them (e.g. 4 jobs on 8 devices run as 8: 1 per device, as fast as 4 on 4), unchanged for
    one job or one device. The padding repeats the batch's last job; its results are dropped."""
    if n_jobs < 2 or n_devices < 2:
        return n_jobs
    return -(-n_jobs // n_devices) * n_devices


def process_share(n_jobs: int, index: Optional[int] = None, count: Optional[int] = None) -> range:
    """The jobs (indices into a list of `n_jobs`) that process `index` of `count` runs in a multi-host run
    (default: this process, `jax.process_index()` of `jax.process_count()`): contiguous blocks in order, whose
    sizes differ by at most one, e.g. 5 jobs over 2 processes: range(0, 3) and range(3, 5).

    Jobs are independent, so hosts need not talk: every process runs the same command, takes its share, runs it on
    its own devices (`jax.local_devices()`) and writes its own outputs."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is not in [0, {count})")
    base, extra = divmod(n_jobs, count)
    start = index * base + min(index, extra)
    return range(start, start + base + (index < extra))
