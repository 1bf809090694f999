"""Compile time cold and with a warm persistent cache: time before the first step, each run a fresh process.

    python benchmarks/compile_time.py [--sizes 256 512] [--optimizer lbfgs-armijo] [--chunk-size 5]
                                      [--repeats 3] [--weights FILE]

Uses the CLI's defaults (optimiser, chunk size) unless told otherwise. "startup" = seconds from the process's
first `optimize()` call (one chunk) until its chunk of steps starts: the time until that call reports its chunk
minus one chunk at the steady rate, which two warm calls give (one chunk and three chunks: their difference
over two chunks); "targets" = one more computation of the targets (content and style features: two
forward passes), compiled, timed after the runs: the part of the start-up that is arithmetic; "process" = the
whole process's wall time (imports and all three calls included). One cold process per size, then --repeats
warm ones: start-up is a difference of noisy times on a shared machine, so the warm row gives medians and the
range of the start-ups.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from nst_jax.config import Config
from nst_jax.reference.bench import json_child, machine, table

CHILD = """
import json, sys, time
import jax
from nst_jax.reference.bench import load_weights, test_images, timed_optimize
from nst_jax import enable_compilation_cache
from nst_jax.core import objective
from nst_jax.run import settings
from nst_jax.config import Config
enable_compilation_cache(sys.argv[2])
w, _ = load_weights(sys.argv[3] or None)
c, s = test_images(int(sys.argv[1]))
chunk_size = int(sys.argv[5])

config = Config(size=None, chunk_size=chunk_size, optimizer=sys.argv[4], init="content")

def run(chunks, marks=None):
    return timed_optimize(c, s, w, config.replace(steps=chunks * chunk_size), marks=marks)

first = []
run(1, first)  # the process's first call: first[0] = seconds until its one chunk was done
one = run(1)
chunk = (run(3) - one) / 2
spec = settings.loss_spec(config, w.preprocess)
params = objective.cast_params(w.params, spec)
variable = lambda im: objective.to_variable(jax.numpy.asarray(im)[None], spec)
t = time.perf_counter()
jax.block_until_ready(objective.compute_targets(params, variable(c), variable(s), spec))
print(json.dumps({{"startup": first[0] - chunk, "step": chunk / chunk_size, "targets": time.perf_counter() - t}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--optimizer", default=Config.optimizer)
    parser.add_argument("--chunk-size", type=int, default=Config.chunk_size)
    parser.add_argument("--weights", default="")
    parser.add_argument("--repeats", type=int, default=3,
                        help="warm processes per size (the table gives medians, and the range of start-ups)")
    args = parser.parse_args()
    print(machine() + f"\noptimizer {args.optimizer}, chunks of {args.chunk_size} steps\n")
    rows = []
    for size in args.sizes:
        # one cache folder per size: the cold run fills it
        child = [size, tempfile.mkdtemp(), args.weights, args.optimizer, args.chunk_size]
        for run, repeats in (("cold", 1), ("warm", args.repeats)):
            results = []
            for _ in range(repeats):
                t = time.perf_counter()
                result = json_child(CHILD, child, f"the {run} run at {size} px")
                results.append(dict(result, wall=time.perf_counter() - t))
                print(size, run, results[-1], flush=True)
            startups = [r["startup"] for r in results]
            spread = f" ({min(startups):.1f}-{max(startups):.1f})" if repeats > 1 else ""
            mid = lambda key, results=results: statistics.median(r[key] for r in results)  # noqa: E731
            rows.append([size, run if repeats == 1 else f"{run} x{repeats}", f"{mid('startup'):.1f}{spread}",
                         f"{mid('targets'):.2f}", f"{mid('step'):.2f}", f"{mid('wall'):.1f}"])
    print(table(["size", "cache", "startup s (before first step)", "of which targets s", "s/step", "process wall s"],
                rows))


if __name__ == "__main__":
    main()
