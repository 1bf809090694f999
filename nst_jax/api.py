"""The Python API: `stylize` (one content, one style or several), `stylize_batch` (many jobs as batches), their
`Result`, and `estimate` (compile first, then say how long the run will take). Images may be paths, Pillow images
or arrays; weights a path, a `Weights` or None."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from .config import Config
from .core.steps import chunk_length
from .io import images
from .io.images import ImageLike, as_image
from .run.inputs import WeightsLike, style_set
from .run.loop import finished, optimize_batches
from .run.planning import batch_ranges, jobs_per_program, needed_sides, plan_scales
from .run.records import Progress, joined_batches
from .run.targets import chunk_period
from .weights import as_weights


@dataclass(frozen=True)
class Result:
    """Attributes: image: [H, W, 3] float32 in [0, 1]; history: {"content", "style", "tv", "total": [steps]};
    image_step: the step the image is from: all the steps, or where the loss stopped being finite the last step
    whose image had a finite loss (history then shows where it diverged; -1: there was none and the image is NaN).

    In a notebook a `Result` shows as its image (`_repr_png_`)."""

    image: np.ndarray
    history: Mapping[str, np.ndarray]
    image_step: int = -1

    def to_pil(self) -> Image.Image:
        """The image as an 8-bit RGB Pillow image (rounded to nearest)."""
        return Image.fromarray(images.to_uint8(self.image))

    def save(self, path: Union[str, os.PathLike], quality: int = 95, overwrite: bool = False) -> None:
        """Write the image as PNG or JPEG (by suffix), atomically; see `nst_jax.io.images.save`. A file already at
        `path` is replaced only if nst_jax wrote it (an earlier result) or `overwrite` is True: InputError naming
        it otherwise (a photo, an input, anyone's file)."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path (str or Path), got {path!r}")
        if not overwrite:
            images.check_ours_to_replace(path, "choose another name, or pass overwrite=True to replace it")
        images.save(self.image, path, quality)

    def _repr_png_(self) -> bytes:
        return images.png_bytes(self.image)


def stylize(
    content: ImageLike,
    style: ImageLike,
    weights: WeightsLike = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
    init_image: Optional[ImageLike] = None,
    report_every: Optional[int] = None,
) -> Result:
    """Gatys et al. style transfer: optimise an image to match `content`'s features and `style`'s Gram matrices.

    Args:
      content, style: image paths, Pillow images or [H, W, 3] RGB arrays, float in [0, 1] or uint8; resized per
        `config.size` (or each scale's size) and `config.style_scale` (no resampling when already at size).
        `style` may be a list of such: several styles in this one job, their statistics blended by
        `config.style_blend` (default: equal weights).
      weights: a `Weights`, a weights file path, or None for the default file (see `nst_jax.weights`).
      config: settings (default `Config()`).
      callback: called with a `Progress` after every chunk of steps.
      init_image: overrides `config.init` with an array or path.
      report_every: also end chunks (and call back) at every multiple of this many steps.
    Returns:
      `Result` with the final image (clipped to [0, 1]) and the per-step loss history.
    """
    config = as_config(config)
    _check_image_kind(content, "content")
    _check_callback(callback)
    content_side, style_side = needed_sides(config)
    content = as_image(content, "content", content_side)
    style = [as_image(s, "style", style_side) for s in style_set(style)]
    w = as_weights(weights, config.weights_source)

    def single(p: Progress) -> None:
        callback(Progress(p.step, p.total_steps, {k: v[:, 0] for k, v in p.losses.items()}, p.image[0], p.elapsed,
                          p.scale, p.size, p.blocks))

    out, history, image_steps = joined_batches(finished(optimize_batches(
        [content], [style], w, config, single if callback else None, init_image, report_every)))
    return Result(out[0], {k: v[:, 0] for k, v in history.items()}, int(image_steps[0]))


def stylize_batch(
    contents: Sequence[ImageLike],
    styles: Sequence[ImageLike],
    weights: WeightsLike = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
) -> list[Result]:
    """Several jobs: job j stylises contents[j] with styles[j] (pass equal-length lists; `itertools.product` makes
    every pairing); styles[j] may itself be a list (several styles blended in job j, see `stylize`). Up to
    `config.batch_size` jobs run in one compiled program (see `jobs_per_program`), vmapped,
    each with its own optimiser state, and laid across all local devices (padded to a multiple of them, see
    `padded_jobs`); the results equal running the jobs one by one.

    Consecutive jobs whose contents share a shape after resizing run together; a content of another aspect ratio
    starts a new batch (one program per shape, see `batch_ranges`), so list the jobs of one shape together.
    """
    config = as_config(config)
    _check_callback(callback)
    contents, styles = _jobs(contents, styles, config, "stylize_batch")
    w = as_weights(weights, config.weights_source)
    out, history, image_steps = joined_batches(finished(optimize_batches(contents, styles, w, config, callback)))
    return [Result(out[j], {k: v[:, j] for k, v in history.items()}, int(image_steps[j]))
            for j in range(len(contents))]


@dataclass(frozen=True)
class Estimate:
    """What `estimate` measured. Attributes: compile_s: seconds it spent compiling and preparing the run's programs
    (work the run then skips: the programs stay compiled in this process); step_s: {(scale, content (H, W), jobs):
    seconds per step of one batch of that shape}; run_s: the seconds the run's steps should take at those rates
    (every batch, every scale), compilation apart; steps: the run's steps per batch."""

    compile_s: float
    step_s: Mapping[tuple, float]
    run_s: float
    steps: int

    def __str__(self) -> str:
        rates = ", ".join(f"{s:.2f} s/step at {w}x{h} px" + (f" ({j} jobs at once)" if j > 1 else "")
                          for (_, (h, w), j), s in self.step_s.items())
        return (f"compiled in {self.compile_s:.1f} s (once: the run reuses it); {rates}, measured just now: the "
                f"run should take about {_duration(self.run_s)}")


def estimate(
    contents: Sequence[ImageLike],
    styles: Sequence[ImageLike],
    weights: WeightsLike = None,
    config: Optional[Config] = None,
) -> Estimate:
    """Compile the programs that `stylize_batch(contents, styles, weights, config)` (or `stylize` of one job) will
    run, time a few steps of each, and return the expected time of the run (`Estimate`). It runs one batch of each
    content shape for three chunks (`Config.chunk_size` steps each, or the run's chunk length) per scale, and one
    chunk of a batch whose styles have other shapes (their targets' programs), so it costs the compilation, which
    the run then skips, and a few chunks of steps. Arguments as `stylize_batch`'s."""
    config = as_config(config)
    contents, styles = _jobs(contents, styles, config, "estimate")
    w = as_weights(weights, config.weights_source)
    group = jobs_per_program(config, len(contents))
    plans = plan_scales([c.shape[:2] for c in contents], [[s.shape[:2] for s in ss] for ss in styles], config, group)
    batches = batch_ranges(plans, group)
    shape = [tuple((plan[b.start][0], len(b)) for plan in plans) for b in batches]  # a batch's program, per scale
    styles_of = [tuple(tuple(shapes) for plan in plans for _, shapes in plan[b.start:b.stop]) for b in batches]
    lengths = [chunk_length(steps, config.chunk_size, chunk_period(None, config.swd_resample))
               for _, steps in config.schedule]
    trial = _trial_config(config, lengths)
    seen: dict[tuple, list] = {}  # a batch's shape -> (scale, elapsed) at each chunk's end
    made, once, single_chunks = set(), _trial_config(config, lengths, chunks=1), []
    start = time.perf_counter()
    for b, key, style_key in zip(batches, shape, styles_of):
        if key not in seen:  # its steps' program, timed
            ends = seen[key] = []
            finished(optimize_batches(contents[b.start:b.stop], styles[b.start:b.stop], w, trial,
                                      lambda p, ends=ends: ends.append((p.scale, p.elapsed))))
        elif (key, style_key) not in made:  # styles of other shapes: their targets' programs, one chunk a scale
            finished(optimize_batches(contents[b.start:b.stop], styles[b.start:b.stop], w, once))
            single_chunks.append(key)
        made.add((key, style_key))
    trial_s = time.perf_counter() - start
    step_s, timed = {}, 0.0
    for key, ends in seen.items():
        for (scale, length), (_, steps) in zip(enumerate(lengths), trial.schedule):
            # The time between the first and the second chunk's reads: one chunk's work whether the device runs
            # ahead of the host (chunk 2 dispatched before chunk 1 is read) or a host callback (swd's sort on a
            # CPU) makes each dispatch wait for its chunk. The last read may come after the next scale's set-up.
            first, second = [t for s, t in ends if s == scale][:2]
            step_s[(scale, *key[scale])] = (second - first) / length
            timed += steps * step_s[(scale, *key[scale])]
    timed += sum(steps * step_s[(scale, *key[scale])] for key in single_chunks
                 for scale, (_, steps) in enumerate(once.schedule))
    run_s = sum(steps * step_s[(scale, *key[scale])] for key in shape
                for scale, (_, steps) in enumerate(config.schedule))
    return Estimate(max(0.0, trial_s - timed), step_s, run_s, sum(steps for _, steps in config.schedule))


def _trial_config(config: Config, lengths: list[int], chunks: int = 3) -> Config:
    """`config` with each scale's steps cut to a few chunks of the run's own chunk length (so that the same programs
    compile): `chunks` (3: see `estimate`) where that keeps the length, else the fewest above that do (a prime
    above `chunk_size` always does; one chunk always keeps it)."""
    period = chunk_period(None, config.swd_resample)
    counts = [next(k for k in range(chunks, 2 * config.chunk_size + 4)
                   if chunk_length(k * length, config.chunk_size, period) == length) for length in lengths]
    steps = tuple(k * length for k, length in zip(counts, lengths))
    if len(steps) == 1:
        return config.replace(steps=steps[0], scale_steps=None if config.scale_steps is None else steps)
    return config.replace(scale_sizes=tuple(size for size, _ in config.schedule), scale_steps=steps)


def _duration(seconds: float) -> str:
    """'42 s', '3.5 min' or '1.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _jobs(contents, styles, config: Config, caller: str) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """The jobs' images, read and resized as the run needs them: ([content], [[style, ...]]), one entry per job;
    ValueError for no jobs or unequal lists."""
    contents, styles = _job_list(contents, "contents"), _job_list(styles, "styles")
    if not contents:
        raise ValueError(f"{caller} needs at least one job: pass lists of content and style images")
    if len(contents) != len(styles):
        raise ValueError(f"need as many styles as contents (one job each), got {len(contents)} and {len(styles)}")
    content_side, style_side = needed_sides(config)
    return ([as_image(c, "content", content_side) for c in contents],
            [[as_image(s, "style", style_side) for s in style_set(ss)] for ss in styles])


def _check_callback(callback) -> None:
    """A TypeError before any work for a callback that cannot be called (it would fail after the first chunk)."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function of a Progress (or None), got {type(callback).__name__}")


def _check_image_kind(image, what: str) -> None:
    """A TypeError saying what an image may be, for what is none of them (None, bytes, a list of contents)."""
    if isinstance(image, (list, tuple)):
        raise TypeError(f"{what} must be one image (a path, a Pillow image or an [H, W, 3] array), got a "
                        f"{type(image).__name__}; several contents are several jobs: use stylize_batch")
    if image is None or isinstance(image, (bytes, bytearray, int, float)):
        raise TypeError(f"{what} must be an image path, a Pillow image or an [H, W, 3] array, got "
                        f"{type(image).__name__}")


def _job_list(images_, what: str) -> list:
    """`stylize_batch`'s contents or styles as a list of one entry per job: a list, tuple or any iterable (a
    generator) of images, or an [J, H, W, 3] array of J images; a TypeError that says so for one image (a path
    would otherwise be read as a folder, a string as its characters)."""
    if isinstance(images_, np.ndarray):
        if images_.ndim != 4:
            raise TypeError(f"{what} as one array must be [jobs, H, W, 3], got shape {images_.shape}; for one job "
                            f"use stylize() or a list of one image")
        return list(images_)
    if isinstance(images_, (str, bytes, os.PathLike, Image.Image)):
        raise TypeError(f"{what} must be a list of images, one per job, got one {type(images_).__name__}; for one "
                        f"job use stylize() or [image]")
    try:
        return list(images_)
    except TypeError:
        raise TypeError(f"{what} must be a list of images, one per job, got {type(images_).__name__}") from None


def as_config(config) -> Config:
    """`config`, or `Config()` for None; a TypeError naming what was passed otherwise (e.g. a dict)."""
    if config is None:
        return Config()
    if not isinstance(config, Config):
        raise TypeError(f"config must be an nst_jax.Config (or None for the defaults), got {type(config).__name__}; "
                        "e.g. nst_jax.Config(**settings)")
    return config
