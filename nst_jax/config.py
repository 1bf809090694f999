"""Every setting of a style transfer run, with its default: the one source of truth.

The CLI (`nst_jax.cli`) builds its options from the fields of `Config`, so the command line, the Python API and the
notebooks cannot drift apart. Each field's `help` metadata is the CLI's help text.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

PAPER_CONTENT_LAYERS = ("relu4_2",)
PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

OPTIMIZERS = ("lbfgs", "adam")
POOLINGS = ("avg", "max")
INIT_KEYWORDS = ("noise", "content", "style")


def _opt(default, help, **extra):
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Config:
    """Settings of one run. Defaults are the paper's (Gatys et al. 2015/2016) unless the help says otherwise."""

    size: Optional[int] = _opt(512, "longer side of the output in pixels (the content image is resized to it)")
    style_scale: float = _opt(1.0, "style image size relative to --size")
    steps: int = _opt(500, "optimisation steps (L-BFGS iterations or Adam updates)")
    optimizer: str = _opt("lbfgs", "optimiser: lbfgs (the paper's) or adam", choices=OPTIMIZERS)
    lr: float = _opt(0.02, "Adam learning rate, in pixel units of the [0, 1] image")
    init: str = _opt("noise", "start image: noise (the paper's white noise), content, style, or an image PATH")
    seed: int = _opt(0, "random seed of the noise init")
    content_weight: float = _opt(1.0, "alpha, weight of the content loss")
    style_weight: float = _opt(1e3, "beta, weight of the style loss (1e3 is the paper's alpha/beta = 1e-3)")
    tv_weight: float = _opt(0.0, "weight of the total variation loss (the paper has none)")
    content_layers: tuple[str, ...] = _opt(PAPER_CONTENT_LAYERS, "content layers, comma separated")
    style_layers: tuple[str, ...] = _opt(PAPER_STYLE_LAYERS, "style layers, comma separated")
    style_layer_weights: Optional[tuple[float, ...]] = _opt(
        None, "per-style-layer weights w_l, comma separated (default: 1/number of style layers)"
    )
    pooling: str = _opt("avg", "VGG pooling: avg (the paper's) or max (VGG's own)", choices=POOLINGS)
    chunk_size: int = _opt(10, "steps per compiled chunk between progress reports")

    def __post_init__(self):
        check(self)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """w_l for each style layer: the given ones, or 1/L each (the paper's w_l = 1/5 for its five layers)."""
        if self.style_layer_weights is not None:
            return tuple(float(w) for w in self.style_layer_weights)
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)


def check(config: Config) -> None:
    """Raise ValueError with a one-line message if a setting is out of range."""
    from .vgg import LAYER_NAMES  # local import: vgg imports flax, config should stay light

    if config.size is not None and config.size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {config.size}")
    if not config.style_scale > 0:
        raise ValueError(f"style_scale must be positive, got {config.style_scale}")
    if config.steps < 0:
        raise ValueError(f"steps must be >= 0, got {config.steps}")
    if config.chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {config.chunk_size}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    if config.pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {config.pooling!r}")
    if not config.lr > 0:
        raise ValueError(f"lr must be positive, got {config.lr}")
    for name in ("content_weight", "style_weight", "tv_weight"):
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must be >= 0, got {getattr(config, name)}")
    if not config.style_layers:
        raise ValueError("style_layers must name at least one layer")
    for layer in (*config.content_layers, *config.style_layers):
        if layer not in LAYER_NAMES:
            raise ValueError(f"unknown VGG19 layer {layer!r}; expected names like relu4_2 or conv1_1")
    if config.style_layer_weights is not None and len(config.style_layer_weights) != len(config.style_layers):
        raise ValueError(
            f"style_layer_weights has {len(config.style_layer_weights)} values "
            f"for {len(config.style_layers)} style layers"
        )
