"""VGG19's forward pass to relu5_1 and the gradient with respect to the input, alone, for a batch of images:
a probe of the network's own rate, without nst_jax's losses, optimiser or loop.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/loss_grad_time.py` (it imports benchmarks/common.py).

    python experiments/loss_grad_time.py [--size 256] [--jobs 1 16] [--precisions tf32 float32] [--calls 20]

The scalar differentiated is the sum of the Gram matrices of the paper's style layers and relu4_2 (einsum at the
same precision as the convolutions, unlike nst_jax's Gram products, which are exact float32 in every mode). Each
row: milliseconds per call of the jitted gradient (the mean of --calls calls after a warm-up), and in the
compiled program the number of convolutions and of transposes. Compare compiler flags by running it under
different XLA_FLAGS (e.g. --xla_gpu_force_conv_nhwc=true).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, table

from nst_jax import vgg

PRECISIONS = {"tf32": jax.lax.Precision.DEFAULT, "float32": jax.lax.Precision.HIGHEST}
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"]


def grad_fn(params, precision):
    def loss(x):
        feats = vgg.features(params, x, LAYERS, precision=precision)
        return sum(jnp.sum(jnp.einsum("bhwc,bhwd->bcd", f, f, precision=precision)) for f in feats.values())

    return jax.jit(jax.grad(loss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    print(f"{machine()}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}\n")
    rows = []
    for name in args.precisions:
        g = grad_fn(w.params, PRECISIONS[name])
        for jobs in args.jobs:
            x = jax.random.normal(jax.random.key(0), (jobs, args.size, args.size, 3))
            text = g.lower(x).compile().as_text()
            y = g(x).block_until_ready()
            t = time.perf_counter()
            for _ in range(args.calls):
                y = g(x)
            y.block_until_ready()
            ms = 1e3 * (time.perf_counter() - t) / args.calls
            convs = len(re.findall(r"custom_call_target=\"__cudnn\$conv", text)) or text.count(" convolution(")
            rows.append([name, jobs, f"{ms:.2f}", f"{ms / jobs:.3f}", convs, text.count(" transpose(")])
            print(rows[-1], flush=True)
    print(table(["precision", "jobs", "ms per call", "ms per image", "convolutions", "transposes"], rows))


if __name__ == "__main__":
    main()
