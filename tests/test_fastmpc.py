"""mpclab.fastmpc against numpy, in one process, and against MPyC's own operations with real
separate parties (3, 4, 5 and 7: degree-2t openings by all or by some parties, 3 to 35 PRSS
components), at MPyC's default -K 30 and at the -K that gives 40 bits of hiding."""

import itertools
import json
import os
import pickle
from hashlib import shake_128

import numpy as np
import pytest
from mpyc import finfields, thresha
from mpyc.runtime import mpc

from mpclab import _hooks, fastmpc, parallel_arith, security, wire
from mpclab.blocks import RowBlocks
from mpclab_testhooks import OpeningOutOfRange
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


def big_ints(rng, shape, bits):
    """Object array of random ints below 2**bits, with every limb position exercised."""
    words = [np.vectorize(int, otypes=[object])(rng.integers(0, 2**62, shape)) << (62 * i)
             for i in range(-(-bits // 62))]
    x = sum(words) % (1 << bits)
    x.flat[0] = (1 << bits) - 1      # the largest value: every limb full
    return x


@pytest.mark.parametrize('bits', [128, 140, 144, 146, 176, 200])
def test_int_matmul_t_is_exact(bits):
    """Fields of 128 bits (-K 30) up to 146 (-K 46 and more): exact, as numpy's object matmul."""
    rng = np.random.default_rng(bits)
    A, B = big_ints(rng, (1000, 5), bits), big_ints(rng, (1000, 3), bits)
    assert np.all(fastmpc._int_matmul_t(A, B, bits, block=300) == A.T @ B)
    assert np.all(fastmpc._int_matmul_t(A, A, bits) == A.T @ A)
    q, w, rows = fastmpc._limb_layout(bits)
    assert q * w >= bits and rows * 4**w <= 2**53   # a block's float64 sums are exact


def plain_masks(p, n, bits, f, t, i1, components, uci):
    """The PRSS masks computed with Python ints, element by element (the reference)."""
    b_r = (bits + 7) // 8
    b_z = (p.bit_length() + 64 + 7) // 8
    size = b_r + t * b_z
    r, r_hi = [0] * n, [0] * n
    for key, f_S in components:
        raw = shake_128(key + uci).digest(n * size)
        for e in range(n):
            x = int.from_bytes(raw[e * size:(e + 1) * size], 'little')
            R = x & ((1 << bits) - 1)
            x >>= 8 * b_r
            y = 0
            for _ in range(t):
                y = (y + (x & ((1 << 8 * b_z) - 1))) * i1
                x >>= 8 * b_z
            r[e] += (R + y) * f_S
            r_hi[e] += (R >> f) * f_S
    return np.array(r, dtype=object) % p, np.array(r_hi, dtype=object) % p


@pytest.mark.parametrize('m, t', [(1, 0), (3, 1), (5, 2), (7, 3)])
def test_prss_masks_on_limbs_are_the_plain_integer_masks(m, t, monkeypatch):
    field = mpc.SecFxp(64, 32, p=finfields.find_prime_root(64 + 32 + 42 + 2)[0]).field
    p = field.modulus
    rng = np.random.default_rng(m)
    for pid in range(m):
        components = [(rng.bytes(16), int(thresha._f_S_i(field, m, pid, S)))
                      for S in itertools.combinations(range(m), m - t) if pid in S]
        for bits, f, tz in [(136, 32, t), (136, 57, t), (2, 0, t), (p.bit_length() + 64, 0, 0),
                            (0, 0, t), (42, 0, 0)]:
            uci = rng.bytes(8)
            for n in (300, 50):      # limbs on BLAS, and Python ints for few elements
                want = plain_masks(p, n, bits, f, tz, pid + 1, components, uci)
                # the chunks only split the work: by thread, and of at most MASK_CHUNK
                for workers, most in ((1, None), (3, None), (1, 64), (3, 37)):
                    monkeypatch.setattr(mpc.options, 'workers', workers)
                    monkeypatch.setattr(parallel_arith, 'MIN_CHUNK', 7)
                    monkeypatch.setattr(parallel_arith, 'MASK_CHUNK', most)
                    got = parallel_arith.prss_masks(p, n, bits, f, tz, pid + 1, components, uci)
                    assert all(np.all(g % p == w) for g, w in zip(got, want)), (pid, bits, f, tz)


def test_limbs_round_trip():
    rng = np.random.default_rng(9)
    x = big_ints(rng, (500,), 200)
    u8 = parallel_arith.to_bytes(x, 26)
    for start, nbits, w in [(0, 200, 16), (7, 150, 16), (32, 168, 21), (3, 61, 32)]:
        limbs = parallel_arith.bit_limbs(u8, start, nbits, w)
        assert limbs.dtype == np.float64 and limbs.max() < 2**w
        back = parallel_arith.limbs_to_ints(limbs, w)
        assert np.all(back == (x >> start) % (1 << nbits))
    # carries: limbs beyond their width are added in place
    v = np.array([[2.0**40, 2.0**50 - 1, 3.0]])
    assert parallel_arith.limbs_to_ints(v)[0] == 2**40 + (2**50 - 1) * 2**16 + 3 * 2**32


@pytest.mark.parametrize('workers', [1, 2, 3])
def test_int_matmul_t_does_not_depend_on_the_threads(workers, monkeypatch):
    monkeypatch.setattr(mpc.options, 'workers', workers)
    monkeypatch.setattr(parallel_arith, 'MIN_CHUNK', 10)
    rng = np.random.default_rng(workers)
    A, B = big_ints(rng, (333, 4), 140), big_ints(rng, (333, 2), 140)
    assert np.all(parallel_arith.int_matmul_t(A, B, 140, block=100) == A.T @ B)
    assert np.all(parallel_arith.int_matmul_t(A, A, 140) == A.T @ A)


def test_matmul_t_sum_equals_matmul_t_of_the_stacked_blocks():
    rng = np.random.default_rng(10)
    A, B = rng.uniform(-1, 1, (700, 5)), rng.uniform(-2, 2, (700, 3))
    sA, sB = secret(A), secret(B)
    for rows in (700, 256, 100, 1):
        blocks = RowBlocks.from_array(sA, rows), RowBlocks.from_array(sB, rows)
        pairs = ((a, b) for a, b in zip(*blocks))       # made one block at a time
        got = reveal(fastmpc.matmul_t_sum(pairs, 32 + 3))
        np.testing.assert_allclose(got, A.T @ B / 8, atol=1e-8)
    np.testing.assert_allclose(reveal(fastmpc.matmul_t_sum([(sA, sA)])), A.T @ A, atol=1e-8)
    K = secfxp.array(np.arange(8.0).reshape(4, 2), integral=True)
    np.testing.assert_allclose(reveal(fastmpc.matmul_t_sum([(K, K), (K, K)])),
                               2 * np.arange(8.0).reshape(4, 2).T @ np.arange(8.0).reshape(4, 2))


def test_matmul_t_sum_refuses_pairs_that_do_not_add():
    a, b = secret(np.ones((4, 2))), secret(np.ones((4, 3)))
    with pytest.raises(ValueError):
        fastmpc.matmul_t_sum([])
    with pytest.raises(ValueError):
        fastmpc.matmul_t_sum([(a, secret(np.ones((3, 2))))])
    with pytest.raises(ValueError, match='does not add'):
        reveal(fastmpc.matmul_t_sum([(a, a), (a, b)]))


def test_limb_layout_keeps_eight_limbs_up_to_176_bits():
    for bits in (128, 140, 142, 144, 146, 176):
        assert fastmpc._limb_layout(bits)[0] == 8
    assert fastmpc._limb_layout(128) == (8, 16, 2**21)
    assert fastmpc._limb_layout(144) == (8, 18, 2**17)


def test_matmul_t_on_a_wide_field(monkeypatch):
    """With -K 46 SecFxp(64, 32) has a 144-bit field: matmul_t stays on BLAS and exact."""
    monkeypatch.setattr(mpc.options, 'sec_param', 46)
    wide = mpc.SecFxp(64, 32, p=finfields.find_prime_root(64 + 32 + 46 + 2)[0])
    assert wide.field.modulus.bit_length() == 144
    called = []
    monkeypatch.setattr(fastmpc, '_int_matmul_t', lambda *a, **k: called.append(1) or
                        _int_matmul_t(*a, **k))
    rng = np.random.default_rng(6)
    A = rng.uniform(-1, 1, (500, 4))
    sA = wide.array(A, integral=False)
    got = np.asarray(mpc.run(mpc.output(fastmpc.matmul_t(sA, sA))), dtype=float)
    assert called and np.abs(got - A.T @ A).max() < 1e-8
    got = np.asarray(mpc.run(mpc.output(fastmpc.sigmoid(wide.array(A[:, 0] * 50, integral=False)))))
    assert np.abs(got - exact_sigmoid(A[:, 0] * 50)).max() < 1e-6


_int_matmul_t = fastmpc._int_matmul_t


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


def test_sigmoid_beyond_its_domain_is_caught():
    """Beyond |z| = 1024 the internal values outgrow their masks: the opening check says so."""
    reveal(fastmpc.sigmoid(secret([1024.0, -1024.0])))
    with pytest.raises(OpeningOutOfRange, match='fastmpc.sigmoid'):
        reveal(fastmpc.sigmoid(secret([1100.0])))


def test_sigmoid_keeps_shape():
    z = np.linspace(-5, 5, 12).reshape(3, 4)
    got = reveal(fastmpc.sigmoid(secret(z)))
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, exact_sigmoid(z), atol=1e-6)


def test_out_of_range_product_is_caught():
    """The test suite's opening check sees the unmasked product before it is masked."""
    assert _hooks.opening_checks   # installed by conftest
    a = secret([2.0**20, 1.0])
    with pytest.raises(OpeningOutOfRange, match='fastmpc.mul'):
        reveal(fastmpc.mul(a, a))   # 2**40 > 2**31: the mask would no longer hide it
    reveal(fastmpc.mul(a * 2.0**-5, a * 2.0**-5))   # 2**30 is fine


def test_hook_sees_shares_degree_and_bound(monkeypatch):
    seen = []

    async def check(field, shares, threshold, bound_bits, what):
        seen.append((len(shares), threshold, bound_bits, what))
    monkeypatch.setattr(_hooks, 'opening_checks', [check])
    a = secret(np.ones(7))
    reveal(fastmpc.trunc(a, 3))
    reveal(fastmpc.matmul_t(a.reshape(7, 1), a.reshape(7, 1)))
    assert seen == [(7, 0, 95, 'fastmpc.trunc'), (1, 0, 95, 'fastmpc.matmul_t')]


def test_truncation_is_exact_at_the_edge_of_its_range():
    """|c| just below 2**95 (a product near 2**31): no masked value wraps modulo p."""
    a = secret([2.0**15.49, -(2.0**15.49)])
    got = reveal(fastmpc.mul(a, secret([2.0**15.49, 2.0**15.49])))
    np.testing.assert_allclose(got, [2.0**30.98, -(2.0**30.98)], rtol=1e-12)


class Evil:
    def __reduce__(self):
        return os.system, ('echo pwned > /dev/null',)


def test_received_shares_are_decoded_as_plain_data_only():
    shares = np.array([3, 2**140, 5], dtype=object)
    assert np.all(fastmpc._decode_shares(wire.dumps(shares), 3) == shares)
    for bad in (pickle.dumps(Evil()), pickle.dumps(np.array([Evil()], dtype=object))):
        with pytest.raises(wire.WireError, match='os.system|posix.system|refused'):
            fastmpc._decode_shares(bad, 1)
    with pytest.raises(wire.WireError):
        fastmpc._decode_shares(wire.dumps([1, 2, 3]), 3)   # not a share array
    with pytest.raises(wire.WireError):
        fastmpc._decode_shares(wire.dumps(shares), 4)      # wrong length
    source = open(fastmpc.__file__).read()
    assert 'pickle' not in source.replace('pickle.loads', '').replace('``pickle', '')


def test_all_within():
    async def check(values, e):
        return await fastmpc.all_within(secret(values), e)
    for values, e in [([0.0, 1.0, -1.0, 0.5], 3), ([2.0**30, -5.0], 33), (np.full((3, 2), 96.0), 9)]:
        assert mpc.run(check(values, e))
    for values, e in [([0.0, 8.0], 3), ([2.0**30, -5.0], 10), ([1e-9, -4096.0], 12)]:
        assert not mpc.run(check(values, e))
    with pytest.raises(ValueError):
        mpc.run(check([1.0], 0))


def test_range_checks_of_row_blocks_give_one_result():
    rng = np.random.default_rng(11)
    X = rng.uniform(-1, 1, (500, 3)) * [1, 100, 1000]
    for rows in (500, 128, 77):
        blocks = RowBlocks.from_array(secret(X), rows)
        assert mpc.run(fastmpc.norms_within(blocks, 2.0**29))
        assert not mpc.run(fastmpc.norms_within(blocks, 2.0**27))
        assert mpc.run(fastmpc.all_within(blocks, 13))
        assert not mpc.run(fastmpc.all_within(blocks, 9))    # one entry beyond 2**9 suffices
    one = X.copy()
    one[450, 0] = 40.0
    assert not mpc.run(fastmpc.all_within(RowBlocks.from_array(secret(one[:, :1]), 100), 5))


def test_norms_within():
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (500, 3)) * [1, 100, 1000]     # column sums of squares up to 2**27.3
    assert mpc.run(fastmpc.norms_within(secret(X), 2.0**29))
    assert not mpc.run(fastmpc.norms_within(secret(X), 2.0**27))
    assert not mpc.run(fastmpc.norms_within(secret(np.full((4, 2), 2.0**30)), 2.0**31))
    with pytest.raises(ValueError):
        mpc.run(fastmpc.norms_within(secret(np.ones(3)), 1.0))


@pytest.mark.slow
@pytest.mark.parametrize('parties, K', [(3, 30), (3, 42), (4, 42), (5, 44), (7, 46)])
def test_separate_parties_agree_with_mpyc(parties, K):
    out = run_local(PARTY, ['--seed', str(parties), '-K', str(K)], parties, timeout=240,
                    mpyc_args=('-W', '1'))   # the parties share this machine's cores
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res['parties'] == parties
    # Every masked opening is in the ledger, with k - ceil(log2 C(m, t)) bits of hiding.
    assert res['mpc_openings'] == res['expected_openings']
    assert res['mpc_mask_bits'] == security.mask_bits(K, parties, (parties - 1) // 2)
    assert res['mpc_mask_bits'] >= (40 if K > 30 else 24)
    assert res['field_bits'] == 96 + K + 2 and res['within'] == [True, False]
    assert res['norms'] == [True, False]
    for name, diff in res['vs_mpyc'].items():
        assert diff <= 4 * ULP * (1 + parties), name   # both round probabilistically
    for name, diff in res['vs_exact'].items():
        assert diff < (1e-6 if name == 'sigmoid' else 1e-7), name
    assert abs(res['mean_error_mul']) < 1e-9


@pytest.mark.slow
def test_out_of_range_product_is_caught_with_separate_parties():
    out = run_local(PARTY, ['--overflow'], 3, timeout=120, mpyc_args=('-W', '1'))
    assert out.returncode != 0
    log = out.stdout + out.stderr   # MPyC logs the failed coroutine to stdout
    assert 'OpeningOutOfRange: fastmpc.mul' in log
