"""VGG19's convolutional part as a Flax module that returns named activations.

Layer names follow the paper and jcjohnson/neural-style: `conv4_2` is the convolution's output, `relu4_2` its ReLU.
Parameters are a plain pytree ``{"conv1_1": {"kernel": [3, 3, C_in, C_out], "bias": [C_out]}, ...}`` (HWIO kernels),
passed to `apply`/`features` at call time, never baked into a compiled program.
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from .layers import BLOCKS, CONV_NAMES, CONV_SHAPES, LAYER_NAMES  # the architecture (defined there, used here)


def _depth(layer: str) -> int:
    return LAYER_NAMES.index(layer)


def deepest(layers) -> str:
    """The deepest of some layer names (the one a forward pass through all of them must reach)."""
    return max(layers, key=_depth)


def conv_maps(h: int, w: int, deepest: str) -> list[tuple[str, int, int]]:
    """(conv name, height, width of its input and output map) of every conv layer from conv1_1 to the one that
    `deepest` (a conv or relu name) belongs to, for an [h, w] image; each block after the first starts after a
    2x2 pooling that floors odd sizes."""
    maps = []
    for conv in CONV_NAMES:
        if conv.endswith("_1") and conv != "conv1_1":
            h, w = h // 2, w // 2
        maps.append((conv, h, w))
        if _depth(conv.replace("conv", "relu")) >= _depth(deepest):
            return maps
    return maps


def map_size(h: int, w: int, layer: str) -> tuple[int, int]:
    """(H_l, W_l): the map of `layer` (a conv or relu name) for an [h, w] image."""
    return {conv: (hh, ww) for conv, hh, ww in conv_maps(h, w, layer)}[layer.replace("relu", "conv")]


def smallest_side(deepest: str) -> int:
    """The shortest image side whose maps stay non-empty down to `deepest`: 2 ** (poolings before its block),
    e.g. 16 for relu5_1."""
    block = int(conv_maps(1, 1, deepest)[-1][0][len("conv")])
    return 2 ** (block - 1)


def _conv(x: jax.Array, kernel: jax.Array, precision) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=precision)


def flip_kernel(kernel: jax.Array) -> jax.Array:
    """[3, 3, C_in, C_out] -> [3, 3, C_out, C_in]: the kernel of a 3x3 convolution's input gradient (flipped in
    space, channel axes swapped)."""
    return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def flipped_kernels(params: Mapping[str, Mapping[str, jax.Array]]) -> dict[str, dict[str, jax.Array]]:
    """Every layer's `flip_kernel`, as the "flipped" collection `features` takes: computed once, outside a loop of
    steps, instead of in every step."""
    return {conv: {"kernel": flip_kernel(p["kernel"])} for conv, p in params.items()}


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def conv3x3(x: jax.Array, kernel: jax.Array, flipped: Optional[jax.Array] = None, precision=None) -> jax.Array:
    """VGG's convolution: x [B, H, W, C_in], kernel [3, 3, C_in, C_out] (HWIO), stride 1, zero padding 1 ("SAME")
    -> [B, H, W, C_out]; `lax.conv_general_dilated`'s arithmetic, with its gradient written out.

    The input gradient is a 3x3 convolution of the output gradient with `flip_kernel(kernel)` (or `flipped`, the
    same array computed beforehand). JAX's own rule leaves the channel swap to the convolution's dimension numbers,
    and inside a loop body XLA:CPU then runs that convolution outside its fast library, 6x slower
    (docs/performance.md); with the flipped kernel written out every convolution has an HWIO kernel. The values are
    the same: the gradients equal JAX's own (tests). Being a `jax.custom_vjp`, it has no forward-mode derivative
    (`jax.jvp`, `jax.jacfwd`); nothing in nst_jax takes one."""
    return _conv(x, kernel, precision)


def _conv3x3_fwd(x, kernel, flipped, precision):
    return _conv(x, kernel, precision), (x, kernel, flipped)


def _conv3x3_bwd(precision, residuals, g):
    x, kernel, flipped = residuals
    dx = _conv(g, flip_kernel(kernel) if flipped is None else flipped, precision)
    dkernel = jax.vjp(lambda k: _conv(x, k, precision), kernel)[1](g)[0]  # unused by style transfer, so removed
    return dx, dkernel, None if flipped is None else jnp.zeros_like(flipped)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


class Conv3x3(nn.Module):
    """One VGG layer: `conv3x3` plus bias, params named as nn.Conv names them ("kernel" [3, 3, C_in, C_out] HWIO,
    "bias" [C_out]). Takes its flipped kernel from the optional "flipped" collection (`flipped_kernels`)."""

    features: int
    precision: Optional[jax.lax.Precision] = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return conv3x3(x, kernel, self.get_variable("flipped", "kernel"), self.precision) + bias.reshape(1, 1, 1, -1)


def stride(layer: str) -> int:
    """Image pixels per position of a layer's map (a conv or relu name): 2 ** (poolings before its block)."""
    return 2 ** (int(layer[len("conv") if layer.startswith("conv") else len("relu")]) - 1)


def window_mask(origin: jax.Array, image: tuple[int, int], layer: str, shape: tuple[int, int]) -> jax.Array:
    """[h, w] bool: which positions of a window's map at `layer` lie inside the whole image's map there.

    Args:
      origin: [2] int, the window's top-left pixel in the image (a multiple of 16: the map's grid then aligns with
        the whole image's at every layer); image: (H, W) of the whole image; shape: (h, w) of the window's map.
    """
    s = stride(layer)
    sizes = map_size(*image, layer)
    rows = origin[0] // s + jnp.arange(shape[0])
    cols = origin[1] // s + jnp.arange(shape[1])
    return (((rows >= 0) & (rows < sizes[0]))[:, None]) & (((cols >= 0) & (cols < sizes[1]))[None, :])


def pool2x2(x: jax.Array, mode: str) -> jax.Array:
    """2x2 pooling with stride 2 of [B, H, W, C], flooring odd sizes (as VALID pooling in Flax and PyTorch).

    The average is summed in one fixed order, ((a + b) + (c + d)) / 4, so it rounds the same in every compiled
    program (a fused reduce_window may not), which keeps targets and losses bit-consistent.
    """
    b, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2, :].reshape(b, h // 2, 2, w // 2, 2, c)
    tl, tr, bl, br = x[:, :, 0, :, 0], x[:, :, 0, :, 1], x[:, :, 1, :, 0], x[:, :, 1, :, 1]
    if mode == "avg":
        return ((tl + tr) + (bl + br)) * 0.25
    return jnp.maximum(jnp.maximum(tl, tr), jnp.maximum(bl, br))


class VGG19Features(nn.Module):
    """VGG19 conv layers (no fully connected layers), returning requested activations by name.

    Attributes:
      layers: names from `LAYER_NAMES` to return. The forward pass stops at the deepest of them.
      pooling: "avg" (Gatys et al. replace max pooling by average pooling) or "max" (VGG's own).
      precision: `jax.lax.Precision` of the convolutions. HIGHEST: exact float32 arithmetic on every backend;
        DEFAULT (or None): the backend's fast passes for float32 data (TF32 on NVIDIA GPUs since Ampere, one
        bfloat16 pass on TPUs; exact on CPU).
      start_block: run from this block on (x is then the previous block's last ReLU output; 1: the image).
      image: (H, W) of the whole image when x is a window of it (`core.blocks`): then `__call__` takes the window's
        origin and every convolution's input, and every returned map, is zero outside the image, as the whole
        image's zero padding makes it (None: x is the whole image).
    """

    layers: Sequence[str]
    pooling: str = "avg"
    precision: Optional[jax.lax.Precision] = jax.lax.Precision.HIGHEST
    start_block: int = 1
    image: Optional[tuple[int, int]] = None

    @nn.compact
    def __call__(self, x: jax.Array, origin: Optional[jax.Array] = None) -> dict[str, jax.Array]:
        """Args: x: [B, H, W, 3] preprocessed network input; origin: [2] int, the window's top-left pixel in the
        whole image (a multiple of 16, may be negative), with `image` set. Returns: {name: [B, H_l, W_l, C_l]}."""
        if x.ndim != 4 or (self.start_block == 1 and x.shape[-1] != 3):
            raise ValueError(f"VGG19Features expects [B, H, W, 3] input, got shape {x.shape}")
        if self.pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {self.pooling!r}")
        wanted = set(self.layers)
        last = max(_depth(name) for name in wanted)
        out = {}
        inside = (lambda v, conv: v) if self.image is None else (  # noqa: E731
            lambda v, conv: v * window_mask(origin, self.image, conv, v.shape[1:3])[None, :, :, None].astype(v.dtype))
        for conv in CONV_NAMES:
            block, index = conv[4:].split("_")
            if int(block) < self.start_block:
                continue
            if index == "1" and block != "1":  # pool between blocks
                x = pool2x2(x, self.pooling)
            c_out = CONV_SHAPES[conv][3]
            x = Conv3x3(c_out, precision=self.precision, name=conv)(inside(x, conv))
            relu = conv.replace("conv", "relu")
            if conv in wanted:
                out[conv] = inside(x, conv)
            x = nn.relu(x)
            if relu in wanted:
                out[relu] = inside(x, conv)
            if _depth(relu) >= last:
                break
        return out


def features(
    params: Mapping[str, Mapping[str, jax.Array]],
    x: jax.Array,
    layers: Sequence[str],
    pooling: str = "avg",
    precision: Optional[jax.lax.Precision] = jax.lax.Precision.HIGHEST,
    remat: bool = False,
    flipped: Optional[Mapping[str, Mapping[str, jax.Array]]] = None,
    origin: Optional[jax.Array] = None,
    image: Optional[tuple[int, int]] = None,
) -> dict[str, jax.Array]:
    """Named activations of preprocessed input x [B, H, W, 3] under conv params (see module docstring).

    origin, image: x is the window at `origin` of an image of shape `image` (`VGG19Features.image`).

    remat: rematerialise each block (`jax.checkpoint`): the backward pass keeps only block inputs and the
    requested activations and recomputes the rest, trading about one extra forward pass for memory.
    flipped: `flipped_kernels(params)`, for gradients taken in a loop (see `conv3x3`); same values without it.
    """
    variables = {"params": params, **({"flipped": flipped} if flipped is not None else {})}
    if image is not None:
        module = VGG19Features(layers=tuple(layers), pooling=pooling, precision=precision, image=tuple(image))
        return module.apply(variables, x, origin)
    if not remat:
        module = VGG19Features(layers=tuple(layers), pooling=pooling, precision=precision)
        return module.apply(variables, x)
    out = {}
    deepest = max(_depth(name) for name in layers)
    for block, n, _ in BLOCKS:
        block_last = f"relu{block}_{n}"
        in_block = tuple(l for l in layers if l[4:].split("_")[0] == str(block))
        if _depth(f"conv{block}_1") > deepest:
            break
        wanted = tuple(dict.fromkeys(in_block + ((block_last,) if _depth(block_last) < deepest else ())))
        module = VGG19Features(layers=wanted, pooling=pooling, precision=precision, start_block=block)
        result = jax.checkpoint(lambda var, v, m=module: m.apply(var, v))(variables, x)
        out.update({l: result[l] for l in in_block})
        if block_last in result:
            x = result[block_last]
    return out
