"""Colour control (Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving Color in Neural Artistic Style
Transfer", arXiv 1606.05897; Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer"), as
pure NumPy functions on [H, W, 3] RGB images in [0, 1], applied before or after the optimisation:

* `original_colors(result, content)`: the result's luminance with the content's colour channels (jcjohnson's
  `-original_colors 1`), after the transfer;
* `luminance_only(content, style)`: both images as their luminance (Y, repeated to three channels), the style's
  luminance mean and spread matched to the content's, before the transfer; `original_colors` puts the content's
  colour back afterwards;
* `match_colour_statistics(style, content)`: the style's RGB mean and covariance made the content's by an affine
  map, before the transfer ("colour histogram matching").

Luminance and colour are YIQ (NTSC), as the paper's luminance-only transfer uses.
"""

from __future__ import annotations

import numpy as np

# YIQ from RGB (rows: Y, I, Q) and its inverse.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)
MODES = ("luminance", "histogram")


def to_yiq(image: np.ndarray) -> np.ndarray:
    """[..., 3] RGB -> [..., 3] YIQ (Y in [0, 1])."""
    return np.asarray(image, np.float64) @ RGB_TO_YIQ.T


def from_yiq(yiq: np.ndarray) -> np.ndarray:
    """[..., 3] YIQ -> [..., 3] RGB, clipped to [0, 1], float32."""
    return np.clip(np.asarray(yiq, np.float64) @ YIQ_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] RGB -> [H, W] luminance Y."""
    return to_yiq(image)[..., 0]


def luminance_correlation(result: np.ndarray, content: np.ndarray) -> float:
    """How much of the content a result keeps: the correlation of their luminances (two [H, W, 3] images of one
    shape in [0, 1]); 1 for the content itself (or any brightness/contrast change of it), about 0 for unrelated
    pictures."""
    return float(np.corrcoef(luminance(result).ravel(), luminance(content).ravel())[0, 1])


def original_colors(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The result's luminance with the content's I and Q channels, [H, W, 3] in [0, 1]. `content` is resized by
    the caller to the result's shape."""
    yiq = to_yiq(content)
    yiq[..., 0] = luminance(result)
    return from_yiq(yiq)


def luminance_only(content: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) as gray images [H, W, 3] (Y repeated): the content's luminance, and the style's with its
    mean and standard deviation matched to the content's (Y_s' = (Y_s - mean_s) / std_s * std_c + mean_c),
    clipped to [0, 1]."""
    y_c, y_s = luminance(content), luminance(style)
    y_s = (y_s - y_s.mean()) / max(y_s.std(), 1e-8) * y_c.std() + y_c.mean()
    return _gray(y_c), _gray(y_s)


def _gray(y: np.ndarray) -> np.ndarray:
    """[H, W] luminance -> [H, W, 3] gray image in [0, 1], float32."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def match_colour_statistics(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style image with its RGB mean and covariance made the content's: x' = A (x - mu_s) + mu_c with
    A = Sigma_c^(1/2) Sigma_s^(-1/2) (symmetric square roots), clipped to [0, 1]. Before clipping, x' has exactly
    the content's mean and covariance."""
    x, c = np.asarray(style, np.float64).reshape(-1, 3), np.asarray(content, np.float64).reshape(-1, 3)
    mu_s, mu_c = x.mean(axis=0), c.mean(axis=0)
    a = _sqrtm(np.cov(c, rowvar=False)) @ _sqrtm(np.cov(x, rowvar=False), inverse=True)
    out = (x - mu_s) @ a.T + mu_c
    return np.clip(out, 0.0, 1.0).reshape(np.shape(style)).astype(np.float32)


def _sqrtm(cov: np.ndarray, inverse: bool = False, eps: float = 1e-8) -> np.ndarray:
    """The symmetric square root of a covariance matrix (or of its inverse), eigenvalues floored at `eps`."""
    values, vectors = np.linalg.eigh(cov)
    values = np.maximum(values, eps) ** (-0.5 if inverse else 0.5)
    return (vectors * values) @ vectors.T


def content_before(content: np.ndarray, mode) -> np.ndarray:
    """A job's content image as the transfer sees it under `Config.preserve_colors` `mode`: its luminance (gray)
    for luminance, else unchanged."""
    return _gray(luminance(content)) if mode == "luminance" else content


def style_before(style: np.ndarray, content: np.ndarray, mode) -> np.ndarray:
    """A style image as the transfer sees it under `mode`: luminance -> its luminance with the content's mean and
    spread (`luminance_only`); histogram -> its colours matched to the content's (`match_colour_statistics`); else
    unchanged."""
    if mode == "luminance":
        return luminance_only(content, style)[1]
    if mode == "histogram":
        return match_colour_statistics(style, content)
    return style


def after(result: np.ndarray, content: np.ndarray, mode) -> np.ndarray:
    """A job's result under `mode`: luminance and original -> `original_colors` (content: the original content
    image at the result's size); else unchanged. A NaN result (nothing finite to show) stays as it is."""
    if mode in ("luminance", "original") and np.isfinite(result).all():
        return original_colors(result, content)
    return result
