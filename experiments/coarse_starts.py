"""Why coarse to fine is not the fastest route to the full-size loss: what a coarse stage can hand to the last
scale, measured by the full-size objective, layer by layer, and by the full-size L-BFGS steps still needed.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/experiments.md. Run it as
`python experiments/coarse_starts.py` (it imports benchmarks/common.py).

    python experiments/coarse_starts.py [--size 256] [--init content|noise] [--target LOSS] [--single-steps 30]
                                       [--max-steps 100] [--weights FILE]

Starts of a full-size `lbfgs-armijo` run (the paper's objective, as in time_to_quality.py; square test images):

* --init: the content image (the tutorial's start) or the CLI's seeded uniform noise (the paper's): the
  single-scale run;
* coarse to fine: `--scale-sizes size/4,size/2,size` with 50 `lbfgs-armijo` steps at each coarse scale, from
  the same --init, upsampled bicubically to full size (what `--scales` hands to its last scale);
* residual: the full-size start plus the upsampled difference of that result and the start at size/2 (the start's
  own fine detail kept: the content's, or the noise's high frequencies);
* band-limited: the full-size objective itself (not a coarse one) optimised over the start's coarse part only,
  for 50 `lbfgs-armijo` steps: the image is the start's fine part (the start minus its size/2 version upsampled)
  plus a size/2 variable upsampled bilinearly, clipped to [0, 1]; each of these steps costs a full-size step;
* oracle: the finished single-scale image itself, downsampled to size/2 and upsampled again: what a half-size
  stage would hand over if it had found exactly the finished image's coarse part.

The target is --target (e.g. the torch-tutorial loss of time_to_quality.py) or, by default, the loss of the
single-scale run's image after --single-steps steps. Step counts are full-size steps; a coarse step costs
(its size / size)^2 of one (the convolutions' FLOPs), which the "coarse stages" column counts in full-size steps.
A second table gives every start's terms layer by layer (and the finished image's); a third scores three images
by the size/2 objective (content and style images at size/2): a scale's optimum is far from the other scale's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, table, test_images

from nst_jax import images, lbfgs_armijo, losses, objective, transfer
from nst_jax.config import Config, preset_config

COARSE_STEPS = 50
BAND_STEPS = 50


class Problem(NamedTuple):
    """The size-px objective's pieces: `variable` maps an image [H, W, 3] (resized to size x size) to the network's
    variable [1, size, size, 3]; `targets` come from content and style resized so, computed once."""

    spec: objective.LossSpec
    params: dict
    variable: Callable[[np.ndarray], jax.Array]
    targets: dict


def problem(content, style, size: int, w, config: Config) -> Problem:
    """The size-px objective's pieces for content and style [H, W, 3] and weights w."""
    spec = objective.loss_spec(config, w.preprocess)
    params = objective.cast_params(w.params, spec)
    variable = lambda a: objective.to_variable(jnp.asarray(images.resize(a, (size, size)))[None], spec)  # noqa: E731
    return Problem(spec, params, variable, objective.compute_targets(params, variable(content), variable(style), spec))


def objective_of(prob: Problem, config: Config):
    """The objective as a function of an image [H, W, 3] (resized to the problem's size) -> its weighted terms
    (alpha * content loss per content layer, beta * w_l * E_l per style layer) and their total."""
    spec, params, variable, targets = prob

    def terms(image) -> dict[str, float]:
        feats = objective.features(params, variable(image), spec)
        out = {l: config.content_weight * float(losses.content_loss(feats[l], targets["content"][l])[0])
               for l in spec.content_layers}
        for w_l, l in zip(config.layer_weights, spec.style_layers):
            out[l] = config.style_weight * w_l * float(losses.style_layer_loss(feats[l], targets["style"][l])[0])
        out["total"] = sum(out.values())
        return out

    return terms


def minimise_over(prob: Problem, image_of: Callable, w0: jax.Array, config: Config, steps: int,
                  project: Optional[Callable] = None, stop_below: Optional[float] = None,
                  memory: int = 10, precondition: Optional[Callable] = None):
    """Up to `steps` lbfgs-armijo steps of the objective `prob` over a variable w (any shape, in image units: the
    first step moves no element by more than the config's learning rate), the image being image_of(w) [1, H, W, 3]
    in [0, 1] at the problem's size; trial points of w are projected by `project`; `memory` curvature pairs;
    `precondition` (v -> M v on flat w): lbfgs-armijo's preconditioner. Stops early once the loss is at most
    `stop_below`. Returns (w, losses [n]: the loss after each step, as the CLI's history counts it: losses[i] is
    evaluated in step i + 1; seconds per step after the first, which compiles)."""
    spec, params, _, targets = prob
    coefficients = objective.loss_weights(config)

    def value_and_terms(w):
        terms = {k: jnp.sum(t) for k, t in objective.loss_terms(
            objective.to_variable(image_of(w), spec), params, targets, coefficients, spec).items()}
        return terms["total"], terms

    @jax.jit
    def step(w, state):
        trial = lbfgs_armijo.trial_point(w, state, project)
        (value, terms), grad = jax.value_and_grad(value_and_terms, has_aux=True)(trial)
        return lbfgs_armijo.update(w, trial, value, grad, state, terms, first_step=config.learning_rate,
                                   precondition=precondition)

    w, state, losses = w0, lbfgs_armijo.init(w0, {k: jnp.zeros(()) for k in objective.TERMS}, memory), []
    for _ in range(steps):
        w, state = step(w, state)
        losses.append(float(state.f))  # waits for the step
        if len(losses) == 1:
            after_first = time.perf_counter()
        if stop_below is not None and losses[-1] <= stop_below:
            break
    per_step = (time.perf_counter() - after_first) / (len(losses) - 1) if len(losses) > 1 else float("nan")
    return w, np.asarray(losses), per_step


def band_limited(prob: Problem, start, config: Config, steps: int) -> np.ndarray:
    """`steps` lbfgs-armijo steps of the full-size objective `prob` over images fine + up(y): fine = the start minus
    its half-size version upsampled (the start's own fine part, kept fixed), y [1, H/2, W/2, 3] the variable
    (starting at the start's half-size version), up = bilinear upsampling to full size; the image is clipped to
    [0, 1]. start: [H, W, 3] at the problem's size. Returns the final image [H, W, 3]."""
    (h, wd), half = start.shape[:2], (start.shape[0] // 2, start.shape[1] // 2)
    up = lambda y: jax.image.resize(y, (1, h, wd, 3), "linear")  # noqa: E731
    y = jnp.asarray(images.resize(start, half))[None]
    fine = jnp.asarray(start)[None] - up(y)
    image_of = lambda y: jnp.clip(fine + up(y), 0.0, 1.0)  # noqa: E731
    y, _, _ = minimise_over(prob, image_of, y, config, steps, lambda v: jnp.clip(v, 0.0, 1.0))
    return np.asarray(image_of(y)[0])


def first_below(history: np.ndarray, loss: float):
    """The number of steps until the run's loss is at most `loss`, counted as time_to_quality.py counts them (the
    loss history[i] is evaluated in step i + 1), or None if it never is."""
    hits = np.nonzero(np.asarray(history) <= loss)[0]
    return int(hits[0]) + 1 if hits.size else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--init", choices=("content", "noise"), default="content")
    p.add_argument("--target", type=float, default=None, help="loss to reach (default: see --single-steps)")
    p.add_argument("--single-steps", type=int, default=30,
                   help="steps of the single-scale run whose image is the oracle's source and whose last loss is "
                        "the default target")
    p.add_argument("--max-steps", type=int, default=100, help="full-size steps allowed from each start")
    p.add_argument("--weights", default=None, help="weights file (default: random-valued, see common.py)")
    args = p.parse_args()

    w, _ = load_weights(args.weights)
    size, half, quarter = args.size, args.size // 2, args.size // 4
    content, style = test_images(size)
    base = preset_config("gatys", size=None, init=args.init, optimizer="lbfgs-armijo", chunk_size=10)
    spec = objective.loss_spec(base, w.preprocess)
    start = np.asarray(objective.to_image(transfer.initial_variable(args.init, content, style, base.seed, spec), spec))

    def run(steps, init=None, **kw):
        r = transfer.stylize(content, style, w, base.replace(steps=steps, **kw), init_image=init)
        return r.image, r.history["total"]

    # the single-scale run, and its image after --single-steps steps (the oracle's source)
    kept = {}

    def keep(p: transfer.Progress) -> None:
        if p.step == args.single_steps:
            kept["image"] = np.asarray(p.image)

    h_single = transfer.stylize(content, style, w, base.replace(steps=max(args.max_steps, args.single_steps)),
                                callback=keep, report_every=args.single_steps).history["total"]
    finished = np.clip(kept["image"], 0.0, 1.0)
    full_problem = problem(content, style, size, w, base)
    full, at_half = objective_of(full_problem, base), objective_of(problem(content, style, half, w, base), base)
    finished_terms = full(finished)
    target = args.target if args.target is not None else finished_terms["total"]
    coarse, _ = run(0, scale_sizes=(quarter, half, size), scale_steps=(COARSE_STEPS, COARSE_STEPS, 0))
    through_half = lambda x: images.resize(images.resize(x, (half, half)), (size, size))  # noqa: E731
    residual = np.clip(start + images.resize(images.resize(coarse, (half, half))
                                             - images.resize(start, (half, half)), (size, size)), 0.0, 1.0)
    coarse_cost = COARSE_STEPS * ((quarter / size) ** 2 + (half / size) ** 2)
    starts = {
        f"{args.init} (single scale)": (start, 0.0),
        f"coarse to fine ({quarter}, {half}: {COARSE_STEPS} steps each), upsampled": (coarse, coarse_cost),
        f"residual: {args.init} + upsampled (coarse - {args.init}) at 1/2": (residual, coarse_cost),
        f"band-limited: the {size} px objective over {args.init}'s 1/2-size part ({BAND_STEPS} steps)":
            (band_limited(full_problem, start, base, BAND_STEPS), float(BAND_STEPS)),
        f"oracle: the finished image ({args.single_steps} steps) through 1/2": (through_half(finished), None),
    }
    names = list(base.content_layers) + list(base.style_layers) + ["total"]
    fmt = lambda terms: [f"{terms[l]:.3g}" for l in names]  # noqa: E731
    rows, layer_rows = [], []
    for name, (image, cost) in starts.items():
        terms = full(image)
        h = h_single if cost == 0.0 else run(args.max_steps, init=image)[1]
        steps = first_below(h, target)
        total = None if steps is None or cost is None else f"{steps + cost:.1f}"
        rows.append([name, f"{terms['total']:.3g}", first_below(h_single, terms["total"]),
                     "-" if cost is None else f"{cost:.1f}", steps if steps is not None else f"> {args.max_steps}",
                     total or "-"])
        layer_rows.append([name] + fmt(terms))
    layer_rows.append([f"the finished single-scale image ({args.single_steps} steps)"] + fmt(finished_terms))
    half_rows = [[name] + fmt(at_half(image)) for name, image in (
        (args.init, start), ("coarse to fine, upsampled", coarse),
        (f"finished single-scale image ({args.single_steps} steps)", finished))]

    print(f"# {machine()}; {size}x{size} from {args.init}; weights: {args.weights or 'random-valued'}; "
          f"target loss {target:.4g}")
    print(table([f"start of the {size} px run", f"its {size} px loss", "single scale's steps to that loss",
                 "coarse stages, full-size steps", f"{size} px steps to target", "total, full-size steps"], rows))
    print(f"\nThe {size} px objective's weighted terms:")
    print(table(["start"] + names, layer_rows))
    print(f"\nThe {half} px objective (content and style at {half} px):")
    print(table(["image"] + names, half_rows))


if __name__ == "__main__":
    main()
