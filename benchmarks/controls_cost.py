"""What each artistic control costs per step, beside the default, in one run (issue 38's speed check).

    python benchmarks/controls_cost.py [--size 256] [--steps 10] [--repeats 2] [--weights FILE] [--only TEXT]

Every row runs nst_jax's real loop (`run.loop.optimize`) with Adam steps on examples/chelsea.jpg and
examples/starry_night.jpg (a second style: examples/the_scream.jpg), differing from the first row by one setting.
Seconds per step: a warm call of three chunks minus one of one chunk, over two chunks' steps, so that set-up and
targets cancel (as benchmarks/step_time.py), the least of --repeats such measurements. The ratio column is each row
over the default row of the same run; the default is measured again last, so that its two rows show the noise
(compare ratios: the machines are shared and noisy). The weights' values do not change the timings (default:
random weights). The default row's program is the one a run without these options compiles (docs/controls.md).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from nst_jax.config import Config
from nst_jax.io import images
from nst_jax.reference.bench import REPO, load_weights, machine, table
from nst_jax.run import loop


def masks(shape: tuple[int, int]) -> tuple[str, str]:
    """Two mask files, the left and right halves of `shape` (H, W)."""
    folder = Path(tempfile.mkdtemp())
    left = np.zeros(shape, np.uint8)
    left[:, : shape[1] // 2] = 255
    paths = (folder / "left.png", folder / "right.png")
    Image.fromarray(left).save(paths[0])
    Image.fromarray(255 - left).save(paths[1])
    return str(paths[0]), str(paths[1])


def rows(size: int) -> list[tuple[str, dict, int]]:
    """(name, settings over the default Adam run, number of styles) of each measured variant."""
    left, right = masks((size, size))
    return [
        ("default (gram)", {}, 1),
        ("--style-loss cosine", {"style_loss": "cosine"}, 1),
        ("--style-loss meancov", {"style_loss": "meancov"}, 1),
        ("--style-loss swd", {"style_loss": "swd"}, 1),
        ("--style A,B (blend)", {}, 2),
        ("--style A,B --layer-styles 1,1,2,2,2", {"layer_styles": (1, 1, 2, 2, 2)}, 2),
        ("--style A,B --style-masks L,R", {"style_masks": (left, right)}, 2),
        ("--content-mask L", {"content_mask": left}, 1),
        ("--normalize-gradients", {"normalize_gradients": True}, 1),
        ("--average 0.99", {"average": 0.99}, 1),
    ]


def step_seconds(content, styles, w, config: Config, steps: int, repeats: int) -> float:
    """Seconds per step of the loop: (three chunks - one chunk) / (2 steps), warm, the least of `repeats`."""
    def wall(chunks: int) -> float:
        import time

        t = time.perf_counter()
        loop.optimize([content], [styles], w, config.replace(steps=chunks * steps, chunk_size=steps))
        return time.perf_counter() - t

    wall(1)  # compile
    return min((wall(3) - wall(1)) / (2 * steps) for _ in range(repeats))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--weights", help="VGG19 weights file (default: random weights; timings do not depend on them)")
    parser.add_argument("--only", help="measure only the variants whose name contains TEXT (and the default)")
    args = parser.parse_args(argv)
    w, _ = load_weights(args.weights)
    shape = (args.size, args.size)
    content = images.resize(images.load(REPO / "examples" / "chelsea.jpg"), shape)
    styles = [images.resize(images.load(REPO / "examples" / name), shape)
              for name in ("starry_night.jpg", "the_scream.jpg")]
    print(f"{machine()}; {args.size}x{args.size}, Adam, {args.steps} steps per chunk\n")
    out, base = [], None
    variants = rows(args.size)
    for i, (name, settings, n_styles) in enumerate(variants + [("default again", {}, 1)]):
        if 0 < i < len(variants) and args.only and args.only not in name:
            continue
        config = Config(size=None, optimizer="adam", init="content", **settings)
        seconds = step_seconds(content, styles[:n_styles], w, config, args.steps, args.repeats)
        base = seconds if base is None else base
        out.append([name, f"{seconds:.3f}", f"{seconds / base:.2f}"])
    print(table(["variant", "s/step", "x default"], out))


if __name__ == "__main__":
    main()
