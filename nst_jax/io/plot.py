"""`--plot`: the loss terms over the steps as a PNG (matplotlib, an optional extra: pip install 'nst_jax[plot]')."""

from __future__ import annotations

import os
import warnings
from typing import Mapping

import numpy as np

from ..errors import InputError
from .files import atomic_path

PLOT_EXTRA = "pip install 'nst_jax[plot]' (or pip install matplotlib)"
EACH_JOB_UP_TO = 4  # a line per job up to this many jobs; beyond, each term's median over the jobs and its range
TERMS_DRAWN = ("total", "content", "style", "tv")  # in this order


def check_matplotlib(path: str | os.PathLike) -> None:
    """An InputError naming `path` if matplotlib cannot be imported (checked before a run, not after it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(path, f"--plot needs matplotlib, which is not installed: {PLOT_EXTRA}") from None


def term_weights(config) -> dict[str, float]:
    """{"content", "style", "tv"}: the weights that multiply each loss term of `config` (a `Config`) in the total."""
    return {"content": config.content_weight, "style": config.style_weight, "tv": config.tv_weight}


def draw_losses(ax, history: Mapping[str, np.ndarray], weights: Mapping[str, float], title: str = "") -> None:
    """Draw the weighted loss terms over the steps on the matplotlib axes `ax`, log scale: a line per term and job,
    or for more than EACH_JOB_UP_TO jobs each term's median over the jobs with its range shaded.

    Args:
      history: {"content", "style", "tv", "total": [steps, jobs]} (unweighted terms, weighted total), as the CLI
        collects them.
      weights: {"content", "style", "tv"}: the weights that multiply each term in the total (`term_weights`).
      title: the axes' title.
    """
    import matplotlib.ticker

    colours = {"total": "black", "content": "tab:blue", "style": "tab:red", "tv": "tab:green"}
    for name in TERMS_DRAWN:
        values = np.asarray(history[name], np.float64) * (weights.get(name, 1.0) if name != "total" else 1.0)
        if values.size == 0 or (name != "total" and weights.get(name, 1.0) == 0):
            continue
        values = np.where(values > 0, values, np.nan).reshape(values.shape[0], -1)  # log scale: no zeros
        label = name if name == "total" else f"{name} x {weights[name]:g}"
        steps, width = np.arange(values.shape[0]), 1.5 if name == "total" else 1.0
        if values.shape[1] > EACH_JOB_UP_TO:  # many jobs: the median and the range
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps of diverged jobs
                low, mid, high = (f(values, axis=1) for f in (np.nanmin, np.nanmedian, np.nanmax))
            ax.plot(steps, mid, color=colours[name], linewidth=width, label=f"{label} (median of {values.shape[1]})")
            ax.fill_between(steps, low, high, color=colours[name], alpha=0.15, linewidth=0)
            continue
        for j in range(values.shape[1]):
            ax.plot(steps, values[:, j], color=colours[name], linewidth=width, label=label if j == 0 else None,
                    alpha=0.9)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)


def plot_losses(history: Mapping[str, np.ndarray], weights: Mapping[str, float], path: str | os.PathLike,
                title: str = "") -> None:
    """Save `draw_losses`'s picture of `history` as a PNG image at `path` (atomic write)."""
    check_matplotlib(path)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)  # no pyplot: no display and no global figure state
    draw_losses(fig.subplots(), history, weights, title)
    fig.tight_layout()
    with atomic_path(path, "the plot") as tmp:
        fig.savefig(tmp, format="png")
