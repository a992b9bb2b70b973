"""Regression metrics in MPC, named as in sklearn.metrics.

Each function takes 1-D secure fixed-point arrays (a public numpy array is accepted for one of
the two) and returns a secure number; nothing is opened.  Sums of squares are formed by one
dot product each (one truncation), so ``Σ (y − y_pred)²`` and ``Σ (y − mean(y))²`` must stay
below 2**31 for ``SecFxp(64, 32)``: scale y if needed.  Absolute values cost one secure
comparison per element.
"""

import numpy as np
from mpyc.runtime import mpc

__all__ = ['mean_squared_error', 'mean_absolute_error', 'r2_score', 'lasso_objective']


def _residual(y_true, y_pred):
    if y_true.shape != y_pred.shape or len(y_true.shape) != 1:
        raise ValueError(f'expected two 1-D arrays of equal length, got {y_true.shape} and {y_pred.shape}')
    return y_true - y_pred


def mean_squared_error(y_true, y_pred):
    """Secure (1/n)·Σ (y_true − y_pred)²."""
    e = _residual(y_true, y_pred)
    return (e @ e) * (1 / e.shape[0])


def mean_absolute_error(y_true, y_pred):
    """Secure (1/n)·Σ |y_true − y_pred| (n secure comparisons)."""
    e = _residual(y_true, y_pred)
    return mpc.np_absolute(e).sum() * (1 / e.shape[0])


def r2_score(y_true, y_pred):
    """Secure coefficient of determination 1 − SS_res/SS_tot (one secure division).

    Unlike scikit-learn there is no special case for a constant y_true (SS_tot = 0): the
    result is then meaningless.
    """
    e = _residual(y_true, y_pred)
    yc = y_true - y_true.sum() * (1 / e.shape[0])
    return 1 - (e @ e) / (yc @ yc)


def lasso_objective(y_true, y_pred, coef, alpha):
    """Secure Lasso objective (1/(2n))·Σ (y_true − y_pred)² + alpha·Σ |coef| (d comparisons)."""
    l1 = np.abs(coef).sum() if isinstance(coef, np.ndarray) else mpc.np_absolute(coef).sum()
    return mean_squared_error(y_true, y_pred) * 0.5 + l1 * alpha
