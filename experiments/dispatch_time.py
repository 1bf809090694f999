"""Host time to hand one compiled chunk to the device: how long the Python thread spends in `run_chunk`'s call.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/performance.md. Run it as
`python experiments/dispatch_time.py` (it imports benchmarks/common.py).

    python experiments/dispatch_time.py [--size 256] [--precisions float32] [--steps 60] [--chunk-size 20]

JAX dispatches asynchronously: a call should return long before its program has run. For each precision,
`optimize` runs one job (after a warm-up run that compiles), with a progress callback and without, and the table
gives every `run_chunk` call's host time. For scale, the last row is a jitted function of two arrays (a scan of
matrix products, one argument donated). On a GPU host that is slow to dispatch, a chunk whose device work is
shorter than its dispatch leaves the device idle between chunks.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, on_gpu, table, test_images, timed_optimize

from nst_jax import transfer
from nst_jax.config import Config


def chunk_dispatch_ms(w, content, style, config: Config, callback: bool) -> tuple[list[float], float]:
    """(host ms of each `run_chunk` call, the run's wall ms) of one `optimize` run."""
    real, spent = transfer.run_chunk, []

    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = real(*args, **kwargs)
        spent.append(1e3 * (time.perf_counter() - t))
        return out

    transfer.run_chunk = timed
    try:
        return spent, 1e3 * timed_optimize(content, style, w, config, marks=[] if callback else None)
    finally:
        transfer.run_chunk = real


def two_array_dispatch_ms(n: int, calls: int = 5) -> list[float]:
    """Host ms of each call of a jitted scan of 50 [n, n] matrix products (x donated, w not)."""
    def body(x, w):
        return jax.lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=50)[0]

    f = jax.jit(body, donate_argnums=0)
    w = jax.random.normal(jax.random.key(0), (n, n)) / n
    x = f(jnp.ones((n, n)), w).block_until_ready()
    spent = []
    for _ in range(calls):
        t = time.perf_counter()
        x = f(x, w)
        spent.append(1e3 * (time.perf_counter() - t))
    x.block_until_ready()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precisions", nargs="+", default=[Config.precision])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n")
    rows = []
    for precision in args.precisions:
        config = Config(size=None, optimizer="adam", init="content", steps=args.steps, chunk_size=args.chunk_size,
                        precision=precision)
        chunk_dispatch_ms(w, content, style, config, callback=False)  # compile
        for callback in (False, True):
            spent, wall = chunk_dispatch_ms(w, content, style, config, callback)
            rows.append([f"run_chunk, {precision}", "yes" if callback else "no",
                         " ".join(f"{ms:.2f}" for ms in spent), f"{wall:.1f}"])
            print(rows[-1], flush=True)
    n = 4096 if on_gpu() else 512
    rows.append([f"jit of 2 arrays ({n}^2)", "", " ".join(f"{ms:.2f}" for ms in two_array_dispatch_ms(n)), ""])
    print(table(["call", "callback", "host ms per call", "run wall ms"], rows))


if __name__ == "__main__":
    main()
