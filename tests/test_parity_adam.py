"""Parity with an independent PyTorch implementation of the paper (tests/torch_reference.py).

`python -m nst_jax --optimizer adam --init content` on weight files in every real format (random values) and images
already at --size (so no resampling) must log the same content, style and total losses as PyTorch, step by step.
"""

import json

import numpy as np
import pytest
from PIL import Image

from nst_jax import cli

# Float32 rounding differs between XLA and PyTorch's convolutions (FACTS.md: activations agree to ~1e-6
# relative); over a few Adam steps the loss terms stay within 1e-4, well inside the 1e-3 the issue asks for.
LOSS_RTOL = 1e-3
STEPS = 6


def relative_error(a, b):
    """|a - b| / max(|a|, |b|), and 0 when both are exactly 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


@pytest.fixture(scope="module")
def weight_files(torch, h5_files, random_weights, tmp_path_factory):
    """Every real format: Keras .h5 (two layouts) and torchvision .pth (both torch.save serialisations)."""
    from weightfiles import torchvision_state_dict, write_pth

    folder = tmp_path_factory.mktemp("parity_pth")
    state = torchvision_state_dict(random_weights.params, torch)
    return {
        "h5-legacy": (h5_files["legacy"], "caffe"),
        "h5-nested-wrapped": (h5_files["nested-wrapped"], "caffe"),
        "pth-zip": (write_pth(state, folder / "zip.pth", torch, legacy=False), "torchvision"),
        "pth-legacy": (write_pth(state, folder / "legacy.pth", torch, legacy=True), "torchvision"),
    }


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["h5-legacy", "h5-nested-wrapped", "pth-zip", "pth-legacy"])
def test_parity_adam_trajectory_matches_pytorch(torch, weight_files, image_files, tmp_path, kind):
    import torch_reference

    torch.set_num_threads(2)
    path, preprocess = weight_files[kind]
    read = torch_reference.read_keras_h5 if preprocess == "caffe" else torch_reference.read_torchvision_pth
    log = tmp_path / "log.jsonl"
    status = cli.main([str(a) for a in [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", path, "--size", 64, "--steps", STEPS, "--optimizer", "adam", "--lr", 0.02,
        "--init", "content", "--log", log, "--quiet"]])
    assert status == 0
    ours = [json.loads(line) for line in log.read_text().splitlines()]

    load = lambda p: np.asarray(Image.open(p).convert("RGB"), np.float32) / 255.0  # noqa: E731
    ref = torch_reference.adam_run(
        read(path), load(image_files["content"]), load(image_files["style"]),
        steps=STEPS, lr=0.02, alpha=1.0, beta=1e3, content_layers=["relu4_2"],
        style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], preprocess=preprocess)
    assert len(ours) == len(ref) == STEPS
    assert ref[0]["content"] == 0.0 and ours[0]["content"] == 0.0  # init content: no content loss at step 0
    for step, (a, b) in enumerate(zip(ours, ref)):
        for term in ("content", "style", "total"):
            assert relative_error(a[term], b[term]) <= LOSS_RTOL, (step, term, a[term], b[term])
