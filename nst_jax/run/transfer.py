"""The loop and the entry points: `stylize`, `stylize_batch` and `optimize` run the objective (`objective`) with
the compiled chunks of steps (`steps`) over the shapes `planning` checked, and report `Progress` between chunks.
No printing, no files except reading the inputs the caller names.

Data flow: images ([H, W, 3] RGB in [0, 1]) -> targets (content features P, style statistics A) -> chunks of K
optimisation steps, each chunk one compiled XLA program (`lax.scan`), -> a `Progress` record to the callback
between chunks -> `Result`. Chunks are pipelined: chunk k+1 is dispatched before chunk k's losses are read and
reported, so it is already queued on the device while the host waits for chunk k and runs the callback.

Compilation: one program per (image shape, layers, pooling, preprocessing, optimiser, chunk length); all chunks of
a run have the same length (`chunk_length`). Loss weights, learning rate, params and targets are traced arguments,
so changing them never recompiles.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from .. import weights as weights_lib
from ..config import INIT_KEYWORDS, Config
from ..core.objective import (
    TERMS,
    LossSpec,
    cast_params,
    compute_targets,
    to_image,
    to_variable,
)
from ..core.optimizers import OPTIMIZERS
from ..core.steps import averaged_variable, chunk_length, next_scale, run_chunk, start_states
from ..errors import InputError, Interrupted, check_stop, deferred_stops
from ..io import images
from ..io.images import MAX_PIXELS, ImageLike, as_image, load
from ..weights import as_weights
from . import colour
from .planning import jobs_per_program, needed_sides, padded_jobs, plan_scales, scaled_shapes
from .settings import hyperparams, loss_spec, loss_weights

WeightsLike = Union[weights_lib.Weights, str, os.PathLike, None]



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
    """Attributes: image: [H, W, 3] float32 in [0, 1]; history: {"content", "style", "tv", "total": [steps]};
    image_step: the step the image is from: all the steps, or where the loss stopped being finite the last step
    whose image had a finite loss (history then shows where it diverged; -1: there was none and the image is NaN).

    In a notebook a `Result` shows as its image (`_repr_png_`)."""

    image: np.ndarray
    history: Mapping[str, np.ndarray]
    image_step: int = -1

    def to_pil(self) -> Image.Image:
        """The image as an 8-bit RGB Pillow image (rounded to nearest)."""
        return Image.fromarray(images.to_uint8(self.image))

    def save(self, path: Union[str, os.PathLike], quality: int = 95) -> None:
        """Write the image as PNG or JPEG (by suffix), atomically; see `nst_jax.io.images.save`."""
        images.save(self.image, path, quality)

    def _repr_png_(self) -> bytes:
        return images.png_bytes(self.image)


# ----------------------------------------------------------------------------------------------------------------
# Inputs


def style_set(style) -> list:
    """A job's styles as a list: one image (a path, a Pillow image, an [H, W, 3] array), or a list or tuple of them
    (several styles in one job, blended: `Config.style_blend`). ValueError for an empty list."""
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    if not styles:
        raise ValueError("a job needs at least one style image, got an empty list")
    return styles


class Masks(NamedTuple):
    """The spatial control of a run (`Config.style_masks`, `Config.content_mask`), read: style: one [H, W] mask per
    style of each job (or None), content: [H, W] (or None); values in [0, 1], any size (resized to the content)."""

    style: Optional[list[np.ndarray]] = None
    content: Optional[np.ndarray] = None


def mask_array(image: np.ndarray, name=None, what: str = "mask") -> np.ndarray:
    """An [H, W, 3] image in [0, 1] as a mask [H, W]: its gray level (white 1: applies; black 0: not). InputError
    naming it when it is black everywhere: it would select nothing."""
    mask = np.asarray(image, np.float32).mean(axis=-1)
    if not mask.any():
        raise InputError(name, f"the {what} selects nothing: it is black everywhere at the size the run reads it "
                               "(white marks where it applies)")
    return mask


def load_masks(config: Config, max_pixels: int = MAX_PIXELS) -> Masks:
    """The masks `config` names, read no larger than the content needs (`images.load`) and checked (`mask_array`).
    Raises InputError naming the file."""
    side = needed_sides(config)[0]
    read = lambda path, what: mask_array(load(path, max_pixels, side), path, what)  # noqa: E731
    return Masks(None if config.style_masks is None else [read(p, "style mask") for p in config.style_masks],
                 None if config.content_mask is None else read(config.content_mask, "content mask"))


def scaled_masks(masks: Masks, shape: tuple[int, int]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """The masks resized to one scale's content shape (Lanczos, clipped to [0, 1]): style [K, H, W] and content
    [H, W], each None when not given."""
    fit = lambda m: images.resize(m[..., None], shape)[..., 0]  # noqa: E731
    return (None if masks.style is None else np.stack([fit(m) for m in masks.style]),
            None if masks.content is None else fit(masks.content))


def scale_images(content: np.ndarray, style: np.ndarray, size: Optional[int], style_scale: float):
    """Content resized so its longer side is `size`, style so its longer side is style_scale times that."""
    content_shape, style_shape = scaled_shapes(content.shape[:2], style.shape[:2], size, style_scale)
    return images.resize(content, content_shape), images.resize(style, style_shape)


def prepare_images(content: ImageLike, style: ImageLike, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Load (paths) and resize: content's longer side to `config.size`, style's to style_scale times that.

    No resampling happens to an image already at its target size. Returns [H, W, 3], [H_s, W_s, 3] in [0, 1].
    """
    content_side, style_side = needed_sides(config)
    return scale_images(as_image(content, "content", content_side), as_image(style, "style", style_side),
                        config.size, config.style_scale)


def initial_variable(init: Union[str, ImageLike], content: np.ndarray, style: np.ndarray, seed: int,
                     spec: LossSpec, noise_ratio: float = 0.0) -> np.ndarray:
    """The start of the optimised variable, [H, W, 3].

    init: "noise" (uniform white noise in [0, 1] per pixel and channel, seeded), "randn" (N(0, 0.001^2) in the
    variable's own space, jcjohnson's "random"), "gauss" (N(0, 1) in the network's input space, as an image clipped
    to [0, 1]), "gray" (0.5), "content", "style" (resized to the content's shape), an image path or an array
    (resized to the content's shape). noise_ratio r: the start image becomes (1 - r) image + r uniform noise (not
    for "randn", which is not an image).
    """
    shape, key = content.shape[:2], jax.random.key(seed)
    if isinstance(init, str) and init == "randn":
        return 0.001 * np.asarray(jax.random.normal(key, (*shape, 3), spec.variable_dtype))
    if isinstance(init, str) and init == "noise":
        image = np.asarray(jax.random.uniform(key, (*shape, 3), jnp.float32))
    elif isinstance(init, str) and init == "gauss":
        noise = jax.random.normal(key, (*shape, 3), jnp.float32)
        image = np.clip(np.asarray(weights_lib.deprocess(noise, spec.preprocess)), 0.0, 1.0)
    elif isinstance(init, str) and init == "gray":
        image = np.full((*shape, 3), 0.5, np.float32)
    elif isinstance(init, str) and init == "content":
        image = content
    elif isinstance(init, str) and init == "style":
        image = images.resize(style, shape)
    else:
        if isinstance(init, str) and not os.path.exists(init):
            raise InputError(init, f"the start image (--init, Config.init) is neither {', '.join(INIT_KEYWORDS)} "
                                   "nor an existing image file")
        image = images.resize(as_image(init, "init"), shape)
    if noise_ratio:
        noise = np.asarray(jax.random.uniform(jax.random.fold_in(key, 1), (*shape, 3), jnp.float32))
        image = (1.0 - noise_ratio) * np.asarray(image, np.float32) + noise_ratio * noise
    return np.asarray(to_variable(jnp.asarray(image, spec.variable_dtype), spec))


# ----------------------------------------------------------------------------------------------------------------
# The loop


def shard_jobs(tree, n_jobs: int):
    """Lay arrays with a leading jobs axis across all local devices (when they divide the jobs evenly)."""
    devices = jax.local_devices()
    if len(devices) < 2 or n_jobs % len(devices):
        return tree
    mesh = jax.sharding.Mesh(np.array(devices), ("jobs",))
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("jobs"))
    return jax.tree.map(lambda a: jax.device_put(a, sharded) if a.ndim and a.shape[0] == n_jobs else a, tree)


class Batch(NamedTuple):
    """A batch of jobs as it ends (`optimize_batches`): jobs first, first + 1, ..., first + G - 1.

    images: [G, H, W, 3] in [0, 1]: each job's final image, or for a job whose loss stopped being finite its last
      image with a finite loss (resized to the output size), or NaN where it never had one.
    history: {term: [steps run, G]} (a batch whose every job was lost stops early: fewer rows than the schedule's
      steps).
    image_steps: [G] the step each image is from: the schedule's steps, less for a diverged job (-1: NaN image).
    """

    first: int
    images: np.ndarray
    history: dict[str, np.ndarray]
    image_steps: np.ndarray


@dataclass
class BatchState:
    """Where a batch stands between two chunks, on the host: everything that continues it exactly
    (`optimize_batches`' `resume`; the command line saves it as a checkpoint when a run is stopped).

    first: the batch's first job; scale: the scale it is in; step: steps done over all scales (a multiple of the
    chunk length within `scale`); z: [G', 1, H, W, 3] the variables (G': the jobs padded to the devices);
    opt_state: the optimiser state's leaves (`jax.tree.leaves` order, leading axis G'); history: {term: [step, G]};
    finite_steps: [G] the step of each job's last image with a finite loss (-1: none), finite_images: those images;
    images: [G, H, W, 3] the current images (clipped; not needed to resume).
    """

    first: int
    scale: int
    step: int
    z: np.ndarray
    opt_state: list[np.ndarray]
    history: dict[str, np.ndarray]
    finite_steps: np.ndarray
    finite_images: list[Optional[np.ndarray]]
    images: Optional[np.ndarray] = None


def optimize_batches(
    contents: list[np.ndarray],
    styles: list[np.ndarray],
    w: weights_lib.Weights,
    config: Config,
    callback: Optional[Callable[[Progress], None]] = None,
    init: Union[str, ImageLike, None] = None,
    report_every: Optional[int] = None,
    resume: Optional[BatchState] = None,
    masks: Optional[Masks] = None,
) -> Iterator[Batch]:
    """Run J jobs (contents[j] with styles[j]: an image or a list of images blended by `Config.style_blend`;
    original sizes, RGB in [0, 1]), scale by scale, in batches of
    `jobs_per_program` jobs, one batch after another, yielding each `Batch` as it ends.

    The content images of one batch must share a shape at every scale (one aspect ratio); batches and styles may
    differ. Sizes and memory are checked first, for every batch (`plan_scales`), and the VGG params go to the
    device once. `callback` gets `Progress` records whose losses are [k, G] and whose image is [G, H, W, 3] for
    the G jobs of one batch (`Progress.first_job` says which). A batch whose every job's image has become NaN stops
    early (see `run_chunk`: its remaining steps could only give NaN).

    Stopping: under `errors.stop_on_signals` a stop signal ends the loop between chunks only, raising
    `errors.Interrupted` with a `state` attribute (a `BatchState`; the finished batches were yielded before).
    `resume`: such a state; the batches before it are skipped and its batch continues where it stopped, giving
    on the same machine what the uninterrupted run gives, bit for bit (the same programs on the same values).
    `masks`: the spatial control, read (default: `load_masks(config)`), the same for every job.
    """
    if config.precision == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("precision float64 needs JAX's x64 mode: wrap the call in `with jax.enable_x64(True):`")
    spec = loss_spec(config, w.preprocess, config.remat == "on")
    params = cast_params(w.params, spec)  # on the device once, for every batch and scale
    originals, styles = contents, [style_set(s) for s in styles]
    blends = [np.asarray(config.layer_blend(len(s)), np.float32) for s in styles]  # ValueError before any compute
    masks = load_masks(config) if masks is None else masks
    if config.preserve_colors:
        styles = [[colour.style_before(s, c, config.preserve_colors) for s in ss] for c, ss in zip(contents, styles)]
        contents = [colour.content_before(c, config.preserve_colors) for c in contents]
    group = jobs_per_program(config, len(contents))
    plans = plan_scales([c.shape[:2] for c in contents], [[s.shape[:2] for s in ss] for ss in styles], config,
                        group)
    if resume is not None:
        _check_resume(resume, plans, config, group, len(contents))
    for first in range(resume.first if resume else 0, len(contents), group):
        report = callback
        if callback is not None and first:
            report = lambda p, first=first: callback(dataclasses.replace(p, first_job=first))  # noqa: E731
        try:
            out, history, steps = _optimize_batch(
                contents[first:first + group], styles[first:first + group], blends[first:first + group],
                [plan[first:first + group] for plan in plans], spec, params, config, report, init, report_every,
                resume if resume is not None and resume.first == first else None, masks)
        except Interrupted as e:
            if isinstance(getattr(e, "state", None), BatchState):
                e.state.first = first
            raise
        if config.preserve_colors:
            out = np.stack([colour.after(image, images.resize(content, image.shape[:2]), config.preserve_colors)
                            for image, content in zip(out, originals[first:first + group])])
        yield Batch(first, out, history, steps)


def _check_resume(state: BatchState, plans, config: Config, group: int, n_jobs: int) -> None:
    """InputError unless `state` can continue this run: its batch starts where one does, its scale and step are
    inside the schedule, and its variables have that scale's shape."""
    steps_before = sum(s for _, s in config.schedule[:state.scale])
    problem = None
    if state.first % group or not 0 <= state.first < n_jobs:
        problem = f"job {state.first} does not start a batch of {group} in a run of {n_jobs} jobs"
    elif not 0 <= state.scale < len(config.schedule):
        problem = f"scale {state.scale} is not one of this run's {len(config.schedule)}"
    elif not steps_before <= state.step <= steps_before + config.schedule[state.scale][1]:
        problem = f"step {state.step} is not inside scale {state.scale} of this run's schedule"
    elif tuple(state.z.shape[2:4]) != tuple(plans[state.scale][state.first][0]):
        h, w = plans[state.scale][state.first][0]
        problem = f"its images are {state.z.shape[2]}x{state.z.shape[3]}, this run's {h}x{w}"
    if problem:
        raise InputError(None, f"the checkpoint does not fit this run: {problem}")


def optimize(
    contents: list[np.ndarray],
    styles: list[np.ndarray],
    w: weights_lib.Weights,
    config: Config,
    callback: Optional[Callable[[Progress], None]] = None,
    init: Union[str, ImageLike, None] = None,
    report_every: Optional[int] = None,
) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """`optimize_batches`, all batches at once: the J images, each [H_j, W_j, 3] (see `Batch`), and the history
    {term: [steps, J]} (the rows of a batch that stopped early padded with NaN to the longest batch's)."""
    images_, history, _ = _joined(list(optimize_batches(contents, styles, w, config, callback, init, report_every)))
    return images_, history


def joined_histories(histories: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches' histories {term: [steps, G_b]} side by side, {term: [steps, sum G_b]}; a batch that stopped early
    (fewer rows) padded with NaN to the longest one's rows."""
    rows = max(len(h["total"]) for h in histories)
    pad = lambda a: np.concatenate([a, np.full((rows - len(a), *a.shape[1:]), np.nan, a.dtype)])  # noqa: E731
    return {k: np.concatenate([pad(h[k]) for h in histories], axis=1) for k in TERMS}


def _joined(batches: list[Batch]) -> tuple[list[np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Batches as one: the images, the history {term: [steps, J]} (`joined_histories`) and the image steps [J]."""
    return ([image for b in batches for image in b.images], joined_histories([b.history for b in batches]),
            np.concatenate([b.image_steps for b in batches]))


class _Chunk(NamedTuple):
    """A dispatched chunk, not yet read: its device arrays and where it stands."""

    terms: Mapping[str, jax.Array]  # {name: [k, J]}
    lost: jax.Array  # [J]: whether job j's variable holds a NaN
    image: jax.Array  # [J, H, W, 3], taken at dispatch (the next chunk donates the variable)
    step: int  # steps done when it ends
    scale: int
    size: tuple[int, int]


def _targets(pairs, blends, spec: LossSpec, params, masks=(None, None)):
    """The stacked targets of one scale's jobs (pairs: their (content, [style, ...]) images at this scale; blends:
    each job's style weights [K, L]; masks: `scaled_masks` at this scale, the same for every job)."""
    variable = lambda image: to_variable(jnp.asarray(image, spec.variable_dtype)[None], spec)  # noqa: E731
    style_masks, content_mask = (None if m is None else jnp.asarray(m, spec.variable_dtype) for m in masks)
    return jax.tree.map(lambda *t: jnp.stack(t), *[
        compute_targets(params, variable(c), tuple(variable(s) for s in ss), spec,
                        None if len(ss) == 1 or style_masks is not None else jnp.asarray(b, spec.variable_dtype),
                        style_masks, content_mask)
        for (c, ss), b in zip(pairs, blends)])


def _scale_start(pairs, z, opt_state, spec: LossSpec, config: Config, init):
    """The variables and optimiser states of one scale's jobs: z, opt_state the previous scale's (None at the
    first scale), upsampled and carried over, or fresh."""
    if z is None:
        z = jnp.stack([jnp.asarray(initial_variable(init, c, ss[0], config.seed, spec, config.init_noise_ratio),
                                   spec.variable_dtype)[None] for c, ss in pairs])
    else:
        z, opt_state = next_scale(z, opt_state, pairs[0][0].shape[:2], spec, config.box_mode != "none",
                                  hyperparams(config, spec.variable_dtype))
    if opt_state is None:  # the first scale, or a state that cannot be carried to a new size
        opt_state = start_states(z, hyperparams(config, spec.variable_dtype), config.optimizer, config.lbfgs_memory)
    return z, opt_state


def _restored(state: BatchState, spec: LossSpec, config: Config):
    """A `BatchState`'s variables and optimiser state as device arrays, the state's structure that of a fresh one."""
    z = jnp.asarray(state.z, spec.variable_dtype)
    fresh = start_states(z, hyperparams(config, spec.variable_dtype), config.optimizer, config.lbfgs_memory)
    leaves = jax.tree.leaves(fresh)
    if len(leaves) != len(state.opt_state) or any(a.shape != b.shape for a, b in zip(leaves, state.opt_state)):
        raise InputError(None, "the checkpoint does not fit this run: its optimiser state is not this optimiser's")
    return z, jax.tree.unflatten(jax.tree.structure(fresh),
                                 [jnp.asarray(b, a.dtype) for a, b in zip(leaves, state.opt_state)])


def _optimize_batch(
    contents: list[np.ndarray],
    styles: list[list[np.ndarray]],
    blends: list[np.ndarray],
    plans: list[list[tuple]],
    spec: LossSpec,
    params,
    config: Config,
    callback: Optional[Callable[[Progress], None]],
    init: Union[str, ImageLike, None],
    report_every: Optional[int],
    resume: Optional[BatchState] = None,
    masks: Optional[Masks] = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """`optimize` for jobs that run as one batch in one compiled program (vmapped, sharded across devices);
    plans: `plan_scales`'s checked shapes of these jobs; params: the VGG params already cast by `cast_params`.
    Returns `Batch`'s images, history and image_steps.

    Chunks are pipelined: chunk k + 1 is dispatched before chunk k is read, so `unread` holds at most two."""
    n_jobs, pad = len(contents), padded_jobs(len(contents), jax.local_device_count()) - len(contents)
    if pad:  # run as a multiple of the devices (see padded_jobs); the callback, history and output drop the copies
        contents, styles, blends = (x + x[-1:] * pad for x in (contents, styles, blends))
        plans = [plan + plan[-1:] * pad for plan in plans]
    init = config.init if init is None else init
    total = sum(steps for _, steps in config.schedule)
    loss_w, hyper = loss_weights(config, spec.variable_dtype), hyperparams(config, spec.variable_dtype)
    history = [resume.history] if resume else []  # each read chunk's terms {name: [k, n_jobs]}
    finite_steps = resume.finite_steps.copy() if resume else np.full(n_jobs, -1)
    finite_images = list(resume.finite_images) if resume else [None] * n_jobs
    unread: list[_Chunk] = []
    start = time.perf_counter()

    candidates: list = [None] * n_jobs  # (step, image) at a chunk's end, until a loss at it is seen finite

    def read(chunk: _Chunk) -> bool:
        """Wait for `chunk`, keep its terms and each job's last image whose loss was seen finite, tell the callback.
        Returns whether every job has become NaN.

        Where an optimiser's terms are the losses of the images after its steps (`losses_after_step`: lbfgs-armijo),
        a chunk whose losses are finite vouches for its end image; the other optimisers' terms are the losses
        *before* each update, so a chunk's end image is vouched for by the next chunk's first loss."""
        terms = {k: np.asarray(v)[:, :n_jobs] for k, v in chunk.terms.items()}
        history.append(terms)
        lost = np.asarray(chunk.lost)[:n_jobs]
        finite = np.isfinite(terms["total"])  # [k, n_jobs]
        for j in range(n_jobs):
            if OPTIMIZERS[config.optimizer].losses_after_step:
                if finite[:, j].all() and not lost[j]:
                    finite_steps[j], finite_images[j] = chunk.step, chunk.image[j]
                continue
            if candidates[j] is not None and finite[0, j]:
                finite_steps[j], finite_images[j] = candidates[j]
            candidates[j] = (chunk.step, chunk.image[j]) if finite[:, j].all() and not lost[j] else None
        if callback is not None:
            callback(Progress(chunk.step, total, terms, chunk.image[:n_jobs], time.perf_counter() - start,
                              chunk.scale, chunk.size))
        return bool(np.all(lost))

    def so_far() -> dict[str, np.ndarray]:
        """The history of the steps run, {term: [steps, n_jobs]}."""
        return {k: np.concatenate([h[k] for h in history]) if history else np.zeros((0, n_jobs), np.float32)
                for k in TERMS}

    def shown(z, opt_state) -> jax.Array:
        """The jobs' current images [J', H, W, 3] (not clipped): of the variables, or of their average."""
        return to_image(averaged_variable(z, opt_state)[:, 0], spec)

    def outcome(z) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The images, history and image steps; z: the final variables, None when the batch stopped early."""
        final = np.asarray(shown(z, opt_state)[:n_jobs]) if z is not None else None
        run = so_far()
        kept = np.isfinite(run["total"]).all(axis=0)  # [n_jobs]: no loss of the job was ever non-finite
        out, steps = _last_finite(final, kept, plans[-1][0][0], total, finite_steps, finite_images)
        return out, run, steps

    z = opt_state = None
    step = resume.step if resume else 0
    with deferred_stops():  # stops raise at check_stop only (a second Ctrl-C while saving waits too)
        try:
            for scale in range(resume.scale if resume else 0, len(config.schedule)):
                steps, plan = config.schedule[scale][1], plans[scale]
                size = plan[0][0]
                pairs = [(images.resize(c, cs), [images.resize(s, shape) for s, shape in zip(ss, shapes)])
                         for c, ss, (cs, shapes) in zip(contents, styles, plan)]
                # dispatched first: it runs while the host goes on
                targets = _targets(pairs, blends, spec, params, scaled_masks(masks or Masks(), size))
                if resume is not None and scale == resume.scale:
                    z, opt_state = _restored(resume, spec, config)
                else:
                    z, opt_state = _scale_start(pairs, z, opt_state, spec, config, init)
                z, opt_state, targets = shard_jobs((z, opt_state, targets), n_jobs + pad)
                length = chunk_length(steps, config.chunk_size, report_every)
                done = step - sum(s for _, s in config.schedule[:scale])  # steps of this scale already run
                for _ in range((steps - done) // length):
                    z, opt_state, terms, lost = run_chunk(z, opt_state, params, targets, loss_w, hyper, spec=spec,
                                                          optimizer=config.optimizer, box=config.box_mode,
                                                          memory=config.lbfgs_memory, length=length)
                    step += length
                    unread.append(_Chunk(terms, lost, shown(z, opt_state), step, scale, size))
                    if len(unread) == 2 and read(unread.pop(0)):
                        return outcome(None)  # the chunk just dispatched is dropped
                    check_stop()
                while unread:
                    if read(unread.pop(0)):
                        return outcome(None)
                check_stop()
        except Interrupted as e:  # raised by check_stop, between chunks: the state is consistent
            while unread:
                read(unread.pop(0))
            e.state = BatchState(0, scale, step, np.asarray(z), [np.asarray(a) for a in jax.tree.leaves(opt_state)],
                                 so_far(), finite_steps, [None if i is None else np.asarray(i) for i in finite_images],
                                 np.clip(np.asarray(shown(z, opt_state)[:n_jobs]), 0.0, 1.0))
            raise
    return outcome(z)


def _last_finite(final: Optional[np.ndarray], kept: np.ndarray, shape: tuple[int, int], total: int,
                 finite_steps: np.ndarray, finite_images: list) -> tuple[np.ndarray, np.ndarray]:
    """Each job's image [J, *shape, 3] in [0, 1] and the step it is from: the final image (final: [J, *shape, 3],
    None when the batch stopped early) where every loss of the job was finite (kept[j]) and so is the image, else
    the last image whose loss was seen finite (finite_images[j], from step finite_steps[j], resized), else NaN
    (step -1)."""
    out, steps = [], []
    for j, step in enumerate(finite_steps):
        if final is not None and kept[j] and np.isfinite(final[j]).all():
            out.append(final[j])
            steps.append(total)
        elif step >= 0:
            out.append(images.resize(np.asarray(finite_images[j], np.float32), shape))
            steps.append(int(step))
        else:
            out.append(np.full((*shape, 3), np.nan, np.float32))
            steps.append(-1)
    return np.clip(np.stack(out), 0.0, 1.0), np.asarray(steps)


# ----------------------------------------------------------------------------------------------------------------
# The entry points


def stylize(
    content: ImageLike,
    style: ImageLike,
    weights: WeightsLike = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
    init_image: Optional[ImageLike] = None,
    report_every: Optional[int] = None,
) -> Result:
    """Gatys et al. style transfer: optimise an image to match `content`'s features and `style`'s Gram matrices.

    Args:
      content, style: image paths, Pillow images or [H, W, 3] RGB arrays, float in [0, 1] or uint8; resized per
        `config.size` (or each scale's size) and `config.style_scale` (no resampling when already at size).
        `style` may be a list of such: several styles in this one job, their statistics blended by
        `config.style_blend` (default: equal weights).
      weights: a `Weights`, a weights file path, or None for the default file (see `nst_jax.weights`).
      config: settings (default `Config()`).
      callback: called with a `Progress` after every chunk of steps.
      init_image: overrides `config.init` with an array or path.
      report_every: also end chunks (and call back) at every multiple of this many steps.
    Returns:
      `Result` with the final image (clipped to [0, 1]) and the per-step loss history.
    """
    config = _as_config(config)
    content_side, style_side = needed_sides(config)
    content = as_image(content, "content", content_side)
    style = [as_image(s, "style", style_side) for s in style_set(style)]
    w = as_weights(weights, config.weights_source)

    def single(p: Progress) -> None:
        callback(Progress(p.step, p.total_steps, {k: v[:, 0] for k, v in p.losses.items()}, p.image[0], p.elapsed,
                          p.scale, p.size))

    out, history, image_steps = _joined(list(optimize_batches(
        [content], [style], w, config, single if callback else None, init_image, report_every)))
    return Result(out[0], {k: v[:, 0] for k, v in history.items()}, int(image_steps[0]))


def stylize_batch(
    contents: Sequence[ImageLike],
    styles: Sequence[ImageLike],
    weights: WeightsLike = None,
    config: Optional[Config] = None,
    callback: Optional[Callable[[Progress], None]] = None,
) -> list[Result]:
    """Several jobs: job j stylises contents[j] with styles[j] (pass equal-length lists; `itertools.product` makes
    every pairing); styles[j] may itself be a list (several styles blended in job j, see `stylize`). Up to
    `config.batch_size` jobs run in one compiled program (see `jobs_per_program`), vmapped,
    each with its own optimiser state, and laid across all local devices (padded to a multiple of them, see
    `padded_jobs`); the results equal running the jobs one by one.

    Content images must have the same shape after resizing (the same aspect ratio); styles may differ.
    """
    if not contents:
        raise ValueError("stylize_batch needs at least one job: pass lists of content and style images")
    if len(contents) != len(styles):
        raise ValueError(f"need as many styles as contents (one job each), got {len(contents)} and {len(styles)}")
    config = _as_config(config)
    w = as_weights(weights, config.weights_source)
    content_side, style_side = needed_sides(config)
    out, history, image_steps = _joined(list(optimize_batches(
        [as_image(c, "content", content_side) for c in contents],
        [[as_image(s, "style", style_side) for s in style_set(ss)] for ss in styles], w, config, callback)))
    return [Result(out[j], {k: v[:, j] for k, v in history.items()}, int(image_steps[j]))
            for j in range(len(contents))]


def _as_config(config) -> Config:
    """`config`, or `Config()` for None; a TypeError naming what was passed otherwise (e.g. a dict)."""
    if config is None:
        return Config()
    if not isinstance(config, Config):
        raise TypeError(f"config must be an nst_jax.Config (or None for the defaults), got {type(config).__name__}; "
                        "e.g. nst_jax.Config(**settings)")
    return config
