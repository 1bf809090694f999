"""The Python API: `stylize` (one content, one style or several), `stylize_batch` (many jobs as batches) and
their `Result`. Images may be paths, Pillow images or arrays; weights a path, a `Weights` or None."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from .config import Config
from .io import images
from .io.images import ImageLike, as_image
from .run.inputs import WeightsLike, style_set
from .run.loop import finished, optimize_batches
from .run.planning import needed_sides
from .run.records import Progress, joined_batches
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

    def save(self, path: Union[str, os.PathLike], quality: int = 95) -> None:
        """Write the image as PNG or JPEG (by suffix), atomically; see `nst_jax.io.images.save`."""
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
                          p.scale, p.size))

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

    Content images must have the same shape after resizing (the same aspect ratio); styles may differ.
    """
    contents, styles = _job_list(contents, "contents"), _job_list(styles, "styles")
    if not contents:
        raise ValueError("stylize_batch needs at least one job: pass lists of content and style images")
    if len(contents) != len(styles):
        raise ValueError(f"need as many styles as contents (one job each), got {len(contents)} and {len(styles)}")
    config = as_config(config)
    _check_callback(callback)
    w = as_weights(weights, config.weights_source)
    content_side, style_side = needed_sides(config)
    out, history, image_steps = joined_batches(finished(optimize_batches(
        [as_image(c, "content", content_side) for c in contents],
        [[as_image(s, "style", style_side) for s in style_set(ss)] for ss in styles], w, config, callback)))
    return [Result(out[j], {k: v[:, j] for k, v in history.items()}, int(image_steps[j]))
            for j in range(len(contents))]


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
