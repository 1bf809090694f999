"""Seconds per optimisation step, nst_jax vs a PyTorch implementation of the same loss, side by side in one run.

    python benchmarks/step_time.py [--sizes 256 512] [--steps 10] [--weights FILE]

One step = the paper's loss (forward to relu5_1) and its gradient with respect to the image, plus an Adam update.
nst_jax runs a compiled chunk of steps (compilation excluded, timed separately); PyTorch runs eagerly on the same
weights and images, on the same device (CUDA when JAX runs on a GPU). The float32 floor is the step's convolution
FLOPs divided by the measured matrix-product rate: on a CPU the faster of numpy's and JAX's float32 GEMM (2048^3).
On a GPU there is one row per precision, each against JAX's measured 8192^3 matmul rate in that precision (float32
exact, TF32, bfloat16), and "% of peak" is the step's achieved FLOP rate over it.
"""

from __future__ import annotations

import argparse
import time

from nst_jax.config import Config
from nst_jax.reference.bench import (
    gemm_gflops,
    load_weights,
    machine,
    matmul_tflops,
    on_gpu,
    step_gflop,
    table,
    test_images,
    timed_optimize,
    torch_device,
)


def jax_step_time(w, content, style, steps: int, precision: str = "float32", jobs: int = 1) -> tuple[float, float]:
    """(compile seconds, seconds per step) of nst_jax's real loop (`optimize`, chunks of `steps` Adam steps).

    Per step: the wall time of a warm call with three chunks minus that of one with one chunk, over 2 * steps, so
    set-up, targets and per-call host work cancel, and what is left is the steady pipelined rate (see
    `timed_optimize` for why chunk reports are not used). Compile: the first call's time minus a warm call's."""
    def wall(chunks: int) -> float:
        config = Config(size=None, optimizer="adam", init="content", steps=chunks * steps, chunk_size=steps,
                        precision=precision, batch_size=jobs)  # all jobs in one program
        return timed_optimize(content, style, w, config, jobs)

    first, one, three = wall(1), wall(1), wall(3)
    return first - one, (three - one) / (2 * steps)


def torch_step_time(weights_path, w, content, style, steps: int, tf32: bool = True) -> float:
    """Seconds per Adam step of the PyTorch reference; on CUDA, `tf32` sets cuDNN's allow_tf32 (its default: True)."""
    import torch

    from nst_jax.reference import torch_reference as ref

    torch.set_num_threads(max(1, torch.get_num_threads()))
    torch.backends.cudnn.allow_tf32 = tf32
    convs = ref.read_weights(weights_path)
    setting = dict(ref.PAPER, preprocess=w.preprocess)
    device = torch_device()
    ref.run(convs, content, style, content, setting, 3, device=device)  # warm-up
    start = []  # the steps only: the targets' forward passes are set-up, as they are for nst_jax's chunks
    ref.run(convs, content, style, content, setting, steps, device=device,
            on_start=lambda: start.append(time.perf_counter()))  # returns after a device sync
    return (time.perf_counter() - start[0]) / steps


def cpu_table(args, w, path) -> str:
    rates = gemm_gflops()
    gemm = max(rates.values())
    print(f"{machine()}; float32 GEMM 2048^3 GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()) + "\n")
    rows = []
    for size in args.sizes:
        content, style = test_images(size)
        compile_s, ours = jax_step_time(w, content, style, args.steps)
        theirs = torch_step_time(path, w, content, style, args.steps)
        floor = step_gflop(size, size) / gemm
        row = [f"{size}x{size}", f"{step_gflop(size, size):.0f}", f"{ours:.2f}", f"{theirs:.2f}",
               f"{ours / theirs:.2f}", f"{floor:.2f}", f"{ours / floor:.2f}", f"{compile_s:.1f}"]
        if args.bf16:
            row.append(f"{jax_step_time(w, content, style, args.steps, 'bfloat16')[1]:.2f}")
        rows.append(row)
        print(f"measured {size}", flush=True)
    header = ["size", "GFLOP/step", "nst_jax s/step", "torch s/step", "nst_jax/torch", "f32 floor s", "nst_jax/floor",
              "compile s"] + (["bf16 s/step"] if args.bf16 else [])
    return table(header, rows)


def gpu_table(args, w, path) -> str:
    """One row per size and precision: float32 (exact; torch with cuDNN's TF32 off), tf32 (torch's default) and
    with --bf16 bfloat16 (no torch counterpart); "% of peak" is over the measured matmul rate of that precision."""
    rates = {"float32": matmul_tflops("float32", "highest"), "tf32": matmul_tflops("float32"),
             "bfloat16": matmul_tflops("bfloat16")}
    print(f"{machine()}; JAX 8192^3 matmul TFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
          + f"; torch on {torch_device()}\n")
    rows = []
    for size in args.sizes:
        content, style = test_images(size)
        gflop = step_gflop(size, size)
        for precision in ["float32", "tf32"] + (["bfloat16"] if args.bf16 else []):
            compile_s, ours = jax_step_time(w, content, style, args.steps, precision)
            theirs = (torch_step_time(path, w, content, style, args.steps, tf32=precision == "tf32")
                      if precision != "bfloat16" else float("nan"))
            floor = gflop / rates[precision] / 1e3
            rows.append([f"{size}x{size}", precision, f"{gflop:.0f}", f"{1e3 * ours:.2f}", f"{1e3 * theirs:.2f}",
                         f"{ours / theirs:.2f}", f"{rates[precision]:.0f}", f"{1e3 * floor:.2f}",
                         f"{100 * floor / ours:.0f}%", f"{compile_s:.1f}"])
            print(rows[-1], flush=True)
    return table(["size", "precision", "GFLOP/step", "nst_jax ms/step", "torch ms/step", "nst_jax/torch",
                  "matmul TFLOP/s", "floor ms", "% of peak", "compile s"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--weights", help="weights file (default: random values in the Keras format)")
    parser.add_argument("--bf16", action="store_true", help="also time --precision bfloat16")
    args = parser.parse_args()
    w, path = load_weights(args.weights)
    print((gpu_table if on_gpu() else cpu_table)(args, w, path))


if __name__ == "__main__":
    main()
