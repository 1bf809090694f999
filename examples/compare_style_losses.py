"""Gram matrices, cosine similarities, mean and covariance or sliced Wasserstein? The same content and style pairs
under each style statistic (`--style-loss`), at one style weight, as a picture grid and a table.

    python examples/compare_style_losses.py [--size 192] [--steps 150] [--style-weight 500] [--weights FILE]
        [--out docs/gallery]

Every statistic runs at the same style weight (default: `Config`'s, 500) with no tuning of its own: each
statistic is put on the Gram loss's scale (`core.losses.balance`, docs/deviations.md). The columns:

* start ratio: the statistic's style term at the start (the content image) over the Gram run's: how far the
  balance's constant (`losses.BALANCE`) puts it from Gram's at the start (1: the same);
* s/step: seconds per step after the first chunk (compilation), on this machine;
* stable at: the first step after which the image never again changes by more than 0.5/255 on average between
  two reports (every 10 steps);
* content kept: the correlation of the result's luminance with the content's (1: the photo's light and shade kept);
* style left: the final style term over the starting one (lower: the statistic was matched more closely).

The pairs: examples/chelsea.jpg and examples/coffee.jpg with examples/starry_night.jpg and
examples/the_scream.jpg. Writes OUT/style-losses.jpg (rows: pairs; columns: content, style, gram, cosine, meancov,
swd) and prints the table as Markdown, with the machine's CPU and the weights file.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from nst_jax import Config, stylize
from nst_jax.core import objective
from nst_jax.io import images
from nst_jax.run import colour, settings
from nst_jax.run.targets import directions_key
from nst_jax.weights import as_weights

HERE = Path(__file__).resolve().parent
PAIRS = [("chelsea.jpg", "starry_night.jpg"), ("coffee.jpg", "the_scream.jpg")]
STATISTICS = ("gram", "cosine", "meancov", "swd")
REPORT = 10  # steps between reports


def start_style_loss(content: np.ndarray, style: np.ndarray, weights, config: Config) -> float:
    """The unweighted style term at the content image (the start of a run from the content)."""
    spec = settings.loss_spec(config, weights.preprocess)
    params = objective.cast_params(weights.params, spec)
    variable = lambda image: objective.to_variable(jnp.asarray(image)[None], spec)  # noqa: E731
    targets = objective.compute_targets(params, variable(content), variable(style), spec,
                                        key=directions_key(config, 0))
    terms = objective.loss_terms(variable(content), params, targets, settings.loss_weights(config), spec)
    return float(terms["style"][0])


def stable_step(frames: list[tuple[int, np.ndarray]], tolerance: float = 0.5 / 255) -> int:
    """The first reported step after which consecutive reported images differ by at most `tolerance` (mean
    absolute difference) ever after."""
    changes = [(step, float(np.abs(a - b).mean())) for (_, b), (step, a) in zip(frames, frames[1:])]
    stable = frames[-1][0]
    for step, change in reversed(changes):
        if change > tolerance:
            break
        stable = step
    return stable


def run(content, style, weights, config: Config) -> dict:
    frames, times = [], []

    def watch(p):
        frames.append((p.step, np.clip(np.asarray(p.image), 0.0, 1.0)))
        times.append((p.step, p.elapsed))

    result = stylize(content, style, weights, config, callback=watch, report_every=REPORT)
    (s0, t0), (s1, t1) = times[0], times[-1]
    return {"image": result.image, "s_per_step": (t1 - t0) / max(s1 - s0, 1), "stable": stable_step(frames),
            "kept": colour.luminance_correlation(result.image, images.resize(content, result.image.shape[:2])),
            "style_left": float(result.history["style"][-1] / result.history["style"][0])}


def gallery_arguments(description: str, argv=None, rows: tuple[str, ...] = (),
                      style_weight: bool = False) -> argparse.Namespace:
    """--size, --steps, --weights and --out, shared with examples/controls_gallery.py (and its --rows: a
    comma-separated choice of `rows`, default all; --style-weight where `style_weight`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=150)
    if style_weight:
        parser.add_argument("--style-weight", type=float, default=Config().style_weight)
    parser.add_argument("--weights", help="VGG19 weights file (default: what python -m nst_jax would use)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "gallery")
    if rows:
        parser.add_argument("--rows", type=lambda text: tuple(text.split(",")), default=rows,
                            help=f"the rows to render, comma separated (default: {','.join(rows)})")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = gallery_arguments(__doc__.splitlines()[0], argv, style_weight=True)
    weights = as_weights(args.weights)
    rows, titles, table = [], [], []
    for content_name, style_name in PAIRS:
        content, style = images.load(HERE / content_name), images.load(HERE / style_name)
        base = Config(size=args.size, steps=args.steps, style_weight=args.style_weight)
        small_content, small_style = images.resize(content, images.target_shape(content.shape[:2], args.size)), \
            images.resize(style, images.target_shape(style.shape[:2], args.size))
        gram_start = start_style_loss(small_content, small_style, weights, base)
        row, row_titles = [content, style], [content_name, style_name]
        for statistic in STATISTICS:
            config = base.replace(style_loss=statistic)
            ratio = start_style_loss(small_content, small_style, weights, config) / gram_start
            print(f"{content_name} + {style_name}: {statistic}, start ratio {ratio:.3g}", file=sys.stderr)
            out = run(content, style, weights, config)
            row.append(out["image"])
            row_titles.append(statistic)
            table.append((f"{Path(content_name).stem} + {Path(style_name).stem}", statistic, ratio,
                          out["s_per_step"], out["stable"], out["kept"], out["style_left"]))
        rows.append(row)
        titles.append(row_titles)
    args.out.mkdir(parents=True, exist_ok=True)
    grid = images.side_by_side(rows, titles, height=args.size, width=round(args.size * 4 / 3))
    grid.save(args.out / "style-losses.jpg", quality=90)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"\n{args.size} px, {args.steps} lbfgs-armijo steps, style weight {args.style_weight:g}, weights "
          f"{weights.source}, CPU {cpu}\n")
    print("| pair | statistic | start ratio | s/step | stable at | content kept | style left |")
    print("|---|---|---|---|---|---|---|")
    for pair, statistic, ratio, speed, stable, kept, left in table:
        print(f"| {pair} | {statistic} | {ratio:.3g} | {speed:.3f} | {stable} | {kept:.3f} | {left:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
