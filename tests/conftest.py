"""Shared fixtures: random (not pretrained) VGG19 weights, weight files in the real formats, tiny images."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
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
if os.environ.get("PYTEST_XDIST_WORKER") and compile_cache.cache_dir() is not None:
    # under pytest-xdist (-n 2) each worker its own folder of that cache: two processes never write one entry
    _own = compile_cache.cache_dir() / os.environ["PYTEST_XDIST_WORKER"]
    _own.mkdir(parents=True, exist_ok=True)
    os.environ["NST_JAX_COMPILATION_CACHE"] = os.environ["JAX_COMPILATION_CACHE_DIR"] = str(_own)
if compile_cache.cache_dir() is not None:  # not switched off (NST_JAX_COMPILATION_CACHE=0)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(compile_cache.cache_dir()))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import numpy as np
import pytest
from PIL import Image

from nst_jax import weights as weights_lib
from nst_jax.cli import command as cli
from nst_jax.cli import reporter
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


# Helpers shared by several test files (plain functions and images, imported with `from conftest import`).


CONTENT = smooth_image((48, 64), 1)


CONTENTS = [smooth_image((24, 32), 20), smooth_image((24, 32), 21)]


OTHER = smooth_image((40, 56), 7)


STYLE = smooth_image((64, 64), 2)


STYLES = [smooth_image((32, 32), 22), smooth_image((28, 36), 23)]  # styles may differ in shape


def base_args(h5_files, image_files, steps=2):
    return ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", "32", "--steps", str(steps), "--optimizer", "adam", "--quiet"]


def mid_range(image: np.ndarray, spread: float = 0.3) -> np.ndarray:
    """An image squeezed around mid-gray, so that colour maps do not reach the [0, 1] clip."""
    return (0.5 + spread * (image - 0.5)).astype(np.float32)


def stopped_run(h5_files, image_files, tmp_path, command=None):
    """A one-job run (or `command`) stopped by SIGINT after its first chunk: returns (its command, the checkpoint
    path)."""
    import signal

    command = command or [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", h5_files["legacy"], "--size", 32, "--steps", 6, "--chunk-size", 2, "--optimizer", "adam",
        "--quiet"]
    real = reporter.Reporter.progress

    def progress(self, p):
        real(self, p)
        os.kill(os.getpid(), signal.SIGINT)

    reporter.Reporter.progress = progress
    try:
        assert main(command) == 130
    finally:
        reporter.Reporter.progress = real
    return command, tmp_path / "o.checkpoint.npz"


def main(args):
    """The CLI in this process (argv as strings, as a shell gives them)."""
    return cli.main([str(a) for a in args])


def run_cli(*args, env=None):
    """Run `python -m nst_jax` in a fresh process: returns (exit status, stderr)."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "nst_jax", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=300)
    return proc.returncode, proc.stderr


def stop_in_second_job(monkeypatch):
    """Make the CLI send itself SIGINT once job 1 (the second) has reported step 2; returns the real
    Reporter.progress, to put back."""
    import signal

    real = reporter.Reporter.progress

    def progress(self, p):
        real(self, p)
        if p.first_job == 1 and p.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(reporter.Reporter, "progress", progress)
    return real


def random_features(seed: int, shape=(2, 5, 6, 4)) -> np.ndarray:
    """Feature maps [B, H, W, N], normal around 0.3 (a reproducible stand-in for a VGG layer's)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) + 0.3


def random_guide(shape, seed: int = 0) -> np.ndarray:
    """A guide [H, W] with zeros, ones and values between."""
    rng = np.random.default_rng(seed)
    return rng.choice([0.0, 0.5, 1.0], size=shape).astype(np.float32)
