"""Faster fixed-point primitives for MPyC 0.11 secure fixed-point arrays.

MPyC's own truncation (used by every product of two fixed-point arrays) draws ``f`` secret
random *bits* per element, and each random bit costs a pseudorandom sharing, an opening and
a modular square root.  For ``SecFxp(64, 32)`` that is 32 bits per product, which makes a
secure multiply cost ~0.7 ms per element with three parties.  Probabilistic truncation
(Catrina and Saxena, FC 2010) needs no bits: a mask ``r = r_lo + 2**f * r_hi`` with
``r_lo`` uniform modulo ``2**f`` suffices.  Pseudorandom secret sharing (PRSS) gives such
masks without interaction, because every replicated component may be drawn uniformly from
``[0, 2**f)``.  Their sum then lies in ``[0, d * 2**f)`` for ``d = comb(m, t)`` components:
uniform modulo ``2**f`` (so ``c mod 2**f`` hides the low bits) but up to ``d`` units too
large, so the result may be off by a few units in the last place (ulp), centred so that the
error has mean zero.  With 32 fractional bits that is ~1e-9, far below the other errors.

A product and its truncation are fused into a single opening: the degree-2t product shares
are masked with a degree-2t sharing of ``r`` (its degree-t PRSS sharing plus a pseudorandom
sharing of zero of degree 2t, as MPyC does for its random bits), the masked value is opened,
and the degree-t result is ``(c - c mod 2**f) / 2**f - r_hi``.  So a fixed-point product
costs one round and no resharing, no random bits and no modular square roots.

On top of these: `matmul_t` (``AᵀB`` with a long inner dimension, the local products done
exactly on BLAS via 16-bit limbs) and `sigmoid` (products only, no comparisons; see below).

Measured with 3 local parties on 2 cores, 20000 elements of ``SecFxp(64, 32)`` (quiet
machine; ``python experiments/bench_logistic.py --primitives 20000 -M3``): MPyC's ``a * b``
0.36 ms per element, `mul` 0.0025–0.003 ms; MPyC's ``np_trunc(a, 8)`` 0.079 ms, `trunc`
0.0018 ms; MPyC's ``a < b`` 0.89 ms; `sigmoid` 0.12 ms.  The remaining cost is Python-side
big-integer work on the masks (PRF output to ints, multiplying by the PRSS coefficients),
about 3 µs per element and party.

Everything here works on MPyC secure fixed-point arrays and returns them, so the functions
mix freely with MPyC's own operations.  With ``--no-prss`` (no PRSS keys) the functions fall
back to MPyC's operations.

The functions rely on MPyC 0.11 internals (``mpc._prss_keys``, ``mpc._prss_uci``,
``thresha._f_S_i``), which is why the project pins ``mpyc==0.11``.
"""

import math
import pickle
from asyncio import Future
from hashlib import shake_128

import numpy as np
from mpyc import asyncoro, thresha
from mpyc.runtime import mpc
from threadpoolctl import threadpool_limits

__all__ = ['available', 'trunc', 'mul', 'matmul', 'matmul_t', 'sigmoid', 'sigmoid_plain',
           'SIGMOID_SHIFT']


def available():
    """True if the fast primitives can run (PRSS keys exist); else MPyC's are used."""
    return not mpc.options.no_prss


def _ints(raw, n, size):
    """n little-endian Python ints (object array) of `size` bytes each from the bytes raw."""
    fb = int.from_bytes
    x = np.empty(n, dtype=object)
    x[:] = [fb(raw[j:j + size], 'little') for j in range(0, n * size, size)]
    return x


def _masks(field, n, bits, f, zero):
    """PRSS shares of this party for a truncation mask, optionally plus a sharing of zero.

    Return (r, r_hi): degree-t shares of r, the sum of the d = comb(m, t) components R_S each
    uniform in [0, 2**bits), plus (if zero) degree-2t shares of zero; and degree-t shares of
    r_hi, the sum of the components R_S >> f.  So r = r_lo + 2**f * r_hi with r_lo uniform
    modulo 2**f and below d * 2**f.
    """
    m = len(mpc.parties)
    t = mpc.threshold if zero else 0
    i1 = mpc.pid + 1
    uci = mpc._prss_uci()
    b_r = (bits + 7) // 8
    b_z = (field.modulus.bit_length() + 64 + 7) // 8  # extra bits make values mod p uniform
    size = b_r + t * b_z
    r = r_hi = 0
    for subset, key in mpc._prss_keys.items():
        f_S_i = thresha._f_S_i(field, m, mpc.pid, subset)
        # One int per element holds this component's mask and its zero-sharing coefficients.
        X = _ints(shake_128(key + uci).digest(n * size), n, size)
        R = X & ((1 << bits) - 1)
        r_hi += (R >> f) * f_S_i
        if t:
            # f_S(x) * sum_j c_j x^j: degree 2t and zero at x = 0, as MPyC's PRZS
            X >>= 8 * b_r
            y = 0
            for j in range(t):
                c = X & ((1 << 8 * b_z) - 1) if j < t - 1 else X
                y = (y + c) * i1
                X >>= 8 * b_z
            R += y
        r += R * f_S_i
    return r, r_hi


def _lagrange0(k):
    """Integer Lagrange coefficients at 0 for the points 1, 2, ..., k."""
    return [(-1)**(j - 1) * math.comb(k, j) for j in range(1, k + 1)]


@asyncoro.mpc_coro
async def _open(field, x, threshold):
    """Open the shared values x (flat object array) of the given degree to all parties.

    Parties 0..threshold send their shares to everyone, so every party recombines the same
    consecutive points 1..threshold+1, whose Lagrange coefficients are small integers.
    """
    await mpc.returnType(Future)
    if threshold == 0:
        return x % field.modulus
    m = len(mpc.parties)
    i = mpc.pid
    senders = range(threshold + 1)
    if i in senders:
        data = pickle.dumps(x)
        for j in range(m):
            if j != i:
                mpc._send_message(j, data)
    shares = [mpc._receive_message(j) for j in senders if j != i]
    shares = await mpc.gather(shares)
    shares = [pickle.loads(s) for s in shares]
    if i in senders:
        shares.insert(i, x)
    y = 0
    for c, s in zip(_lagrange0(threshold + 1), shares):
        y = y + s * c
    return y % field.modulus


async def _trunc_raw(field, c, f, L, degree2):
    """Shares of round((signed c) / 2**f), from shares c (flat object array, any ints).

    The shared values must satisfy |c| < 2**(L-1), and 0 <= f < L.
    If degree2, c holds shares of degree 2t (products); the result has degree t either way.
    Returns a flat object array of field values.
    """
    n = len(c)
    k = mpc.options.sec_param
    p = field.modulus
    d = math.comb(len(mpc.parties), mpc.threshold)
    bits = k + L - (d - 1).bit_length()
    r, r_hi = _masks(field, n, bits, f, degree2)
    # Centre the rounding error: the d components add (d-1)/2 ulp on average.
    offset = (1 << (L - 1)) - ((d - 1) << f) // 2
    masked = (c + r + offset) % p
    threshold = 2 * mpc.threshold if degree2 else mpc.threshold
    masked = await _open(field, masked, threshold)
    return ((masked >> f) - r_hi - (1 << (L - 1 - f))) % p


def _rettype(a, b):
    shape = np.broadcast_shapes(a.shape, b.shape)
    return type(a), shape


def _dims(sectype):
    return sectype.field, sectype.frac_length, sectype.bit_length + sectype.frac_length


@asyncoro.mpc_coro
async def _trunc(a, f):
    stype = type(a)
    await mpc.returnType((stype, False, a.shape))
    field, _, L = _dims(stype.sectype)
    a = await mpc.gather(a)
    y = await _trunc_raw(field, a.value.reshape(-1), f, L, False)
    return field.array(y.reshape(a.shape), check=False)


def trunc(a, f=None):
    """Probabilistic truncation of a secure fixed-point array: divide by ``2**f``, rounded.

    With the default f (the fractional length) this divides the raw value, i.e. the result
    represents ``a / 2**frac_length``; any f in [0, 2*frac_length) works.
    """
    f = a.sectype.frac_length if f is None else f
    if not available():
        return mpc.np_trunc(a, f=f)
    return _trunc(a, f)


async def _gather_operands(a, b):
    """Both operands' shares, gathering a squared operand once."""
    if a is b:
        a = await mpc.gather(a)
        return a, a
    return await mpc.gather(a, b)


@asyncoro.mpc_coro
async def _mul(a, b, f):
    stype, shape = _rettype(a, b)
    await mpc.returnType((stype, False, shape))
    field, _, L = _dims(stype.sectype)
    a, b = await _gather_operands(a, b)
    c = np.broadcast_to(a.value * b.value, shape).reshape(-1)
    y = await _trunc_raw(field, c, f, L, mpc.threshold > 0)
    return field.array(y.reshape(shape), check=False)


def _shift(f, a):
    """The truncation shift f (default: a's fractional length), checked."""
    frac = a.sectype.frac_length
    f = frac if f is None else f
    if not frac <= f < a.sectype.bit_length + frac:
        raise ValueError(f'shift f={f} outside [{frac}, {a.sectype.bit_length + frac})')
    return f


def _divided(c, f):
    """MPyC's product c divided further by 2**(f - frac_length)."""
    extra = f - c.sectype.frac_length
    if not extra:
        return c
    return trunc(c, extra) if available() else mpc.np_trunc(c, f=extra)


def mul(a, b, f=None):
    """Elementwise product (with broadcasting) of two secure fixed-point arrays, one round.

    With ``f > frac_length`` the product is divided by ``2**(f - frac_length)`` as well, at
    no extra cost.  If an operand is integral no truncation is needed and MPyC's product is
    used.
    """
    f = _shift(f, a)
    if a.integral or b.integral or not available():
        return _divided(a * b, f)
    return _mul(a, b, f)


@asyncoro.mpc_coro
async def _matmul(A, B, f):
    stype = type(A)
    shape = np._matmul_shape(A.shape, B.shape)  # set by mpyc.numpy
    await mpc.returnType((stype, False, shape))
    field, _, L = _dims(stype.sectype)
    A, B = await mpc.gather(A, B)
    c = np.asarray(A.value @ B.value).reshape(-1)
    y = await _trunc_raw(field, c, f, L, mpc.threshold > 0)
    return field.array(y.reshape(shape), check=False)


def matmul(A, B, f=None):
    """Matrix product ``A @ B`` of secure fixed-point arrays (not both 1-D), one round.

    With ``f > frac_length`` the product is divided by ``2**(f - frac_length)`` as well.
    With an integral operand MPyC's product is used.
    """
    if np._matmul_shape(A.shape, B.shape) is None:
        raise ValueError('matmul() of two 1-D arrays: reshape one of them to 2-D')
    f = _shift(f, A)
    if A.integral or B.integral or not available():
        return _divided(A @ B, f)
    return _matmul(A, B, f)


# --- Sigmoid -------------------------------------------------------------------------------
#
# MPyC 0.11 has no secure exp, and a secure comparison costs as much as ~100 products here, so
# the sigmoid is built from products alone.  With y = z / 2**(K+1) and w = y**2, the pair
#     u = 3 + 3y + w,   v = 3 - 3y + w      (both > 0 for every y)
# has u / v = exp(2y) up to a relative error ~(2y)**5 / 720 (the [2/2] Pade approximant).
# Squaring both K times gives u / v = exp(z), and sigma(z) = u / (u + v).  Only the ratio
# matters, so u and v may be multiplied by any common positive factor: first by a quadratic
# in w close to 1 / (3 + w) (as u + v = 2(3 + w)), then after every squaring by a quadratic
# in s = u**2 + v**2 close to 1 / s.  Both keep u + v near 1 without changing the ratio.  The
# range of u + v is tracked publicly, step by step, from the input range |y| <= _YMAX.  A
# final quadratic plus one Newton step divides u by u + v.
# Accuracy ~1e-7 (plus fixed-point rounding) for |z| <= _ZMAX; beyond _ZMAX the tracked
# ranges no longer hold and the result is meaningless.  Cost: 38 products per element in 24
# rounds, no comparisons.

_K = 6                            # squarings
_YMAX = 8.0                       # input range of the start pair, |y| <= _YMAX
_ZMAX = _YMAX * 2**(_K + 1)       # = 1024, the supported range of z
SIGMOID_SHIFT = _K + 1            # sigmoid(y, shifted=True) expects y = z / 2**SIGMOID_SHIFT
_G = 24                           # fractional bits of the normalising coefficients


def _recip_quadratic(lo, hi, offset=0.0):
    """Quadratic q(x) ~ 1/s for s = x + offset in [lo, hi] (Chebyshev nodes), rounded.

    Only IEEE-754 arithmetic and sqrt are used, so every party computes identical constants.
    Return the coefficients (c0, c1, c2) of q in x, as multiples of 2**-_G, and the range of
    s * q(s - offset) on [lo, hi].
    """
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    h = half * math.sqrt(3) / 2
    x0, x1, x2 = mid - h - offset, mid - offset, mid + h - offset
    y0, y1, y2 = 1 / (x0 + offset), 1 / (x1 + offset), 1 / (x2 + offset)
    d01 = (y1 - y0) / (x1 - x0)
    d12 = (y2 - y1) / (x2 - x1)
    d012 = (d12 - d01) / (x2 - x0)
    # q(x) = y0 + d01 (x - x0) + d012 (x - x0)(x - x1)
    c = [round(ci * 2**_G) / 2**_G for ci in
         (y0 - d01 * x0 + d012 * x0 * x1, d01 - d012 * (x0 + x1), d012)]
    # s q(x) with s = x + o is the cubic c2 x^3 + (c1 + o c2) x^2 + (c0 + o c1) x + o c0;
    # its extremes lie at the ends or where the derivative vanishes.
    o = offset
    a3, a2, a1 = c[2], c[1] + o * c[2], c[0] + o * c[1]
    cand = [lo - o, hi - o]
    disc = a2 * a2 - 3 * a3 * a1
    if a3 != 0 and disc >= 0:
        for sgn in (-1, 1):
            x = (-a2 + sgn * math.sqrt(disc)) / (3 * a3)
            if lo - o < x < hi - o:
                cand.append(x)
    vals = [(x + o) * (c[0] + c[1] * x + c[2] * x * x) for x in cand]
    margin = 1e-6  # absorbs fixed-point rounding of s and of the products
    return c, min(vals) * (1 - margin), max(vals) * (1 + margin)


def _sigmoid_plan():
    """Public normalising quadratics: for the start pair, the K squarings and the division."""
    start, lo, hi = _recip_quadratic(3.0, 3.0 + _YMAX**2, 3.0)  # u + v = 2(3 + w), w = s - 3
    lo, hi = 2 * lo, 2 * hi
    steps = []
    for _ in range(_K):
        c, lo, hi = _recip_quadratic(lo * lo / 2, hi * hi)  # u^2 + v^2 in [(u+v)^2/2, (u+v)^2]
        steps.append(c)
    final, _, _ = _recip_quadratic(lo, hi)
    if not 0.9 < lo < hi < 1.1:
        raise ArithmeticError('sigmoid normalisation does not settle')  # not for these constants
    return start, steps, final


_PLAN = _sigmoid_plan()


def sigmoid_plain(z):
    """Float64 twin of `sigmoid` (same algorithm, no fixed-point rounding), for testing."""
    y = np.asarray(z, dtype=float) / 2**SIGMOID_SHIFT
    w = y * y
    (a0, a1, a2), steps, (c0, c1, c2) = _PLAN
    lam = a0 + a1 * w + a2 * w * w
    u, v = lam * (3 + 3 * y + w), lam * (3 - 3 * y + w)
    for a0, a1, a2 in steps:
        u, v = u * u, v * v
        s = u + v
        lam = a0 + a1 * s + a2 * s * s
        u, v = lam * u, lam * v
    s = u + v
    lam = c0 + c1 * s + c2 * s * s
    return u * lam * (2 - s * lam)


@asyncoro.mpc_coro
async def _sigmoid(y):
    stype = type(y)
    await mpc.returnType((stype, False, y.shape))
    field, f, L = _dims(stype.sectype)
    p = field.modulus
    one = 1 << f
    degree2 = mpc.threshold > 0

    async def products(a, b, shift=f):
        return await _trunc_raw(field, a * b, shift, L, degree2)

    def quadratic(c, x, x2):
        """Shares of c0 + c1 x + c2 x^2 with f + _G fractional bits (local)."""
        return round(c[0] * 2**(f + _G)) + round(c[1] * 2**_G) * x + round(c[2] * 2**_G) * x2

    y = await mpc.gather(y)
    shape = y.shape
    y = y.value.reshape(-1)
    n = len(y)
    start, steps, final = _PLAN
    w = await products(y, y)
    w2 = await products(w, w)
    lam = quadratic(start, w, w2)
    uv = np.concatenate(((3 * one + 3 * y + w) % p, (3 * one - 3 * y + w) % p))
    uv = await products(np.concatenate((lam, lam)), uv, f + _G)
    for c in steps:
        uv = await products(uv, uv)
        s = (uv[:n] + uv[n:]) % p
        lam = quadratic(c, s, await products(s, s))
        uv = await products(np.concatenate((lam, lam)), uv, f + _G)
    u = uv[:n]
    s = (u + uv[n:]) % p
    lam = quadratic(final, s, await products(s, s))
    ab = await products(np.concatenate((lam, lam)), np.concatenate((u, s)), f + _G)
    sig = await products(ab[:n], 2 * one - ab[n:])  # Newton: u lam (2 - s lam)
    return field.array(sig.reshape(shape), check=False)


def sigmoid(z, shifted=False):
    """Secure logistic function 1 / (1 + exp(-z)) of a secure fixed-point array.

    Absolute error about 1e-7 for |z| <= 1024 (meaningless beyond), using 38 secure products
    per element in 24 rounds and no comparisons.  With shifted=True, z must hold
    ``z / 2**SIGMOID_SHIFT`` instead (e.g. from ``matmul(X, w, f=frac_length + SIGMOID_SHIFT)``),
    saving a round.
    """
    if z.integral:
        raise ValueError('sigmoid() expects a non-integral secure fixed-point array')
    if not shifted:
        z = trunc(z, SIGMOID_SHIFT)
    return _sigmoid(z) if available() else _sigmoid_mpyc(z)


def _sigmoid_mpyc(y):
    """The same algorithm with MPyC's own operations (for --no-prss; many times slower)."""
    start, steps, final = _PLAN

    def quadratic(c, x):
        return c[0] + x * c[1] + (x * x) * c[2]
    w = y * y
    lam = quadratic(start, w)
    u, v = lam * (3 + y * 3 + w), lam * (3 - y * 3 + w)
    for c in steps:
        u, v = u * u, v * v
        lam = quadratic(c, u + v)
        u, v = lam * u, lam * v
    s = u + v
    lam = quadratic(final, s)
    return (u * lam) * (2 - s * lam)


# --- Transposed products AᵀB with long inner dimension -------------------------------------

def _limbs(v):
    """Split ints in [0, 2**128) (object array (n, m)) into 16-bit limbs: float64 (n, 8m)."""
    n, m = v.shape
    halves = ((v & (2**64 - 1)).astype(np.uint64), (v >> 64).astype(np.uint64))
    mask = np.uint64(0xFFFF)
    limbs = [(h >> np.uint64(16 * j)) & mask for h in halves for j in range(4)]
    return np.stack(limbs, axis=-1).astype(np.float64).reshape(n, 8 * m)


def _int_matmul_t(A, B, block=2**20):
    """Exact AᵀB for object arrays A (n, a), B (n, b) of ints in [0, 2**128), on BLAS.

    Every int is split into eight 16-bit limbs held in float64; a sum of limb products over
    at most 2**20 rows stays below 2**52, so each float matrix product is exact.  Much faster
    than numpy's object matmul when n is large.
    """
    n, a = A.shape
    b = B.shape[1]
    P = np.zeros((8 * a, 8 * b), dtype=object)
    # One BLAS thread: the parties already share the cores, and OpenBLAS's spinning threads
    # slow a loaded machine down by orders of magnitude.
    with threadpool_limits(1):
        for i in range(0, n, block):
            LA = _limbs(A[i:i + block])
            LB = LA if B is A else _limbs(B[i:i + block])
            P += (LA.T @ LB).astype(np.int64).astype(object)
    P = P.reshape(a, 8, b, 8)
    out = np.zeros((a, b), dtype=object)
    for i in range(8):
        for j in range(8):
            out += P[:, i, :, j] << (16 * (i + j))
    return out


@asyncoro.mpc_coro
async def _matmul_t(A, B, f):
    stype = type(A)
    shape = (A.shape[1], B.shape[1])
    await mpc.returnType((stype, False, shape))
    field, _, L = _dims(stype.sectype)
    A, B = await _gather_operands(A, B)
    c = _int_matmul_t(A.value, B.value).reshape(-1) % field.modulus
    y = await _trunc_raw(field, c, f, L, mpc.threshold > 0)
    return field.array(y.reshape(shape), check=False)


def matmul_t(A, B, f=None):
    """``A.T @ B`` for secure fixed-point arrays A (n, a) and B (n, b), one round.

    Meant for long inner dimensions (Gram matrices, gradients): the local products run on
    BLAS.  With ``f > frac_length`` the result is divided by ``2**(f - frac_length)`` too.
    """
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(f'matmul_t() needs 2-D arrays with equal rows, not {A.shape}, {B.shape}')
    f = _shift(f, A)
    if A.integral or B.integral or not available() or A.sectype.field.modulus.bit_length() > 128:
        return _divided(A.T @ B, f)
    return _matmul_t(A, B, f)
