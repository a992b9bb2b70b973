"""Binary classification metrics in MPC, named as in sklearn.metrics.

Each function takes 1-D secure fixed-point arrays of equal length (labels 0/1, e.g. the target
column and the output of ``SecureLogisticRegression.predict``), or `mpclab.blocks.RowBlocks`
of them (worked through block by block; the blocks of the two arguments need not match; a
public numpy array is accepted for either argument) and returns a secure number, or a secure
2×2 array for the confusion matrix.  Nothing is opened: the caller decides what to reveal.

The label metrics need no comparisons.  With 0/1 labels the four counts follow from three
sums, ``P = Σy``, ``P̂ = Σŷ`` and ``TP = y·ŷ`` (one secure dot product), and every metric is a
ratio of counts (one secure division).  As scikit-learn does by default (zero_division="warn"),
a ratio with a zero denominator is 0.

Ranges: the labels are 0/1 (the model's predictions are; a target column is checked by its
owner), so every count is at most n, and n must stay below 2**(l - f - 2) (2**30 for
``SecFxp(64, 32)``; checked publicly).  Scores for `roc_auc_score` must satisfy
``|s| < 2**(l - f - 3)`` (decision values of a fitted `SecureLogisticRegression` stay within
±1024, probabilities within [0, 1]).

Undefined metrics: with one class only in ``y_true`` the ROC AUC is undefined (scikit-learn
raises).  `both_classes` gives the secure bit that tells: open it first, and report the AUC as
undefined (null) if it is 0, without opening the AUC.

`roc_auc_score` counts ties as one half like scikit-learn, in one of three ways:

* ``method='histogram'`` (the default from 129 rows on): the exact AUC of the scores put on a
  scale of 2**bits steps (bits = 14: pairs whose squashed scores differ by more than ~2.4e-4
  are ordered exactly; see `mpclab.metrics.histogram` for the scale and its rounding), from a
  secret histogram of scores by class: no comparisons, time linear in n (about 400 products
  per row) and memory bounded independently of n;
* ``method='pairs'`` compares all n(n−1)/2 pairs in one batch (exact; few rounds; the default
  up to 128 rows);
* ``method='sort'`` sorts twice with Batcher's network (exact), about n·log²(n)/2 comparisons
  in about log²(n) rounds, and memory growing like n·log²(n): 10,000 rows exhausted 24 GiB
  with three local parties.  `check_roc_auc_memory` tells, before any work, whether a method
  fits a memory budget.
"""

import numpy as np
from mpyc.runtime import mpc

from mpclab.blocks import RowBlocks
from mpclab.metrics import _rows, histogram

__all__ = ['accuracy_score', 'precision_score', 'recall_score', 'f1_score', 'confusion_matrix',
           'roc_auc_score', 'both_classes', 'roc_auc_memory', 'check_roc_auc_memory',
           'AUCMemoryError']


def _conv(a, stype, n):
    """A public array as a secure one of stype (integral if all its values are integers)."""
    a = np.asarray(a, dtype=float)
    if a.shape != (n,):
        raise ValueError(f'expected two 1-D arrays of equal length, got shapes ({n},) and {a.shape}')
    return stype(a, integral=bool(np.all(a == np.round(a))))


def _aligned_pairs(y_true, y_pred):
    """[(y_true_b, y_pred_b)] secure 1-D arrays of one type over the same blocks of rows, n and
    the array type (public numpy arrays converted block by block)."""
    pairs, n, stype = _rows.aligned(y_true, y_pred)
    _check_rows(n, stype.sectype)
    pairs = [tuple(x if isinstance(x, mpc.SecureArray) else _conv(x, stype, len(x)) for x in pair)
             for pair in pairs]
    return pairs, n, stype


def _pair(y_true, y_pred):
    """Both arguments as whole secure arrays of one type (a public numpy array is converted)."""
    pairs, n, _ = _aligned_pairs(y_true, y_pred)
    if len(pairs) == 1:
        return pairs[0]
    return tuple(mpc.np_concatenate([p[i] for p in pairs]) for i in range(2))


def _check_rows(n, sectype):
    """Counts up to n must fit the type with room to spare (products of counts are scaled)."""
    if n >= 2**(sectype.bit_length - sectype.frac_length - 2):
        from mpclab.bounds import FixedPointOverflowError, type_name
        raise FixedPointOverflowError(f'{n} rows overflow {type_name(sectype)} in counts: '
                                      f'use a wider secure type')


def both_classes(y_true):
    """Secure bit: the 0/1 labels y_true hold both classes (0 < Σy < n); two comparisons.

    y_true: a 1-D secure array or RowBlocks.  Open it before `roc_auc_score` (or any metric
    that needs both classes): with one class the AUC is undefined, and should be reported so
    (e.g. null with a warning) instead of opened.
    """
    if isinstance(y_true, RowBlocks) and y_true.ndim == 1:
        blocks = y_true.blocks
        sectype = y_true.sectype.sectype
    elif isinstance(y_true, mpc.SecureArray) and len(y_true.shape) == 1:
        blocks = [y_true]
        sectype = y_true.sectype
    else:
        raise TypeError('both_classes() expects a 1-D secure array or RowBlocks')
    n = y_true.shape[0]
    _check_rows(n, sectype)
    total = sum(b.sum() for b in blocks)
    return mpc.lt(0.5, total) * mpc.lt(total, n - 0.5)


def _counts(y_true, y_pred):
    """Secure (P, P̂, TP) and the public n, summed over the blocks."""
    pairs, n, _ = _aligned_pairs(y_true, y_pred)
    P = sum(yt.sum() for yt, _ in pairs)
    Pp = sum(yp.sum() for _, yp in pairs)
    TP = sum(yt @ yp for yt, yp in pairs)
    return P, Pp, TP, n


def _bits(n):
    """k with 2**k >= n: counts up to n are divided by 2**k before any secure division."""
    return max(int(n), 1).bit_length()


def _ratio(num, den, n):
    """Secure num/den, and 0 where den == 0, for integer counts 0 <= num, den <= n.

    Both are first scaled by a public 2**-k <= 1/n (exactly: MPyC's truncation of an exact
    multiple is exact), so that the secure reciprocal of the denominator is at least 1 and
    keeps its full relative precision even for counts in the millions.
    """
    s = 2.0**-_bits(n)
    num, den = num * s, den * s
    return num / (den + mpc.is_zero(den))


def confusion_matrix(y_true, y_pred):
    """Secure 2×2 counts [[TN, FP], [FN, TP]] (rows: true label, columns: predicted)."""
    P, Pp, TP, n = _counts(y_true, y_pred)
    cm = mpc.np_fromlist([n - P - Pp + TP, Pp - TP, P - TP, TP])
    return cm.reshape(2, 2)


def accuracy_score(y_true, y_pred):
    """Secure fraction of correct labels, (TP + TN)/n."""
    P, Pp, TP, n = _counts(y_true, y_pred)
    k = _bits(n)
    return ((n - P - Pp + TP * 2) * 2.0**-k) * (2**k / n)   # 2**k/n in [1, 2): full precision


def precision_score(y_true, y_pred):
    """Secure TP/(TP + FP); 0 if nothing is predicted positive."""
    _, Pp, TP, n = _counts(y_true, y_pred)
    return _ratio(TP, Pp, n)


def recall_score(y_true, y_pred):
    """Secure TP/(TP + FN); 0 if there are no positives."""
    P, _, TP, n = _counts(y_true, y_pred)
    return _ratio(TP, P, n)


def f1_score(y_true, y_pred):
    """Secure 2TP/(2TP + FP + FN) = 2TP/(P + P̂); 0 if both are 0."""
    P, Pp, TP, n = _counts(y_true, y_pred)
    return _ratio(TP * 2, P + Pp, 2 * n)


# Pairwise comparisons are made in batches of this many pairs to bound memory
# (MPyC's comparison holds ~l objects per element).
_PAIR_BATCH = 2**14
# Bytes per party of the Batcher sort per n·log²(n)/2, calibrated on the one observation there
# is: 10,000 rows reached 8 to 12 GB per party before the kernel killed the run, so this gives
# the lower end (≈8.9 GB), an underestimate rather than a refusal of a size that would fit.
_SORT_BYTES = 4500


def _auc_pairs(y, s, scale):
    """scale·Σ_{i<j} (y_i − y_j)·sgn(s_i − s_j), from n(n−1)/2 secure signs."""
    n = y.shape[0]
    iu, ju = np.triu_indices(n, 1)
    total = 0
    for k in range(0, len(iu), _PAIR_BATCH):
        i, j = iu[k:k + _PAIR_BATCH], ju[k:k + _PAIR_BATCH]
        g = mpc.np_sgn(s[i] - s[j])          # -1, 0, 1: ties count one half below
        total = total + ((y[i] - y[j]) @ g) * scale
    return total


def _unit(y):
    """The labels as secure integers in raw units (y·2**-frac_length), exactly and for free."""
    f = y.sectype.frac_length
    if y.integral:
        return y * 2.0**-f      # MPyC shifts integral arrays locally
    return mpc.np_trunc(y, f=f)  # exact for 0/1 labels (MPyC's truncation of a multiple of 2**f)


def _sorted_rank_sum(y, s, ties_first, scale):
    """scale·Σ_k (k−1)·y_(k) over the labels sorted by score; tied positives first or last.

    The key 2s + y (or 2s + 1 − y) orders by score, and within a tie by label, because
    distinct fixed-point scores differ by at least one unit in the last place.
    """
    u = _unit(y)
    key = s * 2 + (u if not ties_first else _unit(1 - y))
    A = mpc.np_stack((key, y))
    A = mpc.np_sort(A, axis=-1, key=lambda a: a[0])
    return A[1] @ (np.arange(y.shape[0]) * scale)   # exact weights: scale is a power of two


#: largest number of rows for which 'auto' compares all pairs
PAIRS_MAX = 128


def _method(n, method):
    if method == 'auto':
        return 'pairs' if n <= PAIRS_MAX else 'histogram'
    if method not in ('pairs', 'sort', 'histogram'):
        raise ValueError(f"method must be 'auto', 'pairs', 'sort' or 'histogram', not {method!r}")
    return method


def roc_auc_score(y_true, y_score, *, method='auto', bits=histogram.DEFAULT_BITS,
                  score_range=None):
    """Secure area under the ROC curve of scores y_score for 0/1 labels y_true.

    Equals the Mann–Whitney statistic U/(P·N) with ties counted one half, as in scikit-learn.
    ``method`` is 'histogram', 'pairs', 'sort' or 'auto' ('pairs' up to 128 rows, else
    'histogram'); see the module docstring.  The arguments may be RowBlocks (all methods;
    'pairs' and 'sort' join the blocks into one array, for small n only).

    'histogram' only: ``bits`` is the resolution of the score scale (2**bits steps), and the
    scores must be decision values with ``|s| <= 1024`` (a fitted model's; mapped to (0, 1)
    by the secure sigmoid), or lie in the public ``score_range=(lo, hi)`` (e.g. (0, 1) for
    probabilities; mapped linearly).  'pairs' and 'sort': scores must satisfy
    ``|s| < 2**(l - f - 3)``.  These ranges are the caller's promise (the test suite's opening
    check catches a breach).

    With only one class in y_true the AUC is undefined (scikit-learn raises an error) and the
    secure result is meaningless (0.5 or 0): open ``both_classes(y_true)`` first and report
    the AUC as undefined if it is 0.

    What is opened: nothing of the result, which stays secret; the masked values of the
    secure operations (see `mpclab.metrics.histogram` for the histogram's).
    """
    pairs, n, stype = _aligned_pairs(y_true, y_score)
    method = _method(n, method)
    # Counts are scaled by 2**-k <= 1/n and pair counts by 2**-2k, so that they fit the
    # fixed-point range and the secure division keeps its precision (see _ratio).
    if method == 'histogram':
        parts = histogram.auc_parts(pairs, n, stype, bits, score_range)
        U2, PN = parts[0], parts[1]
        return U2 / ((PN + mpc.is_zero(PN)) * 2)
    y, s = _pair(y_true, y_score)
    k = _bits(n)
    unit = 2.0**-k
    P = y.sum() * unit
    PN = P * (n * unit - P)
    den = (PN + mpc.is_zero(PN)) * 2
    if method == 'pairs':
        # U = PN/2 + (1/2)·Σ_{i<j} (y_i − y_j)·sgn(s_i − s_j)
        return (PN + _auc_pairs(y, s, unit * unit)) / den
    # With tied positives last, U_1 = Σ_k (k−1)·y_(k) − P(P−1)/2 counts ties fully; with tied
    # positives first, U_0 counts them not at all; U = (U_0 + U_1)/2.
    U2 = (_sorted_rank_sum(y, s, False, unit * unit) + _sorted_rank_sum(y, s, True, unit * unit)
          - P * (P - unit))
    return U2 / den


class AUCMemoryError(MemoryError):
    """The chosen ROC AUC method would need more memory per party than is available."""


def roc_auc_memory(n, method='auto', parties=3):
    """Estimated peak memory in bytes per party of `roc_auc_score` on n predictions, beyond
    the inputs themselves (measured with 3 local parties at -K 42; `parties` scales the
    share traffic).

    'histogram' is bounded independently of n (one chunk of rows and the histogram), 'pairs'
    grows like n², 'sort' like n·log²(n) (MPyC's Batcher network keeps every comparison's
    intermediate values).
    """
    method = _method(n, method)
    if method == 'histogram':
        return 400 * 2**20
    if method == 'pairs':
        return int(2**20 * 20 + 6e3 * min(n * (n - 1) // 2, _PAIR_BATCH) * (1 + parties / 3))
    levels = max(int(n).bit_length(), 1)
    return int(2**20 * 50 + _SORT_BYTES * n * levels * levels * (1 + parties / 3) / 2)


def check_roc_auc_memory(n, method='auto', *, limit_bytes=None, parties=3):
    """Raise AUCMemoryError, before any work, if `roc_auc_score` on n predictions with this
    method would not fit `limit_bytes` per party (default: the memory now available on this
    machine divided by the local parties, from /proc/meminfo).

    For the program layer: call it up front with the test-set size and the method the run
    will use; the message names the sizes and the remedy.  Returns the estimate in bytes.
    """
    need = roc_auc_memory(n, method, parties)
    if limit_bytes is None:
        limit_bytes = _available_bytes() // max(parties, 1)
    if limit_bytes is not None and need > limit_bytes:
        raise AUCMemoryError(
            f'the ROC AUC of {n} predictions by the {_method(n, method)!r} method needs about '
            f'{need / 2**30:.1f} GiB per party, more than the {limit_bytes / 2**30:.1f} GiB '
            f'available: use the histogram method (the default), or a smaller test set')
    return need


def _available_bytes():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
