"""Multi-scale without a coarse objective: the full-size objective optimised over a pyramid of image variables, or
by L-BFGS preconditioned with the same pyramid, against single scale, in full-size lbfgs-armijo steps to a given
loss.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/pyramid.py` (it imports benchmarks/common.py).

    python experiments/pyramid.py [--size 256] [--init noise|content] [--target LOSS] [--single-steps 300]
                                 [--max-steps 400] [--seeds 0 1 2] [--pyramid LEVELS:GAIN|none ...]
                                 [--precondition LEVELS:GAIN|none ...] [--memory 10] [--weights FILE]

Coarse to fine (`--scales`) hands the last scale an image made for another objective (docs/experiments.md,
coarse_starts.py).
Here every step is a step of the full-size objective (the paper's, as in time_to_quality.py; square test images),
and the coarse scales only shape the steps: the image is

    clip(w_0 + sum_{k=1..L} sqrt((g / 4)^k) U_k w_k, 0, 1),

w_0 [size] starting at --init, w_k [size / 2^k] starting at zero, U_k bilinear upsampling to full size (Lucid's
Laplacian-pyramid parameterisation). lbfgs-armijo, unchanged, over all the w_k together is L-BFGS on the image with
the initial inverse Hessian gamma (I + sum_k (g / 4)^k U_k U_k^T) (up to the clip): steps along an image's smooth
components are g^k times larger at level k. A pyramid with no levels, "clipped inside", is the same clip without
the pyramid; "single scale" is the CLI's lbfgs-armijo (trial points projected into [0, 1]).

The same metric without the change of variable ("preconditioned"): single scale's lbfgs-armijo on the image, its
trial points projected into [0, 1], with H_0 = (s.y / y.My) M, M = I + sum_{k=1..L} (g / 4)^k U_k U_k^T, and -M g
wherever plain L-BFGS steps along -g (`lbfgs_armijo.update`'s `precondition`). M is symmetric positive definite,
so the objective and the box are unchanged; only the path differs.

Each route runs until its loss is at most the target: --target, or by default the single-scale run's loss after
--single-steps steps (first seed). s/step: the run's steps after its first (which compiles), on this machine.
--memory: lbfgs-armijo's curvature pairs in every route (the CLI's --lbfgs-memory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from coarse_starts import first_below, minimise_over, problem
from common import load_weights, machine, table, test_images

from nst_jax import transfer
from nst_jax.config import preset_config

CHECKPOINTS = (50, 100, 200)  # steps whose loss the table shows


def pyramid(start: jax.Array, levels: int, gain: float):
    """(w0, image_of): the pyramid's variables flattened [n] (w_0 = start [1, H, W, 3], coarser levels zero) and
    the image [1, H, W, 3] they make, clipped to [0, 1]."""
    _, h, w, _ = start.shape
    flat, unravel = ravel_pytree([start] + [jnp.zeros((1, h >> k, w >> k, 3)) for k in range(1, levels + 1)])
    scale = [float(np.sqrt((gain / 4.0) ** k)) for k in range(levels + 1)]

    def image_of(v):
        ws = unravel(v)
        return jnp.clip(ws[0] + sum(scale[k] * jax.image.resize(ws[k], start.shape, "linear")
                                    for k in range(1, levels + 1)), 0.0, 1.0)

    return flat, image_of


def preconditioner(shape: tuple[int, ...], levels: int, gain: float):
    """v [n] -> M v = v + sum_{k=1..levels} (gain / 4)^k U_k U_k^T v for flat images of `shape` [1, H, W, 3]; U_k
    upsamples bilinearly from [1, H / 2^k, W / 2^k, 3] (U_k U_k^T of a constant image is 4^k times it)."""

    def upsample(small):
        return jax.image.resize(small, shape, "linear")

    def apply(v):
        image = v.reshape(shape)
        out = image
        for k in range(1, levels + 1):
            small = jax.ShapeDtypeStruct((1, shape[1] >> k, shape[2] >> k, shape[3]), image.dtype)
            out = out + (gain / 4.0) ** k * upsample(*jax.linear_transpose(upsample, small)(image))
        return out.reshape(v.shape)

    return apply


def _routes(text: list[str]) -> list[tuple[int, float]]:
    return [tuple(float(x) for x in s.split(":")) for s in text if s != "none"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--init", choices=("content", "noise"), default="noise")
    p.add_argument("--target", type=float, default=None, help="loss to reach (default: see --single-steps)")
    p.add_argument("--single-steps", type=int, default=300,
                   help="steps of single scale (first seed) whose loss is the default target")
    p.add_argument("--max-steps", type=int, default=400, help="steps allowed to each route")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the noise start")
    p.add_argument("--pyramid", action="append", default=None, metavar="LEVELS:GAIN",
                   help="a pyramid route (repeatable; default 3:1.5 and 4:2; none: no pyramid routes, and no "
                   "clipped-inside route either)")
    p.add_argument("--precondition", action="append", default=None, metavar="LEVELS:GAIN",
                   help="a preconditioned single-scale route (repeatable; default 3:1.5; none: none)")
    p.add_argument("--memory", type=int, default=10, help="lbfgs-armijo's curvature pairs (--lbfgs-memory)")
    p.add_argument("--weights", default=None, help="weights file (default: random-valued, see common.py)")
    args = p.parse_args()
    pyramids = _routes(args.pyramid or ["3:1.5", "4:2"])
    preconditioned = _routes(args.precondition or ["3:1.5"])
    seeds = args.seeds if args.init == "noise" else args.seeds[:1]

    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    config = preset_config("gatys", size=None, init=args.init, optimizer="lbfgs-armijo")
    prob = problem(content, style, args.size, w, config)
    box = lambda v: jnp.clip(v, 0.0, 1.0)  # noqa: E731
    target, rows = args.target, []
    for seed in seeds:
        start = jnp.asarray(transfer.initial_variable(args.init, content, style, seed, prob.spec))[None]
        routes = [("single scale (projected)", start, lambda v: v, box, None)]
        routes += [(f"pyramid, {int(levels)} levels, gain {gain:g}" if levels else "no pyramid, clipped inside",
                    *pyramid(start, int(levels), gain), None, None)
                    for levels, gain in ([(0, 1.0)] + pyramids if pyramids else [])]
        routes += [(f"preconditioned, {int(levels)} levels, gain {gain:g}", start, lambda v: v, box,
                    preconditioner(start.shape, int(levels), gain)) for levels, gain in preconditioned]
        single = None
        for name, w0, image_of, project, metric in routes:
            if target is None:  # the first single-scale run sets the target
                _, losses, per_step = minimise_over(prob, image_of, w0, config, args.single_steps, project,
                                                    memory=args.memory)
                target = float(losses[-1])
            else:
                _, losses, per_step = minimise_over(prob, image_of, w0, config, args.max_steps, project,
                                                    stop_below=target, memory=args.memory, precondition=metric)
            steps = first_below(losses, target)
            single = single if single is not None else steps
            ratio = f"{steps / single:.2f}" if steps and single else "-"
            rows.append([seed, name, steps or f"> {args.max_steps}", ratio]
                        + [f"{losses[c - 1]:.3g}" if c <= len(losses) else "-" for c in CHECKPOINTS]
                        + [f"{per_step:.3f}"])
            print(*rows[-1], sep=" | ", flush=True)

    print(f"\n# {machine()}; {args.size}x{args.size} from {args.init}; weights: {args.weights or 'random-valued'}; "
          f"target loss {target:.4g}; memory {args.memory}")
    print(table(["seed", "route", "steps to target", "vs single scale"]
                + [f"loss at step {c}" for c in CHECKPOINTS] + ["s/step"], rows))


if __name__ == "__main__":
    main()
