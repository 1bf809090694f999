"""Time to quality: wall time until the paper's total loss falls below the best loss PyTorch-tutorial-style
torch.optim.LBFGS reaches in 300 evaluations, for torch and for nst_jax's optimisers and multi-scale.

torch's fixed-step L-BFGS with the tutorial's clamp is not monotone (measured at 256 px: 1.1e7 by evaluation 40,
2.0e7 at evaluation 300), so the target is the best loss of its 300 evaluations, and torch's own time is the time
of the first evaluation that reaches it (evaluations take equal time: one per iteration).

    python benchmarks/time_to_quality.py [--size 512] [--evals 300] [--max-steps 600] [--weights FILE]

Objective: the paper's (gatys preset: relu4_2 / relu1_1..relu5_1, alpha 1, beta 1e3, avg pooling) on the same
weights and pre-resized images, from the content image. The torch reference is torch.optim.LBFGS (lr 1, defaults)
with the tutorial's clamp inside the closure. nst_jax times include compilation (with JAX's persistent cache
warm after the first variant of a shape). A multi-scale run counts only losses of its final scale.
"""

from __future__ import annotations

import argparse
import time

import jax

from common import load_weights, machine, table, test_images

from nst_jax import enable_compilation_cache, transfer
from nst_jax.config import Config


class Reached(Exception):
    pass


def torch_reference(path, w, content, style, evals: int) -> tuple[float, float, int, float]:
    """(best loss in `evals` evaluations, seconds to first reach it, that evaluation, seconds for all) of
    tutorial-style torch.optim.LBFGS."""
    import torch
    import torch_reference as ref

    torch.set_num_threads(max(1, torch.get_num_threads()))
    convs = ref.read_keras_h5(path) if w.preprocess == "caffe" else ref.read_torchvision_pth(path)
    setting = dict(ref.PAPER, preprocess=w.preprocess, optimizer="lbfgs-torch", lr=1.0, box="closure")
    t = time.perf_counter()
    totals = [h["total"] for h in ref.run(convs, content, style, content, setting, evals)]
    seconds = time.perf_counter() - t
    best = min(totals)
    first = totals.index(best) + 1
    return best, seconds * first / evals, first, seconds


def nst_time(w, content, style, config: Config, target: float) -> tuple[float, int, float]:
    """(seconds until total <= target, steps, best loss); inf if never within the config's steps."""
    final_scale = len(config.schedule) - 1
    best, steps = float("inf"), 0
    start = time.perf_counter()

    def watch(p):
        nonlocal best, steps
        steps = p.step
        jax.block_until_ready(p.image)
        if p.scale == final_scale:
            best = min(best, float(p.losses["total"].min()))
            if best <= target:
                raise Reached

    try:
        transfer.optimize([content], [style], w, config, callback=watch)
    except Reached:
        return time.perf_counter() - start, steps, best
    return float("inf"), steps, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--weights")
    args = parser.parse_args()
    enable_compilation_cache()
    w, path = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n", flush=True)
    target, torch_s, first, all_s = torch_reference(path, w, content, style, args.evals)
    print(f"torch.optim.LBFGS: best loss {target:.4g} at evaluation {first} of {args.evals} ({torch_s:.1f} s of "
          f"{all_s:.1f} s)", flush=True)
    base = Config(size=None, steps=args.max_steps, init="content", chunk_size=10)
    variants = {
        "lbfgs-torch (same algorithm), clamp": base.replace(optimizer="lbfgs-torch", box="closure"),
        "lbfgs (optax, line search)": base.replace(optimizer="lbfgs"),
        "adam lr 0.02": base.replace(optimizer="adam", lr=0.02),
        "multi-scale x3, lbfgs-torch": base.replace(optimizer="lbfgs-torch", box="closure", size=args.size, scales=3,
                                                    scale_steps=(100, 100, args.max_steps)),
        "multi-scale x3, adam": base.replace(optimizer="adam", size=args.size, scales=3,
                                             scale_steps=(100, 100, args.max_steps)),
    }
    rows = [["torch.optim.LBFGS (tutorial style)", f"{torch_s:.1f}", first, f"{target:.4g}", "1.00"]]
    for name, config in variants.items():
        seconds, steps, best = nst_time(w, content, style, config, target)
        rows.append([name, f"{seconds:.1f}", steps, f"{best:.4g}", f"{seconds / torch_s:.2f}"])
        print(rows[-1], flush=True)
    print(table([f"{args.size}x{args.size}: reach loss {target:.4g}", "seconds", "steps", "best loss",
                 "time / torch"], rows))


if __name__ == "__main__":
    main()
