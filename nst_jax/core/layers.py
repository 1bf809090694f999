"""VGG19's convolutional layers as data: names, kernel shapes, forward order (standard library only).

`nst_jax.core.vgg` builds the network from these; `nst_jax.config` checks layer names against them without importing
Flax or JAX, so the command line can read its options before JAX starts (see `nst_jax.cli.hugepages`).
"""

from __future__ import annotations

from typing import Mapping

# (block, number of convs in the block, output channels) of VGG19's 16 conv layers.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

CONV_NAMES: tuple[str, ...] = tuple(f"conv{b}_{i}" for b, n, _ in BLOCKS for i in range(1, n + 1))
"""The 16 conv layers in forward order: conv1_1, conv1_2, conv2_1, ..., conv5_4."""

CONV_SHAPES: dict[str, tuple[int, int, int, int]] = {}
"""Kernel shape (HWIO) of each conv layer."""
_c_in = 3
for _b, _n, _c_out in BLOCKS:
    for _i in range(1, _n + 1):
        CONV_SHAPES[f"conv{_b}_{_i}"] = (3, 3, _c_in, _c_out)
        _c_in = _c_out
del _b, _n, _c_out, _i, _c_in

LAYER_NAMES: tuple[str, ...] = tuple(
    name for conv in CONV_NAMES for name in (conv, conv.replace("conv", "relu"))
)
"""Every activation the module can return, in forward order: conv1_1, relu1_1, conv1_2, relu1_2, ..."""


def check_params(params: Mapping[str, Mapping[str, object]]) -> None:
    """Raise ValueError naming the first conv layer that is missing or has the wrong kernel/bias shape."""
    for conv in CONV_NAMES:
        if conv not in params:
            raise ValueError(f"missing layer {conv}")
        kernel_shape = tuple(getattr(params[conv].get("kernel"), "shape", ()))
        bias_shape = tuple(getattr(params[conv].get("bias"), "shape", ()))
        if kernel_shape != CONV_SHAPES[conv]:
            raise ValueError(f"layer {conv} kernel has shape {kernel_shape}, expected {CONV_SHAPES[conv]}")
        if bias_shape != (CONV_SHAPES[conv][3],):
            raise ValueError(f"layer {conv} bias has shape {bias_shape}, expected {(CONV_SHAPES[conv][3],)}")
