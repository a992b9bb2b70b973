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
exactly on BLAS via eight limbs of 16 to 22 bits, whatever the field size), `sigmoid`
(products only, no comparisons; see below), and two range checks that open one bit each:
`all_within` (every entry) and `norms_within` (every column's sum of squares, much cheaper).

Measured with 3 local parties on 2 cores, 20000 elements of ``SecFxp(64, 32)`` (quiet
machine; ``python experiments/bench_logistic.py --primitives 20000 -M3``): MPyC's ``a * b``
0.36 ms per element, `mul` 0.0025–0.003 ms; MPyC's ``np_trunc(a, 8)`` 0.079 ms, `trunc`
0.0018 ms; MPyC's ``a < b`` 0.89 ms; `sigmoid` 0.12 ms.  The remaining cost is Python-side
big-integer work on the masks (PRF output to ints, multiplying by the PRSS coefficients),
about 3 µs per element and party.  At ``-K 42`` (140-bit field, 40 bits of hiding) the CPU
time of these functions is the same within the noise (`mul` 0.0030 ms, `trunc` 0.0021 ms,
`sigmoid` 0.13 ms, `matmul_t` unchanged), MPyC's own operations take 15-20% more
(``--sec-params 30 42``, results/bench_logistic_primitives_k.txt).

Everything here works on MPyC secure fixed-point arrays and returns them, so the functions
mix freely with MPyC's own operations.  With ``--no-prss`` (no PRSS keys) the functions fall
back to MPyC's operations.

What an opening hides.  Every opening here is of ``c + r + o`` for shared values ``c`` with
``|c| < 2**(L-1)`` (``L = l + f`` for ``SecFxp(l, f)``, 96 for ``SecFxp(64, 32)``), a public
offset ``o`` and the PRSS mask ``r``: a sum of ``d = comb(m, t)`` components, each uniform on
``[0, 2**b)`` with ``b = k + L - bitlength(d - 1)`` (``-K k``).  Any ``t`` parties together
miss exactly one component, and ``c + o`` ranges over a window of width ``2**L``, so each
opened value is within statistical distance ``2**L / 2**b`` of a value independent of ``c``:

    bits of hiding per opened value = b - L = k - bitlength(d - 1) = k - ceil(log2 C(m, t))

(28 with 3 parties at MPyC's default ``-K 30``; 40 at ``-K 42`` with 3 or 4 parties, ``-K 44``
with 5, ``-K 46`` with 7).  Every such opening is recorded in `mpclab.security`'s ledger as
``record('mpc', n_values, bits)`` (with more than one party), and the field must hold
``c + o + r`` without wrapping: ``p > 2**(k + L + 1)``, as MPyC's fixed-point fields are.  The
range ``|c| < 2**(L-1)`` is the caller's promise: for a product of two fixed-point values it
means ``|a·b| < 2**(l - f - 1)`` (2**31), for a sum of products the same of the sum.  Before
every opening the checks in `mpclab._hooks.opening_checks` (none in a deployment; the test
suite's opens the unmasked values) are awaited with the shares of ``c``.

Shares received from other parties are decoded with `mpclab.wire.loads` (plain data only),
never with ``pickle.loads``.

The functions rely on MPyC 0.11 internals (``mpc._prss_keys``, ``mpc._prss_uci``,
``thresha._f_S_i``), which is why the project pins ``mpyc==0.11``.
"""

import math
from asyncio import Future
from hashlib import shake_128

import numpy as np
from mpyc import asyncoro, thresha
from mpyc.runtime import mpc

from mpclab import _hooks, parallel_arith, security, wire

__all__ = ['available', 'trunc', 'mul', 'matmul', 'matmul_t', 'matmul_t_sum', 'sigmoid', 'sigmoid_plain',
           'SIGMOID_SHIFT', 'SIGMOID_ZMAX', 'all_within', 'norms_within', 'hiding_bits']


def available():
    """True if the fast primitives can run (PRSS keys exist); else MPyC's are used."""
    return not mpc.options.no_prss


def _ints(raw, n, size):
    """n little-endian Python ints (object array) of `size` bytes each from the bytes raw."""
    fb = int.from_bytes
    x = np.zeros(n, dtype=object)
    if size:
        x[:] = [fb(raw[j:j + size], 'little') for j in range(0, n * size, size)]
    return x


def _masks(field, n, bits, f, zero):
    """PRSS shares of this party for a truncation mask, optionally plus a sharing of zero.

    Return (r, r_hi): degree-t shares of r, the sum of the d = comb(m, t) components R_S each
    uniform in [0, 2**bits), plus (if zero) degree-2t shares of zero; and degree-t shares of
    r_hi, the sum of the components R_S >> f.  So r = r_lo + 2**f * r_hi with r_lo uniform
    modulo 2**f and below d * 2**f.  The zero sharing is MPyC's PRZS: f_S(x)·Σ_j c_j x**j,
    degree 2t and 0 at x = 0.  The local arithmetic runs on numpy limbs and BLAS over
    `mpclab.parallel_arith.workers()` threads (`parallel_arith.prss_masks`).
    """
    m = len(mpc.parties)
    t = mpc.threshold if zero else 0
    components = [(key, int(thresha._f_S_i(field, m, mpc.pid, subset)))
                  for subset, key in mpc._prss_keys.items()]
    return parallel_arith.prss_masks(field.modulus, n, bits, f, t, mpc.pid + 1, components,
                                     mpc._prss_uci())


def _lagrange0(k):
    """Integer Lagrange coefficients at 0 for the points 1, 2, ..., k."""
    return [(-1)**(j - 1) * math.comb(k, j) for j in range(1, k + 1)]


def _decode_shares(data, n):
    """A peer's shares: a flat object array of n ints, decoded without running any code."""
    x = wire.loads(data)
    if not (isinstance(x, np.ndarray) and x.dtype == object and x.shape == (n,)):
        raise wire.WireError(f'a peer sent {type(x).__name__} where {n} shares were expected')
    return x


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
        data = wire.dumps(x)
        for j in range(m):
            if j != i:
                mpc._send_message(j, data)
    shares = [mpc._receive_message(j) for j in senders if j != i]
    shares = await mpc.gather(shares)
    shares = [_decode_shares(s, len(x)) for s in shares]
    if i in senders:
        shares.insert(i, x)
    y = 0
    for c, s in zip(_lagrange0(threshold + 1), shares):
        y = y + s * c
    return y % field.modulus


def hiding_bits():
    """Bits of statistical hiding of every masked opening here (see the module docstring)."""
    return security.mask_bits(mpc.options.sec_param, len(mpc.parties), mpc.threshold)


async def _checked(field, c, threshold, bound_bits, what):
    """Await the test hooks' range checks of the shared values c (nothing in a deployment)."""
    for check in _hooks.opening_checks:
        await check(field, c, threshold, bound_bits, what)


async def _trunc_raw(field, c, f, L, degree2, what='fastmpc'):
    """Shares of round((signed c) / 2**f), from shares c (flat object array, any ints).

    The shared values must satisfy |c| < 2**(L-1), and 0 <= f < L.
    If degree2, c holds shares of degree 2t (products); the result has degree t either way.
    With f = 0 this is an exact degree reduction.  Returns a flat object array of field values.
    """
    n = len(c)
    k = mpc.options.sec_param
    p = field.modulus
    m = len(mpc.parties)
    if p.bit_length() < k + L + 2:
        raise ValueError(f'a {p.bit_length()}-bit field is too small for masks of {k} bits '
                         f'on {L}-bit values')
    threshold = 2 * mpc.threshold if degree2 else mpc.threshold
    if _hooks.opening_checks:
        await _checked(field, c, threshold, L - 1, what)
    d = math.comb(m, mpc.threshold)
    bits = k + L - (d - 1).bit_length()
    r, r_hi = _masks(field, n, bits, f, degree2)
    # Centre the rounding error: the d components add (d-1)/2 ulp on average.  The offset
    # is raised by a whole number M of units 2**f (taken off again below), so that c + offset
    # stays non-negative for every |c| < 2**(L-1) and no masked value wraps modulo p.
    delta = ((d - 1) << f) // 2 if f else 0
    M = -(-delta >> f)
    offset = (1 << (L - 1)) + (M << f) - delta
    masked = (c + r + offset) % p
    if m > 1:
        security.record('mpc', n, k - (d - 1).bit_length())
    masked = await _open(field, masked, threshold)
    return ((masked >> f) - r_hi - (1 << (L - 1 - f)) - M) % p


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
    y = await _trunc_raw(field, a.value.reshape(-1), f, L, False, 'fastmpc.trunc')
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
    y = await _trunc_raw(field, c, f, L, mpc.threshold > 0, 'fastmpc.mul')
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
    y = await _trunc_raw(field, c, f, L, mpc.threshold > 0, 'fastmpc.matmul')
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
# ranges no longer hold: the result is meaningless and the products leave their masks' range.
# Cost: 38 products per element in 24 rounds, no comparisons.

_K = 6                            # squarings
_YMAX = 8.0                       # input range of the start pair, |y| <= _YMAX
_ZMAX = _YMAX * 2**(_K + 1)       # = 1024, the supported range of z
SIGMOID_ZMAX = _ZMAX              # sigmoid(z) needs |z| <= SIGMOID_ZMAX
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
        return await _trunc_raw(field, a * b, shift, L, degree2, 'fastmpc.sigmoid')

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

    Absolute error about 1e-7 for |z| <= SIGMOID_ZMAX = 1024, using 38 secure products per
    element in 24 rounds and no comparisons.  The range is the caller's promise: from about
    |z| = 1050 the internal values outgrow their masks (the openings would leak, not only be
    wrong).  `mpclab.models.logistic.SecureLogisticRegression` establishes it before every
    call; the test suite's opening check catches any call that breaks it.  With shifted=True, z must hold
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
#
# The local products are exact integer products of shares, on BLAS through limbs of 16 to 22
# bits held exactly in float64 (`mpclab.parallel_arith.int_matmul_t`, on up to `workers()`
# threads): 8 limbs per share at 128 to 176 bits, so the wider field of -K 42 costs smaller
# blocks of rows per float64 product, not more limbs.

_limb_layout = parallel_arith.limb_layout
_int_matmul_t = parallel_arith.int_matmul_t


def _operands(A, B):
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(f'matmul_t() needs 2-D arrays with equal rows, not {A.shape}, {B.shape}')


@asyncoro.mpc_coro
async def _matmul_t_sum(first, rest, f, what):
    stype = type(first[0])
    shape = (first[0].shape[1], first[1].shape[1])
    await mpc.returnType((stype, False, shape))
    field, _, L = _dims(stype.sectype)
    p = field.modulus
    bits = p.bit_length()
    c = 0
    for k, (A, B) in enumerate(_chain(first, rest)):
        if k:
            _operands(A, B)
            if (A.shape[1], B.shape[1]) != shape or type(A) is not stype or type(B) is not stype:
                raise ValueError(f'matmul_t_sum(): a pair of shapes {A.shape}, {B.shape} does not '
                                 f'add to {shape}')
        A, B = await _gather_operands(A, B)
        # Exact products of degree-2t shares, reduced modulo p: the sum over pairs stays exact.
        c = (c + _int_matmul_t(A.value, B.value, bits)) % p
        del A, B
    y = await _trunc_raw(field, np.asarray(c, dtype=object).reshape(-1), f, L,
                         mpc.threshold > 0, what)
    return field.array(y.reshape(shape), check=False)


def _chain(first, rest):
    yield first
    yield from rest


def matmul_t(A, B, f=None):
    """``A.T @ B`` for secure fixed-point arrays A (n, a) and B (n, b), one round.

    Meant for long inner dimensions (Gram matrices, gradients): the local products run on
    BLAS, exactly, for fields of any size.  With ``f > frac_length`` the result is divided by
    ``2**(f - frac_length)`` too.

    What is opened: the a·b entries of the product, masked (one truncation each); the sum
    must satisfy ``|AᵀB| < 2**(l - f - 1)`` (the caller's promise, see the module docstring).
    """
    _operands(A, B)
    f = _shift(f, A)
    if A.integral or B.integral or not available():
        return _divided(A.T @ B, f)
    return _matmul_t_sum((A, B), (), f, 'fastmpc.matmul_t')


def matmul_t_sum(pairs, f=None):
    """``Σ_k A_kᵀ B_k`` over pairs of secure fixed-point arrays (n_k, a), (n_k, b), one round.

    The exact local products of all pairs are added before a single truncation, so the result
    equals `matmul_t` of the pairs stacked by rows (``[A_1; A_2; …]ᵀ[B_1; B_2; …]``) without
    ever stacking them: pass a generator that makes each block's pair when asked (e.g. the
    centred rows of one block of a `mpclab.blocks.RowBlocks` table) and only one block's
    operands and limbs exist at a time.  With ``f > frac_length`` the result is divided by
    ``2**(f - frac_length)`` too.  Every pair must have the same secure type and the same
    integral flags (non-integral: the fast path; all integral: MPyC's products, summed).

    What is opened: the a·b entries of the sum, masked (one truncation each), after all pairs;
    the sum must satisfy ``|Σ_k A_kᵀB_k| < 2**(l - f - 1)`` (the caller's promise).
    """
    pairs = iter(pairs)
    try:
        first = next(pairs)
    except StopIteration:
        raise ValueError('matmul_t_sum() needs at least one pair') from None
    A, B = first
    _operands(A, B)
    f = _shift(f, A)
    if A.integral or B.integral or not available():
        total = A.T @ B
        for A, B in pairs:
            _operands(A, B)
            total = total + A.T @ B
        return _divided(total, f)
    return _matmul_t_sum(first, pairs, f, 'fastmpc.matmul_t_sum')


# --- Range check of every entry ------------------------------------------------------------

def _public_randoms(seed, field, n):
    """n field elements derived from a public seed (uniform modulo p up to 2**-64)."""
    size = (field.modulus.bit_length() + 64 + 7) // 8
    raw = shake_128(seed.to_bytes(size, 'little')).digest(n * size)
    return _ints(raw, n, size) % field.modulus


async def _is_zero_public(field, a):
    """Public bool: the degree-t shared field element a is 0 (opens a*r, r secret uniform)."""
    p = field.modulus
    t = mpc.threshold
    r, _ = _masks(field, 1, p.bit_length() + 64, 0, False)   # degree t, uniform modulo p
    z, _ = _masks(field, 1, 0, 0, True)                         # degree 2t sharing of 0
    b = await _open(field, (a * r + z) % p, 2 * t)
    return int(b[0]) == 0


def _blocks_of(a):
    """The row blocks of a secure array (itself), of a `mpclab.blocks.RowBlocks` (its blocks),
    or of an iterable of secure arrays (taken one at a time)."""
    if isinstance(a, mpc.SecureArray):
        return [a]
    return iter(a.blocks if hasattr(a, 'blocks') else a)


@asyncoro.mpc_coro
async def _all_within(blocks, e):
    await mpc.returnType(Future)
    t = mpc.threshold
    d = math.comb(len(mpc.parties), t)
    # u = round(a / 2**(e-2)) within one unit: the PRSS truncation is off by up to (d+1)/2
    # units, so it keeps g more bits, with g such that (d+1)/2 < 2**g / 4, and MPyC's exact
    # truncation (g random bits per entry: rounds to one of the two neighbours) drops them.
    g = (2 * (d + 1) - 1).bit_length()
    s = 0
    for a in blocks:
        stype = type(a)
        field, f, L = _dims(stype.sectype)
        p = field.modulus
        a = await mpc.gather(a)
        x = a.value.reshape(-1)
        v = await _trunc_raw(field, x, f + e - 2 - g, L, False, 'fastmpc.all_within')
        v = stype(field.array(v, check=False), integral=False)
        u = (await mpc.gather(mpc.np_trunc(v, f=g))).value
        u2 = await _trunc_raw(field, u * u, 0, L, t > 0, 'fastmpc.all_within')
        # u2 = u**2 exactly, below 2**(L-1) < p, so u2 (u2 - 1) = 0 iff |u| <= 1.  A random
        # public combination of these is 0 with probability 1/p unless all of them are; its
        # coefficients are drawn only now that this block's u2 are fixed.
        seed, _ = _masks(field, 1, p.bit_length() + 64, 0, False)
        seed = int((await _open(field, seed % p, t))[0])
        rho = _public_randoms(seed, field, len(x))
        s = (s + int(rho @ (u2 * (u2 - 1) % p))) % p          # degree 2t
    if t:
        s = (await mpc._reshare([field(s)]))[0].value   # MPyC's degree reduction, no mask
    return await _is_zero_public(field, s)


async def all_within(a, e):
    """True if every entry of the secure fixed-point array a has ``|a_i| < 2**e`` (coroutine).

    a may be a `mpclab.blocks.RowBlocks`, or an iterable of secure arrays (made one at a time):
    it is checked block by block, with one result.
    Conversely it is True whenever every ``|a_i| <= 1.5·2**(e-3)``; in between, either.  Its
    own openings stay in range for ``|a_i| < 2**(l - f - 1 + e)``, far beyond the type's range,
    so it can check values about which nothing is known.  Cost per entry: two masked openings
    of this module (``round(a / 2**(e-2-g))`` and a square, recorded in the ledger) and MPyC's
    truncation of ``g = 2..7`` bits (``g`` random bits), so that ``u = round(a / 2**(e-2))`` is
    off by less than one; then one zero test of ``Σ ρ_i u_i²(u_i² − 1)`` for public random
    ``ρ`` drawn after the ``u_i`` are fixed (false True with probability 1/p).

    What is opened: a uniformly random seed per block (independent of the data), and a value
    that is 0 if the check passes and uniformly random otherwise: one bit, the result.  Without
    PRSS (``--no-prss``) MPyC's comparisons are used instead (one opened bit too).
    """
    if e < 1:
        raise ValueError(f'all_within() needs e >= 1, not {e}')
    blocks = _blocks_of(a)
    if isinstance(blocks, list) and not blocks:
        return True
    if not available():
        big = 0
        for b in blocks:
            b = b.reshape(-1)
            big = big + mpc.np_sum(mpc.np_less(2.0**(e - 2), mpc.np_concatenate((b, -b))))
        return bool(await mpc.output(security.intended(mpc.is_zero(big))))
    return await _all_within(blocks, e)


@asyncoro.mpc_coro
async def _norms_within(blocks, bound):
    await mpc.returnType(Future)
    blocks = list(blocks)
    stype = type(blocks[0])
    sectype = stype.sectype
    field, f, L = _dims(sectype)
    p = field.modulus
    t = mpc.threshold
    n = sum(b.shape[0] for b in blocks)
    m = blocks[0].shape[1]
    d = math.comb(len(mpc.parties), t)
    # u = round(a·2**h) with |u| < 2**(l-f-1+h): h as large as keeps Σu² below 2**(L-1).
    h = min(f, (L - 1 - 2 * (sectype.bit_length - f - 1) - max(n - 1, 1).bit_length() - 1) // 2)
    squares = np.zeros(m, dtype=object)
    for a in blocks:
        a = await mpc.gather(a)
        u = await _trunc_raw(field, a.value.reshape(-1), f - h, L, False, 'fastmpc.norms_within')
        u = u.reshape(a.shape)
        squares = (squares + np.sum(u * u, axis=0)) % p     # exact, degree 2t
    sums = await _trunc_raw(field, squares, 0, L, t > 0, 'fastmpc.norms_within')
    # Σa² <= 2**(1-2h)·(Σu² + n·D²) for the rounding error D = (d+1)/2 of u: so Σu² below
    # T implies Σa² < bound.
    D = (d + 2) // 2
    T = math.floor(bound * 2.0**(2 * h - 1)) - n * D * D
    if T <= 0:
        return False
    s = stype(field.array(sums, check=False), integral=False)
    below = mpc.np_sgn(s - T * 2.0**-f, l=L, LT=True)
    return bool(await mpc.output(security.intended(mpc.np_all(below))))


async def norms_within(a, bound):
    """True if every column j of the 2-D secure fixed-point array a has ``Σ_i a_ij² < bound``.

    a may be a `mpclab.blocks.RowBlocks` (n, m): the sums run block by block.  A coroutine;
    conservative by up to a factor of 2 (True whenever every column's sum of squares is below
    about ``bound/2``).  Assumes only that the entries lie in the type's range,
    ``|a_ij| < 2**(l-f-1)``.  Cost: one masked opening per entry (``round(a·2**h)``, recorded in
    the ledger) and a few per column; then one comparison per column.

    What is opened: one bit, the result.  Without PRSS (``--no-prss``) MPyC's products and
    comparisons are used instead (one opened bit too).
    """
    if a.ndim != 2:
        raise ValueError(f'norms_within() needs a 2-D array, not shape {a.shape}')
    blocks = _blocks_of(a)
    if not available():
        sectype = blocks[0].sectype
        scale = 2.0**-((sectype.bit_length - sectype.frac_length) // 2)
        sums = 0
        for b in blocks:
            b = b * scale   # MPyC's products of the scaled copy stay in range
            sums = sums + (b * b).sum(axis=0)
        return bool(await mpc.output(security.intended(mpc.np_all(sums < bound * scale * scale / 2))))
    return await _norms_within(blocks, bound)
