"""Tests of `nst_jax.io.record`: the run record and its timings."""

import pytest

from nst_jax.io.record import timing


def test_steps_per_second_leave_out_the_first_chunk_of_every_scale():
    """Found by a fresh-clone trial: a two-scale run's steps_per_s counted the second scale's first chunk, which
    compiles that scale's program. By hand: scale 0 reports 5 steps at 10 s and 10 at 11 s; scale 1 (its
    compilation in the 19 s before) 15 at 30 s and 20 at 32 s: 5 + 5 steps in 1 + 2 s, 10/3 steps per second (the
    old count, (20 - 5) / (32 - 10), was 0.68)."""
    t = timing(0.0, 2.0, 35.0, [(5, 10.0, 0), (10, 11.0, 0), (15, 30.0, 1), (20, 32.0, 1)])
    assert t == {"total_s": 35.0, "startup_s": 2.0, "first_chunk_s": 10.0, "steps_s": 33.0,
                 "steps_per_s": pytest.approx(10 / 3)}
    assert timing(0.0, 1.0, 3.0, [(5, 1.5, 0), (10, 2.0, 1)])["steps_per_s"] is None  # no scale reported twice
    assert timing(0.0, 1.0, 3.0, [])["first_chunk_s"] is None
