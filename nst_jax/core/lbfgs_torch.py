"""`torch.optim.LBFGS`'s algorithm (no line search) as a jittable Optax transformation.

Runs ported from PyTorch (the PyTorch tutorial, jcjohnson/neural-style's torch7 `optim.lbfgs`, which torch's is a
port of) converge the way they did there only with the same algorithm; optax's `lbfgs` uses a zoom line search
and memory 10 instead. One `update` is one iteration of torch's inner loop, given the gradient at the current
point (torch evaluates the closure once per iteration, so iterations and evaluations correspond one to one):

  * first iteration: d = -g, step t = min(1, 1/||g||_1) * lr;
  * later: y = g - g_prev, s = t_prev d_prev; the pair is stored only if y.s > 1e-10 (then H_diag = y.s / y.y),
    at most `history_size` pairs (oldest dropped); d = -H g by the two-loop recursion; t = lr;
  * no update when max|g| <= tolerance_grad (converged) or g.d > -tolerance_change (not a descent direction).

torch's other stopping tests (|t d| or |f - f_prev| below tolerance_change) only end one `.step()` call early;
the next call continues from the same point with the same state, so they leave the trajectory unchanged.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree


class Memory(NamedTuple):
    """L-BFGS's curvature pairs: s_hist, y_hist [m, n] and rho [m] = 1 / y.s in a ring buffer (newest at
    head - 1), count pairs stored, h_diag = s.y / y.y of the newest pair (the initial inverse Hessian's scale; s.y /
    y.My with a preconditioner M)."""

    s_hist: jax.Array
    y_hist: jax.Array
    rho: jax.Array
    head: jax.Array
    count: jax.Array
    h_diag: jax.Array


def empty_memory(n: int, m: int, dtype) -> Memory:
    """No pairs yet, for variables of n elements and at most m pairs."""
    return Memory(s_hist=jnp.zeros((m, n), dtype), y_hist=jnp.zeros((m, n), dtype), rho=jnp.zeros((m,), dtype),
                  head=jnp.zeros((), jnp.int32), count=jnp.zeros((), jnp.int32), h_diag=jnp.ones((), dtype))


def remember(memory: Memory, s: jax.Array, y: jax.Array, store: jax.Array, my: Optional[jax.Array] = None
             ) -> Memory:
    """The memory with the pair (s, y) added (the oldest dropped when full) where `store`, else unchanged.
    my: M y for a preconditioner M (symmetric positive definite), for h_diag = s.y / y.My; None: M = I."""
    m = memory.s_hist.shape[0]
    ys = jnp.dot(y, s)
    my = y if my is None else my
    return Memory(
        s_hist=jnp.where(store, memory.s_hist.at[memory.head].set(s), memory.s_hist),
        y_hist=jnp.where(store, memory.y_hist.at[memory.head].set(y), memory.y_hist),
        rho=jnp.where(store, memory.rho.at[memory.head].set(1.0 / jnp.where(store, ys, 1.0)), memory.rho),
        head=jnp.where(store, (memory.head + 1) % m, memory.head),
        count=jnp.where(store, jnp.minimum(memory.count + 1, m), memory.count),
        h_diag=jnp.where(store, ys / jnp.where(store, jnp.dot(y, my), 1.0), memory.h_diag),
    )


class TorchLBFGSState(NamedTuple):
    """n_iter: iterations done; d, t: last direction and step; g_prev: gradient at the last iteration's start;
    memory: the stored pairs."""

    n_iter: jax.Array
    d: jax.Array
    t: jax.Array
    g_prev: jax.Array
    memory: Memory


def two_loop(g: jax.Array, memory: Memory, precondition: Optional[Callable[[jax.Array], jax.Array]] = None
             ) -> jax.Array:
    """-H g from the stored pairs, newest first then oldest first, as torch does. The initial inverse Hessian is
    h_diag I, or h_diag M with `precondition` (v -> M v, symmetric positive definite)."""
    s_hist, y_hist, rho, head, count, h_diag = memory
    m = s_hist.shape[0]

    def newest_first(j, carry):
        q, al = carry
        i = (head - 1 - j) % m
        a = jnp.where(j < count, jnp.dot(s_hist[i], q) * rho[i], 0.0)
        return q - a * y_hist[i], al.at[i].set(a)

    q, al = jax.lax.fori_loop(0, m, newest_first, (-g, jnp.zeros((m,), g.dtype)))
    r = (precondition(q) if precondition is not None else q) * h_diag

    def oldest_first(j, r):
        i = (head - count + j) % m
        be = jnp.dot(y_hist[i], r) * rho[i]
        return jnp.where(j < count, r + (al[i] - be) * s_hist[i], r)

    return jax.lax.fori_loop(0, m, oldest_first, r)


def scale_by_torch_lbfgs(
    learning_rate: float = 1.0,
    history_size: int = 100,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
) -> optax.GradientTransformation:
    """torch.optim.LBFGS (line_search_fn=None) with its defaults; `updates` are the steps to add to the params.

    `learning_rate` may be a traced scalar. The history holds 2 * history_size copies of the params.
    """

    def init(params):
        flat, _ = ravel_pytree(params)
        n, dtype = flat.shape[0], flat.dtype
        zeros = jnp.zeros((n,), dtype)
        return TorchLBFGSState(n_iter=jnp.zeros((), jnp.int32), d=zeros, t=jnp.zeros((), dtype), g_prev=zeros,
                               memory=empty_memory(n, history_size, dtype))

    def update(grads, state: TorchLBFGSState, params=None):
        del params
        g, unravel = ravel_pytree(grads)
        first = state.n_iter == 0
        y = g - state.g_prev
        s = state.d * state.t
        memory = remember(state.memory, s, y, (~first) & (jnp.dot(y, s) > 1e-10))
        d = jnp.where(first, -g, two_loop(g, memory))
        t = jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.sum(jnp.abs(g))) * learning_rate,
                      jnp.asarray(learning_rate, g.dtype)).astype(g.dtype)
        move = (jnp.max(jnp.abs(g)) > tolerance_grad) & (jnp.dot(g, d) <= -tolerance_change)
        new_state = TorchLBFGSState(n_iter=state.n_iter + 1, d=d, t=t, g_prev=g, memory=memory)
        return unravel(jnp.where(move, t * d, jnp.zeros_like(d))), new_state

    return optax.GradientTransformation(init, update)
