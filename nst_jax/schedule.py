"""The coarse-to-fine schedule: the longer side and step count of every scale of a run.

Functions of a Config's scale settings (any object with `size`, `steps`, `scales`, `scale_sizes`, `scale_steps`);
standard library only.
"""

from __future__ import annotations

import math
from typing import Optional

# Above this size the default schedule has two scales: COARSE_SIZE with `steps` steps, then `size` with half as
# many. One scale at 1024 px matches statistics that are small against the picture (a relu5_1 feature sees 156 px),
# so its strokes are small; the coarse scale paints the 512 px picture's strokes first (docs/deviations.md).
TWO_SCALES_ABOVE = 768


COARSE_SIZE = 512
# Above 1024 px (prints) the default climbs by doublings of COARSE_SIZE (512, 1024, 2048, ...), each scale at least
# LADDER_RATIO times the one before it, then `size`, with half the steps of the scale before at each (docs/print.md):
# the strokes are painted at 512 px, each larger scale adds the detail its pixels allow. Up to 1024 px it is the
# two scales above.
LADDER_RATIO = 1.4


def two_scales_by_default(config) -> bool:
    """Whether `config` leaves its scales to the default (`scales` None, no `scale_sizes`) at a `size` above
    TWO_SCALES_ABOVE, where the default schedule is ((COARSE_SIZE, steps), (size, ceil(steps / 2))) up to 1024 px,
    and the `ladder` of scales above."""
    return (config.scales is None and config.scale_sizes is None and config.size is not None
            and config.size > TWO_SCALES_ABOVE)


def scale_sizes(config) -> tuple[Optional[int], ...]:
    """The longer side of every scale, coarse to fine: `scale_sizes`; the default two scales; `scales` sizes
    growing by sqrt(2) up to `size`; else `size` alone. ValueError when `scales` > 1 has no `size` to grow to."""
    if config.scale_sizes is not None:
        return tuple(int(v) for v in config.scale_sizes)
    if two_scales_by_default(config):
        return ladder(config.size)
    if (config.scales or 1) > 1:
        if config.size is None:
            raise ValueError(f"scales {config.scales} need a size to grow to, got size None")
        return tuple(max(16, round(config.size / 2 ** ((config.scales - 1 - k) / 2))) for k in range(config.scales))
    return (config.size,)


def ladder(size: int) -> tuple[int, ...]:
    """The default scales above TWO_SCALES_ABOVE: COARSE_SIZE 2^k for k = 0, 1, ... while at most size /
    LADDER_RATIO, then size: (512, 1000) for 1000, (512, 1024, 2048) for 2048, (512, ..., 4096, 8192) for 8192."""
    sizes = [COARSE_SIZE]
    while sizes[-1] * 2 <= size / LADDER_RATIO:
        sizes.append(sizes[-1] * 2)
    return (*sizes, size)


def most_scales(size: int) -> int:
    """The most `scales` from `size` whose coarsest scale, size / sqrt(2)^(scales - 1), is at least 16 px."""
    return 1 + max(0, math.floor(2 * math.log2(size / 16) + 1e-9))


def schedule(config) -> tuple[tuple[Optional[int], int], ...]:
    """((longer side, steps), ...) of every scale, coarse to fine (sizes: `scale_sizes` above). Steps per scale:
    `scale_steps`; else, for the default two scales, `steps` then ceil(steps / 2); else `steps` each."""
    sizes = scale_sizes(config)
    if config.scale_steps is not None:
        steps = tuple(int(v) for v in config.scale_steps)
    elif two_scales_by_default(config):  # each scale half the steps of the one before, rounded up
        steps = tuple(-(-config.steps // 2**k) for k in range(len(sizes)))
    else:
        steps = (config.steps,) * len(sizes)
    return tuple(zip(sizes, steps))


def schedule_note(config) -> Optional[str]:
    """One line saying that `config` runs the default two scales (None when it does not): the sizes and steps, and
    how to ask for one scale."""
    if not two_scales_by_default(config):
        return None
    scales = schedule(config)

    def steps(n: int) -> str:
        return f"{n} step{'s' * (n != 1)}"

    if len(scales) == 2:
        (coarse, coarse_steps), (fine, fine_steps) = scales
        return (f"above {TWO_SCALES_ABOVE} px two scales by default: {coarse} px ({steps(coarse_steps)}), then "
                f"{fine} px ({steps(fine_steps)}); --scales 1 for one scale")
    listed = ", ".join(f"{size} px ({steps(n)})" for size, n in scales)
    return f"above 1024 px {len(scales)} scales by default: {listed}; --scales 1 for one scale"


def schedule_errors(config) -> Optional[str]:
    """A one-line message when `config`'s scale settings contradict each other (None when they agree): more scales
    than `size` allows, sizes that do not increase, `scale_steps` of another count."""
    if config.scale_sizes is None and config.scales is not None and config.size is not None \
            and config.scales > most_scales(config.size):
        return (f"scales {config.scales} would make scales under 16 pixels: at most {most_scales(config.size)} from "
                f"size {config.size} (sizes grow by sqrt(2))")
    n_scales = len(scale_sizes(config))
    if config.scale_steps is not None and (len(config.scale_steps) != n_scales or min(config.scale_steps) < 0):
        many = "two" if n_scales == 2 else str(n_scales)
        default = (f" (above {TWO_SCALES_ABOVE} px the default is {many} scales: give {many}, or scales=1 for one)"
                   if two_scales_by_default(config) else "")
        counts = "a non-negative step count" if n_scales == 1 else f"{n_scales} non-negative step counts"
        return f"scale_steps needs {counts}{default}, got {config.scale_steps}"
    return None
