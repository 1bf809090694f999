"""A `Config` as the values the core takes: the static `LossSpec` and the traced loss weights and optimiser
settings. The one place where the core's inputs are read from a `Config`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..config import Config
from ..core.objective import LossSpec


def loss_spec(config: Config, preprocessing: str, remat: bool = False) -> LossSpec:
    """The static part of the objective: `config`'s layers, pooling, normalisation, ... with the weights' pixel
    convention `preprocessing` ("caffe" or "torchvision") and whether to rematerialise activations."""
    return LossSpec(tuple(config.content_layers), tuple(config.style_layers), config.pooling, preprocessing,
                    config.normalization, config.pixel_space, config.tv_form, config.precision, remat,
                    config.style_loss, config.normalize_gradients)


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
