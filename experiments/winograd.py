"""Could a cheaper convolution algorithm make a step cheaper than the float32 floor? Winograd's minimal filtering
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) computes a 3x3 convolution with fewer
multiplications: F(2x2, 3x3) 16 per 4 outputs (2.25x fewer than direct), F(4x4, 3x3) 36 per 16 (4x fewer), at the
price of transforming every input tile and output tile. This script writes both in plain JAX (slices and sums for
the transforms, one batched matrix product per tile position) and times them against XLA's own convolution on
every 3x3 layer of VGG19 up to conv5_1, as a step uses them: the forward pass and the gradient with respect to the
input.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/winograd.py` (it imports benchmarks/common.py).

    python experiments/winograd.py [--size 512] [--repeats 3]

Each row: GFLOP of the direct convolution (forward + input gradient), milliseconds of the jitted forward + input
gradient for direct / F(2x2) / F(4x4), the milliseconds of F(4x4)'s batched matrix products alone (forward and
gradient: the least any F(4x4) implementation here could take), and F(4x4)'s largest error relative to the largest
output. Random inputs and weights (the timings do not depend on the values). Not used by nst_jax: see
docs/experiments.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import best_seconds, conv_gflop, machine, table

from nst_jax import layers, vgg

# Lavin & Gray's matrices: output tile m = 2 and m = 4 for a 3-tap filter (input tile a = m + 2).
WINOGRAD = {
    2: dict(
        BT=[[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
        G=[[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]],
        AT=[[1, 1, 1, 0], [0, 1, -1, -1]],
    ),
    4: dict(
        BT=[[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
        G=[[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
           [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
        AT=[[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    ),
}


def direct(x: jax.Array, w: jax.Array) -> jax.Array:
    """XLA's convolution as nst_jax's VGG runs it: x [N, H, W, C], w [3, 3, C, O] -> [N, H, W, O], SAME padding."""
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST)


def _combine(matrix, parts):
    """[sum_j matrix[i][j] * parts[j] for each row i], skipping zero coefficients."""
    return [sum(c * p for c, p in zip(row, parts) if c != 0) for row in matrix]


def winograd_transforms(m: int):
    """(input transform, weight transform, product, output transform) of F(m x m, 3x3); composed as in `winograd`
    they equal `direct`."""
    mats = WINOGRAD[m]
    a = m + 2

    def to_tiles(x):  # [N, H, W, C] -> V [a*a, N*th*tw, C] and the tile grid
        n, h, wd, c = x.shape
        th, tw = -(-h // m), -(-wd // m)
        xp = jnp.pad(x, ((0, 0), (1, th * m - h + 1), (1, tw * m - wd + 1), (0, 0)))
        rows = _combine(mats["BT"], [xp[:, i:i + m * th:m] for i in range(a)])
        tiles = [t for r in rows for t in _combine(mats["BT"], [r[:, :, j:j + m * tw:m] for j in range(a)])]
        return jnp.stack(tiles).reshape(a * a, n * th * tw, c), (n, h, wd, th, tw)

    def weights_to_tiles(w):  # [3, 3, C, O] -> U [a*a, C, O]; done once per layer, outside the timed step
        g = np.asarray(mats["G"], np.float64)
        return jnp.asarray(np.einsum("ki,lj,ijco->klco", g, g, np.asarray(w, np.float64)).reshape(a * a, *w.shape[2:]),
                           w.dtype)

    def product(v, u):  # V [a*a, T, C] x U [a*a, C, O] -> [a*a, T, O]
        return jnp.einsum("ktc,kco->kto", v, u, precision=jax.lax.Precision.HIGHEST)

    def from_tiles(mm, grid):  # M [a*a, T, O] -> [N, H, W, O]
        n, h, wd, th, tw = grid
        mm = mm.reshape(a, a, n, th, tw, -1)
        rows = _combine(mats["AT"], [mm[k] for k in range(a)])  # m x [a, n, th, tw, O]
        out = jnp.stack([jnp.stack(_combine(mats["AT"], [r[l] for l in range(a)])) for r in rows])
        return out.transpose(2, 3, 0, 4, 1, 5).reshape(n, th * m, tw * m, -1)[:, :h, :wd]

    return to_tiles, weights_to_tiles, product, from_tiles


def winograd(m: int):
    """F(m x m, 3x3) as a convolution of x [N, H, W, C] with transformed weights U [a*a, C, O]."""
    to_tiles, _, product, from_tiles = winograd_transforms(m)

    def conv(x, u):
        v, grid = to_tiles(x)
        return from_tiles(product(v, u), grid)

    return conv


def forward_and_input_grad(conv):
    """jitted (x, w, r) -> (<conv(x, w), r>, its gradient with respect to x): what a step does per layer. w and r
    are arguments, not constants, so that XLA does not fold the weight transform into the program."""
    return jax.jit(jax.value_and_grad(lambda x, w, r: jnp.vdot(conv(x, w), r)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows, totals = [], np.zeros(5)
    key = jax.random.key(0)
    transforms = {m: winograd_transforms(m) for m in WINOGRAD}
    to_tiles, _, product, _ = transforms[4]
    for name, h, _ in vgg.conv_maps(args.size, args.size, "conv5_1"):
        _, _, c, o = layers.CONV_SHAPES[name]
        kx, kw, kr = jax.random.split(jax.random.fold_in(key, h * c + o), 3)
        x = jax.random.normal(kx, (1, h, h, c))
        w = jax.random.normal(kw, (3, 3, c, o)) / np.sqrt(9 * c)
        r = jax.random.normal(kr, (1, h, h, o))
        u = {m: weights_to_tiles(w) for m, (_, weights_to_tiles, _, _) in transforms.items()}
        times = [1e3 * best_seconds(forward_and_input_grad(conv), x, k, r, repeats=args.repeats)
                 for conv, k in ((direct, w), (winograd(2), u[2]), (winograd(4), u[4]))]
        v, _ = to_tiles(x)
        gemms = 1e3 * best_seconds(forward_and_input_grad(product), v, u[4], jax.random.normal(kr, (*v.shape[:2], o)),
                        repeats=args.repeats)
        want, got = direct(x, w), jax.jit(winograd(4))(x, u[4])
        error = float(jnp.max(jnp.abs(got - want)) / jnp.max(jnp.abs(want)))
        gflop = conv_gflop(name, h, h)
        totals += [gflop, *times, gemms]
        rows.append([name, f"{h}x{h}x{c}->{o}", f"{gflop:.1f}", *(f"{t:.0f}" for t in times), f"{gemms:.0f}",
                     f"{error:.1e}"])
    rows.append(["total", "", f"{totals[0]:.0f}", *(f"{t:.0f}" for t in totals[1:]), ""])
    print(f"{machine()}, {args.size} px, best of {args.repeats}")
    print(table(["layer", "shape", "GFLOP", "direct ms", "F(2x2) ms", "F(4x4) ms", "F(4x4) products ms",
                 "F(4x4) error"], rows))


if __name__ == "__main__":
    main()
