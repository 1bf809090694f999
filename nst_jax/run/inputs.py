"""A run's inputs made ready for the loop: images read and resized per scale, masks, the start image."""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import weights as weights_lib
from ..config import INIT_KEYWORDS, Config
from ..core.objective import (
    LossSpec,
    to_variable,
)
from ..errors import InputError
from ..io import images
from ..io.images import MAX_PIXELS, ImageLike, as_image, load
from .planning import needed_sides, scaled_shapes

WeightsLike = Union[weights_lib.Weights, str, os.PathLike, None]


def style_set(style) -> list:
    """A job's styles as a list: one image (a path, a Pillow image, an [H, W, 3] array), or a list or tuple of them
    (several styles in one job, blended: `Config.style_blend`). ValueError for an empty list."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError("a job needs at least one style image, got an empty list")
    return styles


class Masks(NamedTuple):
    """The spatial control of a run (`Config.style_masks`, `Config.content_mask`), read: style: one [H, W] mask per
    style of each job (or None), content: [H, W] (or None); values in [0, 1], any size (resized to the content)."""

    style: Optional[list[np.ndarray]] = None
    content: Optional[np.ndarray] = None


def mask_array(image: np.ndarray, name=None, what: str = "mask") -> np.ndarray:
    """An [H, W, 3] image in [0, 1] as a mask [H, W]: its gray level (white 1: applies; black 0: not). InputError
    naming it when it is black everywhere: it would select nothing."""
    mask = np.asarray(image, np.float32).mean(axis=-1)
    if not mask.any():
        raise InputError(name, f"the {what} selects nothing: it is black everywhere at the size the run reads it "
                               "(white marks where it applies)")
    return mask


def load_masks(config: Config, max_pixels: int = MAX_PIXELS) -> Masks:
    """The masks `config` names, read no larger than the content needs (`images.load`) and checked (`mask_array`).
    Raises InputError naming the file."""
    side = needed_sides(config)[0]
    read = lambda path, what: mask_array(load(path, max_pixels, side), path, what)  # noqa: E731
    return Masks(None if config.style_masks is None else [read(p, "style mask") for p in config.style_masks],
                 None if config.content_mask is None else read(config.content_mask, "content mask"))


def scaled_masks(masks: Masks, shape: tuple[int, int]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The masks resized to one scale's content shape (Lanczos, clipped to [0, 1]): style [K, H, W] and content
    [H, W], each None when not given."""
    fit = lambda m: images.resize(m[..., None], shape)[..., 0]  # noqa: E731
    return (None if masks.style is None else np.stack([fit(m) for m in masks.style]),
            None if masks.content is None else fit(masks.content))


def scale_images(content: np.ndarray, style: np.ndarray, size: Optional[int], style_scale: float):
    """Content resized so its longer side is `size`, style so its longer side is style_scale times that."""
    content_shape, style_shape = scaled_shapes(content.shape[:2], style.shape[:2], size, style_scale)
    return images.resize(content, content_shape), images.resize(style, style_shape)


def prepare_images(content: ImageLike, style: ImageLike, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Load (paths) and resize: content's longer side to `config.size`, style's to style_scale times that.

    No resampling happens to an image already at its target size. Returns [H, W, 3], [H_s, W_s, 3] in [0, 1].
    """
    content_side, style_side = needed_sides(config)
    return scale_images(as_image(content, "content", content_side), as_image(style, "style", style_side),
                        config.size, config.style_scale)


def initial_variable(init: Union[str, ImageLike], content: np.ndarray, style: np.ndarray, seed: int,
                     spec: LossSpec, noise_ratio: float = 0.0) -> np.ndarray:
    """The start of the optimised variable, [H, W, 3].

    init: "noise" (uniform white noise in [0, 1] per pixel and channel, seeded), "randn" (N(0, 0.001^2) in the
    variable's own space, jcjohnson's "random"), "gauss" (N(0, 1) in the network's input space, as an image clipped
    to [0, 1]), "gray" (0.5), "content", "style" (resized to the content's shape), an image path or an array
    (resized to the content's shape). noise_ratio r: the start image becomes (1 - r) image + r uniform noise (not
    for "randn", which is not an image).
    """
    shape, key = content.shape[:2], jax.random.key(seed)
    if isinstance(init, str) and init == "randn":
        return 0.001 * np.asarray(jax.random.normal(key, (*shape, 3), spec.variable_dtype))
    if isinstance(init, str) and init == "noise":
        image = np.asarray(jax.random.uniform(key, (*shape, 3), jnp.float32))
    elif isinstance(init, str) and init == "gauss":
        noise = jax.random.normal(key, (*shape, 3), jnp.float32)
        image = np.clip(np.asarray(weights_lib.deprocess(noise, spec.preprocess)), 0.0, 1.0)
    elif isinstance(init, str) and init == "gray":
        image = np.full((*shape, 3), 0.5, np.float32)
    elif isinstance(init, str) and init == "content":
        image = content
    elif isinstance(init, str) and init == "style":
        image = images.resize(style, shape)
    else:
        if isinstance(init, str) and not os.path.exists(init):
            raise InputError(init, f"the start image (--init, Config.init) is neither {', '.join(INIT_KEYWORDS)} "
                                   "nor an existing image file")
        image = images.resize(as_image(init, "init"), shape)
    if noise_ratio:
        noise = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (*shape, 3), jnp.float32))
        image = (1.0 - noise_ratio) * np.asarray(image, np.float32) + noise_ratio * noise
    return np.asarray(to_variable(jnp.asarray(image, spec.variable_dtype), spec))
