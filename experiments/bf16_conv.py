"""Could `--precision bfloat16` be faster on a CPU? XLA:CPU multiplies bfloat16 matrices into float32 about twice as
fast as float32 ones on a processor with AVX512-BF16 dot products, but runs bfloat16 convolutions no faster than
float32 ones. This script times every 3x3 layer of VGG19 up to conv5_1, forward, as XLA's convolution in float32 and
in bfloat16, and as bfloat16 matrix products written out in plain JAX (bfloat16 operands, float32 accumulation):

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/bf16_conv.py` (it imports benchmarks/common.py).

* "3 products": the three column shifts of the padded map side by side ([H + 2, W, 3 C_in]), then one product per
  kernel row ([H W, 3 C_in] x [3 C_in, C_out]) on a row-shifted view, summed;
* "9 products": the padded map flattened to [(H + 4) (W + 2), C_in], so that each of the nine taps is a contiguous
  slice of it; one [H (W + 2), C_in] x [C_in, C_out] product per tap, summed, the two padding columns dropped;
* "product alone": the single [H W, 9 C_in] x [9 C_in, C_out] product of the patches, given them ready-made: the
  least any convolution written as a matrix product could take here.

    python experiments/bf16_conv.py [--size 512] [--repeats 4]

Each row: a layer shape (and how many of VGG19's layers have it), its forward GFLOP, and GFLOP/s of each way (best
of `--repeats`), with the largest error of the written-out ways relative to the largest float32 output; the last
row counts every layer of a forward pass. Random inputs and weights (the timings do not depend on the values). Not
used by nst_jax: see docs/experiments.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import best_seconds, machine, matmul_tflops, table

from nst_jax import layers, vgg

BF16, F32 = jnp.bfloat16, jnp.float32


def xla_conv(x: jax.Array, kernel: jax.Array, dtype) -> jax.Array:
    """XLA's convolution: x [1, H, W, C_in], kernel [3, 3, C_in, C_out] -> [1, H, W, C_out], in `dtype`."""
    return lax.conv_general_dilated(x.astype(dtype), kernel.astype(dtype), (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=lax.Precision.HIGHEST)


def three_products(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The same convolution as three [H W, 3 C_in] x [3 C_in, C_out] bfloat16 products into float32."""
    _, h, w, c = x.shape
    padded = jnp.pad(x.astype(BF16), ((0, 0), (1, 1), (1, 1), (0, 0)))
    columns = jnp.concatenate([padded[:, :, j:j + w] for j in range(3)], axis=-1)  # [1, H + 2, W, 3 C_in]
    rows = kernel.astype(BF16).reshape(3, 3 * c, -1)
    out = sum(jnp.dot(columns[0, i:i + h].reshape(h * w, 3 * c), rows[i], preferred_element_type=F32)
              for i in range(3))
    return out.reshape(1, h, w, -1)


def nine_products(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """The same convolution as nine [H (W + 2), C_in] x [C_in, C_out] bfloat16 products into float32, each on a
    contiguous slice of the flattened padded map (row i, column j of the kernel: an offset of (i + 1)(W + 2) + j - 1;
    the extra padding row above and below keeps every slice inside the map)."""
    _, h, w, c = x.shape
    wp = w + 2
    flat = jnp.pad(x.astype(BF16), ((0, 0), (2, 2), (1, 1), (0, 0))).reshape((h + 4) * wp, c)
    taps = kernel.astype(BF16)
    n = h * wp
    out = sum(jnp.dot(flat[(i + 1) * wp + j - 1:(i + 1) * wp + j - 1 + n], taps[i, j], preferred_element_type=F32)
              for i in range(3) for j in range(3))
    return out.reshape(h, wp, -1)[None, :, 1:w + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--repeats", type=int, default=4, help="timed calls per way and layer; the best counts")
    args = parser.parse_args()

    maps = vgg.conv_maps(args.size, args.size, "conv5_1")
    shapes = Counter((h, w, *layers.CONV_SHAPES[conv][2:]) for conv, h, w in maps)
    ways = {
        "float32 conv": jax.jit(lambda x, k: xla_conv(x, k, F32)),
        "bfloat16 conv": jax.jit(lambda x, k: xla_conv(x, k, BF16)),
        "3 products": jax.jit(three_products),
        "9 products": jax.jit(nine_products),
    }
    product = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=F32))
    rng = np.random.default_rng(0)
    rows, totals = [], Counter()
    for (h, w, cin, cout), count in shapes.items():
        x = jnp.asarray(rng.standard_normal((1, h, w, cin)), F32)
        kernel = jnp.asarray(rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin), F32)
        gflop = 2.0 * h * w * 9 * cin * cout / 1e9
        exact = np.asarray(ways["float32 conv"](x, kernel))
        seconds = {name: best_seconds(fn, x, kernel, repeats=args.repeats) for name, fn in ways.items()}
        patches = jnp.asarray(rng.standard_normal((h * w, 9 * cin)), BF16)
        seconds["product alone"] = best_seconds(product, patches, kernel.astype(BF16).reshape(9 * cin, cout),
                                                repeats=args.repeats)
        error = max(float(np.abs(np.asarray(ways[name](x, kernel), np.float32) - exact).max())
                    for name in ("3 products", "9 products")) / float(np.abs(exact).max())
        for name, s in seconds.items():
            totals[name] += count * s
        totals["gflop"] += count * gflop
        rows.append([f"{h}x{w}, {cin}->{cout} (x{count})", f"{gflop:.1f}",
                     *(f"{gflop / s:.0f}" for s in seconds.values()), f"{error:.1e}"])
    names = [*ways, "product alone"]
    rows.append([f"forward to conv5_1, {args.size} px", f"{totals['gflop']:.0f}",
                 *(f"{totals['gflop'] / totals[n]:.0f}" for n in names), ""])
    n = 2048
    rates = {"float32": 1e3 * matmul_tflops("float32", "highest", n),
             "bfloat16 into float32": 1e3 * matmul_tflops("bfloat16", None, n, accumulate="float32")}
    print(f"# {machine()}; {n}^3 matrix product: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))
    print(f"# VGG19 3x3 layers at {args.size} px, forward, GFLOP/s (best of {args.repeats})")
    print(table(["layer (count)", "GFLOP", *names, "error"], rows))


if __name__ == "__main__":
    main()
