"""Images per minute for 1, 4 and 16 jobs in one batch (vmap over jobs), against one job at a time.

    python benchmarks/batch_throughput.py [--size 256] [--jobs 1 4 16] [--steps-per-image 100] [--weights FILE]

Each job is an independent style transfer (its own Adam state); "images/min" assumes --steps-per-image steps
per image. The ratio compares with running the jobs one by one.
"""

from __future__ import annotations

import argparse

from common import load_weights, machine, table, test_images
from step_time import jax_step_time


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
    rows, base = [], None
    for jobs in args.jobs:
        _, per_step = jax_step_time(w, content, style, args.steps, jobs=jobs)
        per_minute = 60.0 * jobs / (per_step * args.steps_per_image)
        base = base or per_minute / jobs  # one job at a time: the first row (1 job)
        rows.append([jobs, f"{per_step:.2f}", f"{per_step / jobs:.2f}", f"{per_minute:.2f}",
                     f"{per_minute / base:.2f}"])
        print(rows[-1], flush=True)
    print(table(["jobs", "s/step (all jobs)", "s/step per image", f"images/min ({args.steps_per_image} steps)",
                 "vs one by one"], rows))


if __name__ == "__main__":
    main()
