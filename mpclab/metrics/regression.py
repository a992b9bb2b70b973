"""Regression metrics in MPC, named as in sklearn.metrics.

Each function takes 1-D secure fixed-point arrays, or `mpclab.blocks.RowBlocks` of them (worked
through block by block), a public numpy array is accepted for one of the two, and returns a
secure number; nothing is opened.  Absolute values cost one secure
comparison per element.

Ranges.  A sum of squares is formed by one dot product (one truncation, whose input must stay
below 2**(l - f - 1), 2**31 for ``SecFxp(64, 32)``).  Give ``bound``, a public bound on
``|y_true|`` and ``|y_pred|`` (``2**int_bits`` of the input format bounds a target; for secret
predictions use `checked_bound` below): the differences are then scaled by a public power of
two before they are squared, just enough that the sums stay in range for n rows, and a bound
that no scaling can accommodate (``(2·bound)**2 >= 2**(l - f - 1)``: the mean squared error
itself might not fit) raises `mpclab.bounds.FixedPointOverflowError` before anything is
computed.
Without ``bound`` nothing is scaled and the caller promises ``n·max(y_true − y_pred)² < 2**31``
and ``n·max(y_true − mean)² < 2**31`` (true for data scaled to [0, 1] up to 2**29 rows).

When no public bound is known (a model's predictions are secret), `checked_bound` establishes
one, ``2**14``, securely at a small cost (one opened bit; `mpclab.fastmpc.all_within`):

    bound = await checked_bound(y_true, y_pred)      # None if some value is too large
    mse = mean_squared_error(y_true, y_pred, bound=bound)
"""

import math

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc
from mpclab.blocks import BLOCK_ROWS, as_blocks
from mpclab.metrics import _rows
from mpclab.bounds import MARGIN, FixedPointOverflowError, limit, type_name

__all__ = ['mean_squared_error', 'mean_absolute_error', 'mean_absolute_error_in_blocks',
           'r2_score', 'lasso_objective', 'checked_bound', 'CHECKED_BITS']

#: `checked_bound` establishes |y| < 2**CHECKED_BITS (passes for |y| <= 3072).
CHECKED_BITS = 14


def _residuals(y_true, y_pred):
    """[(y_true_b, e_b)] with e = y_true − y_pred per block, n, and the secure type."""
    pairs, n, stype = _rows.aligned(y_true, y_pred)
    return [(yt, yt - yp) for yt, yp in pairs], n, stype.sectype


def _shift(n, sectype, bound):
    """k such that n values below 2·bound, divided by 2**k, have a sum of squares in range."""
    if bound is None:
        return 0
    lim = limit(sectype) / (1 + MARGIN)
    if (2 * bound)**2 >= lim:
        raise FixedPointOverflowError(f'values up to {bound:g} overflow {type_name(sectype)} in '
                                      f'a mean squared error: scale the data')
    return max(0, math.ceil(math.log2(n * (2 * bound)**2 / lim) / 2))


def _scaled(x, k):
    if not k:
        return x
    return x * 2.0**-k if isinstance(x, np.ndarray) else fastmpc.trunc(x, k)


def _square_sum(parts, k):
    """Σ over blocks of x_b·x_b for x_b scaled by 2**-k."""
    total = 0
    for x in parts:
        x = _scaled(x, k)
        total = total + x @ x
    return total


def mean_squared_error(y_true, y_pred, *, bound=None):
    """Secure (1/n)·Σ (y_true − y_pred)²."""
    pairs, n, sectype = _residuals(y_true, y_pred)
    k = _shift(n, sectype, bound)
    return _square_sum((e for _, e in pairs), k) * (4**k / n)


def mean_absolute_error(y_true, y_pred, *, bound=None):
    """Secure (1/n)·Σ |y_true − y_pred| (n secure comparisons)."""
    pairs, n, sectype = _residuals(y_true, y_pred)
    _shift(n, sectype, bound)
    return sum(mpc.np_absolute(e).sum() for _, e in pairs) * (1 / n)


async def mean_absolute_error_in_blocks(y_true, y_pred, *, bound=None, block_rows=BLOCK_ROWS):
    """`mean_absolute_error`, a block of `block_rows` rows at a time (a coroutine); same value.

    Each block's comparisons finish before the next block's start, so that their working
    memory (MPyC's random bits and intermediate arrays, several kB per row) is one block's:
    on 200k test rows the comparisons would otherwise all be in flight at once.
    """
    if isinstance(y_true, mpc.SecureArray):
        y_true = as_blocks(y_true, block_rows)
    pairs, n, sectype = _residuals(y_true, y_pred)
    _shift(n, sectype, bound)
    total = 0
    for _, e in pairs:
        total = total + mpc.np_absolute(e).sum()
        await mpc.gather(total)   # not opened: waits for this block's shares
    return total * (1 / n)


def r2_score(y_true, y_pred, *, bound=None):
    """Secure coefficient of determination 1 − SS_res/SS_tot (one secure division).

    Unlike scikit-learn there is no special case for a constant y_true (SS_tot = 0): the
    result is then meaningless.  The secure reciprocal of SS_tot has absolute precision
    2**-frac_length, so for SS_tot near 2**20 (after the scaling by ``bound``) only ~12 bits of
    the ratio remain: scale y when that matters.
    """
    pairs, n, sectype = _residuals(y_true, y_pred)
    k = _shift(n, sectype, bound)
    mean = sum(yt.sum() for yt, _ in pairs) * (1 / n)
    ss_res = _square_sum((e for _, e in pairs), k)
    ss_tot = _square_sum((yt - mean for yt, _ in pairs), k)
    return 1 - ss_res / ss_tot


def lasso_objective(y_true, y_pred, coef, alpha, *, bound=None):
    """Secure Lasso objective (1/(2n))·Σ (y_true − y_pred)² + alpha·Σ |coef| (d comparisons)."""
    l1 = np.abs(coef).sum() if isinstance(coef, np.ndarray) else mpc.np_absolute(coef).sum()
    return mean_squared_error(y_true, y_pred, bound=bound) * 0.5 + l1 * alpha


async def checked_bound(y_true, y_pred):
    """Public bound 2**14 on |y_true| and |y_pred|, established securely, or None (coroutine).

    What is opened: one bit, "every |y_true_i| and |y_pred_i| is below 2**14" (True whenever
    all are at most 3072), and a random seed per block independent of the data.  With the bound, the
    metrics here stay in range for up to 2**29 rows.
    """
    pairs, _, _ = _rows.aligned(y_true, y_pred)
    public = [x for pair in pairs for x in pair if not isinstance(x, mpc.SecureArray)]
    if any(np.abs(a).max(initial=0) >= 2.0**CHECKED_BITS for a in public):
        return None
    blocks = ([x for x in pair if isinstance(x, mpc.SecureArray)] for pair in pairs)
    both = (xs[0] if len(xs) == 1 else mpc.np_concatenate(xs) for xs in blocks)
    return 2.0**CHECKED_BITS if await fastmpc.all_within(both, CHECKED_BITS) else None
