"""Gradient steps through VGG19 inside a loop (`lax.scan`) against the same steps unrolled, with JAX's own
convolution gradient and with nst_jax's `vgg.conv3x3` (input gradient through kernels flipped beforehand).

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/performance.md. Run it as
`python experiments/loop_conv.py` (it imports benchmarks/common.py).

    python experiments/loop_conv.py [--size 256] [--steps 5] [--calls 3] [--weights FILE]

One step: x <- x - 1e-3 grad(sum of the squared relu1_1 .. relu5_1 maps)(x), VGG19 to relu5_1, float32 exact
(Precision.HIGHEST), one image. Each row: seconds per step (the mean of --calls calls of a compiled program of
--steps steps, after a warm-up call), and the kernel layouts ("dim_labels") of the program's convolutions: `01io`
is [3, 3, C_in, C_out], `01oi` a kernel whose channel axes the convolution swaps itself. This is why nst_jax has
its own convolution gradient (docs/performance.md).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, table

from nst_jax import layers, vgg

HI = jax.lax.Precision.HIGHEST
CONVS = layers.CONV_NAMES[:13]  # conv1_1 .. conv5_1


def jax_conv(x, p, flipped):
    y = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=HI)
    return y + p["bias"]


def own_conv(x, p, flipped):
    return vgg.conv3x3(x, p["kernel"], flipped, HI) + p["bias"]


def loss(x, params, flipped, conv):
    """x [1, H, W, 3] -> the sum of the squared relu_1 maps of blocks 1 to 5."""
    total = 0.0
    for name in CONVS:
        if name.endswith("_1") and name != "conv1_1":
            x = vgg.pool2x2(x, "avg")
        x = jax.nn.relu(conv(x, params[name], flipped[name]["kernel"] if flipped else None))
        if name.endswith("_1"):
            total = total + jnp.sum(x * x)
    return total


def program(conv, steps: int, loop: bool, flip: bool):
    def run(x, params):
        flipped = vgg.flipped_kernels(params) if flip else None
        step = jax.grad(lambda v: loss(v, params, flipped, conv))

        def body(v, _):
            return v - 1e-3 * step(v), None

        return jax.lax.scan(body, x, None, length=steps, unroll=1 if loop else True)[0]

    return jax.jit(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    params = {k: {n: jnp.asarray(a) for n, a in v.items()} for k, v in w.params.items() if k in CONVS}
    x = jax.random.uniform(jax.random.key(0), (1, args.size, args.size, 3), minval=-100, maxval=100)
    print(f"{machine()}; {args.size}x{args.size}, {args.steps} steps per program\n", flush=True)
    rows, times = [], {}
    for gradient, conv, flip in (("JAX's own", jax_conv, False), ("vgg.conv3x3, flipped once", own_conv, True)):
        for loop in (False, True):
            f = program(conv, args.steps, loop, flip)
            text = f.lower(x, params).compile().as_text()
            labels = Counter(re.findall(r"dim_labels=\w+_(\w+)->", text))
            f(x, params).block_until_ready()
            t = time.perf_counter()
            for _ in range(args.calls):
                f(x, params).block_until_ready()
            times[gradient, loop] = (time.perf_counter() - t) / args.calls / args.steps
            rows.append([gradient, "scan loop" if loop else "unrolled", " while(" in text,
                         f"{times[gradient, loop]:.3g}",
                         f"{times[gradient, loop] / times[gradient, False]:.2f}",
                         ", ".join(f"{k} x{n}" for k, n in sorted(labels.items()))])
            print(rows[-1], flush=True)
    print(table(["gradient", "steps", "while loop", "s/step", "vs unrolled", "kernel layouts"], rows))


if __name__ == "__main__":
    main()
