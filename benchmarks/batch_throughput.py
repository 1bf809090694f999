"""Images per minute for 1, 4 and 16 jobs: all in one program (vmap over jobs), and as `optimize` runs them by
default (`jobs_per_program`: one program per job on a lone CPU device), against one job at a time.

    python benchmarks/batch_throughput.py [--size 256] [--jobs 1 4 16] [--steps 3] [--run-steps N] [--precision P]
                                          [--weights FILE]

Each job is an independent style transfer (its own Adam state). "One program": the steady seconds per step of
the compiled chunks of `--steps` steps (`step_time.jax_step_time`: compilation, set-up and targets excluded);
"whole runs": the wall time of `optimize` on the jobs, `--run-steps` steps each (default 2 x --steps), with the
default batching, targets and per-program overheads included and compilation excluded by a warm-up call; its
images/min are measured. Each column's 1-job row is its baseline. Whole runs weigh the per-run overheads by
1 / --run-steps: a short run favours batching more than a long one. (Its probe of Gram products in TF32, which
patched a private setting, was removed on 2026-12-02; the result is in docs/experiments.md.)
"""

from __future__ import annotations

import argparse

from step_time import jax_step_time

from nst_jax.config import Config
from nst_jax.reference.bench import load_weights, machine, table, test_images, timed_optimize
from nst_jax.run import planning


def whole_run_time(w, content, style, steps: int, jobs: int, precision: str) -> float:
    """Wall seconds per image and step of `optimize` on `jobs` jobs with the default batching (after a warm-up)."""
    config = Config(size=None, optimizer="adam", init="content", steps=steps, chunk_size=steps, precision=precision)
    timed_optimize(content, style, w, config, jobs)  # compile (a batched program has its own shape)
    return timed_optimize(content, style, w, config, jobs) / (jobs * steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=3, help="steps per chunk of the one-program measurement")
    parser.add_argument("--run-steps", type=int, help="steps per image of the whole runs (default: 2 x --steps)")
    parser.add_argument("--precision", default=Config.precision, help="as nst_jax's --precision (on a GPU: tf32 "
                        "is the fast float32 path)")
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    print(f"{machine()}; precision {args.precision}\n")
    print(f"default jobs per program here: {planning.jobs_per_program(Config(), 16)} (of 16)\n")
    run_steps = args.run_steps or 2 * args.steps
    rows, base, base_run = [], None, None
    for jobs in args.jobs:
        _, per_step = jax_step_time(w, content, style, args.steps, args.precision, jobs)
        per_image = per_step / jobs
        run = whole_run_time(w, content, style, run_steps, jobs, args.precision)
        base, base_run = base or per_image, base_run or run  # the first row: 1 job
        rows.append([jobs, f"{per_step:.3g}", f"{per_image:.3g}", f"{base / per_image:.2f}", f"{run:.3g}",
                     f"{60.0 / (run * run_steps):.1f}", f"{base_run / run:.2f}"])
        print(rows[-1], flush=True)
    print(table(["jobs", "one program: s/step (all jobs)", "s/step per image", "vs one by one",
                 f"whole runs ({run_steps} steps): s/step per image", "images/min", "vs one by one"], rows))


if __name__ == "__main__":
    main()
