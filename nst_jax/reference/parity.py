"""nst_jax against the independent PyTorch implementation (`nst_jax.reference.torch_reference`) on one weights file: the
numbers of the parity report (`benchmarks/parity_report.py`, `notebooks/parity.ipynb`). Needs torch, which nst_jax
itself does not (`pip install torch==2.13.0` installs the CPU build). Functions return rows and curves; nothing is
printed or written.

Both sides read the weights file themselves and get the same images, already resized (`prepare`), in float32 on
the CPU (torch) and on JAX's default device.
"""

from __future__ import annotations

import os
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import api
from .. import weights as weights_lib
from ..config import Config
from ..core import layers, objective, statistics, vgg
from ..core.objective import TERMS
from ..presets import preset_config
from ..run import inputs, settings
from . import torch_reference as ref

PathLike = Union[str, os.PathLike]

# The settings compared, by name: the defaults and each preset, as torch_reference transcribes them.
SETTINGS = {"default": ref.DEFAULT, "gatys": ref.PAPER, "pytorch-tutorial": ref.TUTORIAL,
            "jcjohnson": ref.JCJOHNSON, "yunjey": ref.YUNJEY}


def config_of(name: str) -> Config:
    """The nst_jax `Config` of a name of SETTINGS: `Config()` for "default", else the preset."""
    return Config() if name == "default" else preset_config(name)


def rel_max(a, b) -> float:
    """max |a - b| / max |b| (a scale-free error of a whole array)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def rel(a: float, b: float) -> float:
    """|a - b| / max(|a|, |b|) (0 when both are 0)."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


def _cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The header and the cells of `rows` as text: floats in 1-digit scientific notation."""
    header = list(rows[0])
    return header, [[f"{r[k]:.1e}" if isinstance(r[k], float) else str(r[k]) for k in header] for r in rows]


def text_table(title: str, rows: list[dict]) -> str:
    """Rows of dicts (one key per column) as an aligned plain-text table under `title`."""
    header, cells = _cells(rows)
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([title, line(header), line(["-" * w for w in widths]), *map(line, cells), ""])


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts (one key per column) as a Markdown table (a notebook shows it with IPython's `Markdown`)."""
    header, cells = _cells(rows)
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, ["---"] * len(header), *cells])


def prepare(content, style, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Content (a path or array) with its longer side `size`, the style resized as a run at that size resizes it:
    [H, W, 3], [H_s, W_s, 3] float32 in [0, 1]."""
    return inputs.prepare_images(content, style, Config(size=size))


def layer_errors(weights_path: PathLike, image: np.ndarray, poolings=("avg", "max")) -> list[dict]:
    """Every VGG19 layer's activations and Gram matrix of `image` [H, W, 3], both frameworks, as
    [{"pooling", "layer", "activation", "gram"}], the last two `rel_max` errors (nst_jax against torch)."""
    w = weights_lib.load(weights_path)
    convs = ref.read_weights(weights_path)
    params = jax.device_put(w.params)
    network_input = weights_lib.preprocess(jnp.asarray(image)[None], w.preprocess)
    torch_input = ref.preprocess(ref.to_tensor(image), w.preprocess)
    rows = []
    for pooling in poolings:
        ours = vgg.features(params, network_input, layers.LAYER_NAMES, pooling)
        theirs = ref.vgg_features(convs, torch_input, layers.LAYER_NAMES, pooling)
        for layer in layers.LAYER_NAMES:
            t = theirs[layer].numpy()[0].transpose(1, 2, 0)
            rows.append({"pooling": pooling, "layer": layer, "activation": rel_max(ours[layer][0], t),
                         "gram": rel_max(statistics.gram(ours[layer])[0], ref.gram(theirs[layer]).numpy())})
    return rows


def loss_term_errors(weights_path: PathLike, content: np.ndarray, style: np.ndarray, seed: int = 0) -> list[dict]:
    """Each setting's loss terms and image gradient at one white-noise image, both frameworks, as
    [{"setting", "content", "style", "tv", "total", "1-cosine", "grad rel L2"}]: `rel` errors of the terms, and
    the gradients' 1 - cosine and relative L2 distance (nst_jax against torch)."""
    w = weights_lib.load(weights_path)
    convs = ref.read_weights(weights_path)
    params = jax.device_put(w.params)
    noise = np.random.default_rng(seed).uniform(0, 1, content.shape).astype(np.float32)
    rows = []
    for name, setting in SETTINGS.items():
        config = config_of(name)
        spec = settings.loss_spec(config, w.preprocess)
        variables = [objective.to_variable(jnp.asarray(i)[None], spec) for i in (content, style)]
        targets = objective.compute_targets(params, *variables, spec)
        z = objective.to_variable(jnp.asarray(noise)[None], spec)

        def total(v, targets=targets, spec=spec, config=config):
            terms = objective.loss_terms(v, params, targets, settings.loss_weights(config), spec)
            return terms["total"][0], terms

        (_, ours), grad = jax.value_and_grad(total, has_aux=True)(z)
        obj = ref.Objective(convs, content, style, dict(setting, preprocess=w.preprocess))
        zt = ref.to_tensor(np.asarray(z[0])).clone().requires_grad_(True)
        theirs = obj.terms(zt)
        theirs["total"].backward()
        a = np.asarray(grad[0], np.float64).ravel()
        b = zt.grad.numpy()[0].transpose(1, 2, 0).astype(np.float64).ravel()
        rows.append({"setting": name, **{k: rel(float(ours[k][0]), theirs[k].item()) for k in TERMS},
                     "1-cosine": float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))),
                     "grad rel L2": float(np.linalg.norm(a - b) / np.linalg.norm(b))})
    return rows


def adam_curves(weights_path: PathLike, content: np.ndarray, style: np.ndarray, steps: int,
                setting: str = "default", precision: str = "float32") -> dict[str, dict[str, np.ndarray]]:
    """The loss terms of `steps` Adam steps from the content image under `setting` (a name of SETTINGS; the
    setting's objective with Adam at lr 0.02, clipped to [0, 1] after each step), run by each framework:
    {"nst_jax": {term: [steps]}, "torch": {term: [steps]}}. content and style as `prepare` gives them; `precision`:
    nst_jax's (`Config.precision`; torch runs float32 on the CPU)."""
    w = weights_lib.load(weights_path)
    theirs = dict(SETTINGS[setting], optimizer="adam", lr=0.02, betas=(0.9, 0.999), box="clip",
                  preprocess=w.preprocess)
    config = config_of(setting).replace(optimizer="adam", lr=0.02, adam_betas=(0.9, 0.999), box="clip",
                                        init="content", steps=steps, size=max(content.shape[:2]), scales=1,
                                        scale_sizes=None, scale_steps=None, precision=precision)
    start = content
    if theirs["pixel_space"] == "network":
        start = ref.preprocess(ref.to_tensor(content), w.preprocess).numpy()[0].transpose(1, 2, 0)
    torch_run = ref.run(ref.read_weights(weights_path), content, style, start, theirs, steps)
    ours = api.stylize(content, style, w, config)
    return {"nst_jax": {k: np.asarray(ours.history[k], np.float64) for k in TERMS},
            "torch": {k: np.array([r[k] for r in torch_run], np.float64) for k in TERMS}}
