"""The sliced Wasserstein statistic's sort: XLA's own against the NumPy argsort nst_jax uses on a CPU.

    python benchmarks/swd_sort.py [--sizes 192 384 512] [--repeats 5]

For a picture of `size` px on its longer side (3:4), the relu1_1 projections of the swd statistic: 64 directions x
M positions. Each row times, in one run on this machine (compiled, the median of --repeats calls): XLA's sort of
them ("xla sort"), the value and gradient of one layer's swd distance with XLA's sort (`jnp.sort`, as a plain
implementation writes it: "xla loss+grad") and with nst_jax's `statistics.sorted_projections` (the permutation from
NumPy's argsort through a callback on a CPU, then a gather: "nst_jax loss+grad").
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from nst_jax.core import statistics as stats
from nst_jax.reference.bench import machine, table


def _median_seconds(fn, x, repeats: int) -> float:
    jax.block_until_ready(fn(x))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _row(size: int, repeats: int) -> list:
    h, w, n = size * 3 // 4, size, 64
    features = jax.random.uniform(jax.random.key(0), (1, h, w, n))
    directions = stats.random_directions(jax.random.key(1), n, n)
    target = jnp.sort(jax.random.normal(jax.random.key(2), (1, n, h * w)), axis=-1)

    def xla_distance(f):
        proj = jnp.einsum("bmn,np->bpm", f.reshape(1, h * w, n), directions)
        return jnp.mean((jnp.sort(proj, axis=-1) - target) ** 2)

    def ours(f):
        return jnp.mean((stats.sorted_projections(f, directions) - target) ** 2)

    proj = jnp.einsum("bmn,np->bpm", features.reshape(1, h * w, n), directions)
    sort = _median_seconds(jax.jit(lambda p: jnp.sort(p, axis=-1)), proj, repeats)
    xla = _median_seconds(jax.jit(jax.value_and_grad(xla_distance)), features, repeats)
    mine = _median_seconds(jax.jit(jax.value_and_grad(ours)), features, repeats)
    return [size, f"{n} x {h * w}", f"{sort:.4f}", f"{xla:.4f}", f"{mine:.4f}", f"{xla / mine:.2f}x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 384, 512])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(machine() + "\n")
    rows = []
    for size in args.sizes:
        rows.append(_row(size, args.repeats))
        print(rows[-1], flush=True)
    print(table(["size", "directions x positions", "xla sort s", "xla loss+grad s", "nst_jax loss+grad s",
                 "speed-up"], rows))


if __name__ == "__main__":
    main()
