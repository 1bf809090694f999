"""The compiled chunk: one optimisation step of the objective (`objective.loss_terms`) under an optimiser of the
registry (`optimizers.OPTIMIZERS`), iterate averaging as a wrapper of its state, a chunk of steps as one XLA
program (`run_chunk`: a `lax.scan`, vmapped over jobs), and the jitted set-up between scales (fresh optimiser
states, the upsampled variable and carried state)."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from . import vgg
from .blocks import loss_terms
from .objective import LossSpec, project
from .optimizers import OPTIMIZERS


class Averaged(NamedTuple):
    """An optimiser state with iterate averaging (`Config.average`), as crowsonkb/style-transfer-pytorch's
    EMATensor: `biased` = sum over the iterates z_0..z_n of (1 - d) d^(n - i) z_i, `accum` = d^(n + 1), and the
    average `biased / (1 - accum)` (bias-corrected, so that it starts at z_0: `averaged_variable`)."""

    inner: Any  # the optimiser's own state
    biased: jax.Array  # [1, H, W, 3] per job
    accum: jax.Array  # [] per job


def start_average(inner, z: jax.Array, decay: jax.Array) -> Averaged:
    """The average of one iterate, z: `Averaged` around the optimiser state `inner`."""
    return Averaged(inner, (1.0 - decay) * z, decay * jnp.ones((), z.dtype))


def averaged_variable(z: jax.Array, opt_state) -> jax.Array:
    """What a run shows and returns: z, or under iterate averaging the bias-corrected average of the iterates
    (z [J, 1, H, W, 3] and opt_state of J jobs, or of one job)."""
    if not isinstance(opt_state, Averaged):
        return z
    accum = opt_state.accum.reshape(opt_state.accum.shape + (1,) * (z.ndim - opt_state.accum.ndim))
    return opt_state.biased / (1.0 - accum)


def init_state(optimizer: str, hyper, z: jax.Array, memory: int):
    """The optimiser state of one job's variable z (`optimizers.OPTIMIZERS[optimizer].init`); `memory`: the
    curvature pairs of lbfgs-armijo and optax's lbfgs (`Config.lbfgs_memory`; the state's shape carries it into
    every step). Under iterate averaging (hyper["average"]) the state is wrapped in `Averaged`."""
    state = OPTIMIZERS[optimizer].init(z, hyper, memory)
    return start_average(state, z, hyper["average"]) if "average" in hyper else state


def _step(z, opt_state, params, targets, coefficients, hyper, spec: LossSpec, optimizer: str, box: str, memory: int,
          flipped=None):
    """One optimisation step of `optimizer` (`optimizers.OPTIMIZERS`), iterate averaging around it when the state is
    `Averaged`. Returns (new z, new state, loss terms summed over the batch: at the evaluated z, or at the new z
    where the optimiser's `losses_after_step`)."""

    def value_and_terms(v):
        terms = {k: jnp.sum(t) for k, t in loss_terms(v, params, targets, coefficients, spec, flipped).items()}
        return terms["total"], terms

    if isinstance(opt_state, Averaged):  # the step, then the average updated with its result
        z, inner, terms = _step(z, opt_state.inner, params, targets, coefficients, hyper, spec, optimizer, box,
                                memory, flipped)
        d = hyper["average"]
        return z, Averaged(inner, d * opt_state.biased + (1.0 - d) * z, d * opt_state.accum), terms

    return OPTIMIZERS[optimizer].update(z, opt_state, value_and_terms, hyper, spec, box, memory)


@functools.partial(jax.jit, static_argnames=("spec", "optimizer", "box", "memory", "length"), donate_argnums=(0, 1))
def run_chunk(z, opt_state, params, targets, coefficients, hyper, *, spec: LossSpec, optimizer: str, box: str,
              memory: int, length: int):
    """Run `length` optimisation steps of J independent jobs in one compiled program: a loop (`lax.scan`) over
    one step, so the program's size does not grow with `length`.

    Args:
      z: [J, 1, H, W, 3] current variables; opt_state: the jobs' optimiser states (leading axis J); both donated.
      targets: the jobs' targets (leading axis J); params (VGG19), coefficients (the loss weights,
        `run.settings.loss_weights`), hyper: shared.
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
        lambda z_, s_, t_: _step(z_, s_, params, t_, coefficients, hyper, spec, optimizer, box, memory, flipped),
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


def _resize_jobs(x: jax.Array, shape: tuple[int, int], method: str) -> jax.Array:
    """Resize [J, 1, H, W, C] arrays to [J, 1, *shape, C]."""
    return jax.image.resize(x, (*x.shape[:2], *shape, x.shape[-1]), method)


def carry_state(state, old_shape, new_shape):
    """The optimiser state for the next scale (old_shape, new_shape: [J, 1, H, W, 3] variable shapes): per-pixel
    state (Adam's moments) resized bilinearly and the step
    count kept, as crowsonkb/style-transfer-pytorch does; None when the state is not per-pixel (L-BFGS's
    curvature pairs describe the old resolution only, so it starts afresh)."""
    leaves = jax.tree.leaves(state)
    if not all(leaf.ndim <= 1 or leaf.shape == old_shape for leaf in leaves):
        return None
    return jax.tree.map(lambda a: _resize_jobs(a, new_shape[2:4], "linear") if a.shape == old_shape else a, state)


@functools.partial(jax.jit, static_argnames=("optimizer", "memory"))
def start_states(z: jax.Array, hyper, optimizer: str, memory: int):
    """The fresh optimiser states of jobs z [J, 1, H, W, 3]. Each output of a jitted function is its own buffer, even
    where optax shares one array between state fields, so chunks can donate every leaf."""
    return jax.vmap(functools.partial(init_state, optimizer, hyper, memory=memory))(z)


@functools.partial(jax.jit, static_argnames=("shape", "spec", "clip"))
def next_scale(z: jax.Array, opt_state, shape: tuple[int, int], spec: LossSpec, clip: bool, hyper=None):
    """z [J, 1, H, W, 3] upsampled bicubically to `shape` (and projected into the box when `clip`), and the
    optimiser state carried over (`carry_state`: None when it must start afresh). Under iterate averaging the
    next scale starts from the average (`averaged_variable`), and a new average from there (hyper["average"]: the
    decay), as crowsonkb/style-transfer-pytorch does."""
    if isinstance(opt_state, Averaged):
        start, inner = next_scale(averaged_variable(z, opt_state), opt_state.inner, shape, spec, clip)
        return start, None if inner is None else jax.vmap(start_average, in_axes=(0, 0, None))(
            inner, start, hyper["average"])
    new = _resize_jobs(z, shape, "cubic")
    return (project(new, spec) if clip else new), carry_state(opt_state, z.shape, new.shape)
