"""Peak memory per resolution, with and without rematerialisation (each run in a fresh process).

    python benchmarks/memory.py [--sizes 512 1024 2048] [--steps 2] [--weights FILE] [--style-losses gram swd]
        [--remats off on]

Each run does `--steps` Adam steps (the paper's loss, or another style statistic) at size x size and reports the
process's peak resident memory (ru_maxrss; on a GPU the device's peak_bytes_in_use) next to nst_jax's preflight
estimate. A size the preflight refuses is reported with its message.
"""

from __future__ import annotations

import argparse
import json
import time

from nst_jax.reference.bench import machine, run_child, table

CHILD = """
import json, resource, sys, time
import jax
from nst_jax.reference.bench import load_weights, test_images
from nst_jax.run import loop
from nst_jax.config import Config
from nst_jax.run.memory import estimate_bytes, preflight
size, steps, remat, statistic = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[5]
weights = sys.argv[4] or None
config = Config(size=None, steps=steps, optimizer="adam", init="content", chunk_size=1, remat=remat,
                style_loss=statistic)
preflight(config, (size, size), 1)  # before resizing the images: a refused size is refused at once
w, _ = load_weights(weights)
c, s = test_images(size)
t = time.perf_counter()
loop.optimize([c], [s], w, config)
device = jax.devices()[0]
stats = device.memory_stats() if device.platform != "cpu" else None
peak = stats["peak_bytes_in_use"] if stats else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"peak": peak, "seconds": time.perf_counter() - t, "estimate": estimate_bytes(size, size, config)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--weights", default="")
    parser.add_argument("--style-losses", nargs="+", default=["gram"], help="style statistics to measure")
    parser.add_argument("--remats", nargs="+", default=["off", "on"], choices=["off", "on"])
    args = parser.parse_args()
    print(machine() + "\n")
    rows = []
    for size, statistic, remat in ((a, b, c) for a in args.sizes for b in args.style_losses for c in args.remats):
        t = time.perf_counter()
        proc = run_child(CHILD, [size, args.steps, remat, args.weights, statistic])
        if proc.returncode:
            message = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(message)
            rows.append([size, statistic, remat, "failed: " + message[:60], "", ""])
        else:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append([size, statistic, remat, f"{r['peak'] / 2**30:.2f}", f"{r['estimate'] / 2**30:.2f}",
                         f"{time.perf_counter() - t:.0f}"])
        print(rows[-1], flush=True)
    print(table(["size", "style loss", "remat", "peak GiB", "estimate GiB", "wall s (incl. compile)"], rows))


if __name__ == "__main__":
    main()
