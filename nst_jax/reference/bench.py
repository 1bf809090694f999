"""Shared helpers of the benchmark scripts (benchmarks/, run from a source checkout): weights, images, the PyTorch
reference, FLOP counts, tables."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

REPO = Path(__file__).resolve().parents[2]  # the source checkout: CHECKOUT/nst_jax/reference/bench.py

from nst_jax import weights as weights_lib  # noqa: E402
from nst_jax.core import layers, vgg  # noqa: E402
from nst_jax.reference.random_vgg import random_params  # noqa: E402


def load_weights(path: str | None) -> tuple[weights_lib.Weights, Path]:
    """The given weights file, or random-valued weights written as a Keras .h5 (timings do not depend on the
    values; a table made this way says nothing about image quality)."""
    if path:
        return weights_lib.load(path), Path(path)
    from nst_jax.reference.writers import write_keras_h5

    params = jax.tree.map(np.asarray, random_params(jax.random.key(0)))
    file = Path(tempfile.mkdtemp()) / "random_vgg19.h5"
    write_keras_h5(params, file)
    return weights_lib.load(file), file


def test_images(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The repository's examples/chelsea.jpg and examples/starry_night.jpg, each resized once here to size x size.
    (The tables in docs/performance.md dated up to 2026-11-30 used ../shared/images/tubingen.jpg instead: a step's
    time does not depend on the picture; time to quality does.)"""
    from nst_jax.io import images

    c = images.resize(images.load(REPO / "examples" / "chelsea.jpg"), (size, size))
    s = images.resize(images.load(REPO / "examples" / "starry_night.jpg"), (size, size))
    return c, s


def step_gflop(h: int, w: int, deepest: str = "relu5_1") -> float:
    """GFLOP of one Gatys step: the forward pass to `deepest` plus the gradient with respect to the input only
    (one transposed convolution per layer, except the first layer's, whose input gradient is still needed)."""
    return sum(conv_gflop(conv, hh, ww) for conv, hh, ww in vgg.conv_maps(h, w, deepest))


def conv_gflop(conv: str, h: int, w: int) -> float:
    """GFLOP of layer `conv` on an [h, w] map in a step: its forward pass plus its input gradient (2 x 2 h w 9 C O)."""
    kh, kw, cin, cout = layers.CONV_SHAPES[conv]
    return 2.0 * 2.0 * h * w * kh * kw * cin * cout / 1e9


def timed_optimize(content, style, w, config, jobs: int = 1, marks: list | None = None) -> float:
    """Wall seconds of one `optimize` call on `jobs` copies of one job; it returns host arrays, so the device is
    done. With `marks`, appends the seconds from the call to each chunk's report: exact for a one-chunk call, whose
    report waits for its chunk; with several chunks a report comes after the next chunk's dispatch, which on some
    GPU hosts waits for the device, so differences of marks are not chunk times there."""
    from nst_jax.run import loop

    t = time.perf_counter()
    callback = None if marks is None else (lambda p: marks.append(time.perf_counter() - t))
    loop.optimize([content] * jobs, [style] * jobs, w, config, callback=callback)
    return time.perf_counter() - t


def gemm_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Measured float32 matrix-multiply rates (GFLOP/s) of this machine on n^3 products, all threads: numpy's BLAS
    and JAX's own (XLA:CPU). The float32 floor uses the faster: numpy's BLAS may run a slower kernel than the
    processor allows (an OPENBLAS_CORETYPE setting, for one)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return {"numpy": 2.0 * n**3 / best / 1e9, "jax": 1e3 * matmul_tflops("float32", "highest", n, 2 * repeats)}


def on_gpu() -> bool:
    return jax.default_backend() == "gpu"


def torch_device() -> str:
    """Where the PyTorch reference runs: "cuda" when JAX runs on a GPU and torch sees one, else "cpu"."""
    import torch

    return "cuda" if on_gpu() and torch.cuda.is_available() else "cpu"


def best_seconds(fn, *args, repeats: int) -> float:
    """The fastest of `repeats` timed calls of fn(*args), after one untimed call (compilation)."""
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def matmul_tflops(dtype: str, precision: str | None = None, n: int = 8192, repeats: int = 20,
                  accumulate: str | None = None) -> float:
    """Measured rate (TFLOP/s) of an n x n x n matrix product in JAX on the default device, random operands.

    dtype "float32" with precision None is what float32 convolutions get by default (TF32 on NVIDIA since Ampere);
    precision "highest" asks for full float32 arithmetic. accumulate: the result's dtype (default: dtype), e.g.
    "float32" for bfloat16 operands accumulated in float32."""
    import jax.numpy as jnp

    a, b = (jax.random.normal(jax.random.key(i), (n, n), dtype) for i in (1, 2))
    product = jax.jit(lambda x, y: jnp.matmul(x, y, precision=precision, preferred_element_type=accumulate))
    product(a, b).block_until_ready()
    t = time.perf_counter()
    for _ in range(repeats):
        out = product(a, b)
    out.block_until_ready()
    return 2.0 * n**3 * repeats / (time.perf_counter() - t) / 1e12


def run_child(code: str, args: list, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` (a template whose {bench} is this folder) in a fresh `python -c` process with `args` and
    environment `env` (default: this one's); its output is captured as text."""
    argv = [sys.executable, "-c", code.format(), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, env=env)


def json_child(code: str, args: list, what: str, env: dict | None = None) -> dict:
    """`run_child`, returning the JSON object the child's last line of output holds; a failure stops the script,
    naming `what` and showing the end of the child's errors."""
    out = run_child(code, args, env)
    if out.returncode:
        raise SystemExit(f"{what} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


def table(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(x).ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def machine() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores; jax {jax.__version__} on {jax.devices()[0].platform}"
