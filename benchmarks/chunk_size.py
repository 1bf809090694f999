"""Steps per compiled chunk (`--chunk-size`): seconds per step and warm start-up.

    python benchmarks/chunk_size.py [--sizes 256 512] [--chunks 1 2 5 10] [--steps 20] [--precision P] [--weights FILE]

Every (size, chunk length) runs in a fresh process, with a persistent compilation cache warmed by an untimed run
of the same program first. Each timed run does `--steps` steps of the default optimiser from the content image.
"start-up" = seconds from the process's first `optimize()` call until its first chunk starts (the time until
that one-chunk call reports its chunk, minus the chunk at the steady rate); "s/step" = the steady rate,
from two warm calls, one chunk and `--steps` steps, their wall-time difference over the steps between them;
"faults/step" = the process's minor page faults per step, likewise.
"""

from __future__ import annotations

import argparse
import tempfile

from nst_jax.config import Config
from nst_jax.reference.bench import json_child, machine, table

CHILD = """
import json, resource, sys
from nst_jax.reference.bench import load_weights, test_images, timed_optimize
from nst_jax import enable_compilation_cache
from nst_jax.config import Config
size, chunk, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
enable_compilation_cache(sys.argv[4])
w, _ = load_weights(sys.argv[5] or None)
c, s = test_images(size)

def run(n, marks=None):
    config = Config(size=None, steps=n, chunk_size=chunk, init="content", precision=sys.argv[6],
                    optimizer=sys.argv[7])
    f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return timed_optimize(c, s, w, config, marks=marks), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f

first = []
run(chunk, first)  # the process's first call: first[0] = seconds until its one chunk was done
(one, f1), (many, fn) = run(chunk), run(steps)
step = (many - one) / (steps - chunk)
print(json.dumps({{"startup": first[0] - chunk * step, "step": step, "faults": (fn - f1) / (steps - chunk)}}))
"""


def child(size, chunk, steps, cache, weights, precision, optimizer=Config.optimizer, env=None) -> dict:
    """One fresh process (environment `env`, default this one's): {"startup", "step", "faults"} of `steps` steps
    in chunks of `chunk`, from the content image."""
    return json_child(CHILD, [size, chunk, steps, cache, weights, precision, optimizer], f"nst_jax at {size} px", env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed run (a multiple of every chunk)")
    parser.add_argument("--precision", default=Config.precision)
    parser.add_argument("--weights", default="")
    args = parser.parse_args()
    if any(args.steps % c or args.steps == c for c in args.chunks):
        parser.error("--steps must be a multiple of every chunk length, and larger")
    print(f"{machine()}; precision {args.precision}\n")
    rows = []
    for size in args.sizes:
        for chunk in args.chunks:
            cache = tempfile.mkdtemp()
            child(size, chunk, 2 * chunk, cache, args.weights, args.precision)  # compile into the cache, untimed
            r = child(size, chunk, args.steps, cache, args.weights, args.precision)
            rows.append([size, chunk, f"{r['step']:.4g}", f"{r['startup']:.2f}", f"{r['faults']:.0f}"])
            print(rows[-1], flush=True)
    print(table(["size", "steps per chunk", "s/step", "warm start-up s", "page faults/step"], rows))


if __name__ == "__main__":
    main()
