"""The optimiser registry (`nst_jax.core.optimizers`): every entry minimises, and an entry is all a new optimiser
needs (issue 50: the CLI's choices, the defaults, the box rules, the memory preflight and the loop read it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nst_jax import Config, stylize
from nst_jax.core import optimizers
from nst_jax.core.objective import TERMS
from nst_jax.core.optimizers import OPTIMIZERS, Optimizer
from nst_jax.run import memory, settings

TARGET = np.random.default_rng(0).uniform(0.2, 0.8, (1, 6, 5, 3)).astype(np.float32)


def _quadratic(v):
    """0.5 |v - TARGET|^2, with the terms a loss reports: (total, {content, style, tv, total})."""
    total = 0.5 * jnp.sum((v - TARGET) ** 2)
    zero = jnp.zeros((), v.dtype)
    return total, {"content": total, "style": zero, "tv": zero, "total": total}


def _rmsprop(hyper, memory):
    return optax.rmsprop(hyper["lr"])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_registered_optimizer_minimises_a_quadratic_in_the_box(name):
    """From the corner 0 of the box, 40 steps of each optimiser bring 0.5 |z - t|^2 (t inside the box) below a
    hundredth of its start; with the optimiser's default box the iterate stays in [0, 1]."""
    opt = OPTIMIZERS[name]
    spec = settings.loss_spec(Config(pixel_space="rgb"), "caffe")
    # at least 0.05: a first-order method's default rate for images (0.01-0.02 per step) needs more than 40 steps
    # to cross the box; the line-search optimisers' default (1) is theirs
    hyper = {"lr": jnp.float32(max(opt.default_lr, 0.05)), "b1": jnp.float32(0.9), "b2": jnp.float32(0.999)}

    @jax.jit
    def run(z):
        state = opt.init(z, hyper, 10)

        def body(carry, _):
            z, state = carry
            z, state, terms = opt.update(z, state, _quadratic, hyper, spec, opt.default_box, 10)
            return (z, state), terms["total"]

        return jax.lax.scan(body, (z, state), None, length=40)

    (z, _), totals = run(jnp.zeros_like(TARGET))
    start = float(_quadratic(jnp.zeros_like(TARGET))[0])
    assert float(_quadratic(z)[0]) < start / 100, (name, float(_quadratic(z)[0]), start)
    assert set(TERMS) == {"content", "style", "tv", "total"} and np.isfinite(np.asarray(totals)).all()
    if opt.default_box == "clip":
        assert float(z.min()) >= 0 and float(z.max()) <= 1


def test_a_new_optimizer_is_one_registry_entry(random_weights, monkeypatch):
    """What docs/design.md shows: optax's RMSProp as one entry, and Config, the box rules, the memory preflight and
    a whole run take it with no other edit."""
    rmsprop = Optimizer("rmsprop", "optax.rmsprop", default_lr=0.01, default_box="clip", boxes=("clip", "none"),
                        state_vectors=lambda memory: 1, averaging=False, losses_after_step=False,
                        init=optimizers.optax_init(_rmsprop), update=optimizers.gradient_step(_rmsprop))
    monkeypatch.setitem(OPTIMIZERS, "rmsprop", rmsprop)
    config = Config(optimizer="rmsprop", size=32, steps=6, chunk_size=3)
    assert (config.learning_rate, config.box_mode) == (0.01, "clip")
    with pytest.raises(ValueError, match="optimizer rmsprop takes box clip or none"):
        Config(optimizer="rmsprop", box="closure")
    with pytest.raises(ValueError, match="average .iterate averaging. is for optimizer adam, got rmsprop"):
        Config(optimizer="rmsprop", average=0.9)
    adam = Config(optimizer="adam", size=32)  # Adam's state: two image-sized moments, rmsprop's one
    assert memory.estimate_bytes(64, 64, adam) - memory.estimate_bytes(64, 64, config) == 64 * 64 * 3 * 4
    rng = np.random.default_rng(1)
    result = stylize(rng.uniform(size=(24, 32, 3)), rng.uniform(size=(32, 32, 3)), random_weights, config)
    totals = result.history["total"]
    assert totals.shape == (6,) and np.isfinite(totals).all() and totals[-1] < totals[0]
    assert result.image.min() >= 0 and result.image.max() <= 1
