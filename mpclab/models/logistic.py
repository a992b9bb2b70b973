"""L2-regularised logistic regression on secret-shared data: Newton's method in MPC.

Minimises scikit-learn's objective ``0.5·||w||² + C·Σ_i log(1 + exp(−ỹ_i (x_i·w + b)))``
(labels 0/1, ỹ = 2y − 1; the intercept b is not penalised), so the solution is that of
``sklearn.linear_model.LogisticRegression(C=C)``.

Solver.  Newton's method with the exact Hessian.  Scaled by ``2**-s ≈ 1/n`` (a public power
of two, so scaling costs nothing) the gradient and Hessian are

    g = Xᵀ(p − y)/2**s + Λw,     H = XᵀWX/2**s + Λ,     Λ = diag(1/(C·2**s), …, 1/(C·2**s), 0),

with X holding a column of ones for the intercept, p = sigmoid(Xw) and W = diag(p(1 − p)).
The first step starts from w = 0, where p = 1/2 exactly: it needs no sigmoid, and its Hessian
is H0 = XᵀX/4·2**-s + Λ (the Böhning bound).  Every later step costs one pass X·w, a sigmoid
on the n decision values, n·(d+1) products for W·X and two long transposed products (on
BLAS); the (d+1)×(d+1) Hessian is inverted by Newton–Schulz iteration, matrix products only,
starting from H0⁻¹, which converges for every Hessian because p(1 − p) ≤ 1/4 means H ≤ H0.
H0 itself is inverted from I/tr(H0), the only secure division.  Newton converges
quadratically: 2–4 sigmoid passes over the rows, where the fixed Hessian bound H0 (the other
classic choice for MPC, with its single inversion) needs 10–47 of them to get within 1e-3 of
the optimum on the heart data (C = 1 to 100), and a sigmoid pass is what costs.

Per-row work uses `mpclab.fastmpc`: fixed-point products with a fused one-round probabilistic
truncation, and a comparison-free sigmoid (38 products per value, error ~1e-7 for decision
values |z| ≤ 1024).  No secure comparison is made on the rows during training.

Stopping: as scikit-learn's lbfgs, when every entry of the gradient of the objective scaled by
1/(C·n) is at most ``tol``; a last step with the previous Hessian then follows (a quadratic
model step, so the result is typically within ~1e-3 of the optimum for tol = 1e-4, closer
than scikit-learn's own default run).

Ranges (see `mpclab.bounds`).  Every value opened under a mask is bounded before it is
opened.  The public facts are n, d, C, the secure type, ``int_bits`` (every feature satisfies
``|x| < 2**int_bits``, as the agreed input format guarantees) and that the labels are 0 or 1
(checked by the labels' owner before sharing; the caller's promise in library use).  From them
follow, before anything is computed, bounds on the Gram matrix, the gradients and the
Hessians.  The Hessian's inverse is bounded as well: the intercept direction, which no penalty
bounds, gets a tiny curvature μ in the Hessians only (μ = 2**-24 for data in [0, 1]; the
gradient stays exact, so the optimum is unchanged), making ``||H⁻¹|| ≤ 1/min(1/(C·2**s), μ)``.
So every Newton step Δ = H⁻¹g is publicly bounded.  What no public fact bounds is the decision
value ``z = x·w + b`` that the sigmoid needs within ±1024: before every pass over the rows, and
for the final model, a secure check establishes ``2**int_bits·||w||₁ + |b| ≤ 1024``, which
bounds |z| for every x in the format.  If a public bound does not fit the type, `fit` raises
`FixedPointOverflowError` before computing anything; if a secure check fails, right after
opening its bit.

What is opened (to all parties), in this order, and nothing else:

* ``int_bits=None`` only: one bit, "every feature and label has ``|x| < 8``" (and a random
  seed independent of the data; `mpclab.fastmpc.all_within`), first;
* one bit, "the labels hold both classes" (``0 < Σy < n``), before any Newton step; if 0, fit
  raises `SingleClassError`;
* one range bit per Newton step, "``2**int_bits·||w||₁ + |b| ≤ 1024``" for the current w,
  before the pass over the rows that uses it, and one for the final model;
* with ``tol`` set, one bit per Newton step, "every gradient entry is below tol", and hence the
  iteration count ``n_iter_``.  With ``tol=None`` none, and exactly ``max_iter`` steps run.

Every range bit is 1 unless `fit` raises `FixedPointOverflowError` right after opening it.  The
coefficients stay secret until `reveal`.

The model's methods (`decision_function`, `predict_proba`, `predict`) stay in range for every
X whose entries satisfy ``|x| < 2**int_bits`` (for ``int_bits=None``: ``|x| < 8``).
"""

import math
import time
import warnings

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.bounds import (MARGIN, REMEDY, FixedPointOverflowError, Plan, inputs_too_large, limit,
                           require, wide_bits)
from mpclab.metrics.classification import both_classes

__all__ = ['SecureLogisticRegression', 'LogisticPlan', 'SingleClassError', 'FixedPointOverflowError',
           'predict_from_decision']

#: Inputs checked against 2**CHECKED_BITS when int_bits is None (passes data in [-1.5, 1.5]).
CHECKED_BITS = 3
#: Decision values are kept within ±ZMAX, the domain of fastmpc.sigmoid, less a margin.
ZMAX = fastmpc.SIGMOID_ZMAX * (1 - 2**-10)


class SingleClassError(ValueError):
    """The training labels hold one class only: logistic regression needs both."""


class LogisticPlan:
    """The public range bounds of one SecureLogisticRegression fit (see the module docstring).

    Raises FixedPointOverflowError at construction if the computation cannot fit the type.

    Attributes
    ----------
    input_bits : int
        J: every feature has ``|x| < 2**J`` (int_bits, or CHECKED_BITS if int_bits is None).
    check_inputs : bool
        True if J is not public: fit checks it securely first.
    label_bound : float
        Bound on |y|: 1 for the 0/1 labels of the contract, 2**J when checked.
    lam : float
        The penalty 1/(C·2**s) on the scaled objective.
    mu : float
        The curvature added to the intercept direction of every Hessian (0 without intercept).
    inverse_bound : float
        Bound on the norm of every Hessian's inverse, 1/min(lam, mu).
    """

    def __init__(self, n, d, sectype, C=1.0, int_bits=None, fit_intercept=True):
        lim = limit(sectype) / (1 + MARGIN)
        self.check_inputs = int_bits is None
        J = self.input_bits = CHECKED_BITS if int_bits is None else int_bits
        if J < 0:
            raise ValueError(f'int_bits must be non-negative, not {J}')
        self.label_bound = 2.0**J if int_bits is None else 1.0
        self.s = max(n.bit_length() - 1, 0)
        D = d + bool(fit_intercept)
        xb, yb = 2.0**J, self.label_bound
        self.lam = 1 / (C * 2**self.s)
        cause = f"C={C:g}, the inputs' range 2**{J} and {n} rows"
        plan = Plan(sectype)
        plan.need('the Gram matrix', n * xb * xb)
        plan.need('the first gradient', n * xb * (0.5 + yb))
        plan.refuse(cause, REMEDY)
        hessian = D * (n * xb * xb / 2**(self.s + 2) + self.lam)          # bounds its trace
        gradient = np.sqrt(D) * (n * xb * (1 + yb) / 2**self.s + self.lam * ZMAX)
        first = np.sqrt(D) * n * xb * (0.5 + yb) / 2**self.s
        worst = max(hessian, gradient, first)
        self.mu = 2.0**math.ceil(math.log2(4 * worst / lim)) if fit_intercept else 0.0
        self.inverse_bound = 1 / min(self.lam, self.mu) if fit_intercept else 1 / self.lam
        plan.need('the Hessian times its inverse', hessian * self.inverse_bound)
        plan.need('the Newton step', gradient * self.inverse_bound + ZMAX)
        plan.need('the first step', first * self.inverse_bound)
        plan.refuse(cause, 'lower C, ' + REMEDY)



def _ones_column(X):
    n = X.shape[0]
    return type(X)(np.ones((n, 1)), integral=False)


# Newton–Schulz steps X <- X(2I - HX) for the inverses.  From X0 = I/tr(H) the error
# 1 - λ/tr squares every step, so 40 steps reach full precision for condition numbers up to
# ~2**30 (beyond what 32 fractional bits can represent).  Every later Hessian H satisfies
# H <= H0 = XᵀX/4 + Λ because p(1-p) <= 1/4, so from X0 = H0⁻¹ the eigenvalues of X0·H lie in
# (0, 1] and 30 steps handle Hessians down to ~2**-25 of H0 in any direction.
NS_FIRST = 40
NS_NEWTON = 30


def inv_newton_schulz(H, X0, steps):
    """Secure inverse of H by Newton–Schulz iteration from X0 (needs ||I − X0·H|| < 1)."""
    D = H.shape[0]
    two = 2 * np.eye(D, dtype=int)
    X = X0
    for _ in range(steps):
        X = fastmpc.matmul(X, two - fastmpc.matmul(H, X))
    return X


def inv_spd(H):
    """Secure inverse of a symmetric positive definite secure matrix H (one secure division)."""
    D = H.shape[0]
    trace = H.reshape(D * D)[::D + 1].sum(axis=0, keepdims=True)
    X0 = (1 / trace).reshape(1, 1) * np.eye(D, dtype=int)
    return inv_newton_schulz(H, X0, NS_FIRST)


class _DomainCheck:
    """The secure range bit 2**J·||w||₁ + |b| <= ZMAX, which keeps every decision value
    x·w + b with |x_j| < 2**J within the sigmoid's domain.

    w comes from a Newton step, whose size is publicly bounded (LogisticPlan), so the
    comparisons here, on |w_j| and on the weighted sum, stay in range: the sum's with MPyC's
    wide comparison.
    """

    def __init__(self, sectype, input_bits, d, fit_intercept):
        # Integer weights (input_bits >= 0): the weighted sum needs no truncation.
        self.weights = np.array([2**input_bits] * d + [1] * bool(fit_intercept))
        self.l = wide_bits(sectype)

    async def require(self, w, step):
        negative = mpc.np_less(w, 0)           # |w_j| < 2**(l-f-1): the plan bounds every step
        absolute = w - 2 * negative * w        # exact: negative is an integral 0/1 array
        ok = mpc.sgn(absolute @ self.weights - ZMAX, l=self.l, LT=True)
        await require(ok, f'the decision values could leave ±{fastmpc.SIGMOID_ZMAX:g}, the range '
                          f'of the secure sigmoid, after Newton step {step} (nearly separable or '
                          f'badly scaled data): lower C, scale the features to [0, 1] and lower '
                          f'the integer bits, or use a wider secure type')


class SecureLogisticRegression:
    """Binary logistic regression (L2 penalty) trained in MPC on secret-shared data.

    Parameters
    ----------
    C : float, default 1.0
        Inverse regularisation strength, scaled as in scikit-learn.
    fit_intercept : bool, default True
    max_iter : int, default 25
        Maximum number of Newton steps.
    tol : float or None, default 1e-4
        Stop when every entry of the gradient of scikit-learn's scaled objective
        ``(1/n)·Σ log-loss + ||w||²/(2·C·n)`` is at most tol in magnitude, the criterion of
        scikit-learn's lbfgs solver (one opened bit per Newton step); a last step with the
        previous Hessian then follows.  None runs exactly max_iter steps and opens nothing.

    int_bits : int or None, default None
        Public bound on the features: every entry of X satisfies ``|x| < 2**int_bits``, as the
        agreed input format guarantees (`mpclab.fixedpoint.FixedPointFormat.int_bits`; 1 for
        data scaled to [0, 1]); the labels must be 0 or 1 (checked by their owner).  All range
        bounds are derived from it.  With None the bound is not public: fit checks securely
        that every feature and label has ``|x| < 8`` (one opened bit; passes for data in
        [-1.5, 1.5]) and works with that bound.

    Attributes
    ----------
    coef_ : secure array (1, d), or numpy array after `reveal` at a receiver
    intercept_ : secure array (1,), or numpy array after `reveal` (zeros without intercept)
    n_iter_ : int, public
        Newton steps taken.
    plan_ : LogisticPlan
        The public range bounds of the fit.
    timings_ : dict
        Seconds at this party in the phases 'gram' (with the checks before it), 'first_step',
        'newton'.

    Raises
    ------
    FixedPointOverflowError
        From `fit`, before anything out of range is opened, if the data or C cannot fit the
        secure type, or the model's decision values could leave ±1024 (nearly separable data
        or badly scaled features); the message names the cause and the remedy.
    SingleClassError
        From `fit`, before any Newton step, if the labels hold one class only.
    """

    def __init__(self, C=1.0, *, fit_intercept=True, max_iter=25, tol=1e-4, int_bits=None):
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.int_bits = int_bits

    async def fit(self, X, y):
        """Fit on secure fixed-point arrays X (n, d) and y (n,) with 0/1 labels; returns self.

        Every party must create X and y with the same ``integral`` flags (pass
        ``integral=False`` explicitly, also for placeholders), or the parties deadlock.
        """
        n, d = X.shape
        if y.shape != (n,):
            raise ValueError(f'y has shape {y.shape}, expected ({n},)')
        plan = self.plan_ = LogisticPlan(n, d, X.sectype, self.C, self.int_bits, self.fit_intercept)
        clock = [time.perf_counter()]
        if plan.check_inputs:
            if not await fastmpc.all_within(mpc.np_column_stack((X, y)), plan.input_bits):
                raise FixedPointOverflowError(inputs_too_large(X.sectype, n, plan.input_bits))
        if not await mpc.output(security.intended(both_classes(y))):
            raise SingleClassError('the training labels hold one class only (all 0 or all 1): '
                                   'logistic regression needs examples of both')
        Xa = mpc.np_hstack((X, _ones_column(X))) if self.fit_intercept else X
        D = Xa.shape[1]
        f = X.sectype.frac_length
        s = plan.s                                # 2**s <= n: keeps sums near means
        lam = np.full(D, plan.lam)                # the penalty, in the gradient
        if self.fit_intercept:
            lam[-1] = 0.0
        curv = np.diag(np.append(lam[:d], plan.mu) if self.fit_intercept else lam)  # in Hessians
        Y = y.reshape(n, 1)
        inside = _DomainCheck(X.sectype, plan.input_bits, d, self.fit_intercept)

        # Step 1 from w = 0: p = 1/2, H = XᵀX/4 + Λ.
        G = fastmpc.matmul_t(Xa, Xa, f + s + 2)
        r0 = fastmpc.matmul_t(Xa, 0.5 - Y, f + s).reshape(D)
        await mpc.gather(G, r0)
        clock.append(time.perf_counter())
        H0inv = inv_spd(G + curv)
        w = -fastmpc.matmul(H0inv, r0)
        await inside.require(w, 1)
        clock.append(time.perf_counter())
        self.n_iter_ = 1
        converged = False
        Hinv = H0inv
        # scikit-learn's lbfgs stops when max |gradient| <= tol for its objective scaled by
        # 1/(C n); g here is that gradient times n / 2**s.
        gtol = None if self.tol is None else self.tol * n / 2**s
        while self.n_iter_ < self.max_iter:
            z = fastmpc.matmul(Xa, w, f + fastmpc.SIGMOID_SHIFT)
            p = fastmpc.sigmoid(z, shifted=True)
            g = fastmpc.matmul_t(Xa, (p - y).reshape(n, 1), f + s).reshape(D) + w * lam
            if gtol is not None:
                small = mpc.np_less(mpc.np_concatenate((g, -g)), gtol)
                converged = bool(await mpc.output(security.intended(mpc.np_all(small))))
                if converged:
                    # Near the optimum the previous Hessian serves almost as well, so a last
                    # step skips the n·(d+1) products of a new one (it leaves ~1e-3 or less
                    # of error for tol = 1e-4, less than scikit-learn's own lbfgs run).
                    w = w - fastmpc.matmul(Hinv, g)
                    self.n_iter_ += 1
                    await inside.require(w, self.n_iter_)   # the final model's predictions
                    break
            Wt = fastmpc.mul(p, 1 - p)
            WX = fastmpc.mul(Wt.reshape(n, 1), Xa)
            H = fastmpc.matmul_t(Xa, WX, f + s) + curv
            Hinv = inv_newton_schulz(H, H0inv, NS_NEWTON)
            w = w - fastmpc.matmul(Hinv, g)
            self.n_iter_ += 1
            await inside.require(w, self.n_iter_)       # before the next pass, or predictions
        clock.append(time.perf_counter())
        if self.tol is not None and not converged:
            from sklearn.exceptions import ConvergenceWarning   # only here: keeps party start-up fast
            warnings.warn(f'SecureLogisticRegression did not converge in {self.max_iter} '
                          f'Newton steps', ConvergenceWarning)
        self.timings_ = dict(zip(['gram', 'first_step', 'newton'], np.diff(clock)))
        self.coef_ = w[:d].reshape(1, d)
        self.intercept_ = w[d:] if self.fit_intercept else type(w)(np.zeros(1), integral=False)
        # Predictions always use the secret parameters, so that every party runs the same
        # protocol even after the model was revealed to some of them only.
        self._params = (self.coef_.reshape(d), self.intercept_)
        return self

    def decision_function(self, X):
        """Secure decision values X @ coef_.T + intercept_ (shape (n,)) for a secure X (n, d)."""
        coef, intercept = self._params
        return fastmpc.matmul(X, coef) + intercept

    def predict_proba(self, X):
        """Secure class probabilities, shape (n, 2): columns P(y=0) and P(y=1)."""
        p = fastmpc.sigmoid(self.decision_function(X))
        return mpc.np_column_stack((1 - p, p))

    def predict(self, X):
        """Secure 0/1 predictions [decision value > 0] (one secure comparison per row)."""
        return predict_from_decision(self.decision_function(X))

    def score(self, X, y):
        """Secure accuracy of the predictions on (X, y)."""
        from mpclab.metrics.classification import accuracy_score
        return accuracy_score(y, self.predict(X))

    async def reveal(self, receivers=None):
        """Open coef_ and intercept_ to `receivers` (default all parties).

        At a receiver the attributes become numpy arrays (shapes (1, d) and (1,), as in
        scikit-learn) and (coef_, intercept_) is returned; elsewhere they stay secret and
        None is returned.
        """
        coef, intercept = self._params
        d = coef.shape[0]
        out = await mpc.output(security.intended(mpc.np_concatenate((coef, intercept))),
                               receivers=receivers)
        if out is None:
            return None
        out = np.asarray(out, dtype=float)
        self.coef_ = out[:d].reshape(1, d)
        self.intercept_ = out[d:]
        return self.coef_, self.intercept_


# Decision values of trained models stay far below 2**15 (training needs |z| <= 1024), so a
# copy truncated to 2**-16 resolution fits 32 bits, and comparing it costs half of MPyC's
# comparison on all 64 bits of SecFxp(64, 32).  Rows with |z| below ~2**-15 may flip, as
# fixed-point rounding may make them do anyway.
_PREDICT_SHIFT = 16
_PREDICT_BITS = 32


def predict_from_decision(z):
    """Secure 0/1 labels [z > 0] for secure decision values z with |z| < 2**15.

    The range is the caller's promise: a fitted `SecureLogisticRegression` keeps its decision
    values within ±1024 for every input in its format (its last range check), so
    ``model.predict`` always satisfies it.  Beyond 2**15 the truncation here opens values out
    of its mask's range (the test suite's opening check catches that).
    """
    zt = fastmpc.trunc(z, _PREDICT_SHIFT)
    return mpc.np_sgn(-zt, l=_PREDICT_BITS, LT=True)
