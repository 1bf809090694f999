"""What the loop optimises towards at each scale: the jobs' images resized to it, their stacked targets
(`core.objective.compute_targets`), and the sliced Wasserstein statistic's random directions, drawn from --seed and,
under `Config.swd_resample`, anew each round of steps. Pure functions of the config, the images and the step."""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp

from ..config import Config
from ..core.blocks import compute_targets
from ..core.objective import LossSpec, to_variable
from ..io import images


def batch_targets(pairs, blends, spec: LossSpec, params, masks=(None, None), key=None):
    """The stacked targets of one scale's jobs (pairs: their (content, [style, ...]) images at this scale; blends:
    each job's style weights [K, L]; masks: `scaled_masks` at this scale, the same for every job; key: the swd
    directions' key, `directions_key`)."""
    variable = lambda image: to_variable(jnp.asarray(image, spec.variable_dtype)[None], spec)  # noqa: E731
    style_masks, content_mask = (None if m is None else jnp.asarray(m, spec.variable_dtype) for m in masks)
    return jax.tree.map(lambda *t: jnp.stack(t), *[
        compute_targets(params, variable(c), tuple(variable(s) for s in ss), spec,
                        None if len(ss) == 1 or style_masks is not None else jnp.asarray(b, spec.variable_dtype),
                        style_masks, content_mask, key)
        for (c, ss), b in zip(pairs, blends)])


def directions_key(config: Config, step: int):
    """The key of the swd statistic's random directions at `step`: from --seed, and under `swd_resample` N from
    the step's round (step // N), so that a resumed run draws what the uninterrupted one drew. None for the other
    statistics (their targets take no key, and their programs stay as they were)."""
    if config.style_loss != "swd":
        return None
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), _SWD_STREAM),
                              directions_round(config, step))


def directions_round(config: Config, step: int) -> int:
    """Which draw of swd directions holds at `step`: step // swd_resample (0 throughout without resampling). The
    loop draws anew at the first chunk boundary of each round."""
    return step // config.swd_resample if config.swd_resample else 0


_SWD_STREAM = 0x5D  # the directions' stream of the seed's key, apart from the start image's noise


def scale_pairs(contents, styles, plan):
    """The jobs' (content, [style, ...]) images resized to one scale's `plan` (`plan_scales`)."""
    return [(images.resize(c, cs), [images.resize(s, shape) for s, shape in zip(ss, shapes)])
            for c, ss, (cs, shapes) in zip(contents, styles, plan)]


def chunk_period(report_every: Optional[int], resample: int) -> Optional[int]:
    """The steps every chunk boundary must fall on: the reports' and the swd directions' period (None: any)."""
    return (math.gcd(report_every or 0, resample) or None) if resample else report_every
