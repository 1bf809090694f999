"""JAX-vs-PyTorch parity on your own weights file and images: a table per layer and per loss term.

    python benchmarks/parity_report.py --weights weights/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 \
        --content ../shared/images/tubingen.jpg --style ../shared/images/starry_night.jpg --size 256

Needs torch (`pip install torch==2.13.0` for the CPU build). The PyTorch side is tests/torch_reference.py, an
independent implementation that reads the weights file itself. Both sides get the same pre-resized images (resized
once, here, with nst_jax's resizer), float32 on CPU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from nst_jax import losses, transfer, vgg  # noqa: E402
from nst_jax import weights as weights_lib  # noqa: E402
from nst_jax.config import Config, preset_config  # noqa: E402

SHARED = REPO.parent / "shared" / "images"


def rel_max(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def rel(a: float, b: float) -> float:
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def table(title: str, header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, rows), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help=".h5, .pth or .npz")
    parser.add_argument("--content", default=str(SHARED / "tubingen.jpg"))
    parser.add_argument("--style", default=str(SHARED / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    import torch
    import torch_reference as ref

    torch.set_num_threads(max(1, torch.get_num_threads()))
    w = weights_lib.load(args.weights)
    content, style = transfer.prepare_images(args.content, args.style, Config(size=args.size))
    convs = ref.read_weights(args.weights)
    print(f"weights {args.weights} ({w.source}, preprocessing {w.preprocess}); content {content.shape[:2]}, "
          f"style {style.shape[:2]}; float32; jax {jax.__version__}, torch {torch.__version__}\n")

    rows = []
    params = jax.device_put(w.params)
    for pooling in ("avg", "max"):
        ours = vgg.features(params, weights_lib.preprocess(jnp.asarray(content)[None], w.preprocess),
                            vgg.LAYER_NAMES, pooling)
        theirs = ref.vgg_features(convs, ref.preprocess(ref.to_tensor(content), w.preprocess), vgg.LAYER_NAMES,
                                  pooling)
        for layer in vgg.LAYER_NAMES:
            t = theirs[layer].numpy()[0].transpose(1, 2, 0)
            g = f"{rel_max(losses.gram(ours[layer])[0], ref.gram(theirs[layer]).numpy()):.1e}"
            rows.append([pooling, layer, f"{rel_max(ours[layer][0], t):.1e}", g])
    print(table("Activations and Gram matrices: max |jax - torch| / max |torch|",
                ["pooling", "layer", "activation", "gram"], rows))

    rows = []
    settings = {"gatys": ref.PAPER, "pytorch-tutorial": ref.TUTORIAL, "jcjohnson": ref.JCJOHNSON, "yunjey": ref.YUNJEY}
    noise = np.random.default_rng(0).uniform(0, 1, content.shape).astype(np.float32)
    for name, s in settings.items():
        s = dict(s, preprocess=w.preprocess)  # the formulas of each preset, on the given weights
        config = Config() if name == "gatys" else preset_config(name)
        spec = transfer.loss_spec(config, w.preprocess)
        variables = [transfer.to_variable(jnp.asarray(i)[None], spec) for i in (content, style)]
        targets = transfer.compute_targets(params, *variables, spec)
        z = transfer.to_variable(jnp.asarray(noise)[None], spec)

        def total(v):
            terms = transfer.loss_terms(v, params, targets, transfer.loss_weights(config), spec)
            return terms["total"][0], terms

        (_, ours), grad = jax.value_and_grad(total, has_aux=True)(z)
        obj = ref.Objective(convs, content, style, s)
        zt = ref.to_tensor(np.asarray(z[0])).clone().requires_grad_(True)
        theirs = obj.terms(zt)
        theirs["total"].backward()
        a, b = np.asarray(grad[0], np.float64).ravel(), zt.grad.numpy()[0].transpose(1, 2, 0).astype(np.float64).ravel()
        cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        rows.append([name] + [f"{rel(float(ours[k][0]), theirs[k].item()):.1e}"
                              for k in ("content", "style", "tv", "total")]
                    + [f"{1 - cos:.1e}", f"{np.linalg.norm(a - b) / np.linalg.norm(b):.1e}"])
    print(table("Loss terms (relative error) and image gradient at a noise image",
                ["preset", "content", "style", "tv", "total", "1-cosine", "grad rel L2"], rows))


if __name__ == "__main__":
    main()
