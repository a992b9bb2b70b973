"""mpclab.fastmpc against numpy, in one process, and against MPyC's own operations with real
separate parties (3, 4 and 5: degree-2t openings by all or by some parties, 3 or 10 PRSS
components)."""

import json
import os

import numpy as np
import pytest
from mpyc.runtime import mpc

from mpclab import fastmpc
from partyrun import ROOT, run_local

secfxp = mpc.SecFxp(64, 32)
ULP = 2.0**-32
PARTY = os.path.join(ROOT, 'tests', 'programs', 'fastmpc_party.py')


def secret(a):
    return secfxp.array(np.asarray(a, dtype=float), integral=False)


def reveal(x):
    return np.asarray(mpc.run(mpc.output(x)), dtype=float)


def exact_sigmoid(z):
    return np.exp(-np.logaddexp(0, -np.asarray(z, dtype=float)))


def test_trunc_rounds_within_one_unit_and_unbiased():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1000, 1000, 4000)
    for f in (1, 7, 32, 40):
        got = reveal(fastmpc.trunc(secret(a), f))
        want = np.round(a * 2**32) / 2**f / 2**32   # the raw value divided by 2**f
        assert np.abs(got - want).max() <= ULP
    got = reveal(fastmpc.trunc(secret(a), 5))
    assert abs(np.mean(got - np.round(a * 2**32) / 32 / 2**32)) < 0.05 * ULP  # probabilistic rounding


@pytest.mark.parametrize('shape_a, shape_b',
                         [((50,), (50,)), ((7, 3), (3,)), ((40, 1), (40, 6)), ((5,), (1,))])
def test_mul_broadcasts_like_numpy(shape_a, shape_b):
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-30, 30, shape_a), rng.uniform(-2, 2, shape_b)
    got = reveal(fastmpc.mul(secret(a), secret(b)))
    assert got.shape == np.broadcast_shapes(shape_a, shape_b)
    np.testing.assert_allclose(got, a * b, atol=1e-8)


def test_mul_with_extra_shift_divides():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-30, 30, 100), rng.uniform(-2, 2, 100)
    np.testing.assert_allclose(reveal(fastmpc.mul(secret(a), secret(b), 32 + 5)), a * b / 32, atol=1e-8)


def test_matmul_and_matmul_t():
    rng = np.random.default_rng(3)
    A, B, w = rng.uniform(-1, 1, (300, 6)), rng.uniform(-1, 1, (300, 2)), rng.uniform(-4, 4, 6)
    np.testing.assert_allclose(reveal(fastmpc.matmul(secret(A), secret(w))), A @ w, atol=1e-8)
    np.testing.assert_allclose(reveal(fastmpc.matmul(secret(A.T), secret(B))), A.T @ B, atol=1e-8)
    np.testing.assert_allclose(reveal(fastmpc.matmul_t(secret(A), secret(B))), A.T @ B, atol=1e-8)
    sA = secret(A)
    np.testing.assert_allclose(reveal(fastmpc.matmul_t(sA, sA, 32 + 8)), A.T @ A / 256, atol=1e-8)


def test_int_matmul_t_is_exact():
    rng = np.random.default_rng(4)
    big = lambda *s: np.vectorize(int, otypes=[object])(rng.integers(0, 2**62, s)) * 2**66 \
        + np.vectorize(int, otypes=[object])(rng.integers(0, 2**62, s))
    A, B = big(1000, 5), big(1000, 3)
    assert np.all(fastmpc._int_matmul_t(A, B, block=300) == A.T @ B)
    assert np.all(fastmpc._int_matmul_t(A, A) == A.T @ A)


def test_integral_operands_use_mpyc_products():
    k = secfxp.array(np.arange(-3.0, 5.0), integral=True)
    x = np.linspace(-2, 2, 8)
    np.testing.assert_allclose(reveal(fastmpc.mul(k, secret(x))), np.arange(-3, 5) * x, atol=1e-9)
    np.testing.assert_allclose(reveal(fastmpc.mul(k, k, 32 + 1)), np.arange(-3, 5)**2 / 2, atol=1e-9)
    K = secfxp.array(np.arange(8.0).reshape(4, 2), integral=True)
    np.testing.assert_allclose(reveal(fastmpc.matmul_t(K, secret(x.reshape(4, 2)))),
                               np.arange(8.0).reshape(4, 2).T @ x.reshape(4, 2), atol=1e-9)


def test_bad_arguments():
    with pytest.raises(ValueError):
        fastmpc.sigmoid(secfxp.array(np.arange(4.0), integral=True))
    with pytest.raises(ValueError):
        fastmpc.matmul(secret(np.ones(4)), secret(np.ones(4)))  # 1-D @ 1-D
    with pytest.raises(ValueError):
        fastmpc.mul(secret(np.ones(4)), secret(np.ones(4)), 31)  # below the fractional length
    with pytest.raises(ValueError):
        fastmpc.matmul_t(secret(np.ones((4, 2))), secret(np.ones((3, 2))))


def test_sigmoid_plain_twin_is_accurate():
    z = np.linspace(-60, 60, 200_001)
    assert np.abs(fastmpc.sigmoid_plain(z) - exact_sigmoid(z)).max() < 1e-8
    big = np.array([-1024.0, -1000.0, -300.0, 300.0, 1000.0, 1024.0])
    np.testing.assert_allclose(fastmpc.sigmoid_plain(big), exact_sigmoid(big), atol=1e-12)


def test_sigmoid_plan_is_settled():
    start, steps, final = fastmpc._PLAN
    assert len(steps) == fastmpc._K and fastmpc._ZMAX == 1024
    assert final == pytest.approx([3, -3, 1], abs=0.1)  # 1/s near s = 1: the ranges converged


def test_sigmoid_secure():
    rng = np.random.default_rng(5)
    z = np.concatenate([rng.uniform(-40, 40, 2000), rng.normal(0, 3, 2000),
                        [0.0, 1e-9, -1e-9, 1000.0, -1000.0, 1024.0, -1024.0]])
    got = reveal(fastmpc.sigmoid(secret(z)))
    assert np.abs(got - exact_sigmoid(z)).max() < 1e-6
    shifted = secret(z / 2**fastmpc.SIGMOID_SHIFT)
    assert np.abs(reveal(fastmpc.sigmoid(shifted, shifted=True)) - exact_sigmoid(z)).max() < 1e-5


def test_sigmoid_keeps_shape():
    z = np.linspace(-5, 5, 12).reshape(3, 4)
    got = reveal(fastmpc.sigmoid(secret(z)))
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, exact_sigmoid(z), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize('parties', [3, 4, 5])
def test_separate_parties_agree_with_mpyc(parties):
    out = run_local(PARTY, ['--seed', str(parties)], parties, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res['parties'] == parties
    for name, diff in res['vs_mpyc'].items():
        assert diff <= 4 * ULP * (1 + parties), name   # both round probabilistically
    for name, diff in res['vs_exact'].items():
        assert diff < (1e-6 if name == 'sigmoid' else 1e-7), name
    assert abs(res['mean_error_mul']) < 1e-9
