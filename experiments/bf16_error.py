"""Loss error of --precision bfloat16 against float32: the loss terms at the same images, and after N Adam steps.

A probe, kept for the record (experiments/, not one of the benchmarks that reproduce the current tables): the
question is the paragraph above, its answer and the date of its measurement are in docs/performance.md. Run it as
`python experiments/bf16_error.py` (it imports benchmarks/common.py).

    python experiments/bf16_error.py [--size 256] [--steps 20] [--weights FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py, the benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other probes
from common import load_weights, machine, table, test_images

from nst_jax import transfer
from nst_jax.config import preset_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--weights")
    args = parser.parse_args()
    w, _ = load_weights(args.weights)
    content, style = test_images(args.size)
    print(machine() + "\n")
    runs = {}
    for precision in ("float32", "bfloat16"):
        config = preset_config("gatys", size=None, steps=args.steps, optimizer="adam", init="noise",
                               precision=precision)
        _, history = transfer.optimize([content], [style], w, config)
        runs[precision] = {k: v[:, 0] for k, v in history.items()}
    rows = []
    for step in (0, args.steps // 2, args.steps - 1):
        a, b = runs["float32"], runs["bfloat16"]
        rows.append([step] + [f"{abs(b[k][step] - a[k][step]) / abs(a[k][step]):.1e}" for k in ("content", "style",
                                                                                              "total")])
    print(table(["step", "content rel. error", "style rel. error", "total rel. error"], rows))
    print(f"\nfinal total: float32 {runs['float32']['total'][-1]:.4g}, bfloat16 {runs['bfloat16']['total'][-1]:.4g}")


if __name__ == "__main__":
    main()
