"""A `Config` as the values the core takes: the static `LossSpec`, the traced loss weights and optimiser
settings, and the weights of each job's styles. The one place where the core's inputs are read from a `Config`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..config import Config
from ..core.objective import LossSpec


def loss_spec(config: Config, preprocessing: str, remat: bool = False) -> LossSpec:
    """The static part of the objective: `config`'s layers, pooling, normalisation, ... with the weights' pixel
    convention `preprocessing` ("caffe" or "torchvision") and whether to rematerialise activations."""
    return LossSpec(
        content_layers=tuple(config.content_layers), style_layers=tuple(config.style_layers), pooling=config.pooling,
        preprocess=preprocessing, normalization=config.normalization, pixel_space=config.pixel_space,
        tv_form=config.tv_form, precision=config.precision, remat=remat, style_statistic=config.style_loss,
        normalize_gradients=config.normalize_gradients,
    )


def loss_weights(config: Config, dtype=jnp.float32) -> dict[str, jax.Array]:
    """The traced (run-time) loss weights: alpha, beta, tv weight and w_l [L], in the variable's dtype."""
    return {
        "content": jnp.asarray(config.content_weight, dtype),
        "style": jnp.asarray(config.style_weight, dtype),
        "tv": jnp.asarray(config.tv_weight, dtype),
        "layers": jnp.asarray(config.layer_weights, dtype),
    }


def hyperparams(config: Config, dtype=jnp.float32) -> dict[str, jax.Array]:
    """The traced optimiser settings: learning rate and Adam's betas, in the variable's dtype, and with iterate
    averaging its decay ("average")."""
    b1, b2 = config.adam_betas
    values = (("lr", config.learning_rate), ("b1", b1), ("b2", b2)) + ((("average", config.average),)
                                                                       if config.average else ())
    return {k: jnp.asarray(v, dtype) for k, v in values}


def style_blend(config: Config, n_styles: int) -> tuple[float, ...]:
    """The weights of a job's `n_styles` styles, summing to 1: `style_blend` normalised, or equal. ValueError
    when `style_blend` has another count."""
    if config.style_blend is None:
        return (1.0 / n_styles,) * n_styles
    if len(config.style_blend) != n_styles:
        raise ValueError(f"style_blend has {len(config.style_blend)} weights for {n_styles} style image"
                         f"{'s' * (n_styles != 1)}: give one weight per style of the job")
    largest = max(config.style_blend)  # first scaled to at most 1: a sum of huge weights would overflow
    total = sum(w / largest for w in config.style_blend)
    return tuple(w / largest / total for w in config.style_blend)


def layer_blend(config: Config, n_styles: int) -> tuple[tuple[float, ...], ...]:
    """[K][L]: the weight of each of a job's K = `n_styles` styles at each style layer, every layer's weights
    summing to 1: `style_blend` at every layer, or with `layer_styles` one style's alone where it names one.
    ValueError when `style_blend`, `layer_styles` or `style_masks` does not fit K styles."""
    blend = style_blend(config, n_styles)
    if config.style_masks is not None and len(config.style_masks) != n_styles:
        raise ValueError(f"style_masks has {len(config.style_masks)} mask{'s' * (len(config.style_masks) != 1)} for "
                         f"{n_styles} style image{'s' * (n_styles != 1)}: give one mask per style of the job")
    sources = config.layer_styles or (0,) * len(config.style_layers)
    if max(sources) > n_styles:
        raise ValueError(f"layer_styles names style {max(sources)} of a job with {n_styles} style "
                         f"image{'s' * (n_styles != 1)} (a job's styles are numbered 1, 2, ... in the order given; "
                         "0 is their blend)")
    return tuple(tuple(blend[k] if s == 0 else float(s == k + 1) for s in sources) for k in range(n_styles))
