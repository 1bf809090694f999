"""Tests of `nst_jax.run.records`: batches joined into one run's images and history, by hand."""

import numpy as np

from nst_jax.core.objective import TERMS
from nst_jax.run.records import Batch, joined_batches, joined_histories


def _history(rows: int, jobs: int, start: float) -> dict:
    return {k: start + np.arange(rows * jobs, dtype=np.float32).reshape(rows, jobs) for k in TERMS}


def test_histories_side_by_side_and_a_short_one_padded_with_nan():
    full, short = _history(3, 2, 0.0), _history(2, 1, 100.0)  # the second batch stopped after 2 of 3 steps
    joined = joined_histories([full, short])
    assert set(joined) == set(TERMS)
    expected = np.array([[0, 1, 100], [2, 3, 101], [4, 5, np.nan]], np.float32)
    np.testing.assert_array_equal(joined["total"], expected)


def test_batches_join_in_job_order():
    image = lambda v: np.full((4, 5, 3), v, np.float32)  # noqa: E731
    a = Batch(first=0, images=np.stack([image(0.1), image(0.2)]), history=_history(3, 2, 0.0),
              image_steps=np.array([3, 3]))
    b = Batch(first=2, images=np.stack([image(0.3)]), history=_history(3, 1, 10.0), image_steps=np.array([-1]))
    images, history, steps = joined_batches([a, b])
    assert [float(im[0, 0, 0]) for im in images] == [np.float32(0.1), np.float32(0.2), np.float32(0.3)]
    np.testing.assert_array_equal(steps, [3, 3, -1])
    np.testing.assert_array_equal(history["content"][:, 2], [10, 11, 12])
