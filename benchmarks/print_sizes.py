"""Print sizes: the whole image against blocks (`core.blocks`), per size; and the blocks' exactness.

    python benchmarks/print_sizes.py [--sizes 1024 2048] [--blocked 4096:6GiB] [--steps 3] [--weights FILE]
        [--exact 256 512] [--exact-statistics gram cosine meancov swd] [--exact-presets gatys jcjohnson ...]
        [--skip-timing] [--skip-exact]

Timing (each run in a fresh process, Adam, the paper's loss, one job): per size, the whole image and blocks of
half its side (4 blocks), and for each SIZE:BUDGET of --blocked the blocks the planner picks under that
--max-memory budget. Columns: seconds per step (the fastest step after the first, which compiles), the process's
peak resident memory (ru_maxrss; on a GPU the device's peak_bytes_in_use), the planner's estimate, blocks, and the
halo overhead (window pixels computed per image pixel). A plan the preflight refuses is reported with its message.

Exactness (in this process): the loss and its gradient by blocks against the whole image's, relative (L2 for the
gradient), at each --exact size, with blocks of size/4 (16 blocks) and size/8 (64), for each statistic (the
paper's settings otherwise) and each preset; float32. Random-valued VGG19 weights unless --weights: exactness does
not depend on them.
"""

from __future__ import annotations

import argparse
import json

from nst_jax.reference.bench import machine, run_child, table

CHILD = """
import json, resource, sys, time
import jax
from nst_jax.reference.bench import load_weights, test_images
from nst_jax.run import loop, memory
from nst_jax.run.planning import blocks_used
from nst_jax.config import Config
size, steps, block, budget = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None
optimizer = sys.argv[6]
config = Config(size=None, steps=steps, optimizer=optimizer, init="content", chunk_size=1,
                block_size=block or None, max_memory=budget)
limit, _ = memory.budget(config)
tile, estimate = memory.planned_bytes((size, size), config, 1, limit)
info = blocks_used(config, (size, size), 1)  # the preflight: a refused plan is refused here
w, _ = load_weights(sys.argv[5] or None)
c, s = test_images(size)
marks = []
t = time.perf_counter()
loop.optimize([c], [s], w, config, callback=lambda p: marks.append(time.perf_counter()))
steps_s = [b - a for a, b in zip(marks, marks[1:])]
device = jax.devices()[0]
stats = device.memory_stats() if device.platform != "cpu" else None
peak = stats["peak_bytes_in_use"] if stats else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"peak": peak, "step": min(steps_s) if steps_s else None, "first": marks[0] - t,
                  "estimate": estimate, "blocks": info}}))
"""


def timing_rows(args) -> list:
    runs = [(size, 0, "", "whole") for size in args.sizes] + [(size, size // 2, "", "4 blocks") for size in args.sizes]
    runs = sorted(runs, key=lambda r: r[0])
    for item in args.blocked:
        size, budget = item.split(":")
        runs.append((int(size), 0, budget, f"--max-memory {budget}"))
    rows = []
    for size, block, budget, what in runs:
        proc = run_child(CHILD, [size, args.steps, block, budget, args.weights, args.optimizer])
        if proc.returncode:
            message = (proc.stderr.strip().splitlines() or ["?"])[-1]
            rows.append([size, what, "refused: " + message[-90:], "", "", "", ""])
        else:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            b = r["blocks"]
            overhead = (b["count"] * (b["tile"] + 2 * b["halo"]) ** 2 / size**2) if b else 1.0
            rows.append([size, what, f"{r['step']:.2f}" if r["step"] else "-", f"{r['peak'] / 2**30:.2f}",
                         f"{r['estimate'] / 2**30:.2f}", f"{b['count']} x {b['tile']} px" if b else "whole",
                         f"{overhead:.2f}", f"{r['first']:.0f}"])
        print(rows[-1], flush=True)
    return rows


def _evaluate(params, images, coefficients, spec, key):
    """The total loss and its gradient at z of (content, style, z) = images, by `blocks.loss_terms` under `spec`."""
    import jax
    import jax.numpy as jnp

    from nst_jax.core import blocks

    content, style, z = images
    targets = blocks.compute_targets(params, content, (style,), spec, key=key)

    def loss(v):
        return jnp.sum(blocks.loss_terms(v, params, targets, coefficients, spec)["total"])

    return jax.jit(jax.value_and_grad(loss))(z)


def exactness_rows(args) -> list:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nst_jax import Config
    from nst_jax.core import objective
    from nst_jax.presets import preset_config
    from nst_jax.reference.bench import load_weights, test_images
    from nst_jax.run import settings

    w, _ = load_weights(args.weights or None)

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))

    cases = [(f"statistic {s}", Config(style_loss=s)) for s in args.exact_statistics]
    cases += [(f"preset {p}", preset_config(p)) for p in args.exact_presets]
    rows = []
    for size in args.exact:
        c, s = test_images(size)
        rng = np.random.default_rng(size)
        z0 = np.clip(c + 0.1 * rng.standard_normal(c.shape), 0, 1).astype(np.float32)
        for name, config in cases:
            spec = settings.loss_spec(config, w.preprocess)
            params = objective.cast_params(w.params, spec)
            coefficients = settings.loss_weights(config)
            key = jax.random.key(0) if config.style_loss == "swd" else None
            images = tuple(objective.to_variable(jnp.asarray(a)[None], spec) for a in (c, s, z0))
            whole_loss, whole_grad = _evaluate(params, images, coefficients, spec, key)
            for parts in (4, 8):
                tile = size // parts
                loss, grad = _evaluate(params, images, coefficients, spec._replace(block_tile=tile), key)
                rows.append([size, name, f"{parts * parts} x {tile} px", f"{rel(loss, whole_loss):.1e}",
                             f"{rel(grad, whole_grad):.1e}"])
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2048])
    parser.add_argument("--blocked", nargs="*", default=["4096:6GiB"], help="SIZE:BUDGET runs planned by budget")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--weights", default="")
    parser.add_argument("--exact", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--exact-statistics", nargs="*", default=["gram", "cosine", "meancov", "swd"])
    parser.add_argument("--exact-presets", nargs="*", default=["gatys", "pytorch-tutorial", "jcjohnson", "yunjey"])
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-exact", action="store_true")
    args = parser.parse_args()
    print(machine() + "\n")
    if not args.skip_exact:
        rows = exactness_rows(args)
        print(table(["size", "settings", "blocks", "loss rel. error", "gradient rel. L2 error"], rows) + "\n")
    if not args.skip_timing:
        rows = timing_rows(args)
        print(table(["size", "run", "s/step", "peak GiB", "estimate GiB", "blocks", "halo overhead",
                     "first step s (compile)"], rows))


if __name__ == "__main__":
    main()
