"""Tests of `nst_jax.run.targets`: the sliced Wasserstein statistic's directions, drawn from --seed and redrawn
each round of `swd_resample` steps, at the chunk boundaries the loop gives."""

import jax
import numpy as np
import pytest
from conftest import CONTENT, STYLE

from nst_jax import Config, stylize
from nst_jax.run import loop, targets


def _data(key):
    return np.asarray(jax.random.key_data(key))


def test_directions_are_the_seeds_and_change_with_the_round_only():
    fixed, every4 = Config(style_loss="swd"), Config(style_loss="swd", swd_resample=4)
    assert targets.directions_key(Config(), 0) is None  # gram: no key, its program as before
    assert [targets.directions_round(every4, s) for s in (0, 3, 4, 7, 8, 13)] == [0, 0, 1, 1, 2, 3]
    assert [targets.directions_round(fixed, s) for s in (0, 5, 100)] == [0, 0, 0]
    same = [_data(targets.directions_key(every4, s)) for s in (0, 3)]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(_data(targets.directions_key(every4, 0)), _data(targets.directions_key(every4, 4)))
    other_seed = every4.replace(seed=1)
    assert not np.array_equal(_data(targets.directions_key(every4, 0)), _data(targets.directions_key(other_seed, 0)))


@pytest.mark.parametrize("resample, draws", [pytest.param(0, [0], marks=pytest.mark.slow), (4, [0, 1]),
                                             pytest.param(3, [0, 1, 2], marks=pytest.mark.slow)])  # CI: -m slow
def test_the_loop_draws_new_directions_at_the_first_chunk_boundary_of_each_round(random_weights, monkeypatch,
                                                                               resample, draws):
    """8 steps: with swd_resample 4 the targets are made at steps 0 and 4 (chunks of at most 4 end on 4); with 3,
    chunks shrink to the common divisor 1 of 8 and 3, and the rounds start at steps 0, 3 and 6."""
    made = []

    def counting(*a, key=None, **k):
        made.append(key)
        return targets.batch_targets(*a, key=key, **k)

    monkeypatch.setattr(loop, "batch_targets", counting)
    config = Config(size=32, steps=8, chunk_size=4, optimizer="adam", style_loss="swd", swd_resample=resample)
    result = stylize(CONTENT, STYLE, random_weights, config)
    assert np.isfinite(result.history["total"]).all()
    assert [_data(k).tolist() for k in made] == [
        _data(targets.directions_key(config, r * (resample or 1))).tolist() for r in draws]
