"""Secure regression metrics against sklearn.metrics on random data."""

import numpy as np
import pytest
from mpyc.runtime import mpc
from sklearn import metrics

from mpclab.blocks import RowBlocks
from mpclab.metrics.regression import (checked_bound, lasso_objective, mean_absolute_error,
                                       mean_absolute_error_in_blocks, mean_squared_error,
                                       r2_score)

secfxp = mpc.SecFxp(64, 32)
CASES = [(mean_squared_error, metrics.mean_squared_error),
         (mean_absolute_error, metrics.mean_absolute_error),
         (r2_score, metrics.r2_score)]


def secret(a):
    return secfxp.array(np.asarray(a, dtype=float), integral=False)


def opened(x):
    return float(mpc.run(mpc.output(x)))


@pytest.mark.parametrize('seed', range(3))
@pytest.mark.parametrize('ours, theirs', CASES, ids=[c[0].__name__ for c in CASES])
def test_metric_matches_sklearn(ours, theirs, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    y = rng.normal(0, rng.uniform(0.1, 10), n) + rng.normal(0, 5)
    pred = y + rng.normal(0, rng.uniform(0.01, 3), n)
    expected = theirs(y, pred)
    for a, b in [(secret(y), secret(pred)), (y, secret(pred)), (secret(y), pred)]:
        assert opened(ours(a, b)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize('block_rows', [1, 7, 1000])
def test_absolute_error_in_blocks_equals_the_one_pass_value(block_rows):
    rng = np.random.default_rng(block_rows)
    y, pred = rng.normal(0, 3, 45), rng.normal(0, 3, 45)
    one_pass = opened(mean_absolute_error(secret(y), secret(pred)))
    for a, b in [(secret(y), secret(pred)), (y, secret(pred)), (secret(y), pred)]:
        blocked = mpc.run(mean_absolute_error_in_blocks(a, b, block_rows=block_rows))
        # the same sum; the division by n rounds either way (MPyC's probabilistic truncation)
        assert opened(blocked) == pytest.approx(one_pass, abs=2**-30)
    assert one_pass == pytest.approx(metrics.mean_absolute_error(y, pred), rel=1e-6)


def test_perfect_prediction():
    y = secret(np.linspace(-3, 5, 50))
    assert opened(mean_squared_error(y, y)) == 0
    assert opened(r2_score(y, y)) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize('seed', range(2))
def test_lasso_objective(seed):
    rng = np.random.default_rng(seed)
    y, pred, coef = rng.normal(size=80), rng.normal(size=80), rng.normal(size=6)
    expected = metrics.mean_squared_error(y, pred) / 2 + 0.3 * np.abs(coef).sum()
    for c in (secret(coef), coef):
        assert opened(lasso_objective(secret(y), secret(pred), c, 0.3)) == pytest.approx(expected, rel=1e-6)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        mean_squared_error(secret(np.zeros(5)), secret(np.zeros(4)))


@pytest.mark.parametrize('ours, theirs', CASES, ids=[c[0].__name__ for c in CASES])
def test_bound_scales_large_values_into_range(ours, theirs):
    """Targets up to 2**13 (e.g. costs in dollars / 8): with their public bound the sums of
    squares are scaled before they are formed (without it they would reach 2**34 here and the
    opening check would stop the test)."""
    rng = np.random.default_rng(5)
    y = rng.uniform(0, 2**13, 300)
    pred = y + rng.normal(0, 500, 300)
    got = opened(ours(secret(y), secret(pred), bound=2**13.5))
    # r2 divides by a sum of squares near 2**20 here, whose reciprocal keeps ~12 bits
    assert got == pytest.approx(theirs(y, pred), rel=1e-5, abs=1e-4 if ours is r2_score else 0)


def test_bound_too_large_for_a_mean_squared_error():
    from mpclab.bounds import FixedPointOverflowError
    with pytest.raises(FixedPointOverflowError, match='mean squared error'):
        mean_squared_error(secret(np.zeros(3)), secret(np.zeros(3)), bound=2**15)
    assert opened(mean_squared_error(secret(np.ones(3)), np.zeros(3), bound=2**14)) == \
        pytest.approx(1, abs=1e-8)


def test_checked_bound():
    """A public bound for secret predictions: one opened bit, then the metrics scale safely."""
    rng = np.random.default_rng(6)
    y = rng.uniform(0, 3000, 500)
    pred = y + rng.normal(0, 50, 500)
    bound = mpc.run(checked_bound(secret(y), secret(pred)))
    assert bound == 2**14
    assert opened(mean_squared_error(secret(y), secret(pred), bound=bound)) == \
        pytest.approx(metrics.mean_squared_error(y, pred), rel=1e-6)
    assert mpc.run(checked_bound(secret(y), pred)) == 2**14
    assert mpc.run(checked_bound(secret(y * 100), secret(pred))) is None
    assert mpc.run(checked_bound(secret(y), pred * 100)) is None


@pytest.mark.parametrize('rows', [1000, 97, 10])
def test_metrics_of_row_blocks_match_sklearn(rows):
    rng = np.random.default_rng(5)
    y = rng.uniform(0, 1, 400)
    pred = y + rng.normal(0, 0.1, 400)
    by, bp = RowBlocks.from_array(secret(y), rows), RowBlocks.from_array(secret(pred), rows + 3)
    for ours, theirs in CASES:
        expected = theirs(y, pred)
        for a, b in [(by, bp), (by, secret(pred)), (y, bp)]:
            assert opened(ours(a, b, bound=2.0)) == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert mpc.run(checked_bound(by, bp)) == 2.0**14
    big = pred.copy()
    big[-1] = 2.0**15
    assert mpc.run(checked_bound(by, RowBlocks.from_array(secret(big), rows))) is None
