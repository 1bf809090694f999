"""Shared fixtures: random (not pretrained) VGG19 weights, weight files in the real formats, tiny images."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

from nst_jax.io import compile_cache  # standard library only: JAX is not imported yet

# One persistent compilation cache for the whole run, kept out of the user's ~/.cache and removed at the end: the
# CLI turns it on in the processes the tests start (NST_JAX_COMPILATION_CACHE), and JAX's own variables turn it on
# in this process and in the notebooks' kernels, so that a program compiled by one test (the parity report, a
# notebook, the CLI) is loaded, not compiled again, by the next that builds the same one. It must be set before JAX
# is imported. A cache hit loads the very executable a compilation would give: no result changes.
if "NST_JAX_COMPILATION_CACHE" not in os.environ:
    os.environ["NST_JAX_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="nst_jax_test_xla_")
    atexit.register(shutil.rmtree, os.environ["NST_JAX_COMPILATION_CACHE"], ignore_errors=True)
if compile_cache.cache_dir() is not None:  # not switched off (NST_JAX_COMPILATION_CACHE=0)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(compile_cache.cache_dir()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import numpy as np
import pytest
from PIL import Image

from nst_jax import weights as weights_lib
from nst_jax.reference.random_vgg import random_params
from nst_jax.reference.writers import write_keras_h5

jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting in the library


@pytest.fixture(scope="session")
def torch():
    """PyTorch, for the parity tests. CI sets NST_JAX_REQUIRE_TORCH=1 so that a missing torch fails, never skips."""
    if os.environ.get("NST_JAX_REQUIRE_TORCH") == "1":
        import torch as torch_module

        return torch_module
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def random_weights() -> weights_lib.Weights:
    """Random VGG19 weights with the caffe convention. Random values: nothing here is a pretrained result."""
    params = jax.tree.map(np.asarray, random_params(jax.random.key(0)))
    return weights_lib.Weights(params, "caffe", "random")


@pytest.fixture(scope="session")
def h5_files(random_weights, tmp_path_factory) -> dict[str, Path]:
    """The random weights as Keras .h5 files in every layout: legacy, nested, and both under model_weights/."""
    folder = tmp_path_factory.mktemp("h5")
    files = {}
    for layout in ("legacy", "nested"):
        for wrapped in (False, True):
            key = layout + ("-wrapped" if wrapped else "")
            files[key] = write_keras_h5(random_weights.params, folder / f"{key}.h5", layout, wrapped)
    return files


def smooth_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth random RGB image in [0, 1], [H, W, 3] (sums of random sinusoids)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    channels = []
    for _ in range(3):
        f = rng.uniform(1, 6, (4, 2))
        phase = rng.uniform(0, 2 * np.pi, 4)
        channels.append(sum(np.sin(2 * np.pi * (a * xx + b * yy) + p) for (a, b), p in zip(f, phase)))
    image = np.stack(channels, -1)
    return ((image - image.min()) / (image.max() - image.min())).astype(np.float32)


@pytest.fixture(scope="session")
def image_files(tmp_path_factory) -> dict[str, Path]:
    """Tiny content (48x64) and style (64x64) PNG files."""
    folder = tmp_path_factory.mktemp("images")
    files = {}
    for name, shape, seed in (("content", (48, 64), 1), ("style", (64, 64), 2)):
        files[name] = folder / f"{name}.png"
        Image.fromarray(np.round(smooth_image(shape, seed) * 255).astype(np.uint8)).save(files[name])
    return files


def convolution_labels(compiled_hlo: str) -> list[str]:
    """The dim_labels of every convolution in a compiled program's HLO text, e.g. "b01f_01io->b01f" (input batch,
    spatial, feature; kernel spatial, input, output channels; output)."""
    return re.findall(r"convolution\(.*?dim_labels=(\S+?)[,\s]", compiled_hlo)
