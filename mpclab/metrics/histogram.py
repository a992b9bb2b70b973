"""A secure histogram of scores by class, and the ROC AUC from it, in linear time and bounded memory.

The ROC AUC is the Mann–Whitney statistic: with the scores of the P positives and N negatives
put on an integer scale ``u`` of ``2**bits`` steps, and ``pos_b``, ``neg_b`` the number of
positives and negatives with ``u = b``,

    2·U = Σ_b pos_b · (2·Σ_{b' < b} neg_b' + neg_b),     AUC = U / (P·N),

ties counted one half, as scikit-learn does.  So the AUC needs the secret histogram
``(pos_b, neg_b)`` only, and that is a sum over rows, computed here chunk by chunk in bounded
memory with no comparisons and no sorting.

The scale.  A score s becomes ``v = sigmoid(s)`` (`mpclab.fastmpc.sigmoid`, for decision values
with |s| ≤ 1024, the range a fitted `SecureLogisticRegression` guarantees; order-preserving, so
the AUC is unchanged) or, with a public ``score_range=(lo, hi)``, ``v = (s − lo)/(hi − lo)``;
then ``u = round(v·(2**bits − 2m)) + m`` with a margin of m units at either end.  The rounding
is fastmpc's probabilistic truncation: u is off by at most (d+1)/2 units, d = C(m, t) PRSS
components (2 units with 3 parties), even for equal scores.  So the result is the exact AUC of
the integer scores u: pairs of rows whose v differ by more than about (d+1)·2**-bits are
ordered as their scores are, closer pairs (and equal scores) may count as a tie or in either
order.  Integral scores (an integral secure array, e.g. predicted labels) with an integer
``score_range`` of at most ``2**bits − 2m`` values are mapped exactly, ``u = (s − lo)·step + m``:
then equal scores are ties and the AUC is exact.  The error against
the exact AUC is at most the fraction of positive–negative pairs that close (with bits = 14
and 3 parties, pairs within ~2.4e-4 in v; typically an error of 1e-5 to 1e-4).

The histogram of one chunk of rows, with ``u' = 2u + y`` (the label as lowest bit, R + 1 bits
in all), split into a high digit (``bits//2`` bits) and a low digit (the rest and the label):

1. ``R + 1`` secret random bits per row (MPyC's), and the secret one-hot vectors of the random
   digits ``ρ_hi`` and ``ρ_lo`` from them (``2**k − 2`` products for a digit of k bits);
2. one opening of ``c = u' + ρ`` modulo ``2**(R+1)`` (its low bits are uniform, the carry is
   masked): the one-hot vector of ``u'``'s low digit is then the one-hot of ``ρ_lo`` rotated
   by the public ``c_lo``, and that of the high digit the one-hot of ``ρ_hi`` rotated by
   ``c_hi`` or, where the subtraction borrows, by one more; the borrow is ``[lo' > c_lo]``, a
   public mask on the low one-hot, so no product is needed;
3. the histogram is then ``Σ_rows onehot(hi)ᵀ·onehot(lo')``: one exact product of a chunk's
   (rows × 2**(bits//2)) and (rows × 2**(bits - bits//2 + 2)) share matrices on BLAS
   (`mpclab.parallel_arith.int_matmul_t`), added up exactly over all chunks.

Costs per row at bits = 14: 15 random bits, 380 products (one-hot vectors), one opening, and
about 8 Mflop of BLAS.  Memory: one chunk (`CHUNK_ROWS` rows, ~100 MB) and the histogram,
independent of the number of rows.

What is opened: per row, ``(u' + ρ) mod 2**(R+1)``, uniform and independent of the data, and
the masked carry (one masked opening, in the ledger); the masked one-hot products and counts
(fastmpc truncations); MPyC's random bits open squares of random values.  Nothing about the
data: the result (the AUC, or the histogram) stays secret.
"""

from __future__ import annotations

import math

import numpy as np
from mpyc import asyncoro
from mpyc.runtime import mpc

from mpclab import fastmpc, parallel_arith, security

__all__ = ['DEFAULT_BITS', 'CHUNK_ROWS', 'auc_parts', 'rounding_units']

#: resolution of the score scale: 2**14 steps
DEFAULT_BITS = 14
#: rows of one chunk (its one-hot vectors and products exist at the same time)
CHUNK_ROWS = 2048


def rounding_units(m: int, t: int) -> int:
    """Units of 2**-bits by which a score's rounding may be off: (d + 1)/2 for d = C(m, t)."""
    return (math.comb(m, t) + 2) // 2


def _margin() -> int:
    return rounding_units(len(mpc.parties), mpc.threshold) + 1


def _chunks(pairs):
    """(y, s) pairs of at most CHUNK_ROWS rows (views) from aligned pairs of blocks."""
    for y, s in pairs:
        for i in range(0, y.shape[0], CHUNK_ROWS):
            yield y[i:i + CHUNK_ROWS], s[i:i + CHUNK_ROWS]


async def _one_hots(field, trees):
    """The one-hot vectors of digits given by their bits: for each tree, bits (k, n) (lowest
    first, shares of 0/1) give (n, 2**k) shares, level by level with the trees side by side
    (one round per level; ``2**k − 2`` products for k bits)."""
    p = field.modulus
    degree2 = mpc.threshold > 0
    E = [np.stack([(1 - b[0]) % p, b[0]], axis=1) for b in trees]
    for j in range(1, max(len(b) for b in trees)):
        grow = [i for i, b in enumerate(trees) if j < len(b)]
        prods = [E[i] * trees[i][j][:, None] for i in grow]
        flat = np.concatenate([x.reshape(-1) for x in prods])
        # Products of 0/1 values: an exact degree reduction (shift 0), values below 2.
        flat = await fastmpc._trunc_raw(field, flat % p, 0, 2, degree2, 'histogram.one_hot')
        k = 0
        for i, x in zip(grow, prods):
            P = flat[k:k + x.size].reshape(x.shape)
            k += x.size
            E[i] = np.concatenate([(E[i] - P) % p, P], axis=1)
    return E


async def _open_low_bits(field, x, bits):
    """Public ``x mod 2**bits`` for shares x of values in [0, 2**(bits+1)), the carry masked."""
    p = field.modulus
    t = mpc.threshold
    k = mpc.options.sec_param
    d = math.comb(len(mpc.parties), t)
    if p.bit_length() < bits + k + d.bit_length() + 4:
        raise ValueError(f'a {p.bit_length()}-bit field is too small for the histogram')
    await fastmpc._checked(field, x, t, bits + 1, 'histogram.open')
    # The opened value's low bits are (u' + ρ) mod 2**bits, uniform; above them the carry
    # (0 or 1) plus a PRSS mask of d components of b bits: 2**-(b - 1) = 2**-hiding_bits.
    b = k + 1 - (d - 1).bit_length()
    r, _ = fastmpc._masks(field, len(x), b, 0, False)
    if len(mpc.parties) > 1:
        security.record('mpc', len(x), fastmpc.hiding_bits())
    c = await fastmpc._open(field, (x + (r << bits)) % p, t)
    return np.array([int(v) & ((1 << bits) - 1) for v in c], dtype=np.int64)


def _integer_range(score_range, span):
    lo, hi = score_range
    return lo == int(lo) and hi == int(hi) and 0 < hi - lo <= span


@asyncoro.mpc_coro
async def _histogram(stype, chunks, n, bits, score_range):
    """Secure histogram counts (shape (2**(bits//2), 2**(bits - bits//2 + 1))), as raw integer
    field elements: entry [h, 2l + y] counts rows with u = h·2**(bits - bits//2) + l, label y."""
    Rh = bits // 2
    Rl = bits - Rh
    Mh, Ml = 1 << Rh, 1 << (Rl + 1)
    await mpc.returnType((stype, False, (Mh, Ml)))
    field, f, L = fastmpc._dims(stype.sectype)
    p = field.modulus
    t = mpc.threshold
    margin = _margin()
    span = 2**bits - 2 * margin
    inv = pow(1 << f, -1, p)
    acc = np.zeros((Mh, Ml), dtype=object)
    h_idx, v_idx = np.arange(Mh), np.arange(Ml)
    for y, s in chunks:
        nb = y.shape[0]
        if score_range is None:
            v = (await mpc.gather(fastmpc.sigmoid(s))).value      # raw, in [0, 2**f]
            c, shift = v * span, f
        elif s.integral and _integer_range(score_range, span):
            # Integer scores on an integer range: u exactly, so equal scores stay tied.
            lo, hi = map(int, score_range)
            step = span // (hi - lo)
            c, shift = ((await mpc.gather(s)).value * inv - lo) * step, 0
        else:
            lo, hi = score_range
            g = L - 3 - f - bits                                     # precision of the slope
            slope = round(span / (hi - lo) * 2**g)
            c, shift = ((await mpc.gather(s)).value - round(lo * 2**f)) * slope, f + g
        u = (await fastmpc._trunc_raw(field, c % p, shift, L, False, 'histogram.scale')
             if shift else c % p)
        label = (await mpc.gather(y)).value * inv                    # 0/1 (raw / 2**f, exact)
        u2 = (2 * (u + margin) + label) % p                          # R + 1 bits
        rand = (await mpc.np_random_bits(field, nb * (bits + 1))).value.reshape(bits + 1, nb)
        E_lo, E_hi = await _one_hots(field, [rand[:Rl + 1], rand[Rl + 1:]])
        rho = sum(rand[j] << j for j in range(bits + 1))
        c = await _open_low_bits(field, (u2 + rho) % p, bits + 1)
        c_lo, c_hi = c & (Ml - 1), c >> (Rl + 1)
        LO = np.take_along_axis(E_lo, (c_lo[:, None] - v_idx) % Ml, axis=1)
        A = np.take_along_axis(E_hi, (c_hi[:, None] - h_idx) % Mh, axis=1)
        # Rows whose low digit exceeds c_lo borrowed: their high digit is one less, i.e. its
        # one-hot is A shifted by one, which moves their counts one row up (np.roll by -1).
        low = v_idx[None, :] <= c_lo[:, None]
        B = np.concatenate([np.where(low, LO, 0), np.where(low, 0, LO)], axis=1)
        M = parallel_arith.int_matmul_t(A, B, p.bit_length())
        acc = (acc + M[:, :Ml] + np.roll(M[:, Ml:], -1, axis=0)) % p
        del LO, A, B, M, E_lo, E_hi
    counts = await fastmpc._trunc_raw(field, acc.reshape(-1), 0, n.bit_length() + 2, t > 0,
                                      'histogram.counts')
    return field.array(counts.reshape(Mh, Ml), check=False)


@asyncoro.mpc_coro
async def _auc_parts(stype, counts, n):
    """Secure [2U/2**2k, P·N/2**2k] (k = bitlength(n)) from the histogram counts."""
    await mpc.returnType((stype, False, (2,)))
    field, f, L = fastmpc._dims(stype.sectype)
    p = field.modulus
    t = mpc.threshold
    counts = (await mpc.gather(counts)).value.reshape(-1, 2)
    neg, pos = counts[:, 0], counts[:, 1]
    # 2U = Σ_b pos_b·(2·Σ_{b'<b} neg_b' + neg_b): one dot product of secret vectors.
    weights = (2 * np.cumsum(neg) - neg) % p
    parts = np.array([int(pos @ weights) % p, int(pos.sum()) * int(neg.sum()) % p], dtype=object)
    k = max(int(n), 1).bit_length()
    if 2 * k > f:
        out = await fastmpc._trunc_raw(field, parts, 2 * k - f, L, t > 0, 'histogram.auc')
    else:
        out = await fastmpc._trunc_raw(field, parts, 0, L, t > 0, 'histogram.auc')
        out = out * (1 << (f - 2 * k)) % p
    return field.array(out, check=False)


def auc_parts(pairs, n, stype, bits=DEFAULT_BITS, score_range=None):
    """Secure [2U·2**-2k, P·N·2**-2k] (k = bitlength(n)) for aligned (labels, scores) blocks.

    pairs: (y_b, s_b) secure fixed-point arrays (1-D, 0/1 labels and scores), n rows in all;
    stype: their array type.  The AUC is the first over twice the second (see the module
    docstring for the scale of the scores).  What is opened: see the module docstring.
    """
    if not 2 <= bits <= 24:
        raise ValueError(f'bits must lie in [2, 24], not {bits}')
    if score_range is not None and not score_range[1] > score_range[0]:
        raise ValueError(f'score_range {score_range} is empty')
    counts = _histogram(stype, _chunks(pairs), n, bits, score_range)
    return _auc_parts(stype, counts, n)
