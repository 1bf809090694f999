"""L-BFGS with a backtracking (Armijo) line search in which every step is exactly one evaluation.

optax's `lbfgs` evaluates its zoom line search inside a `while_loop`: a step costs a varying number of
evaluations (and, vmapped over jobs, every job waits for the slowest); torch.optim.LBFGS has no line search at all,
so it is not monotone. This optimiser has a line search of one evaluation per step, so the step count is the
evaluation count: each step evaluates the objective once, at a trial point, and then either

  * accepts it (Armijo: f(trial) <= f(x) + c1 g(x).(trial - x)): x <- trial, the pair (s, y) enters the memory
    when s.y > 0, the next direction is the two-loop recursion's -H g with H_0 = (s.y / y.y) I, tried with step 1
    (with a preconditioner M: H_0 = (s.y / y.My) M, and -M g wherever plain L-BFGS falls back to -g);
  * or rejects it: x stays, and the step shrinks to the minimiser of the quadratic through f(x), the slope and
    f(trial), kept within [0.1 t, 0.5 t] (Nocedal & Wright, Numerical Optimization, 3.5).

The first step evaluates the start point itself (t = 0), so the step count equals the evaluation count. The first
direction is -g (-M g) scaled so that no pixel moves by more than `first_step` (in units of the optimised variable).
An optional `project` keeps trial points in a box (projected search: the Armijo test uses the projected step).

The caller evaluates `trial_point(x, state)` and passes the value and gradient there to `update`, together with any
`aux` pytree (the loss terms), which the state keeps for the current x.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .lbfgs_torch import Memory, empty_memory, remember, two_loop

C1 = 1e-4  # Armijo's sufficient-decrease constant (Nocedal & Wright's usual value)


class ArmijoLBFGSState(NamedTuple):
    """f, g: value and gradient at the current x (f = inf before the first evaluation); aux: the caller's pytree
    at x; d, t: the direction and step of the next trial; memory: the curvature pairs; accepted: whether the last
    trial was accepted."""

    f: jax.Array
    g: jax.Array
    aux: Any
    d: jax.Array
    t: jax.Array
    memory: Memory
    accepted: jax.Array


def init(x: jax.Array, aux_template: Any, history: int) -> ArmijoLBFGSState:
    """The state before the first step. x: the variable (any shape); aux_template: a pytree shaped like the aux
    that `update` will get (its values are replaced by inf)."""
    n, dtype = x.size, x.dtype
    zeros = jnp.zeros((n,), dtype)
    return ArmijoLBFGSState(
        f=jnp.asarray(jnp.inf, dtype), g=zeros, aux=jax.tree.map(lambda a: jnp.full_like(a, jnp.inf), aux_template),
        d=zeros, t=jnp.zeros((), dtype), memory=empty_memory(n, history, dtype), accepted=jnp.zeros((), bool),
    )


def trial_point(x: jax.Array, state: ArmijoLBFGSState,
                project: Optional[Callable[[jax.Array], jax.Array]] = None) -> jax.Array:
    """The point the next step evaluates: x + t d (projected into the box when `project` is given)."""
    trial = x + (state.t * state.d).reshape(x.shape)
    return project(trial) if project is not None else trial


def update(x: jax.Array, trial: jax.Array, value: jax.Array, grad: jax.Array, state: ArmijoLBFGSState,
           aux: Any = None, first_step: float = 0.05, precondition: Optional[Callable[[jax.Array], jax.Array]] = None
           ) -> tuple[jax.Array, ArmijoLBFGSState]:
    """Accept or reject `trial` given f(trial) = value and its gradient; returns (new x, new state).
    `precondition`: v -> M v for flat v [x.size], symmetric positive definite (e.g. an image
    pyramid: docs/experiments.md); None: the identity (plain L-BFGS)."""
    g_new = grad.reshape(-1)
    s = (trial - x).reshape(-1)
    slope = jnp.dot(state.g, s)  # g(x).(trial - x), negative along a descent direction
    accept = jnp.isfinite(value) & (value <= state.f + C1 * slope)

    # memory: the pair from an accepted trial, if it has positive curvature
    y = g_new - state.g
    positive = jnp.dot(y, s) > 1e-10 * jnp.sqrt(jnp.dot(s, s) * jnp.dot(y, y))
    # M g at both points (M y = M g_new - M g by linearity): with the two-loop's, three products with M a step
    metric = precondition if precondition is not None else (lambda v: v)
    mg_new, mg = metric(g_new), metric(state.g)
    memory = remember(state.memory, s, y, accept & jnp.isfinite(state.f) & positive, mg_new - mg)

    # after an accepted trial: a new direction; fall back to steepest descent (-M g) if it is not a descent direction
    d_lbfgs = two_loop(g_new, memory, precondition)
    descent = (memory.count > 0) & (jnp.dot(g_new, d_lbfgs) < 0)

    def steepest(mg_):  # -M g, and the step along it that moves no pixel by more than first_step
        d_max = jnp.max(jnp.abs(mg_))
        return -mg_, first_step / jnp.where(d_max > 0, d_max, 1.0)

    d_steep, t_steep = steepest(mg_new)
    d_new = jnp.where(descent, d_lbfgs, d_steep)
    t_new = jnp.where(descent, 1.0, t_steep).astype(x.dtype)

    # after a rejected trial: the same direction, a shorter step (safeguarded quadratic interpolation)
    curvature = value - state.f - slope
    t_quad = -0.5 * slope * state.t / jnp.where(curvature > 0, curvature, 1.0)
    t_quad = jnp.where((curvature > 0) & jnp.isfinite(value), t_quad, 0.5 * state.t)
    t_back = jnp.clip(t_quad, 0.1 * state.t, 0.5 * state.t)
    # a step that has shrunk below any visible change: restart from steepest descent with an empty memory
    stalled = ~accept & (t_back * jnp.max(jnp.abs(state.d)) < 1e-6 * first_step)
    memory = memory._replace(count=jnp.where(stalled, 0, memory.count))
    d_restart, t_restart = steepest(mg)

    new_state = ArmijoLBFGSState(
        f=jnp.where(accept, value, state.f),
        g=jnp.where(accept, g_new, state.g),
        aux=jax.tree.map(lambda new, old: jnp.where(accept, new, old), aux, state.aux),
        d=jnp.where(accept, d_new, jnp.where(stalled, d_restart, state.d)),
        t=jnp.where(accept, t_new, jnp.where(stalled, t_restart, t_back)),
        memory=memory, accepted=accept,
    )
    return jnp.where(accept, trial, x), new_state
