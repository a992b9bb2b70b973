"""Binary classification metrics in MPC, named as in sklearn.metrics.

Each function takes 1-D secure fixed-point arrays of equal length (labels 0/1, e.g. the target
column and the output of ``SecureLogisticRegression.predict``; a public numpy array is accepted
for either argument) and returns a secure number, or a secure 2×2 array for the confusion
matrix.  Nothing is opened: the caller decides what to reveal.

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

`roc_auc_score` compares scores, counting ties as one half like scikit-learn, in one of two
exact ways: ``method='pairs'`` compares all n(n−1)/2 pairs in one batch (few rounds; fine up to
a few hundred rows), ``method='sort'`` sorts twice with Batcher's network, about n·log²(n)/2
comparisons in about log²(n) rounds of comparisons (fewer comparisons from ~150 rows on).
Neither is meant for tens of thousands of rows: evaluate the AUC on a test sample.
"""

import numpy as np
from mpyc.runtime import mpc

__all__ = ['accuracy_score', 'precision_score', 'recall_score', 'f1_score', 'confusion_matrix',
           'roc_auc_score', 'both_classes']


def _pair(y_true, y_pred):
    """Both arguments as secure arrays of one type (a public numpy array is converted)."""
    secure = [a for a in (y_true, y_pred) if isinstance(a, mpc.SecureArray)]
    if not secure:
        raise TypeError('at least one argument must be a secure array')
    stype = type(secure[0])

    def conv(a):
        if isinstance(a, mpc.SecureArray):
            return a
        a = np.asarray(a, dtype=float)
        return stype(a, integral=bool(np.all(a == np.round(a))))
    y_true, y_pred = conv(y_true), conv(y_pred)
    if y_true.shape != y_pred.shape or len(y_true.shape) != 1:
        raise ValueError(f'expected two 1-D arrays of equal length, got {y_true.shape} and {y_pred.shape}')
    _check_rows(y_true)
    return y_true, y_pred


def _check_rows(y):
    """Counts up to n must fit the type with room to spare (products of counts are scaled)."""
    sectype = y.sectype
    if y.shape[0] >= 2**(sectype.bit_length - sectype.frac_length - 2):
        from mpclab.bounds import FixedPointOverflowError, type_name
        raise FixedPointOverflowError(f'{y.shape[0]} rows overflow {type_name(sectype)} in counts: '
                                      f'use a wider secure type')


def both_classes(y_true):
    """Secure bit: the 0/1 labels y_true hold both classes (0 < Σy < n); two comparisons.

    Open it before `roc_auc_score` (or any metric that needs both classes): with one class the
    AUC is undefined, and should be reported so (e.g. null with a warning) instead of opened.
    """
    if not isinstance(y_true, mpc.SecureArray) or len(y_true.shape) != 1:
        raise TypeError('both_classes() expects a 1-D secure array')
    _check_rows(y_true)
    n = y_true.shape[0]
    total = y_true.sum()
    return mpc.lt(0.5, total) * mpc.lt(total, n - 0.5)


def _counts(y_true, y_pred):
    """Secure (P, P̂, TP) and the public n."""
    y_true, y_pred = _pair(y_true, y_pred)
    return y_true.sum(), y_pred.sum(), y_true @ y_pred, y_true.shape[0]


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


def roc_auc_score(y_true, y_score, *, method='auto'):
    """Secure area under the ROC curve of scores y_score for 0/1 labels y_true.

    Equals the Mann–Whitney statistic U/(P·N) with ties counted one half, as in scikit-learn.
    ``method`` is 'pairs', 'sort' or 'auto' ('pairs' up to 128 rows).

    With only one class in y_true the AUC is undefined (scikit-learn raises an error) and the
    secure result is meaningless (0.5 or 0): open ``both_classes(y_true)`` first and report
    the AUC as undefined if it is 0.  Scores must satisfy ``|s| < 2**(l - f - 3)``.
    """
    y, s = _pair(y_true, y_score)
    n = y.shape[0]
    if method == 'auto':
        method = 'pairs' if n <= 128 else 'sort'
    if method not in ('pairs', 'sort'):
        raise ValueError(f"method must be 'auto', 'pairs' or 'sort', not {method!r}")
    # Counts are scaled by 2**-k <= 1/n and pair counts by 2**-2k, so that they fit the
    # fixed-point range and the secure division keeps its precision (see _ratio).
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
