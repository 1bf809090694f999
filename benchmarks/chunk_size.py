"""Steps per compiled chunk (`--chunk-size`): seconds per step and warm start-up.

    python benchmarks/chunk_size.py [--sizes 256 512] [--chunks 1 2 5 10] [--steps 20] [--weights FILE]

Every (size, chunk length) runs in a fresh process, with a persistent compilation cache warmed by an untimed run
of the same program first. Each timed run does `--steps` steps of the default optimiser from the content image.
"start-up" = seconds from `optimize()` being called until the first chunk starts (the first chunk's time minus
its steps at the steady rate); "s/step" = the steady rate over the chunks after the first; "faults/step" = the
process's minor page faults per step over those chunks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from common import REPO, machine, table

CHILD = """
import json, resource, sys
sys.path.insert(0, {bench!r})
import jax
from common import load_weights, test_images
from nst_jax import enable_compilation_cache, transfer
from nst_jax.config import Config
size, chunk, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
enable_compilation_cache(sys.argv[4])
w, _ = load_weights(sys.argv[5] or None)
c, s = test_images(size)
marks = []

def mark(p):
    jax.block_until_ready(p.image)
    marks.append((p.elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_minflt))

transfer.optimize([c], [s], w, Config(size=None, steps=steps, chunk_size=chunk, init="content"), callback=mark)
(t0, f0), (t1, f1) = marks[0], marks[-1]
step = (t1 - t0) / (steps - chunk)
print(json.dumps({{"startup": t0 - chunk * step, "step": step,
                  "faults": (f1 - f0) / (steps - chunk)}}))
"""


def child(size, chunk, steps, cache, weights) -> dict:
    argv = [sys.executable, "-c", CHILD.format(bench=str(REPO / "benchmarks")), str(size), str(chunk), str(steps),
            cache, weights]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed run (a multiple of every chunk)")
    parser.add_argument("--weights", default="")
    args = parser.parse_args()
    if any(args.steps % c or args.steps == c for c in args.chunks):
        parser.error("--steps must be a multiple of every chunk length, and larger")
    print(machine() + "\n")
    rows = []
    for size in args.sizes:
        for chunk in args.chunks:
            cache = tempfile.mkdtemp()
            child(size, chunk, 2 * chunk, cache, args.weights)  # compile into the cache, untimed
            r = child(size, chunk, args.steps, cache, args.weights)
            rows.append([size, chunk, f"{r['step']:.3f}", f"{r['startup']:.2f}", f"{r['faults']:.0f}"])
            print(rows[-1], flush=True)
    print(table(["size", "steps per chunk", "s/step", "warm start-up s", "page faults/step"], rows))


if __name__ == "__main__":
    main()
