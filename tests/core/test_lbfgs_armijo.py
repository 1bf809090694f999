"""`--optimizer lbfgs-armijo`: L-BFGS with a one-evaluation-per-step backtracking line search.

Checked against closed forms: the minimiser of a quadratic, Rosenbrock's minimum at (1, ..., 1), the exact
line minimum that quadratic interpolation must find after a rejected step, and monotone loss on style transfer.
Its optional preconditioner M (H_0 = (s.y / y.My) M): against the BFGS recursion written out in dense matrices, and
a quadratic whose Hessian is M^-1, which the first L-BFGS step must solve exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.config import Config
from nst_jax.core import lbfgs_armijo
from nst_jax.core.lbfgs_torch import empty_memory, remember, two_loop
from nst_jax.run import loop


def _minimise(f, x, steps, first_step=0.05, project=None, precondition=None):
    """Run `steps` steps; returns (x, the accepted values after each step, the trial points evaluated)."""
    state = lbfgs_armijo.init(x, {"f": jnp.zeros((), x.dtype)}, history=10)

    @jax.jit
    def step(x, state):
        trial = lbfgs_armijo.trial_point(x, state, project)
        value, grad = jax.value_and_grad(f)(trial)
        return trial, *lbfgs_armijo.update(x, trial, value, grad, state, {"f": value}, first_step=first_step,
                                           precondition=precondition)

    values, trials = [], []
    for _ in range(steps):
        trial, x, state = step(x, state)
        values.append(float(state.aux["f"]))
        trials.append(trial)
    return x, np.array(values), trials


def _spd(n, seed):
    """A random symmetric positive definite n x n matrix (condition number about 10)."""
    a = np.random.default_rng(seed).standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def test_quadratic_reaches_the_solution_of_the_linear_system():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((30, 30))
        q = jnp.asarray(a @ a.T + 30 * np.eye(30))  # symmetric positive definite, condition ~10
        b = jnp.asarray(rng.standard_normal(30))
        x, values, _ = _minimise(lambda x: 0.5 * x @ q @ x - b @ x, jnp.zeros(30), 40)
        # f's own rounding (|f| ~ 0.1 in float64) ends the descent about 1e-7 away from the solution
        np.testing.assert_allclose(np.asarray(x), np.linalg.solve(np.asarray(q), np.asarray(b)), rtol=1e-6)
        assert np.all(np.diff(values) <= 0)  # every accepted step lowers f


def test_rosenbrock_reaches_its_minimum_monotonically():
    with jax.enable_x64(True):
        def rosenbrock(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        x, values, _ = _minimise(rosenbrock, jnp.zeros(6), 150, first_step=0.1)
        np.testing.assert_allclose(np.asarray(x), np.ones(6), atol=1e-6)
        assert np.all(np.diff(values) <= 0)


def test_a_rejected_step_is_followed_by_the_exact_line_minimum():
    """f = |x|^2 / 2 from x0 = 1: the first step evaluates x0, the second tries x0 - 5 x0 (first_step 5 over
    max|g| = 1), which fails Armijo; the quadratic through f(x0), f'(x0) and f(trial) has its minimum at t = 1,
    so the third trial is exactly the minimiser 0."""
    with jax.enable_x64(True):
        x, values, trials = _minimise(lambda x: 0.5 * x @ x, jnp.ones(4), 3, first_step=5.0)
        np.testing.assert_array_equal(np.asarray(trials[0]), np.ones(4))
        np.testing.assert_allclose(np.asarray(trials[1]), -4.0 * np.ones(4))
        np.testing.assert_allclose(np.asarray(trials[2]), np.zeros(4), atol=1e-15)
        np.testing.assert_array_equal(values, [2.0, 2.0, 0.0])  # the rejected trial (f = 32) is never accepted


def test_projected_trials_stay_in_the_box():
    """min |x - 2|^2 over [0, 1]^n is at x = 1 (the box's corner nearest 2)."""
    with jax.enable_x64(True):
        x, values, trials = _minimise(lambda x: jnp.sum((x - 2.0) ** 2), jnp.full(5, 0.3), 20,
                                      project=lambda v: jnp.clip(v, 0.0, 1.0))
        assert all(float(t.min()) >= 0.0 and float(t.max()) <= 1.0 for t in trials)
        np.testing.assert_allclose(np.asarray(x), np.ones(5))


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
@pytest.mark.parametrize("box", ["clip", "none"])
def test_style_transfer_loss_never_rises(random_weights, box):
    config = Config(size=40, steps=30, optimizer="lbfgs-armijo", init="content", box=box, chunk_size=2)
    out, history = loop.optimize([np.asarray(jax.random.uniform(jax.random.key(1), (40, 40, 3)))],
                                     [np.asarray(jax.random.uniform(jax.random.key(2), (40, 40, 3)))],
                                     random_weights, config)
    total = history["total"][:, 0]
    assert total.shape == (30,)
    assert np.all(np.diff(total) <= 0)
    assert total[-1] < 0.2 * total[0]  # random weights: an optimisation check only, not an image-quality one


def test_closure_box_is_refused():
    with pytest.raises(ValueError, match="lbfgs-armijo"):
        Config(optimizer="lbfgs-armijo", box="closure")


def test_lbfgs_memory_sets_the_pairs_kept(random_weights):
    """Memory 1 and 10 hold the same single pair until a second one is stored (after two accepted steps past the
    start), so the runs agree exactly that far and then part; the preflight counts 2 image copies per pair."""
    content, style = (np.asarray(jax.random.uniform(jax.random.key(k), (40, 40, 3))) for k in (1, 2))
    config = Config(size=40, steps=10, optimizer="lbfgs-armijo", init="content", box="none", chunk_size=2)
    totals = {m: loop.optimize([content], [style], random_weights, config.replace(lbfgs_memory=m))[1]["total"][:, 0]
              for m in (1, 10)}
    np.testing.assert_allclose(totals[1][:3], totals[10][:3], rtol=1e-6)
    assert np.abs(totals[1][3:] / totals[10][3:] - 1).max() > 1e-4
    from nst_jax.run.memory import estimate_bytes

    more = estimate_bytes(64, 48, config.replace(lbfgs_memory=100)) - estimate_bytes(64, 48, config)
    assert more == 2 * 90 * 64 * 48 * 3 * 4


def test_preconditioned_two_loop_is_bfgs_from_gamma_m():
    """-two_loop(g) = H g, where H comes from H_0 = (s.y / y.My) M (newest pair) by the BFGS update
    H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, oldest kept pair first (Nocedal & Wright, 7.19)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n = 12
        m, hessian = _spd(n, 1), np.diag(rng.uniform(0.5, 5.0, n))
        memory, kept = empty_memory(n, 3, jnp.float64), []  # 4 pairs into a memory of 3
        for _ in range(4):
            s = rng.standard_normal(n)
            y = hessian @ s + 0.1 * rng.standard_normal(n)
            assert s @ y > 0
            memory = remember(memory, jnp.asarray(s), jnp.asarray(y), jnp.asarray(True), jnp.asarray(m @ y))
            kept = (kept + [(s, y)])[-3:]
        s_new, y_new = kept[-1]
        h = (s_new @ y_new) / (y_new @ m @ y_new) * m
        for s, y in kept:
            v = np.eye(n) - np.outer(y, s) / (s @ y)
            h = v.T @ h @ v + np.outer(s, s) / (s @ y)
        g = rng.standard_normal(n)
        d = two_loop(jnp.asarray(g), memory, lambda v: jnp.asarray(m) @ v)
        np.testing.assert_allclose(-np.asarray(d), h @ g, rtol=1e-10)


def test_a_quadratic_with_hessian_m_inverse_is_solved_by_the_first_lbfgs_step():
    """f = (x - x*)^T M^-1 (x - x*) / 2. Step 1 evaluates x0 and step 2 the steepest step along -M g; that pair
    gives gamma = s.y / y.My = 1, and BFGS from H_0 = M, f's inverse Hessian, stays exact, so step 3 tries x*
    itself. Without M, three evaluations leave f far from 0."""
    with jax.enable_x64(True):
        n = 20
        m = _spd(n, 2)
        inverse, target = jnp.asarray(np.linalg.inv(m)), jnp.asarray(np.random.default_rng(3).uniform(0, 1, n))
        f = lambda x: 0.5 * (x - target) @ inverse @ (x - target)  # noqa: E731
        x, values, _ = _minimise(f, jnp.full(n, 0.5), 3, precondition=lambda v: jnp.asarray(m) @ v)
        np.testing.assert_allclose(np.asarray(x), np.asarray(target), atol=1e-12)
        assert values[-1] < 1e-20
        _, plain, _ = _minimise(f, jnp.full(n, 0.5), 3)
        assert plain[-1] > 1e-4 * plain[0]


def test_the_identity_preconditioner_is_plain_lbfgs():
    with jax.enable_x64(True):
        def rosenbrock(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        x, values, _ = _minimise(rosenbrock, jnp.zeros(6), 40, first_step=0.1)
        x_identity, identity, _ = _minimise(rosenbrock, jnp.zeros(6), 40, first_step=0.1, precondition=lambda v: v)
        np.testing.assert_allclose(identity, values, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(x_identity), np.asarray(x), rtol=1e-12)
