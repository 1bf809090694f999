"""The record of a run: what the CLI writes next to each output (OUTPUT_STEM.json). Pure: no files are touched.

A record holds every setting, the weights actually used (source, file, SHA-256), the backend and versions, the
wall time and its split, and the final loss terms, so that a picture can always be traced to what made it.
"""

from __future__ import annotations

import dataclasses
import math
import platform
from typing import Mapping, Optional, Sequence

import numpy as np


def environment() -> dict:
    """Versions, backend and devices of this process: {"nst_jax", "jax", "jaxlib", "python", "backend",
    "devices": [device kind, ...], "machine"}."""
    import jax
    import jaxlib

    from .. import __version__

    return {"nst_jax": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "python": platform.python_version(), "backend": jax.default_backend(),
            "devices": [d.device_kind for d in jax.local_devices()], "machine": platform.machine()}


def timing(start: float, loop_start: float, end: float, reports: Sequence[tuple[int, float, int]]) -> dict:
    """The wall time of a run and its split.

    Args:
      start, loop_start, end: clock readings (seconds) at the start of the run, when the optimisation began (after
        reading images and weights), and at the end.
      reports: (steps done, seconds since loop_start, scale) at each progress report, in order. The first chunk of
        each scale includes that scale's compilation, so steps per second count only the intervals between two
        reports of the same scale.
    Returns:
      {"total_s", "startup_s" (before the optimisation), "first_chunk_s" (compilation included), "steps_s" (the
      optimisation), "steps_per_s" (without each scale's first chunk; None when no scale reported twice)}.
    """
    pairs = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(reports, reports[1:]) if a[2] == b[2]]
    steps, seconds = sum(n for n, _ in pairs), sum(t for _, t in pairs)
    return {"total_s": end - start, "startup_s": loop_start - start,
            "first_chunk_s": reports[0][1] if reports else None, "steps_s": end - loop_start,
            "steps_per_s": steps / seconds if seconds > 0 else None}


def final_losses(history: Mapping[str, np.ndarray], job: int) -> dict:
    """The last step's loss terms of job `job` from a batch history ({"content", ...: [steps, jobs]}); None for a
    value that is not finite (strict JSON), {} for a run of no steps."""
    out = {}
    for name, values in history.items():
        values = np.asarray(values)
        if values.shape[0]:
            v = float(values[-1, job])
            out[name] = v if math.isfinite(v) else None
    return out


def run_record(config, *, content: str, style: str, output: str, weights: dict, env: dict, time: dict,
               final: dict, job: Optional[int] = None, preset: Optional[str] = None,
               blocks: Optional[list] = None) -> dict:
    """One run's record (a JSON-ready dict).

    Args:
      config: the run's `Config` (every setting goes in, as plain values, and its schedule: [[size, steps], ...]
        of every scale, coarse to fine).
      content, style, output: the files.
      weights: {"source", "file", "sha256"} of the weights used.
      env: `environment()`; time: `timing(...)`; final: `final_losses(...)`.
      job: the job's index in a batch (None for a single run).
      preset: the preset the settings started from, if any (the settings themselves are all recorded).
      blocks: per scale, how it runs by blocks ({"tile", "halo", "count", "rows", "cols", "planned_peak_bytes"}),
        or None for the whole image (`run.records.Batch.blocks`: from the plan, a resumed run's too).
    """
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
    record = {"output": output, "content": content, "style": style, "preset": preset, "settings": settings,
              "schedule": [list(scale) for scale in config.schedule], "weights": weights,
              "environment": env, "time": time, "final_losses": final,
              "blocks": blocks if blocks is not None else [None] * len(config.schedule)}
    if job is not None:
        record["job"] = job
    return record
