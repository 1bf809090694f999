"""Tests of `nst_jax.run.planning`: shapes per scale and batch, and multi-host shares."""

import pytest

from nst_jax.run import planning


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_process_shares_cover_the_jobs_in_order_and_balance(count):
    for n_jobs in range(10):
        shares = [planning.process_share(n_jobs, index, count) for index in range(count)]
        assert [job for share in shares for job in share] == list(range(n_jobs))  # each job once, in order
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert [list(planning.process_share(5, i, 2)) for i in range(2)] == [[0, 1, 2], [3, 4]]
    assert planning.process_share(3) == range(3)  # one process (this one) runs everything
    with pytest.raises(ValueError, match="not in"):
        planning.process_share(3, count, count)


def test_batches_end_where_the_content_shape_changes():
    """Hand-made plans (scale -> job -> (content shape, style shapes)): shapes a a b a a a, 2 jobs per batch."""
    a, b = ((24, 32), ((32, 32),)), ((32, 24), ((32, 32),))
    plans = [[a, a, b, a, a, a]]
    assert planning.batch_ranges(plans, 2) == [range(0, 2), range(2, 3), range(3, 5), range(5, 6)]
    assert planning.batch_ranges(plans, 6) == [range(0, 2), range(2, 3), range(3, 6)]
    assert planning.batch_ranges(plans, 1) == [range(j, j + 1) for j in range(6)]
    # two scales: jobs that agree at the first scale but not at the second run apart
    coarse = [((16, 16), ()), ((16, 16), ())]
    assert planning.batch_ranges([coarse, [a, b]], 2) == [range(0, 1), range(1, 2)]
    assert planning.batch_ranges([[]], 4) == []
