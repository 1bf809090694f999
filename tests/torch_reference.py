"""An independent PyTorch implementation of Gatys et al., for parity tests.

Written from the paper's definitions (FACTS.md) and the weight-file layouts, not from nst_jax's code: it reads the
Keras .h5 file itself with h5py and builds VGG19 from torch.nn layers (torch's own conv, pooling and Adam).
"""

from __future__ import annotations

import h5py
import numpy as np
import torch
import torch.nn.functional as F

CFG = [64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512, 512, 512, 512, "P", 512, 512, 512, 512]
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


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
    state = torch.load(path, weights_only=True)
    conv_indices = [i for i, v in enumerate(_torchvision_features()) if v == "C"]
    return [(state[f"features.{i}.weight"].float(), state[f"features.{i}.bias"].float()) for i in conv_indices]


def _torchvision_features() -> list[str]:
    """torchvision's `features` Sequential as C (conv), R (relu), P (pool)."""
    seq = []
    for v in CFG + ["P"]:
        seq += ["P"] if v == "P" else ["C", "R"]
    return seq


def vgg_features(convs, x: torch.Tensor, wanted: list[str], pooling: str = "avg") -> dict[str, torch.Tensor]:
    """x: [B, 3, H, W] preprocessed input. Returns {"relu4_2": [B, C, H, W], "conv1_1": ...} for `wanted`."""
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


def caffe_preprocess(rgb01: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> BGR x255 minus the Caffe means."""
    return rgb01.flip(1) * 255.0 - CAFFE_MEAN_BGR


def torchvision_preprocess(rgb01: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> ImageNet mean/std normalised (torchvision.transforms.Normalize)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


PREPROCESS = {"caffe": caffe_preprocess, "torchvision": torchvision_preprocess}


def gram(f: torch.Tensor) -> torch.Tensor:
    b, c, h, w = f.shape
    f = f.reshape(b, c, h * w)
    return f @ f.transpose(1, 2)


def paper_terms(convs, x, content_targets, style_grams, content_layers, style_layers, pooling="avg",
                preprocess="caffe"):
    """Unweighted content (1/2 sum (F-P)^2) and style (sum_l 1/L * E_l) losses at x ([1, 3, H, W] in [0, 1])."""
    feats = vgg_features(convs, PREPROCESS[preprocess](x), list(dict.fromkeys(content_layers + style_layers)), pooling)
    content = sum(0.5 * ((feats[l] - content_targets[l]) ** 2).sum() for l in content_layers)
    style = torch.zeros(())
    for l in style_layers:
        _, n, h, w = feats[l].shape
        style = style + ((gram(feats[l]) - style_grams[l]) ** 2).sum() / (4.0 * n**2 * (h * w) ** 2) / len(style_layers)
    return content, style


def adam_run(convs, content, style, steps, lr, alpha, beta, content_layers, style_layers, pooling="avg",
             preprocess="caffe"):
    """Adam from the content image with clipping to [0, 1] after every step. content, style: [H, W, 3] numpy.

    Returns a list of {"content", "style", "total"} per step, evaluated before that step's update.
    """
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float()  # noqa: E731
    c, s = to_t(content), to_t(style)
    with torch.no_grad():
        pre = PREPROCESS[preprocess]
        p_feats = vgg_features(convs, pre(c), content_layers, pooling)
        a_grams = {l: gram(f) for l, f in vgg_features(convs, pre(s), style_layers, pooling).items()}
    x = c.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        lc, ls = paper_terms(convs, x, p_feats, a_grams, content_layers, style_layers, pooling, preprocess)
        total = alpha * lc + beta * ls
        total.backward()
        history.append({"content": lc.item(), "style": ls.item(), "total": total.item()})
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return history
