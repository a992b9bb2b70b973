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
1/(C·n) is at most ``tol``; a last step with the previous Hessian then follows.  The same
iteration in plaintext ends 2.6e-4 to 5.5e-3 from the optimum for tol = 1e-4 on
`bench_logistic`'s data (1000 × 10 to 65 536 × 30; coefficients up to 7), a tenth to a half of
scikit-learn's own default run's distance, and within 3e-6 for tol = 1e-5, one Newton pass
more (`experiments/logistic_stopping.py`, results/logistic_stopping.csv).

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
from fractions import Fraction

import numpy as np
from mpyc import asyncoro
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.blocks import BLOCK_ROWS, COMPARISON_ROWS, RowBlocks, as_blocks, one_at_a_time
from mpclab.bounds import (MARGIN, REMEDY, FixedPointOverflowError, Plan, inputs_too_large, limit,
                           require, wide_bits)
from mpclab.metrics.classification import both_classes

__all__ = ['SecureLogisticRegression', 'SecureLogisticRegressionCV', 'LogisticPlan',
           'SingleClassError', 'FixedPointOverflowError', 'predict_from_decision']
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
        plan.need('the label column', n * (0.5 + yb)**2)   # in the Gram matrix of [X, 1, 1/2 - y]
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


def _as_blocks(a, name='X'):
    """a as RowBlocks: a RowBlocks as it is, a secure array as views of BLOCK_ROWS rows."""
    if isinstance(a, RowBlocks):
        return a
    if not isinstance(a, mpc.SecureArray):
        raise TypeError(f'{name} must be a secure array or RowBlocks, not {type(a).__name__}')
    return as_blocks(a)


def _aligned(X, y):
    """[(X_b, y_b)]: the blocks of RowBlocks X with the same rows of y (views, no copies)."""
    out, start = [], 0
    for Xb in X:
        stop = start + Xb.shape[0]
        if isinstance(y, RowBlocks):
            part = y.rows(start, stop)
            yb = part.blocks[0] if len(part.blocks) == 1 else part.array()
        else:
            yb = y[start:stop]
        out.append((Xb, yb))
        start = stop
    return out


def _blocked_like(parts, X):
    """The per-block results `parts` as X is given: RowBlocks for RowBlocks, else one array."""
    if isinstance(X, RowBlocks):
        return RowBlocks(parts)
    if len(parts) == 1:
        return parts[0]
    return (mpc.np_vstack if parts[0].ndim == 2 else mpc.np_concatenate)(parts)


# Newton–Schulz steps X <- X(2I - HX) for the inverses.  From X0 = I/tr(H) the error
# 1 - λ/tr squares every step, so 40 steps reach full precision for condition numbers up to
# ~2**30 (beyond what 32 fractional bits can represent).  Every later Hessian H satisfies
# H <= H0 = XᵀX/4 + Λ because p(1-p) <= 1/4, so from X0 = H0⁻¹ the eigenvalues of X0·H lie in
# (0, 1] and 30 steps handle Hessians down to ~2**-25 of H0 in any direction.
NS_FIRST = 40
NS_NEWTON = 30

# Rows per secure product W·X of a Hessian (one truncation of rows × (d+1) products): a whole
# block's 2M products at d = 30 would hold about a gigabyte of truncation temporaries at once.
HESSIAN_ROWS = 8192


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

    w comes from a Newton step, whose size is publicly bounded (LogisticPlan), or from a warm
    start (a value of the secure type), so the comparisons here, on |w_j| and on the weighted
    sum, stay in range: the sum's with MPyC's wide comparison.
    """

    def __init__(self, sectype, input_bits, d, fit_intercept):
        # Integer weights (input_bits >= 0): the weighted sum needs no truncation.
        self.weights = np.array([2**input_bits] * d + [1] * bool(fit_intercept))
        self.l = wide_bits(sectype)

    async def require(self, w, step):
        negative = mpc.np_less(w, 0)           # |w_j| < 2**(l-f-1): the plan bounds every step
        absolute = w - 2 * negative * w        # exact: negative is an integral 0/1 array
        ok = mpc.sgn(absolute @ self.weights - ZMAX, l=self.l, LT=True)
        where = 'the warm start' if step == 0 else f'Newton step {step}'
        await require(ok, f'the decision values could leave ±{fastmpc.SIGMOID_ZMAX:g}, the range '
                          f'of the secure sigmoid, after {where} (nearly separable or '
                          f'badly scaled data): lower C, scale the features to [0, 1] and lower '
                          f'the integer bits, or use a wider secure type')


class _Rows:
    """The training rows of one fit as aligned blocks (X_b, y_b), and the first pass over them.

    ``gram`` is the augmented Gram matrix ``ZᵀZ/2**(s+2)`` of ``Z = [X, 1, 1/2 − y]`` (without
    the column of ones if there is no intercept): its top-left block is ``XaᵀXa/4·2**-s`` (the
    first Hessian less Λ) and its last column ``Xaᵀ(1/2 − y)/4·2**-s`` (the first gradient, a
    quarter of it).  One pass over the rows with one truncation per entry.
    """

    def __init__(self, X, y, fit_intercept):
        self.X = _as_blocks(X)
        self.n, self.d = self.X.shape
        if y.shape != (self.n,):
            raise ValueError(f'y has shape {y.shape}, expected ({self.n},)')
        self.pairs = _aligned(self.X, y)
        self.fit_intercept = fit_intercept

    def augment(self, Xb):
        return mpc.np_hstack((Xb, _ones_column(Xb))) if self.fit_intercept else Xb

    def gram_pairs(self, progress=None):
        for k, (Xb, yb) in enumerate(self.pairs):
            Z = mpc.np_hstack((self.augment(Xb), 0.5 - yb.reshape(yb.shape[0], 1)))
            yield Z, Z
            if progress:
                progress('Gram matrix', k + 1, len(self.pairs))

    def gram(self, f, progress=None):
        return fastmpc.matmul_t_sum(self.gram_pairs(progress), f)


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

    async def fit(self, X, y, *, coef_init=None, intercept_init=None, progress=None):
        """Fit on X (n, d) and 0/1 labels y (n,); returns self.

        X and y are secure fixed-point arrays or `mpclab.blocks.RowBlocks` (any mix; blocks of
        y need not match those of X).  Plain arrays are worked through in views of
        `BLOCK_ROWS` rows as well: every pass over the rows goes block by block, with the
        products of all blocks added exactly before one truncation per entry, so no temporary
        of the table's size is ever formed (one block's worth at a time).

        coef_init (d,) or (1, d) and intercept_init (1,), secure: start Newton's method there
        (a warm start, e.g. from the model of a nearby C) instead of at 0; one more range bit
        is opened first, the domain check of that start.

        progress: called as ``progress(stage, done, total)`` with ``('Gram matrix', b, B)``
        after each block of the first pass and ``('Newton steps', k, max_iter)`` after each
        Newton step (for a progress bar; it must not raise).

        Every party must create X and y with the same ``integral`` flags (pass
        ``integral=False`` explicitly, also for placeholders), or the parties deadlock.

        What is opened: see the module docstring.
        """
        rows = _Rows(X, y, self.fit_intercept)
        return await self._fit(rows, self._start(rows, coef_init, intercept_init), progress)

    def _start(self, rows, coef_init, intercept_init):
        """The warm start as one secure vector (d,) or (d + 1,), or None."""
        if coef_init is None:
            if intercept_init is not None:
                raise ValueError('intercept_init needs coef_init')
            return None
        coef = coef_init.reshape(rows.d)
        if not self.fit_intercept:
            return coef
        if intercept_init is None:
            intercept_init = type(coef)(np.zeros(1), integral=False)
        return mpc.np_concatenate((coef, intercept_init.reshape(1)))

    async def _fit(self, rows, w0, progress, gram=None, checks=True):
        """Fit on rows (a _Rows) from w0 (None: the first step from 0); gram: the rows'
        augmented Gram matrix if already known (scaled for these rows' s); checks=False skips
        the input and classes checks (made already on the same rows)."""
        n, d = rows.n, rows.d
        sectype = rows.X.blocks[0].sectype
        plan = self.plan_ = LogisticPlan(n, d, sectype, self.C, self.int_bits, self.fit_intercept)
        clock = [time.perf_counter()]
        if checks and plan.check_inputs:
            stacked = (mpc.np_column_stack((Xb, yb)) for Xb, yb in rows.pairs)
            if not await fastmpc.all_within(stacked, plan.input_bits):
                raise FixedPointOverflowError(inputs_too_large(sectype, n, plan.input_bits))
        if checks and not await mpc.output(security.intended(both_classes(_labels(rows)))):
            raise SingleClassError('the training labels hold one class only (all 0 or all 1): '
                                   'logistic regression needs examples of both')
        D = d + bool(self.fit_intercept)
        f = sectype.frac_length
        s = plan.s                                # 2**s <= n: keeps sums near means
        lam = np.full(D, plan.lam)                # the penalty, in the gradient
        if self.fit_intercept:
            lam[-1] = 0.0
        curv = np.diag(np.append(lam[:d], plan.mu) if self.fit_intercept else lam)  # in Hessians
        inside = _DomainCheck(sectype, plan.input_bits, d, self.fit_intercept)

        # Step 1 from w = 0: p = 1/2, H = XᵀX/4 + Λ.  Its Hessian H0 also starts every later
        # inversion, so it is needed for a warm start too.
        if gram is None:
            gram = rows.gram(f + s + 2, progress)
        G = gram[:D, :D]
        await mpc.gather(gram)
        clock.append(time.perf_counter())
        H0inv = inv_spd(G + curv)
        if w0 is None:
            w = -fastmpc.matmul(H0inv, gram[:D, D] * 4)
            self.n_iter_ = 1
        else:
            w = w0
            self.n_iter_ = 0
        await inside.require(w, self.n_iter_)
        if progress and self.n_iter_:
            progress('Newton steps', self.n_iter_, self.max_iter)
        clock.append(time.perf_counter())
        converged = False
        Hinv = H0inv
        # scikit-learn's lbfgs stops when max |gradient| <= tol for its objective scaled by
        # 1/(C n); g here is that gradient times n / 2**s.
        gtol = None if self.tol is None else self.tol * n / 2**s
        while self.n_iter_ < self.max_iter:
            probabilities = []

            def gradient_pairs():
                for Xb, yb in rows.pairs:
                    Xa = rows.augment(Xb)
                    z = fastmpc.matmul(Xa, w, f + fastmpc.SIGMOID_SHIFT)
                    p = fastmpc.sigmoid(z, shifted=True)
                    probabilities.append(p)
                    yield Xa, (p - yb).reshape(Xb.shape[0], 1)
            g = fastmpc.matmul_t_sum(gradient_pairs(), f + s).reshape(D) + w * lam
            if gtol is not None:
                small = mpc.np_less(mpc.np_concatenate((g, -g)), gtol)
                converged = bool(await mpc.output(security.intended(mpc.np_all(small))))
                if converged:
                    # Near the optimum the previous Hessian serves almost as well, so a last
                    # step skips the n·(d+1) products of a new one (what it leaves: the
                    # module docstring).
                    w = w - fastmpc.matmul(Hinv, g)
                    self.n_iter_ += 1
                    await inside.require(w, self.n_iter_)   # the final model's predictions
                    if progress:
                        progress('Newton steps', self.n_iter_, self.max_iter)
                    break
            else:
                await mpc.gather(g)          # every block's probabilities exist

            def hessian_pairs():
                for (Xb, _), p in zip(rows.pairs, probabilities):
                    Xa = rows.augment(Xb)
                    Wt = fastmpc.mul(p, 1 - p).reshape(Xb.shape[0], 1)
                    for i in range(0, Xb.shape[0], HESSIAN_ROWS):
                        Xs = Xa[i:i + HESSIAN_ROWS]
                        yield Xs, fastmpc.mul(Wt[i:i + HESSIAN_ROWS], Xs)
            H = fastmpc.matmul_t_sum(hessian_pairs(), f + s) + curv
            Hinv = inv_newton_schulz(H, H0inv, NS_NEWTON)
            w = w - fastmpc.matmul(Hinv, g)
            self.n_iter_ += 1
            await inside.require(w, self.n_iter_)       # before the next pass, or predictions
            if progress:
                progress('Newton steps', self.n_iter_, self.max_iter)
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
        self._w = w
        return self

    def decision_function(self, X):
        """Secure decision values X @ coef_.T + intercept_ (shape (n,)) for a secure X (n, d).

        For `RowBlocks` X the result is RowBlocks of the same blocks (one block at a time is
        worked on); for a secure array, one secure array.
        """
        coef, intercept = self._params
        parts = [fastmpc.matmul(Xb, coef) + intercept for Xb in _as_blocks(X)]
        return _blocked_like(parts, X)

    def predict_proba(self, X):
        """Secure class probabilities, shape (n, 2): columns P(y=0) and P(y=1) (RowBlocks for
        RowBlocks X)."""
        parts = []
        for z in _as_blocks(self.decision_function(X)):
            p = fastmpc.sigmoid(z)
            parts.append(mpc.np_column_stack((1 - p, p)))
        return _blocked_like(parts, X)

    def predict(self, X):
        """Secure 0/1 predictions [decision value > 0] (one secure comparison per row;
        RowBlocks for RowBlocks X)."""
        parts = [predict_from_decision(z) for z in _as_blocks(self.decision_function(X))]
        return _blocked_like(parts, X)

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


def _labels(rows):
    return RowBlocks([yb for _, yb in rows.pairs])


def _fold_bounds(n, K):
    """Rows [start, stop) of the K contiguous folds, as scikit-learn's KFold sizes them (the
    first n % K folds one row longer)."""
    sizes = [n // K + (k < n % K) for k in range(K)]
    edges = np.concatenate(([0], np.cumsum(sizes)))
    return [(int(edges[k]), int(edges[k + 1])) for k in range(K)]


def _except(blocks, start, stop):
    """The rows of blocks outside [start, stop), as RowBlocks (views)."""
    n = blocks.n_rows
    parts = [b for b in blocks.rows(0, start).blocks + blocks.rows(stop, n).blocks if b.shape[0]]
    return RowBlocks(parts)


@asyncoro.mpc_coro
async def _as_raw_integer(x):
    """The secure fixed-point x, whose value is an integer c, as the value c·2**-f (its raw
    field element c): an exact division by 2**f, as the field's inverse of 2**f."""
    stype = type(x)
    await mpc.returnType((stype, False, x.shape))
    field = stype.sectype.field
    x = await mpc.gather(x)
    inverse = pow(1 << stype.sectype.frac_length, -1, field.modulus)
    return field.array(x.value * inverse % field.modulus, check=False)


def _correct(y, labels):
    """Secure number of rows with label == y (both 0/1, RowBlocks or arrays), exactly:
    n − P − P̂ + 2·TP with the sums and the dot product of integral predictions exact."""
    from mpclab.metrics.classification import _counts
    P, Pp, TP, n = _counts(y, labels)
    return n - P - Pp + TP * 2


class SecureLogisticRegressionCV:
    """Logistic regression with C chosen by K-fold cross-validation, all in MPC.

    Like scikit-learn's ``LogisticRegressionCV(Cs, cv=K)`` with its default scoring, accuracy:
    fold k is the k-th contiguous block of rows (scikit-learn's unshuffled ``KFold`` sizes;
    after the secure join the rows stand in the helper's secret random order, so a fold is a
    random subset of people that no party can link to anyone).  For every fold, each C of
    `Cs` in the given order is fitted on the other K−1 folds, warm-started from the previous
    C's model on the same fold, and scored by its accuracy on the held-out fold.  The Gram
    matrix of every fold is computed once and reused for all C (the first step's Hessian
    ``XᵀX/4`` of the K−1 training folds is the sum of theirs).  The C with the best mean
    accuracy over the folds (the first of equals, as scikit-learn) is then fitted on all rows,
    warm-started from the mean of the folds' models at that C.

    Parameters
    ----------
    Cs : sequence of float, or int
        The candidates; an int k gives scikit-learn's ``np.logspace(-4, 4, k)``.
    cv : int, default 5
        K, the number of folds.
    fit_intercept, max_iter, tol, int_bits
        As for `SecureLogisticRegression`, for every fit.

    Attributes
    ----------
    Cs_ : numpy array of the candidates
    C_ : float, public: the chosen C
    mean_scores_ : numpy array, public: the mean held-out accuracy of every candidate, exact
        (computed from exact counts: ``(1/K)·Σ_k correct_k / n_k``)
    model_ : SecureLogisticRegression, fitted on all rows with C_ (its coefficients secret
        until ``await model_.reveal(...)``); coef_, intercept_, n_iter_ are the model's.

    What is opened, in this order: per fit (K·len(Cs) + 1 of them) what
    `SecureLogisticRegression.fit` opens (the classes bit, range bits, convergence bits
    with tol); then the mean held-out accuracy of every candidate, at once (so C_ is a
    public function of opened values).  The fold models and the per-fold accuracies stay
    secret; the final model is opened only if the caller reveals it.
    """

    def __init__(self, Cs=10, *, cv=5, fit_intercept=True, max_iter=25, tol=1e-4,
                 int_bits=None):
        self.Cs = Cs
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.int_bits = int_bits

    def _model(self, C):
        return SecureLogisticRegression(C, fit_intercept=self.fit_intercept, max_iter=self.max_iter,
                                        tol=self.tol, int_bits=self.int_bits)

    async def fit(self, X, y, *, progress=None):
        """Cross-validate every C, choose C_, fit `model_` on all rows; returns self.

        X (n, d), y (n,) as for `SecureLogisticRegression.fit` (secure arrays or RowBlocks).
        progress: called as ``progress('cross-validation', done, total)`` after each fit.
        """
        Cs = np.logspace(-4, 4, self.Cs) if isinstance(self.Cs, int) else np.asarray(self.Cs, float)
        self.Cs_ = Cs
        K = self.cv
        X = _as_blocks(X)
        n, d = X.shape
        if y.shape != (n,):
            raise ValueError(f'y has shape {y.shape}, expected ({n},)')
        if not 2 <= K <= n:
            raise ValueError(f'cv={K} folds of {n} rows')
        y = y if isinstance(y, RowBlocks) else RowBlocks.from_array(y, BLOCK_ROWS)
        folds = _fold_bounds(n, K)
        sectype = X.blocks[0].sectype
        f = sectype.frac_length
        # Every fold's augmented Gram matrix once, at the scale of the smallest training set;
        # a training set of K-1 folds adds them up (and halves them if its s is larger).
        s_of = [max((n - (b - a)).bit_length() - 1, 0) for a, b in folds]
        s_all = max(n.bit_length() - 1, 0)
        s0 = min(s_of)
        grams = [_Rows(X.rows(a, b), y.rows(a, b), self.fit_intercept).gram(f + s0 + 2)
                 for a, b in folds]

        def scaled(total, s):
            return fastmpc.trunc(total, s - s0) if s > s0 else total
        sizes = [b - a for a, b in folds]
        common = math.lcm(*sizes)
        total_fits, done = K * len(Cs) + 1, 0
        weighted = [0] * len(Cs)     # Σ_k correct_k · (common / n_k), exact integers
        paths = []                   # every fold's secret model along the path of Cs
        for k, (a, b) in enumerate(folds):
            rows = _Rows(_except(X, a, b), _except(y, a, b), self.fit_intercept)
            gram = scaled(sum(g for j, g in enumerate(grams) if j != k), s_of[k])
            held_X, held_y = X.rows(a, b), y.rows(a, b)
            w, path = None, []
            for i, C in enumerate(Cs):
                model = self._model(C)
                await model._fit(rows, w, None, gram, checks=not i)
                w = model._w
                path.append(w)
                labels = await one_at_a_time(model.predict, held_X, COMPARISON_ROWS)
                weighted[i] = weighted[i] + _correct(held_y, labels) * (common // sizes[k])
                done += 1
                if progress:
                    progress('cross-validation', done, total_fits)
            paths.append(path)
        raw = await mpc.output(security.intended(_as_raw_integer(mpc.np_fromlist(weighted))))
        f_scale = 2**f
        exact = [Fraction(int(round(float(v) * f_scale)), K * common) for v in raw]
        best = max(range(len(Cs)), key=lambda i: (exact[i], -i))
        self.mean_scores_ = np.array([float(v) for v in exact])
        self.C_ = float(Cs[best])
        start = paths[0][best]
        for path in paths[1:]:
            start = start + path[best]
        start = start * (1 / K)
        model = self.model_ = self._model(self.C_)
        rows = _Rows(X, y, self.fit_intercept)
        await model._fit(rows, start, None, scaled(sum(grams), s_all))
        if progress:
            progress('cross-validation', total_fits, total_fits)
        return self

    @property
    def coef_(self):
        return self.model_.coef_

    @property
    def intercept_(self):
        return self.model_.intercept_

    @property
    def n_iter_(self):
        return self.model_.n_iter_

    def decision_function(self, X):
        return self.model_.decision_function(X)

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)

    def score(self, X, y):
        return self.model_.score(X, y)

    async def reveal(self, receivers=None):
        return await self.model_.reveal(receivers)


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
