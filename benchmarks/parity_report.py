"""JAX-vs-PyTorch parity on your own weights file and images: a table per layer and per loss term.

    python benchmarks/parity_report.py --weights weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
        --content examples/chelsea.jpg --style examples/starry_night.jpg --size 256

Needs torch (`pip install torch==2.13.0` for the CPU build). The numbers come from `nst_jax.reference.parity`; the
PyTorch side is nst_jax/reference/torch_reference.py, an independent implementation that reads the weights file
itself. Both sides get the same pre-resized images (resized once with nst_jax's resizer), float32.
notebooks/parity.ipynb shows the same numbers as a report with charts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax

from nst_jax import weights as weights_lib
from nst_jax.reference import parity

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help=".h5, .pth, .bin or .npz")
    parser.add_argument("--content", default=str(REPO / "examples" / "chelsea.jpg"))
    parser.add_argument("--style", default=str(REPO / "examples" / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    import torch

    w = weights_lib.load(args.weights)
    content, style = parity.prepare(args.content, args.style, args.size)
    print(f"weights {args.weights} ({w.source}, preprocessing {w.preprocess}); content {content.shape[:2]}, "
          f"style {style.shape[:2]}; float32; jax {jax.__version__} on {jax.default_backend()}, "
          f"torch {torch.__version__}\n")
    print(parity.text_table("Activations and Gram matrices: max |jax - torch| / max |torch|",
                parity.layer_errors(args.weights, content)))
    print(parity.text_table("Loss terms (relative error) and image gradient at a noise image",
                parity.loss_term_errors(args.weights, content, style)))


if __name__ == "__main__":
    main()
