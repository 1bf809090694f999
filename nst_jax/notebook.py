"""Notebook helpers (Jupyter, Colab): the runtime in words with the precision that suits it, a live view that
`stylize` and `stylize_batch` call between chunks, the files a notebook's parameters name (`find`), and bad input
said in one line (`one_line`). Display only: nothing here computes the style transfer, and IPython and matplotlib
(the `plot` extra) are imported when a view is made, never by the rest of the package.

    view = nst_jax.notebook.LiveView(config)
    result = nst_jax.stylize(content, style, config=config, callback=view)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import numpy as np

from .config import Config
from .core.objective import TERMS
from .errors import InputError
from .io import images
from .io.plot import draw_losses, term_weights
from .run.records import Progress

# The precision a backend runs best at, and what it costs: (Config.precision, one line for the notebook).
PRECISIONS = {
    "cpu": ("float32", "exact float32, which on a CPU is also the fast path (tf32 gives the same numbers there)"),
    "gpu": ("tf32", "float32 data with TF32 convolutions on NVIDIA GPUs: 4.6x (256 px) and 5.7x (512 px) faster per "
                    "step than exact float32 on an H200, activations 3.5e-4 off exact float32 on an H100 "
                    "(docs/performance.md); Config(precision='float32') for exact numbers"),
    "tpu": ("tf32", "float32 data, each convolution in one bfloat16 pass instead of the several passes that exact "
                    "float32 takes (faster, less exact; not measured here); Config(precision='float32') for exact "
                    "numbers"),
}


def in_colab() -> bool:
    """Whether this runs in Google Colab (its `google.colab` module can be imported)."""
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no `google` package at all
        return False


@dataclass(frozen=True)
class Runtime:
    """Attributes: backend ("cpu", "gpu", "tpu"); devices: one description per local device; precision: the
    `Config.precision` that suits the backend (`PRECISIONS`); note: what that choice costs."""

    backend: str
    devices: tuple[str, ...]
    precision: str
    note: str

    def __str__(self) -> str:
        kinds = sorted(set(self.devices))
        return (f"JAX backend {self.backend}, {len(self.devices)} local device(s): {', '.join(kinds)}\n"
                f"precision {self.precision!r}: {self.note}")


def runtime() -> Runtime:
    """The backend and local devices JAX sees here, and the precision to run at (`PRECISIONS`; exact float32 for
    a backend not listed)."""
    import jax

    backend = jax.default_backend()
    precision, note = PRECISIONS.get(backend, ("float32", "exact float32"))
    return Runtime(backend, tuple(d.device_kind for d in jax.local_devices()), precision, note)


def find(value: Union[str, os.PathLike], role: str, repo: Optional[Path] = None) -> Path:
    """The file a notebook parameter names: an absolute path as given; a relative one looked for in the notebook's
    folder (the kernel's working folder), then in `repo` (the repository, whose examples/ a user may name).
    InputError naming every place it looked, or that it found a folder; `role` says what it is ("content image")."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise TypeError(f"the {role} must be a file path, got {value!r}")
    path = Path(value).expanduser()
    places = [path] if path.is_absolute() else [Path.cwd() / path] + ([Path(repo) / path] if repo else [])
    found = next((place for place in places if place.is_file()), None)
    if found is not None:
        return found
    folder = next((place for place in places if place.is_dir()), None)
    if folder is not None:
        raise InputError(folder, f"is a folder; the {role} must be a file")
    raise InputError(value, f"no such {role} (looked for {' and '.join(map(str, places))})")


@contextlib.contextmanager
def one_line() -> Iterator[None]:
    """Bad input in a notebook cell said in one line: an InputError (a file), or the ValueError or TypeError of a
    setting, ends the cell as `SystemExit("error: ...")`, which IPython shows without a traceback.

        with notebook.one_line():
            config = nst_jax.Config(size=SIZE, steps=STEPS)
    """
    try:
        yield
    except (InputError, ValueError, TypeError) as e:
        raise SystemExit(f"error: {' '.join(str(e).split())}") from None


SHOWN = 6  # pictures a live view shows side by side (the first of a batch)


NOTEBOOK_EXTRA = "pip install 'nst_jax[notebook]' (or pip install ipython matplotlib)"


class LiveView:
    """A `stylize` / `stylize_batch` callback that shows, updated in place under the notebook cell, the current
    image(s) and the weighted loss curves so far.

    Args:
      config: the run's `Config` (for the weights of the loss terms; default `Config()`).
      every: redraw at most once per this many seconds (the last chunk of a run is always drawn).
      height: the image's height on screen, px.
    After the run, `history` holds {"content", "style", "tv", "total": [steps, jobs]} of the batch last shown.
    """

    def __init__(self, config: Optional[Config] = None, every: float = 1.0, height: int = 256):
        if config is not None and not isinstance(config, Config):
            raise TypeError(f"LiveView(config): config must be the run's nst_jax.Config or None, got "
                            f"{type(config).__name__} (pass callback=LiveView(config), an instance, not the class)")
        try:
            import matplotlib  # noqa: F401
            from IPython import get_ipython
            from IPython.display import display
        except ImportError as e:
            missing = f"LiveView needs IPython and matplotlib ({e.name} is missing)"
            raise ImportError(f"{missing}: {NOTEBOOK_EXTRA}") from None
        if not hasattr(get_ipython(), "kernel"):  # plain Python or a terminal IPython: nowhere to show a picture
            raise RuntimeError("LiveView shows pictures in a notebook (Jupyter, Colab); here pass a callback that "
                               "prints, e.g. callback=lambda p: print(p.step, p.losses['total'][-1])")
        self.weights = term_weights(config or Config())
        self.every, self.height = every, height
        self.history: dict[str, np.ndarray] = {}
        self._first_job: Optional[int] = None
        self._drawn_at = -np.inf
        self._handle = display(_text("waiting for the first chunk of steps..."), display_id=True)

    def __call__(self, p: Progress) -> None:
        losses = {k: np.asarray(p.losses[k]).reshape(len(p.losses[k]), -1) for k in TERMS}  # [k, jobs]
        if p.first_job != self._first_job:  # a new batch of jobs (stylize_batch runs batches one after another)
            self._first_job, self.history = p.first_job, {k: losses[k][:0] for k in TERMS}
        self.history = {k: np.concatenate([self.history[k], losses[k]]) for k in TERMS}
        last = p.step == p.total_steps
        if last or time.monotonic() - self._drawn_at >= self.every:
            self._handle.update(self._picture(p))
            self._drawn_at = time.monotonic()

    def _picture(self, p: Progress):
        """The image(s) of `p` above the loss curves, as an IPython PNG image."""
        from IPython.display import Image
        from matplotlib.figure import Figure

        pictures = np.clip(np.asarray(p.image, np.float32), 0.0, 1.0)
        pictures = pictures if pictures.ndim == 4 else pictures[None]
        shown = pictures[:SHOWN]
        sheet = images.side_by_side([list(shown)], height=self.height)
        first = p.first_job + 1
        jobs = ""
        if len(pictures) > 1 or p.first_job:
            jobs = f"jobs {first}-{first + len(pictures) - 1}" if len(pictures) > 1 else f"job {first}"
            jobs += f" (the first {len(shown)} shown), " if len(shown) < len(pictures) else ", "
        title = (f"{jobs}step {p.step} of {p.total_steps}, {p.size[1]}x{p.size[0]} px, {p.elapsed:.1f} s"
                 + (f", scale {p.scale + 1}" if p.scale else ""))
        fig = Figure(figsize=(max(6.0, sheet.width / 100), sheet.height / 100 + 3.2), dpi=100)
        top, bottom = fig.subplots(2, 1, height_ratios=[sheet.height / 100, 3.0])
        top.imshow(np.asarray(sheet))
        top.set_axis_off()
        top.set_title(title, fontsize=9)
        draw_losses(bottom, self.history, self.weights)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return Image(data=buffer.getvalue(), format="png")


def _text(message: str):
    from IPython.display import Pretty

    return Pretty(message)
