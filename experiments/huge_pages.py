"""Transparent huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) against glibc's default 4 KiB pages, for nst_jax
and the PyTorch reference side by side.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/huge_pages.py` (it imports benchmarks/common.py).

    python experiments/huge_pages.py [--sizes 512 1024] [--steps 5] [--weights FILE]

Every measurement runs in a fresh process, started with or without the tunable (what `python -m nst_jax` sets for
itself, see `nst_jax/hugepages.py`); the two settings alternate within each size. A step is an Adam step of the
paper's loss from the content image, as in `step_time.py`. nst_jax, measured by `chunk_size.py`'s child: the
persistent compilation cache is warmed by an untimed process first; "start-up" = seconds from the process's first
`optimize` call until its first step begins (that one-chunk call's time minus a chunk at the steady rate); s/step =
(a three-chunk call - a one-chunk call) / (2 chunks), chunks of `--steps`. torch: the reference's steps after a
warm-up run, set-up excluded. Faults: the process's minor page faults per step over the same steps.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
import chunk_size
from common import json_child, machine, table

from nst_jax import hugepages

TUNABLE = f"{hugepages.TUNABLE}=1"  # what `python -m nst_jax` restarts with

TORCH_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {bench!r})
from common import load_weights, test_images
from nst_jax import torch_reference as ref
size, steps, weights = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
w, path = load_weights(weights or None)
c, s = test_images(size)
convs = ref.read_weights(path)
setting = dict(ref.PAPER, preprocess=w.preprocess)
ref.run(convs, c, s, c, setting, 3)  # warm-up
start = []
ref.run(convs, c, s, c, setting, steps, on_start=lambda: start.append((time.perf_counter(), faults())))
print(json.dumps({{"step": (time.perf_counter() - start[0][0]) / steps, "faults": (faults() - start[0][1]) / steps}}))
"""


def environment(huge: bool) -> dict:
    """This process's environment with GLIBC_TUNABLES naming the huge-page tunable, or not set at all."""
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if huge:
        env["GLIBC_TUNABLES"] = TUNABLE
    return env


def nst_jax_child(size: int, steps: int, weights: str, cache: str, huge: bool) -> dict:
    """nst_jax in a fresh process: `chunk_size.py`'s measurement, Adam, one chunk against three of `steps`."""
    return chunk_size.child(size, steps, 3 * steps, cache, weights, "float32", optimizer="adam", env=environment(huge))


def torch_child(size: int, steps: int, weights: str, huge: bool) -> dict:
    """The PyTorch reference in a fresh process: {"step", "faults"}."""
    return json_child(TORCH_CHILD, [size, steps, weights], f"torch at {size} px", environment(huge))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=5, help="steps per chunk (nst_jax) and timed steps (torch)")
    parser.add_argument("--weights", default="", help="weights file (default: random values in the Keras format)")
    args = parser.parse_args()
    print(f"{machine()}; huge pages: {TUNABLE} against the default\n")
    rows = []
    for size in args.sizes:
        cache = tempfile.mkdtemp()
        nst_jax_child(size, args.steps, args.weights, cache, False)  # fills the compilation cache, untimed
        r = {("nst_jax", huge): nst_jax_child(size, args.steps, args.weights, cache, huge) for huge in (False, True)}
        r.update({("torch", huge): torch_child(size, args.steps, args.weights, huge) for huge in (False, True)})
        for huge in (False, True):
            ours, theirs = r["nst_jax", huge], r["torch", huge]
            rows.append([size, "huge" if huge else "4 KiB", f"{ours['step']:.3f}", f"{ours['faults']:.0f}",
                         f"{ours['startup']:.2f}", f"{theirs['step']:.3f}", f"{theirs['faults']:.0f}",
                         f"{ours['step'] / theirs['step']:.2f}"])
            print(rows[-1], flush=True)
        off, on = r["nst_jax", False]["step"], r["nst_jax", True]["step"]
        t_off, t_on = r["torch", False]["step"], r["torch", True]["step"]
        print(f"{size} px: huge pages take {on / off:.2f}x the time per step for nst_jax, "
              f"{t_on / t_off:.2f}x for torch", flush=True)
    print(table(["size", "pages", "nst_jax s/step", "nst_jax faults/step", "nst_jax warm start-up s", "torch s/step",
                 "torch faults/step", "nst_jax/torch"], rows))


if __name__ == "__main__":
    main()
