"""Lasso regression on secret-shared data: accelerated proximal gradient on the Gram matrix.

Minimises scikit-learn's objective ``(1/(2n))·||y − Xw − b||² + alpha·||w||₁`` (intercept not
penalised) in MPC.  The data enter once, through the centred Gram matrix of ``[X, y]``: local
O(n·d²) work on BLAS and one round of truncations (`mpclab.fastmpc.matmul_t`).  Every iteration
then costs O(d²) local work, a few rounds of d products and 2d + 1 secure comparisons, whatever
n is.  Products use mpclab.fastmpc's truncation (PRSS masks, no secret random bits; results may
be off by a few units in the last place); comparisons are MPyC's.

Solver: FISTA (or plain proximal gradient, ``solver='ista'``) with a Jacobi preconditioner, so
the step for coefficient j is ``t / var_j`` and the method does not depend on the units of the
features, like coordinate descent.  The scalar ``t ≤ 1/λmax(D⁻¹G)`` comes from the data in MPC
(Wolkowicz–Styan bound from two trace moments), not from a public guess.  The soft threshold
``sign(v)·max(|v| − τ, 0)`` takes two secure comparisons per coefficient.

The Gram matrix, the solver and the range discipline are shared with the elastic net and
ridge regression (`mpclab.models.linear`, whose docstring gives the ranges in full):
SecureLasso is `SecureElasticNet` with ``l1_ratio=1``, as scikit-learn's Lasso is its
ElasticNet's.  Cross-validation of alpha: `mpclab.models.selection.SecureLassoCV`.

Calling convention (as for the other mpclab estimators): ``await model.fit(X, y)`` and
``await model.reveal(receivers)`` are coroutines, because fit opens bits; ``predict`` and
``score`` return secure values at once, as MPyC operations do.

What is opened by `fit`: as for every model of `mpclab.models.linear` (see "What is opened"
in its docstring): at most a bit for the inputs' range and one for the Gram diagonal, then per
computed iteration a range bit and, in adaptive mode, a convergence bit (hence ``n_iter_``).
`reveal` opens coef_ and intercept_ to its receivers.

Fixed-point limits (``SecFxp(64, 32)``): ``n·4**int_bits < 2**31`` (e.g. int_bits 1 up to
2**29 rows, int_bits 7 up to 2**17), the variances (times n/2**s) at most 2**12 and
``||w||₁ < B`` during the iterations.  The stopping test compares squared norms, so it cannot
resolve steps below about 2**-16 in norm.
"""

from mpclab.bounds import FixedPointOverflowError
from mpclab.models.linear import (GRAM_CHECK, GRID_RATIO, ISTA_STEP, ITERATE_MAX, MOMENTUM_BITS,  # noqa: F401
                                  LinearPlan, SecureElasticNet, _PARAMS)

__all__ = ['SecureLasso', 'FixedPointOverflowError', 'LassoPlan']


class LassoPlan(LinearPlan):
    """The public range bounds of one SecureLasso fit: `LinearPlan` with ``l1 = alpha, l2 = 0``."""

    def __init__(self, n, d, sectype, int_bits=None, alpha=1.0, solver='fista'):
        super().__init__(n, d, sectype, int_bits, l1=alpha, l2=0.0, solver=solver)


class SecureLasso(SecureElasticNet):
    __doc__ = """Lasso linear regression trained in MPC on secret-shared data.

    Minimises scikit-learn's Lasso objective ``(1/(2n))·||y − Xw − b||² + alpha·||w||₁`` (see
    the module docstring for the method, its ranges and what `fit` opens; `reveal` opens the
    model to its receivers).

    Parameters
    ----------
    alpha : float, default 1.0
        L1 penalty, scaled as in scikit-learn's Lasso.
    """ + _PARAMS

    def __init__(self, alpha=1.0, *, max_iter=1000, tol=1e-4, fit_intercept=True,
                 fixed_iterations=None, solver='fista', int_bits=None):
        super().__init__(alpha, l1_ratio=1.0, max_iter=max_iter, tol=tol,
                         fit_intercept=fit_intercept, fixed_iterations=fixed_iterations,
                         solver=solver, int_bits=int_bits)
