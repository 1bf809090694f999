"""The optimisers: one `Optimizer` object each, in one registry (`OPTIMIZERS`).

An entry holds everything the rest of the package asks of an optimiser: its name and help text (the CLI's
choices), its default learning rate and box, the boxes it supports, the size of its state (the memory preflight),
whether its reported losses are those after its step, and its two JAX functions: `init` (a job's state) and
`update` (one step). To add an optimiser, add an entry here and a test of it (docs/design.md shows one).

Importing this module imports the standard library only (the command line reads names and defaults before JAX
starts: `nst_jax.cli.hugepages`); JAX and Optax are imported when an `init` or `update` first runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

TORCH_HISTORY = 100  # curvature pairs of lbfgs-torch: torch.optim.LBFGS's history_size (jcjohnson's too)


@dataclass(frozen=True)
class Optimizer:
    """One optimiser.

    Attributes:
      name: its name in `Config.optimizer` and `--optimizer`.
      help: one phrase for the CLI's help.
      default_lr: the learning rate when `Config.lr` is None.
      default_box: what `box="auto"` means for it ("clip" or "none").
      boxes: the box modes it supports ("clip", "closure", "none").
      state_vectors: image-sized arrays its state keeps, given `Config.lbfgs_memory` (the memory preflight).
      averaging: whether iterate averaging (`Config.average`) may wrap it.
      losses_after_step: whether `update` reports the losses of the image after its step (else before it).
      init: (z [1, H, W, 3], hyper, memory) -> one job's state.
      update: (z, state, evaluate, hyper, spec, box, memory) -> (z, state, terms), one step of one job, where
        evaluate(v) = (total, terms) is the objective at v and `hyper` holds the traced "lr", "b1", "b2".
    """

    name: str
    help: str
    default_lr: float
    default_box: str
    boxes: tuple[str, ...]
    state_vectors: Callable[[int], int]
    averaging: bool
    losses_after_step: bool
    init: Callable[..., Any]
    update: Callable[..., Any]


def _project_fn(spec, box: str):
    from .objective import project

    return (lambda v: project(v, spec)) if box == "clip" else None


def _armijo_init(z, hyper, memory: int):
    import jax.numpy as jnp

    from . import lbfgs_armijo
    from .objective import TERMS

    return lbfgs_armijo.init(z, {k: jnp.zeros((), z.dtype) for k in TERMS}, memory)


def _armijo_update(z, state, evaluate, hyper, spec, box: str, memory: int):
    """One evaluation, at the trial point (see lbfgs_armijo); the terms are those of the new z."""
    import jax
    import jax.numpy as jnp

    from . import lbfgs_armijo
    from .objective import to_variable

    trial = lbfgs_armijo.trial_point(z, state, _project_fn(spec, box))
    (value, terms), grad = jax.value_and_grad(evaluate, has_aux=True)(trial)
    unit = jnp.max(jnp.abs(to_variable(jnp.ones((1, 1, 1, 3)), spec) - to_variable(jnp.zeros((1, 1, 1, 3)), spec)))
    z, state = lbfgs_armijo.update(z, trial, value, grad, state, terms, first_step=hyper["lr"] * unit)
    return z, state, state.aux


def _optax_lbfgs(hyper, memory: int):
    import optax

    return optax.lbfgs(memory_size=memory)


def _optax_lbfgs_update(z, state, evaluate, hyper, spec, box: str, memory: int):
    """optax's L-BFGS: the value and gradient at z come from the previous step's line search (kept in its state);
    the unweighted terms cost one extra forward pass. No box: see docs/design.md."""
    import optax

    def value_fn(v):
        return evaluate(v)[0]

    terms = evaluate(z)[1]
    value, grad = optax.value_and_grad_from_state(value_fn)(z, state=state)
    updates, state = _optax_lbfgs(hyper, memory).update(grad, state, z, value=value, grad=grad, value_fn=value_fn)
    return optax.apply_updates(z, updates), state, terms


def _torch_lbfgs(hyper, memory: int):
    from .lbfgs_torch import scale_by_torch_lbfgs

    return scale_by_torch_lbfgs(hyper["lr"], history_size=TORCH_HISTORY)


def _adam(hyper, memory: int):
    import optax

    return optax.adam(hyper["lr"], b1=hyper["b1"], b2=hyper["b2"])


def gradient_step(make: Callable):
    """`update` for an Optax transformation made by make(hyper, memory) that needs only the gradient: one
    evaluation at z (clamped first with box "closure", as the PyTorch tutorial does), then the update (clipped
    into the box after it with "clip")."""

    def update(z, state, evaluate, hyper, spec, box: str, memory: int):
        import jax
        import optax

        from .objective import project

        if box == "closure":
            z = project(z, spec)
        (_, terms), grad = jax.value_and_grad(evaluate, has_aux=True)(z)
        updates, state = make(hyper, memory).update(grad, state, z)
        z = optax.apply_updates(z, updates)
        if box == "clip":
            z = project(z, spec)
        return z, state, terms

    return update


def optax_init(make: Callable):
    return lambda z, hyper, memory: make(hyper, memory).init(z)


OPTIMIZERS: dict[str, Optimizer] = {o.name: o for o in (
    Optimizer("lbfgs-armijo", "L-BFGS, the paper's method, with a backtracking line search of one evaluation per "
              "step", default_lr=0.05, default_box="clip", boxes=("clip", "none"),
              state_vectors=lambda memory: 2 * memory, averaging=False, losses_after_step=True,
              init=_armijo_init, update=_armijo_update),
    Optimizer("lbfgs", "optax's L-BFGS with a zoom line search", default_lr=1.0, default_box="none",
              boxes=("none",), state_vectors=lambda memory: 2 * memory, averaging=False, losses_after_step=False,
              init=optax_init(_optax_lbfgs), update=_optax_lbfgs_update),
    Optimizer("lbfgs-torch", "torch.optim.LBFGS's algorithm, no line search", default_lr=1.0, default_box="none",
              boxes=("clip", "closure", "none"), state_vectors=lambda memory: 2 * TORCH_HISTORY, averaging=False,
              losses_after_step=False, init=optax_init(_torch_lbfgs), update=gradient_step(_torch_lbfgs)),
    Optimizer("adam", "optax.adam, the algorithm of torch.optim.Adam", default_lr=0.02, default_box="clip",
              boxes=("clip", "closure", "none"), state_vectors=lambda memory: 2, averaging=True,
              losses_after_step=False, init=optax_init(_adam), update=gradient_step(_adam)),
)}
NAMES = tuple(OPTIMIZERS)
