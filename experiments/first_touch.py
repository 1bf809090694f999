"""Why a process's first chunk takes longer with transparent huge pages: user and kernel time per phase.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/first_touch.py` (it imports benchmarks/common.py).

    python experiments/first_touch.py [--size 1024] [--steps 5] [--pretouch-gib 5] [--weights FILE]

Three fresh processes after an untimed one that fills the persistent compilation cache: glibc's default 4 KiB pages,
huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, what `python -m nst_jax` restarts with from 1024 px), and huge
pages after the process has first written and freed `--pretouch-gib` GiB of its own (a NumPy array). Each process
loads the weights and images, then makes two identical `optimize` calls of one chunk of `--steps` Adam steps from
the content image. Per phase: wall, user and system (kernel) seconds and minor page faults of the process
(`getrusage`), and the machine's huge-page faults and direct compactions (`thp_fault_alloc` and `compact_stall` in
/proc/vmstat). If the first call's extra time is kernel time that the pre-touch removes, it is the cost of memory
the process has not yet touched, not of the program: on a virtual machine that hands freed memory back to its host
(virtio-balloon free page reporting), fresh memory costs the host's page faults as well.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import json_child, machine, table
from huge_pages import environment

CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {bench!r})

def snap():
    r = resource.getrusage(resource.RUSAGE_SELF)
    vm = dict(line.split() for line in open("/proc/vmstat"))
    return [time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt, int(vm.get("thp_fault_alloc", 0)),
            int(vm.get("compact_stall", 0))]

marks = [("start", snap())]
from common import load_weights, test_images, timed_optimize
from nst_jax import enable_compilation_cache
from nst_jax.config import Config
size, steps, cache, weights, gib = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
enable_compilation_cache(cache)
w, _ = load_weights(weights or None)
c, s = test_images(size)
marks.append(("load", snap()))
if gib:
    import numpy as np
    a = np.ones(int(gib * 2**30) // 8)
    del a
    marks.append(("pre-touch", snap()))
config = Config(size=None, steps=steps, chunk_size=steps, init="content", optimizer="adam")
for name in ("first call", "second call"):
    timed_optimize(c, s, w, config)
    marks.append((name, snap()))
print(json.dumps([[b[0], [y - x for x, y in zip(a[1], b[1])]] for a, b in zip(marks, marks[1:])]))
"""


def page_reporting() -> str:
    """The kernel's free page reporting to a hypervisor, as far as this machine shows it."""
    cmdline = Path("/proc/cmdline").read_text() if Path("/proc/cmdline").exists() else ""
    order = [w.split("=")[1] for w in cmdline.split() if w.startswith("page_reporting.page_reporting_order=")]
    balloon = Path("/sys/bus/virtio/drivers/virtio_balloon").exists()
    return (f"virtio_balloon driver {'present' if balloon else 'absent'}; page_reporting_order "
            f"{order[0] if order else 'not set on the kernel command line'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pretouch-gib", type=float, default=5.0)
    parser.add_argument("--weights", default="")
    args = parser.parse_args()
    print(f"{machine()}; {page_reporting()}\n")
    cache = tempfile.mkdtemp()
    common = [args.size, args.steps, cache, args.weights]
    json_child(CHILD, [*common, 0], "the cache-filling run", environment(False))
    rows = []
    for label, huge, gib in (("4 KiB", False, 0), ("huge", True, 0), (f"huge, {args.pretouch_gib:g} GiB pre-touched",
                                                                       True, args.pretouch_gib)):
        result = json_child(CHILD, [*common, gib], label, environment(huge))
        for phase, (wall, user, system, faults, thp, stalls) in result:
            rows.append([label, phase, f"{wall:.2f}", f"{user:.2f}", f"{system:.2f}", f"{faults:.0f}", f"{thp:.0f}",
                         f"{stalls:.0f}"])
            print(rows[-1], flush=True)
    print(table(["pages", "phase", "wall s", "user s", "system s", "minor faults", "huge-page faults",
                 "compaction stalls"], rows))


if __name__ == "__main__":
    main()
