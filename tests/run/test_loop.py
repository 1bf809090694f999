"""Tests of `nst_jax.run.loop`: batches, chunks, divergence, stops and resume."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CONTENT, CONTENTS, STYLE, STYLES

from nst_jax import Config, stylize, stylize_batch
from nst_jax.core import steps
from nst_jax.run import loop, planning
from nst_jax.run import targets as run_targets
from nst_jax.run.records import BatchState
from nst_jax.stops import Stops


def _counting_chunks(monkeypatch, calls, force_lost=None):
    """Wrap run_chunk to append "chunk" to `calls` per call; force_lost: replace its lost flags [J] by these."""
    original = steps.run_chunk

    def wrapped(*a, **k):
        calls.append("chunk")
        z, state, terms, lost = original(*a, **k)
        return z, state, terms, lost if force_lost is None else jnp.asarray(force_lost)

    monkeypatch.setattr(loop, "run_chunk", wrapped)


def _poisoned_from(monkeypatch, chunk: int):
    """Wrap run_chunk so that from its `chunk`-th call on (1-based) every variable and loss term is NaN."""
    original, calls = steps.run_chunk, []

    def wrapped(*a, **k):
        calls.append(1)
        z, state, terms, lost = original(*a, **k)
        if len(calls) >= chunk:
            z, terms, lost = z * jnp.nan, {n: t * jnp.nan for n, t in terms.items()}, jnp.ones_like(lost)
        return z, state, terms, lost

    monkeypatch.setattr(loop, "run_chunk", wrapped)


def _stop_at(step: int):
    """A callback that sends this process SIGINT when the run reports `step` (as Ctrl-C would), under
    `STOPS.on_signals`: the loop stops at its next safe point."""
    import os
    import signal

    def callback(p):
        if p.step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


class _StopAfter(Stops):
    """A `Stops` that requests a stop (status 143, as SIGTERM) from its `asks`-th question on: no signal needed."""

    def __init__(self, asks: int):
        super().__init__()
        self.asks = asks

    def requested(self):
        self.asks -= 1
        return 143 if self.asks <= 0 else None


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs-torch", pytest.param("lbfgs", marks=pytest.mark.slow),
                                       "lbfgs-armijo"])  # lbfgs: a long run, left to CI (pytest -m slow)
def test_batch_equals_one_by_one(random_weights, optimizer):
    # Chunks of 2 steps (3 chunks per run: state carried within and between them).
    config = Config(size=32, steps=6, chunk_size=2, optimizer=optimizer,
                    init="content" if optimizer == "adam" else "noise")
    batch = stylize_batch(CONTENTS, STYLES, random_weights, config.replace(batch_size=2))  # one vmapped program
    for job, (c, s) in enumerate(zip(CONTENTS, STYLES)):
        alone = stylize(c, s, random_weights, config)
        for term in ("content", "style", "total"):
            np.testing.assert_allclose(batch[job].history[term], alone.history[term], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(batch[job].image, alone.image, atol=1e-4)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_jobs_run_in_batches_of_batch_size(random_weights):
    """Three jobs in programs of 2 and 1: every job's history equals its run in one 3-job program, and each
    Progress names its first job."""
    contents, styles = CONTENTS + CONTENTS[:1], STYLES + STYLES[:1]
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    seen = []
    grouped = stylize_batch(contents, styles, random_weights, config.replace(batch_size=2),
                            callback=lambda p: seen.append((p.first_job, p.losses["total"].shape[1])))
    together = stylize_batch(contents, styles, random_weights, config.replace(batch_size=3))
    assert seen == [(0, 2), (2, 1)]
    for g, t in zip(grouped, together):
        np.testing.assert_allclose(g.history["total"], t.history["total"], rtol=1e-4)
        np.testing.assert_allclose(g.image, t.image, atol=1e-4)
    assert planning.jobs_per_program(config, 16) == 1  # default on this lone CPU device
    assert planning.jobs_per_program(config.replace(batch_size=4), 3) == 3


@pytest.mark.slow
def test_sharded_over_four_devices_equals_one_by_one(random_weights, tmp_path):
    """Four jobs laid across 4 (forced) CPU devices in a fresh process, against one-by-one runs here."""
    np.savez(tmp_path / "in.npz", c=np.stack(CONTENTS * 2), s=np.stack([STYLES[0]] * 4))
    script = textwrap.dedent(f"""
        import jax, numpy as np
        from nst_jax import Config, Weights
        from nst_jax.api import stylize_batch
        from nst_jax.reference.random_vgg import random_params
        assert jax.local_device_count() == 4
        w = Weights(jax.tree.map(np.asarray, random_params(jax.random.key(0))), "caffe")
        d = np.load({str(tmp_path / "in.npz")!r})
        out = stylize_batch(list(d["c"]), list(d["s"]), w, Config(size=32, steps=4, chunk_size=2,
                            optimizer="adam", init="content"))
        np.save({str(tmp_path / "out.npy")!r}, np.stack([r.history["total"] for r in out]))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    sharded = np.load(tmp_path / "out.npy")
    config = Config(size=32, steps=4, chunk_size=2, optimizer="adam", init="content")
    for job in range(4):
        alone = stylize(CONTENTS[job % 2], STYLES[0], random_weights, config)
        np.testing.assert_allclose(sharded[job], alone.history["total"], rtol=1e-4)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_lbfgs_from_noise_lowers_total_loss_tenfold(random_weights):
    result = stylize(CONTENT, STYLE, random_weights, Config(size=64, steps=30, optimizer="lbfgs", init="noise"))
    history = result.history["total"]
    assert history.shape == (30,) and np.all(np.isfinite(history))
    assert history[0] / history[-1] >= 10.0, history
    assert result.image.shape == (48, 64, 3) and result.image.min() >= 0 and result.image.max() <= 1


def test_adam_stays_in_box_reports_every_chunk_and_compiles_once(random_weights):
    seen = []
    before = steps.run_chunk._cache_size()
    # size 60: an image shape no other test compiles, so the count below starts from zero programs for it
    config = Config(size=60, steps=25, optimizer="adam", lr=0.05, init="content", chunk_size=10)
    result = stylize(CONTENT, STYLE, random_weights, config, callback=seen.append)
    assert [p.step for p in seen] == [5, 10, 15, 20, 25]  # equal chunks: 5 divides 25
    assert all(float(p.image.min()) >= 0.0 and float(p.image.max()) <= 1.0 for p in seen)
    assert steps.run_chunk._cache_size() == before + 1  # one program for all five chunks
    # Terms are evaluated before each update: at step 0 the image is the content image itself.
    assert result.history["content"][0] == 0.0 and result.history["content"][1] > 0.0
    assert result.history["total"][-1] < result.history["total"][0]
    np.testing.assert_allclose(result.history["total"],
                               config.content_weight * result.history["content"]
                               + config.style_weight * result.history["style"], rtol=1e-5)
    # Other loss weights and learning rate are traced, not compiled in: no new program.
    stylize(CONTENT, STYLE, random_weights, config.replace(style_weight=10.0, lr=0.01, steps=15))
    assert steps.run_chunk._cache_size() == before + 1


def test_zero_steps_returns_the_start_image(random_weights):
    result = stylize(CONTENT, STYLE, random_weights, Config(size=64, steps=0, init="content"))
    np.testing.assert_allclose(result.image, CONTENT, atol=1e-6)
    assert result.history["total"].shape == (0,)


def test_targets_are_dispatched_first_and_the_set_up_after_them_is_jitted(random_weights, monkeypatch):
    # The targets' forward passes are the longest computation before the first step (1.85 s at 512 px on this
    # CPU), so each scale dispatches them first and makes its start variable and optimiser state while they run.
    # Set-up dispatched behind them must not wait for them: as eager ops, vmapping the optimiser's init did (the
    # host was held 1.9 s at 512 px, measured); as one jitted program each, it is dispatched at once.
    assert all(hasattr(f, "lower") for f in (steps.start_states, steps.next_scale))  # jitted
    calls = []
    for module, name in ((loop, "initial_variable"), (run_targets, "compute_targets"), (loop, "start_states"),
                         (loop, "next_scale"), (loop, "run_chunk")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])
    config = Config(size=64, scale_sizes=(32, 64), scale_steps=(2, 4), chunk_size=2, init="content")
    stylize(CONTENT, STYLE, random_weights, config)
    assert calls == ["compute_targets", "initial_variable", "start_states", "run_chunk",  # scale 1: fresh
                     "compute_targets", "next_scale", "start_states", "run_chunk", "run_chunk"]  # L-BFGS restarts


@pytest.mark.parametrize("scales", [dict(steps=12), dict(scale_sizes=(32, 64), scale_steps=(6, 6))])
def test_a_run_whose_image_became_nan_stops_with_what_the_full_run_gives(random_weights, monkeypatch, scales):
    # Adam with lr 1e30 and no box (random weights): step 0's update overflows the image, step 1's loss is not
    # finite and its update leaves NaN, which every later step keeps. The run stops after the chunk that showed it
    # (and the one already queued behind it) instead of running all six chunks; its history is the full run's
    # first two steps, the chunk it read (the full run's later steps are all NaN: nothing is lost by not keeping
    # them, and memory no longer grows with --steps: issue 37 defect 7), and no image ever had a finite loss, so
    # it is NaN.
    config = Config(size=64, optimizer="adam", lr=1e30, box="none", chunk_size=2, init="content", **scales)
    calls = []
    _counting_chunks(monkeypatch, calls)
    report = lambda p: calls.append(f"report {p.step}")  # noqa: E731
    early = stylize(CONTENT, STYLE, random_weights, config, callback=report)
    assert calls == ["chunk", "chunk", "report 2"]
    _counting_chunks(monkeypatch, calls := [], force_lost=[False])
    full = stylize(CONTENT, STYLE, random_weights, config)
    assert calls == ["chunk"] * 6
    assert early.image.shape == full.image.shape == (48, 64, 3) and np.isnan(early.image).all()
    np.testing.assert_array_equal(early.image, full.image)
    assert early.image_step == full.image_step == -1
    for k in ("content", "style", "tv", "total"):
        assert early.history[k].shape == (2,)
        np.testing.assert_array_equal(early.history[k], full.history[k][:2])  # NaN equals NaN here
        assert np.isnan(full.history[k][2:]).all()
    assert np.isfinite(early.history["total"][0]) and np.isnan(early.history["total"][1])


def test_a_diverged_run_keeps_its_last_image_with_a_finite_loss(random_weights, monkeypatch):
    """Issue 37: a run whose loss stops being finite returns the last image whose loss was seen finite (before: a
    NaN image), and says which step it is from. Chunks of 2 Adam steps; from the third chunk on everything is NaN,
    including its first loss, which is the loss of the image after step 4: so the last image vouched for is the
    one after step 2 (the second chunk's first loss), exactly what a 2-step run gives."""
    config = Config(size=64, steps=10, optimizer="adam", lr=0.05, chunk_size=2, init="content")
    expected = stylize(CONTENT, STYLE, random_weights, config.replace(steps=2))
    _poisoned_from(monkeypatch, 3)
    result = stylize(CONTENT, STYLE, random_weights, config)
    assert result.image_step == 2 and expected.image_step == 2
    np.testing.assert_array_equal(result.image, expected.image)
    assert np.isfinite(result.history["total"][:4]).all() and np.isnan(result.history["total"][4:]).all()


def test_an_image_whose_own_loss_is_not_finite_is_never_returned(random_weights):
    """Adam's losses are those of the image before each update, so the image after a chunk is vouched for only by
    the next chunk's first loss. Chunks of one step, lr 1e30 without a box: step 0's loss is finite, the image
    after it has a loss that is not: no image is returned (before: that image, said to be from step 1)."""
    config = Config(size=32, steps=4, optimizer="adam", lr=1e30, box="none", chunk_size=1, init="content")
    result = stylize(CONTENT, STYLE, random_weights, config)
    assert np.isfinite(result.history["total"][0]) and not np.isfinite(result.history["total"][1])
    assert result.image_step == -1 and np.isnan(result.image).all()


@pytest.mark.parametrize("settings", [
    dict(optimizer="adam", lr=0.05, steps=8),
    dict(optimizer="lbfgs-armijo", steps=8),
    dict(optimizer="adam", lr=0.05, scale_sizes=(32, 64), scale_steps=(4, 4)),  # stopped at the scale boundary
    dict(optimizer="adam", lr=0.05, scale_sizes=(32, 64), scale_steps=(4, 4), average=0.9),  # the average too
    # stopped in the 2nd draw's round; the fast suite's longest resume (20 s), left to CI's slow run
    pytest.param(dict(optimizer="adam", lr=0.05, steps=8, style_loss="swd", swd_resample=4), marks=pytest.mark.slow),
    pytest.param(dict(optimizer="lbfgs-armijo", steps=8, block_size=32), marks=pytest.mark.slow),  # by 4 blocks
])
def test_a_stopped_run_resumes_to_the_uninterrupted_result_bit_for_bit(random_weights, tmp_path, settings):
    """Issue 37: a stop between chunks gives a `BatchState` (through a checkpoint file here); resuming from it
    gives exactly the uninterrupted run's image and history, on this CPU, for Adam (state carried across scales)
    and lbfgs-armijo. Two jobs in two batches (batch_size 1), stopped in the second: the first is yielded before."""
    from nst_jax.run import checkpoint
    from nst_jax.stops import STOPS

    config = Config(size=64, chunk_size=2, init="noise", batch_size=1, **settings)
    contents, styles = [CONTENT, CONTENT[::-1]], [STYLE, STYLE[:, ::-1]]
    whole = list(loop.optimize_batches(contents, styles, random_weights, config))
    with STOPS.on_signals():
        *done, state = loop.optimize_batches(contents, styles, random_weights, config, callback=_stop_at(4))
    assert len(done) == 0 and isinstance(state, BatchState)  # job 0's batch reports step 4 too: stopped there
    # reported step 4; the chunk queued behind it is read too, except at the end of a scale (none is queued)
    assert (state.first, state.step) == (0, 4 if "scale_sizes" in settings else 6)
    checkpoint.save(tmp_path / "c.npz", state, {"argv": []})
    state, _ = checkpoint.load(tmp_path / "c.npz")
    resumed = list(loop.optimize_batches(contents, styles, random_weights, config, resume=state))
    assert [b.first for b in resumed] == [0, 1]
    for a, b in zip(whole, resumed):
        assert a.blocks == b.blocks  # from the plan: a resumed batch says how it ran (the trial found [null])
        assert (a.blocks[-1] is not None) == ("block_size" in settings)
        np.testing.assert_array_equal(a.images, b.images)
        for k in ("content", "style", "tv", "total"):
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_the_loop_asks_its_stops_object_between_chunks_and_returns_the_state(random_weights):
    """Issue 50: stops are explicit. The loop asks the `Stops` it is given once per chunk (here: stop at the third
    question, so after three chunks of 2 steps, the pipelined fourth chunk read too) and returns the stopped batch's
    state as its last item, not as an attribute of an exception; `finished` turns that into `Interrupted` with the
    status, as the Python API does."""
    config = Config(size=32, steps=12, chunk_size=2, optimizer="adam", lr=0.05, init="content")
    *done, state = loop.optimize_batches([CONTENT], [STYLE], random_weights, config, stops=_StopAfter(3))
    assert done == [] and isinstance(state, BatchState)
    assert (state.first, state.scale, state.step) == (0, 0, 6) and state.history["total"].shape == (6, 1)
    stops = _StopAfter(1)
    with pytest.raises(loop.Interrupted) as stopped:
        loop.finished(loop.optimize_batches([CONTENT], [STYLE], random_weights, config, stops=stops), stops)
    assert stopped.value.status == 143


def test_a_batch_resumes_after_the_batches_already_done(random_weights):
    """Stopped in the second of two batches, the state names it, and resuming runs only it (the first was yielded
    before the stop), to the uninterrupted result."""
    from nst_jax.stops import STOPS

    config = Config(size=32, steps=6, chunk_size=2, optimizer="adam", lr=0.05, init="content", batch_size=1)
    contents, styles = [CONTENT, CONTENT], [STYLE, CONTENT]
    whole = list(loop.optimize_batches(contents, styles, random_weights, config))
    seen = []
    callback = lambda p: (seen.append(p.first_job), _stop_at(2)(p) if p.first_job == 1 else None)  # noqa: E731
    with STOPS.on_signals():
        *done, state = loop.optimize_batches(contents, styles, random_weights, config, callback=callback)
    assert [b.first for b in done] == [0] and isinstance(state, BatchState) and state.first == 1
    resumed = list(loop.optimize_batches(contents, styles, random_weights, config, resume=state))
    assert [b.first for b in resumed] == [1]
    np.testing.assert_array_equal(resumed[0].images, whole[1].images)
    np.testing.assert_array_equal(resumed[0].history["total"], whole[1].history["total"])


def test_a_batch_stops_early_only_when_every_job_is_lost(random_weights, monkeypatch):
    calls = []
    _counting_chunks(monkeypatch, calls, force_lost=[True, False])
    config = Config(size=32, steps=6, chunk_size=2, init="content", batch_size=2)  # both jobs in one program
    results = stylize_batch([CONTENT, CONTENT], [STYLE, CONTENT], random_weights, config)
    assert calls == ["chunk"] * 3 and all(np.isfinite(r.history["total"]).all() for r in results)


def test_next_chunk_is_dispatched_before_the_last_one_is_reported(random_weights, monkeypatch):
    # The host reads a chunk's losses (waiting for it) and runs the callback while the next chunk is already
    # queued on the device; each report still carries its own chunk's image.
    calls, seen = [], []
    original = steps.run_chunk
    monkeypatch.setattr(loop, "run_chunk", lambda *a, **k: (calls.append("chunk"), original(*a, **k))[1])
    config = Config(size=64, steps=6, chunk_size=2, init="content")
    stylize(CONTENT, STYLE, random_weights, config,
            callback=lambda p: (calls.append(f"report {p.step}"), seen.append(np.asarray(p.image))))
    assert calls == ["chunk", "chunk", "report 2", "chunk", "report 4", "report 6"]
    after_two_steps = stylize(CONTENT, STYLE, random_weights, config.replace(steps=2)).image
    np.testing.assert_array_equal(seen[0], after_two_steps)
