"""The loop: `optimize_batches` runs the objective (`core.objective`) with the compiled chunks of steps
(`core.steps`) over the shapes `planning` checked, batch by batch, and reports `Progress` between chunks; a stop
signal ends it between chunks with the batch's `BatchState`, from which `resume` continues bit for bit. No
printing, no files except reading the inputs the caller names.

Chunks are pipelined: chunk k+1 is dispatched before chunk k's losses are read and reported, so it is already
queued on the device while the host waits for chunk k and runs the callback. All chunks of a run have the same
length (`chunk_length`); loss weights, learning rate, params and targets are traced arguments, so changing them
never recompiles.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterator, Mapping, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np

from .. import weights as weights_lib
from ..config import Config
from ..core.objective import TERMS, LossSpec, cast_params, to_image
from ..core.optimizers import OPTIMIZERS
from ..core.steps import averaged_variable, chunk_length, next_scale, run_chunk, start_states
from ..errors import InputError
from ..io import images
from ..io.images import ImageLike
from ..stops import STOPS, Interrupted, Stops
from . import colour
from .inputs import Masks, initial_variable, load_masks, scaled_masks, style_set
from .planning import batch_ranges, blocks_used, jobs_per_program, padded_jobs, plan_scales
from .records import Batch, BatchState, Progress, joined_batches
from .settings import hyperparams, layer_blend, loss_spec, loss_weights
from .targets import batch_targets, chunk_period, directions_key, directions_round, scale_pairs


def shard_jobs(tree, n_jobs: int):
    """Lay arrays with a leading jobs axis across all local devices (when they divide the jobs evenly)."""
    devices = jax.local_devices()
    if len(devices) < 2 or n_jobs % len(devices):
        return tree
    mesh = jax.sharding.Mesh(np.array(devices), ("jobs",))
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("jobs"))
    return jax.tree.map(lambda a: jax.device_put(a, sharded) if a.ndim and a.shape[0] == n_jobs else a, tree)


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
    stops: Optional[Stops] = None,
) -> Iterator[Union[Batch, BatchState]]:
    """Run J jobs (contents[j] with styles[j]: an image or a list of images blended by `Config.style_blend`;
    original sizes, RGB in [0, 1]), scale by scale, in batches of at most `jobs_per_program` jobs, one batch after
    another, yielding each `Batch` as it ends.

    A batch holds consecutive jobs whose content images share a shape at every scale (`batch_ranges`: contents of
    another aspect ratio start a new batch, one program per shape); styles may differ. Sizes and memory are checked
    first, for every batch (`plan_scales`), and the VGG params go to the device once. `callback` gets `Progress`
    records whose losses are [k, G] and whose image is [G, H, W, 3] for the G jobs of one batch
    (`Progress.first_job` says which). A batch whose every job's image has become NaN stops
    early (see `run_chunk`: its remaining steps could only give NaN).

    Stopping: between chunks the loop asks `stops` (default: this process's `STOPS`, which only a stop signal under
    `STOPS.on_signals` sets); when a stop was requested it yields the batch's `BatchState` as its last item, after
    the batches finished before. `resume`: such a state; the batches before it are skipped and its batch continues
    where it stopped, giving on the same machine what the uninterrupted run gives, bit for bit (the same programs on
    the same values). `masks`: the spatial control, read (default: `load_masks(config)`), the same for every job.
    """
    if report_every is not None and (isinstance(report_every, bool) or not isinstance(report_every, int)
                                     or report_every < 1):
        raise ValueError(f"report_every must be a whole number of steps >= 1 (or None), got {report_every!r}")
    if config.precision == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("precision float64 needs JAX's x64 mode: wrap the call in `with jax.enable_x64(True):`")
    spec = loss_spec(config, w.preprocess, config.remat == "on")
    params = cast_params(w.params, spec)  # on the device once, for every batch and scale
    originals, styles = contents, [style_set(s) for s in styles]
    blends = [np.asarray(layer_blend(config, len(s)), np.float32) for s in styles]  # ValueError before any compute
    masks = load_masks(config) if masks is None else masks
    if config.preserve_colors:
        styles = [[colour.style_before(s, c, config.preserve_colors) for s in ss] for c, ss in zip(contents, styles)]
        contents = [colour.content_before(c, config.preserve_colors) for c in contents]
    group = jobs_per_program(config, len(contents))
    plans = plan_scales([c.shape[:2] for c in contents], [[s.shape[:2] for s in ss] for ss in styles], config,
                        group)
    batches = batch_ranges(plans, group)
    if resume is not None:
        _check_resume(resume, plans, config, [b.start for b in batches], len(contents))
    run = _Run(spec, params, config, init if init is not None else config.init, report_every, masks or Masks(),
               STOPS if stops is None else stops)
    for batch in batches:
        first = batch.start
        if resume is not None and first < resume.first:
            continue
        report = callback
        if callback is not None and first:
            report = lambda p, first=first: callback(dataclasses.replace(p, first_job=first))  # noqa: E731
        jobs = slice(first, batch.stop)
        used = [blocks_used(config, plan[first][0], len(batch)) for plan in plans]  # per scale: blocks, or None
        outcome = run.batch(contents[jobs], styles[jobs], blends[jobs], [plan[jobs] for plan in plans], used, report,
                            resume if resume is not None and resume.first == first else None)
        if isinstance(outcome, BatchState):
            yield dataclasses.replace(outcome, first=first)
            return
        out, history, steps = outcome
        if config.preserve_colors:
            out = np.stack([colour.after(image, images.resize(content, image.shape[:2]), config.preserve_colors)
                            for image, content in zip(out, originals[jobs])])
        yield Batch(first, out, history, steps, used)


def finished(outcomes: Iterator[Union[Batch, BatchState]], stops: Optional[Stops] = None) -> list[Batch]:
    """Every `Batch` of `optimize_batches`' outcomes; `Interrupted`, with the exit status `stops` (the one the loop
    asked; default `STOPS`) holds, if it stopped instead."""
    batches = []
    for outcome in outcomes:
        if isinstance(outcome, BatchState):
            raise Interrupted("", (STOPS if stops is None else stops).requested() or Interrupted.CTRL_C)
        batches.append(outcome)
    return batches


def _check_resume(state: BatchState, plans, config: Config, starts: list[int], n_jobs: int) -> None:
    """InputError unless `state` can continue this run: its batch starts where one does, its scale and step are
    inside the schedule, and its variables have that scale's shape."""
    steps_before = sum(s for _, s in config.schedule[:state.scale])
    problem = None
    if state.first not in starts:
        problem = f"job {state.first} does not start one of this run's batches ({len(starts)} of {n_jobs} jobs)"
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
    batches = optimize_batches(contents, styles, w, config, callback, init, report_every)
    images_, history, _ = joined_batches(finished(batches))
    return images_, history


class _Chunk(NamedTuple):
    """A dispatched chunk, not yet read: its device arrays and where it stands."""

    terms: Mapping[str, jax.Array]  # {name: [k, J]}
    lost: jax.Array  # [J]: whether job j's variable holds a NaN
    image: jax.Array  # [J, H, W, 3], taken at dispatch (the next chunk donates the variable)
    step: int  # steps done when it ends
    scale: int
    size: tuple[int, int]
    blocks: Optional[dict]  # `blocks_used` at its scale


class _Run(NamedTuple):
    """What every batch of one `optimize_batches` call shares."""

    spec: LossSpec
    params: dict  # the VGG params, cast by `cast_params`, on the device
    config: Config
    init: Union[str, ImageLike]
    report_every: Optional[int]
    masks: Masks
    stops: Stops

    def batch(self, contents, styles, blends, plans, used, callback, resume: Optional[BatchState]):
        """Run jobs that form one batch in one compiled program (vmapped, sharded across devices), scale by scale,
        chunk by chunk; plans: `plan_scales`'s checked shapes of these jobs; used: each scale's `blocks_used`
        (None: the whole image). Returns `Batch`'s (images, history,
        image_steps), or the `BatchState` (first 0) where a stop was requested.

        Chunks are pipelined: chunk k + 1 is dispatched before chunk k is read, so `unread` holds at most two."""
        config = self.config
        n_jobs, pad = len(contents), padded_jobs(len(contents), jax.local_device_count()) - len(contents)
        if pad:  # run as a multiple of the devices (see padded_jobs); the callback, history and output drop them
            contents, styles, blends = (x + x[-1:] * pad for x in (contents, styles, blends))
            plans = [plan + plan[-1:] * pad for plan in plans]
        watch = _Watch(n_jobs, config, callback, resume)
        loss_w, hyper = loss_weights(config, self.spec.variable_dtype), hyperparams(config, self.spec.variable_dtype)
        unread: list[_Chunk] = []
        z = opt_state = None
        step = resume.step if resume else 0
        with self.stops.deferred():  # a stop signal lands as a request, answered between chunks
            for scale in range(resume.scale if resume else 0, len(config.schedule)):
                pairs = scale_pairs(contents, styles, plans[scale])  # the images at this scale, resized once
                blocks = used[scale]
                spec = self.spec._replace(block_tile=blocks["tile"] if blocks else 0)
                z, opt_state, targets = self._scale(scale, pairs, blends, plans, z, opt_state, resume, step, spec)
                steps, size = config.schedule[scale][1], plans[scale][0][0]
                length = chunk_length(steps, config.chunk_size, chunk_period(self.report_every, config.swd_resample))
                done = step - sum(s for _, s in config.schedule[:scale])  # steps of this scale already run
                drawn = directions_round(config, step)
                for _ in range((steps - done) // length):
                    if (now := directions_round(config, step)) != drawn:  # swd_resample: new directions
                        drawn, targets = now, self._targets(scale, pairs, blends, plans, step, spec)
                    z, opt_state, terms, lost = run_chunk(z, opt_state, self.params, targets, loss_w, hyper,
                                                          spec=spec, optimizer=config.optimizer, box=config.box_mode,
                                                          memory=config.lbfgs_memory, length=length)
                    step += length
                    unread.append(_Chunk(terms, lost, _shown(z, opt_state, spec), step, scale, size, blocks))
                    if len(unread) == 2 and watch.read(unread.pop(0)):
                        return watch.outcome(None, plans)  # the chunk just dispatched is dropped
                    if self.stops.requested():
                        return watch.stopped(unread, scale, step, z, opt_state, spec)
                while unread:
                    if watch.read(unread.pop(0)):
                        return watch.outcome(None, plans)
                if self.stops.requested():
                    return watch.stopped(unread, scale, step, z, opt_state, spec)
        return watch.outcome(_shown(z, opt_state, self.spec), plans)

    def _scale(self, scale: int, pairs, blends, plans, z, opt_state, resume: Optional[BatchState], step: int,
               spec: LossSpec):
        """The targets of the batch's jobs at `scale` (pairs: their images there, `scale_pairs`; dispatched first:
        they compute while the host goes on), and the variables and optimiser states there: restored from `resume`
        at its scale, else the previous scale's (z, opt_state; None at the first) carried over, or fresh; all laid
        across the devices; spec: the scale's (`LossSpec.block_tile`)."""
        config = self.config
        targets = self._targets(scale, pairs, blends, plans, step, spec)
        if resume is not None and scale == resume.scale:
            z, opt_state = _restored(resume, spec, config)
        else:
            z, opt_state = _scale_start(pairs, z, opt_state, spec, config, self.init)
        return (*shard_jobs((z, opt_state), len(pairs)), targets)

    def _targets(self, scale: int, pairs, blends, plans, step: int, spec: LossSpec):
        """The batch's targets at `scale` from `step` on (`directions_key`), laid across the devices."""
        targets = batch_targets(pairs, blends, spec, self.params, scaled_masks(self.masks, plans[scale][0][0]),
                                key=directions_key(self.config, step))
        return shard_jobs(targets, len(pairs))


def _shown(z, opt_state, spec: LossSpec) -> jax.Array:
    """The jobs' current images [J', H, W, 3] (not clipped): of the variables, or of their average."""
    return to_image(averaged_variable(z, opt_state)[:, 0], spec)


class _Watch:
    """What the host keeps of one batch's chunks as it reads them: the losses so far, and each job's last image
    whose loss was seen finite (the image a job that diverges ends with)."""

    def __init__(self, n_jobs: int, config: Config, callback, resume: Optional[BatchState]):
        self.n_jobs, self.callback, self.start = n_jobs, callback, time.perf_counter()
        self.total = sum(steps for _, steps in config.schedule)
        self.after_step = OPTIMIZERS[config.optimizer].losses_after_step
        self.history = [resume.history] if resume else []  # each read chunk's terms {name: [k, n_jobs]}
        self.finite_steps = resume.finite_steps.copy() if resume else np.full(n_jobs, -1)
        self.finite_images = list(resume.finite_images) if resume else [None] * n_jobs
        self.candidates: list = [None] * n_jobs  # (step, image) at a chunk's end, until a loss at it is seen finite

    def read(self, chunk: _Chunk) -> bool:
        """Wait for `chunk`, keep its terms and each job's last image whose loss was seen finite, tell the callback.
        Returns whether every job has become NaN.

        Where an optimiser's terms are the losses of the images after its steps (`losses_after_step`: lbfgs-armijo),
        a chunk whose losses are finite vouches for its end image; the other optimisers' terms are the losses
        *before* each update, so a chunk's end image is vouched for by the next chunk's first loss."""
        n_jobs = self.n_jobs
        terms = {k: np.asarray(v)[:, :n_jobs] for k, v in chunk.terms.items()}
        self.history.append(terms)
        lost = np.asarray(chunk.lost)[:n_jobs]
        finite = np.isfinite(terms["total"])  # [k, n_jobs]
        for j in range(n_jobs):
            vouched = finite[:, j].all() and not lost[j]
            if self.after_step:
                if vouched:
                    self.finite_steps[j], self.finite_images[j] = chunk.step, chunk.image[j]
                continue
            if self.candidates[j] is not None and finite[0, j]:
                self.finite_steps[j], self.finite_images[j] = self.candidates[j]
            self.candidates[j] = (chunk.step, chunk.image[j]) if vouched else None
        if self.callback is not None:
            self.callback(Progress(chunk.step, self.total, terms, chunk.image[:n_jobs],
                                   time.perf_counter() - self.start, chunk.scale, chunk.size, chunk.blocks))
        return bool(np.all(lost))

    def so_far(self) -> dict[str, np.ndarray]:
        """The history of the steps run, {term: [steps, n_jobs]}."""
        return {k: np.concatenate([h[k] for h in self.history]) if self.history else
                np.zeros((0, self.n_jobs), np.float32) for k in TERMS}

    def outcome(self, final, plans) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """The images, history and image steps; final: the final images [J', H, W, 3], None when the batch stopped
        early (every job NaN)."""
        final = np.asarray(final[:self.n_jobs]) if final is not None else None
        run = self.so_far()
        kept = np.isfinite(run["total"]).all(axis=0)  # [n_jobs]: no loss of the job was ever non-finite
        out, steps = _last_finite(final, kept, plans[-1][0][0], self.total, self.finite_steps, self.finite_images)
        return out, run, steps

    def stopped(self, unread: list, scale: int, step: int, z, opt_state, spec: LossSpec) -> BatchState:
        """The batch's state where a stop was requested, between chunks (the chunks still unread are read first)."""
        while unread:
            self.read(unread.pop(0))
        return BatchState(0, scale, step, np.asarray(z), [np.asarray(a) for a in jax.tree.leaves(opt_state)],
                          self.so_far(), self.finite_steps,
                          [None if i is None else np.asarray(i) for i in self.finite_images],
                          np.clip(np.asarray(_shown(z, opt_state, spec)[:self.n_jobs]), 0.0, 1.0))


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
