"""Images per minute for 1, 4 and 16 jobs: all in one program (vmap over jobs), and as `optimize` runs them by
default (`jobs_per_program`: one program per job on a lone CPU device), against one job at a time.

    python benchmarks/batch_throughput.py [--size 256] [--jobs 1 4 16] [--steps-per-image 100] [--weights FILE]

Each job is an independent style transfer (its own Adam state). "One program": seconds per step of a compiled
chunk (compilation excluded); "default": the whole `optimize` call's wall time per image and step (targets and
per-program overheads included, compilation excluded by a warm-up call), so its 1-job row is the baseline of
that column. "images/min" assumes --steps-per-image steps per image.
"""

from __future__ import annotations

import argparse
import time

from common import load_weights, machine, table, test_images
from step_time import jax_step_time

from nst_jax import transfer
from nst_jax.config import Config


def default_step_time(w, content, style, steps: int, jobs: int) -> float:
    """Wall seconds per image and step of `optimize` on `jobs` jobs with the default batching (after a warm-up)."""
    config = Config(size=None, optimizer="adam", init="content", steps=steps, chunk_size=steps)
    transfer.optimize([content] * jobs, [style] * jobs, w, config)  # compile (a batched program has its own shape)
    t = time.perf_counter()
    transfer.optimize([content] * jobs, [style] * jobs, w, config)
    return (time.perf_counter() - t) / (jobs * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--steps-per-image", type=int, default=100)
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n")
    print(f"default jobs per program here: {transfer.jobs_per_program(Config(), 16)} (of 16)\n")
    rows, base, base_default = [], None, None
    for jobs in args.jobs:
        _, per_step = jax_step_time(w, content, style, args.steps, jobs=jobs)
        per_image = per_step / jobs
        default = default_step_time(w, content, style, 2 * args.steps, jobs)
        base, base_default = base or per_image, base_default or default  # the first row: 1 job
        rows.append([jobs, f"{per_step:.3g}", f"{per_image:.3g}", f"{60.0 / (per_image * args.steps_per_image):.1f}",
                     f"{base / per_image:.2f}", f"{default:.3g}", f"{base_default / default:.2f}"])
        print(rows[-1], flush=True)
    print(table(["jobs", "one program: s/step (all jobs)", "s/step per image",
                 f"images/min ({args.steps_per_image} steps)", "vs one by one", "default: s/step per image",
                 "vs one by one"], rows))


if __name__ == "__main__":
    main()
