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
(Wolkowicz–Styan bound from two trace moments, see `_step_size`), not from a public guess.
The soft threshold ``sign(v)·max(|v| − τ, 0)`` takes two secure comparisons per coefficient.

Calling convention (as for the other mpclab estimators): ``await model.fit(X, y)`` and
``await model.reveal(receivers)`` are coroutines, because fit opens bits; ``predict`` and
``score`` return secure values at once, as MPyC operations do.

Ranges (see `mpclab.bounds`).  Every value that is opened under a mask, here and in MPyC's
operations, is bounded before it is opened.  The public facts are n, d, alpha, the secure type
and ``int_bits`` (every input satisfies ``|x| < 2**int_bits``, as the agreed input format
guarantees).  From them follow, before anything is computed: the Gram matrix's entries (at
most ``n·4**int_bits`` before scaling), the means, and so a public bound γ on the diagonal of
the scaled Gram matrix; from a bound γ follow the trace moments, the step size, the iteration
matrix and the soft threshold (``alpha`` is capped at γ, above which the solution is 0 anyway);
and a bound B on ``||w_k||₁`` bounds everything in an iteration.  No penalty bounds the
FISTA iterates usefully, so B is established by a secure check in every iteration, before the
next product with the Gram matrix.  If a public bound does not fit the type, `fit` raises
`FixedPointOverflowError` before computing anything.

What is opened (to all parties), and nothing else:

* ``int_bits=None`` only: one bit, "every column of ``[X, y]`` has a sum of squares below
  2**(l-f-1)" (2**31; `mpclab.fastmpc.norms_within`), which keeps the Gram matrix in range,
  before it;
* only if the public bound on the scaled Gram diagonal is above ``GRAM_CHECK`` (2**12): one
  bit, "every diagonal entry of the scaled centred Gram matrix ``ZᵀZ/2**s`` of ``Z = [X, y]``
  is at most 2**12", after the Gram matrix and before anything that needs it (the iterations;
  also the iteration matrix when the public bound does not cover that);
* one range bit per computed iteration, "``||v_k||₂ ≤ B/√d``" for the point v_k before the
  soft threshold, which bounds ``||w_k||₁ ≤ B`` (B public, 2**14 for data scaled to [0, 1]),
  before the next product with the Gram matrix (its comparison runs next to the soft
  threshold's, so it adds about two rounds per iteration);
* adaptive mode (``fixed_iterations=None``): one bit per iteration, "converged yet", i.e.
  ``||w_k − w_{k−1}||₂ ≤ tol·||w_k||₂``; hence also the iteration count ``n_iter_``.  The
  iteration after the last one is computed while this bit is opened, so its range bit is
  opened too;
* fixed mode (``fixed_iterations=k``): nothing about convergence.

Every range bit is 1 unless `fit` raises `FixedPointOverflowError` right after opening it, so
the bits of a run that completes tell nothing; a failure tells which check failed.  For data
scaled to [0, 1] with ``int_bits=1`` only the per-iteration bits are opened.

Fixed-point limits (``SecFxp(64, 32)``): ``n·4**int_bits < 2**31`` (e.g. int_bits 1 up to
2**29 rows, int_bits 7 up to 2**17), the variances (times n/2**s) at most 2**12 and
``||w||₁ < B`` during the iterations.  The stopping test compares squared norms, so it cannot
resolve steps below about 2**-16 in norm.
"""

import math
import time
import warnings

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.bounds import MARGIN, REMEDY, FixedPointOverflowError, Plan, limit, require, type_name

__all__ = ['SecureLasso', 'FixedPointOverflowError', 'LassoPlan']

GRID_RATIO = 2 ** (1 / 12)   # resolution of the secure step-size bound
ISTA_STEP = 1.5             # plain proximal gradient converges for steps below 2/λmax
MOMENTUM_BITS = 8            # resolution of the public momentum weights
GRAM_CHECK = 2.0**12         # bound on the scaled Gram diagonal checked when none is public
ITERATE_MAX = 2.0**14        # largest bound B on ||w||₁: keeps ||w_k - w_k-1||² below 2**31


def _diag(A):
    i = np.arange(A.shape[0])
    return A[i, i]


def _symmetric_index(d, k=0):
    """Index array mapping (i, j) to the position of (min, max) in the list of entries of
    np.triu_indices(d, k); the diagonal maps to one past the end when k = 1."""
    upper = np.triu_indices(d, k)
    index = np.full((d, d), len(upper[0]))
    index[upper] = index.T[upper] = np.arange(len(upper[0]))
    return index


class LassoPlan:
    """The public range bounds of one SecureLasso fit (see the module docstring).

    Raises FixedPointOverflowError at construction if the computation cannot fit the type.

    Attributes
    ----------
    input_bits : float
        J: every input has ``|x| < 2**J`` (int_bits); if int_bits is None, every column's root
        mean square is below 2**J, for the largest J with which the Gram matrix fits.
    check_inputs : bool
        True if int_bits is None: fit must check every column's sum of squares securely first.
    square_sums : float
        The bound checked then, ``n·4**J``.
    gamma : float
        Bound on the diagonal of the scaled Gram matrix ``ZᵀZ/2**s``.
    check_gram : bool
        True if gamma is not implied by J: fit must check it securely.
    iterate_bound : float
        B, the bound on ``||w_k||₁`` checked in every iteration.
    prediction_bound : float
        Bound on ``|x·w + b|`` for every x with ``|x_j| < 2**J``.
    """

    def __init__(self, n, d, sectype, int_bits=None, alpha=1.0, solver='fista'):
        lim = limit(sectype) / (1 + MARGIN)
        self.n, self.d, self.sectype = n, d, sectype
        self.s = n.bit_length() - 1
        self.alpha = alpha * n / 2**self.s        # the penalty on the scaled Gram matrix
        self.t_max = ISTA_STEP if solver == 'ista' else 1.0
        top = sectype.bit_length - sectype.frac_length - 1
        self.check_inputs = int_bits is None
        if int_bits is None:
            # Checked instead: every column's sum of squares below lim, which bounds the Gram
            # matrix as inputs below 2**J would, with n·4**J = lim (J need not be an integer:
            # it bounds the columns' root mean square, and so the means).
            self.square_sums = lim / (1 + MARGIN)
            int_bits = min(top, math.log2(self.square_sums / n) / 2)
            if int_bits < 0:
                raise FixedPointOverflowError(f'{n} rows overflow {type_name(sectype)} even for '
                                              f'inputs in [-1, 1]: use a wider secure type')
        self.input_bits = int_bits
        plan = Plan(sectype)
        plan.need('the Gram matrix', n * 4.0**int_bits)
        plan.need('the column sums', n * 2.0**int_bits)
        plan.refuse(f"the inputs' range 2**{int_bits:g} and {n} rows", REMEDY)
        # A public bound up to GRAM_CHECK needs no check; a larger one would leave less room
        # for the coefficients than one opened bit that establishes GRAM_CHECK.
        public = n * 4.0**int_bits / 2**self.s
        self.check_gram = public > GRAM_CHECK
        self.gamma = GRAM_CHECK if self.check_gram else public
        if not self._iterate_bound(self.gamma):
            raise FixedPointOverflowError(f'alpha={alpha} and {d} features overflow '
                                          f'{type_name(sectype)} ({self._why}): {REMEDY}')
        self.iterate_bound = self._iterate_bound(self.gamma)
        self.prediction_bound = 2.0**int_bits * (1 + 2 * self.iterate_bound)
        # Whether the iteration matrix is in range by the public bound alone, so that the
        # check of the Gram diagonal can be opened while it is computed.
        rho = 2.0**-(sectype.frac_length // 2)
        system = Plan(sectype)
        system.need('the squared Gram entries', public * public)
        system.need('the trace moments', d * max(public, 3.0 * d))
        system.need('the soft threshold', self.t_max * min(self.alpha, self.gamma * (1 + MARGIN)) / rho)
        self.system_public = system.ok
        # The range bit of an iteration bounds ||v||₂ <= B/sqrt(d) for the point v before the
        # soft threshold (so ||w||₁ <= B), from a copy of v divided by 2**(f//2 + e): its
        # square sum stays in range for any v in range, and its comparison can run next to
        # the soft threshold's.
        self.norm_shift = sectype.frac_length // 2 + math.ceil(math.log2(max(d, 1)) / 2)
        self.norm_bound = (self.iterate_bound**2 / d) * 2.0**(-2 * self.norm_shift)

    def _iterate_bound(self, gamma):
        """The bound B on ||w||₁ that keeps every iteration in range, or 0 if none does."""
        sectype, d, J = self.sectype, self.d, self.input_bits
        lim = limit(sectype) / (1 + MARGIN)
        rho = 2.0**-(sectype.frac_length // 2)      # the ridge in 1/diag(G)
        alpha = min(self.alpha, gamma * (1 + MARGIN))
        # With r_j = 1/(G_jj + rho) and |G_jk| <= sqrt(G_jj G_kk): sqrt(G_jj) r_j <= 1/(2 sqrt(rho)).
        h = self.t_max * math.sqrt(gamma) / (2 * math.sqrt(rho))
        tau = self.t_max * alpha / rho
        plan = Plan(sectype)
        plan.need('the squared Gram entries', gamma * gamma)
        plan.need('the trace moments', d * max(gamma, 3.0 * d))
        plan.need('the soft threshold', tau + h)
        self._why = plan.describe() if not plan.ok else ''
        if not plan.ok:
            return 0.0
        z = 3.0   # ||z||₁ <= 3 B for the extrapolated point z = w + beta (w - w_prev), beta < 1
        B = min(ITERATE_MAX,
                lim / (z * gamma * 2**MOMENTUM_BITS),     # G·(2**e z)
                (lim - tau - h) / (z + z * h),            # v = z - u∘(Gz) + q, then ± tau
                lim / 2**J / 2)                           # the intercept mean(y) - mean(X)·w
        if B < 1:
            self._why = f'the iterates would have to stay below {B:.2g}'
            return 0.0
        return B


def _gram(X, y, fit_intercept):
    """2**-s·ZᵀZ for Z = [X, y] (centred if fit_intercept) with 2**s ≤ n, plus the means and s.

    The power of two keeps the entries near the covariances at no extra cost (it is folded
    into the one truncation); the caller rescales alpha by n/2**s instead of dividing by n.
    """
    n = X.shape[0]
    Z = mpc.np_column_stack((X, y))
    means = None
    if fit_intercept:
        means = Z.sum(axis=0) * (1 / n)
        Z = Z - means
    s = n.bit_length() - 1
    if Z.integral:   # integer data without intercept: MPyC's exact product, then scale
        return (Z.T @ Z) * 2.0**-s, means, s
    return fastmpc.matmul_t(Z, Z, f=Z.sectype.frac_length + s), means, s


def _trace_moments(G, r):
    """Secure tr(K) and tr(K²) for K = diag(r)·G with G symmetric, without forming K.

    tr(K²) = Σ_j (r_j G_jj)² + 2·Σ_{j<k} r_j r_k G_jk² needs the d(d−1)/2 squares of the upper
    triangle, half the products of K itself.
    """
    d = G.shape[0]
    k = fastmpc.mul(r, _diag(G))
    zero = type(G)(np.zeros(1), integral=False)
    g = G[np.triu_indices(d, 1)]
    squares = mpc.np_concatenate((fastmpc.mul(g, g), zero))
    return k.sum(), k @ k + r @ (squares[_symmetric_index(d, 1)] @ r)


def _step_size(tr, T2, d):
    """Secure t with t·λmax(K) ≤ 1, from tr(K) and tr(K²) of K = D⁻¹G (G PSD, diagonal of K ≈ 1).

    Wolkowicz–Styan: λmax ≤ m + sqrt((d−1)/d · V) with m = tr(K)/d and V = tr(K²) − tr(K)²/d.
    It is exact for rank-one and for scalar matrices and within 1.7x on the data we tried,
    where a trace bound would be up to d times too large.  Instead of a secure square root and
    division, compare against a public geometric grid ρ_g in one batch: bit β_g says the bound
    is at most ρ_g, and t = 1/ρ_g for the smallest such g, built as a sum of bits times public
    constants.  Any rounding slip in a bit only makes t smaller, never too large.
    """
    top = d * (1 + 2**-6)                              # λmax ≤ tr(K) ≤ top
    rho = (1 + 2**-6) * GRID_RATIO ** np.arange(math.ceil(math.log(d, GRID_RATIO)) + 1)
    rho = rho[rho < top]
    if not len(rho):
        return type(tr)(1 / top)
    m = tr * (1 / d)
    # β_g = [(d−1)/d·V − (ρ_g − m)² < 0], valid as ρ_g ≥ 1 + 2**-6 ≥ m
    coeffs = mpc.np_fromlist([(T2 - tr * m) * ((d - 1) / d) - m * m, m])
    e = np.column_stack((np.ones(len(rho)), 2 * rho)) @ coeffs - rho**2
    beta = mpc.np_less(e, 0)
    inv = 1 / np.append(rho, top)
    return beta @ (inv[:-1] - inv[1:]) + inv[-1]


def _soft_threshold(v, tau):
    """sign(v)·max(|v| − τ, 0) with one batch of 2d comparisons."""
    d = v.shape[0]
    lo, hi = v - tau, v + tau
    bits = mpc.np_less(mpc.np_concatenate((lo, hi)), 0)   # [v < τ], [v < −τ]
    p = mpc.np_concatenate((1 - bits[:d], bits[d:])) * mpc.np_concatenate((lo, hi))
    return p[:d] + p[d:]


class SecureLasso:
    """Lasso linear regression trained in MPC on secret-shared data.

    Parameters
    ----------
    alpha : float, default 1.0
        L1 penalty, scaled as in scikit-learn's Lasso.
    max_iter : int, default 1000
        Iteration limit in adaptive mode.
    tol : float, default 1e-4
        Stop when ``||w_k − w_{k−1}||₂ ≤ tol·||w_k||₂`` (one opened bit per iteration).
    fit_intercept : bool, default True
    fixed_iterations : int or None, default None
        Run exactly this many iterations and open nothing about convergence.
    solver : {'fista', 'ista'}, default 'fista'
        'fista': accelerated, step t.  'ista': no momentum, step 1.5·t (safe, as t ≤ 1/λmax);
        often about twice as fast on well-conditioned data, much slower on ill-conditioned.
    int_bits : int or None, default None
        Public bound on the inputs: every entry of X and y satisfies ``|x| < 2**int_bits``, as
        the agreed input format guarantees (`mpclab.fixedpoint.FixedPointFormat.int_bits`;
        1 for data scaled to [0, 1]).  All range bounds are derived from it, at no cost.  With
        None the bound is not public: fit checks securely that every column of ``[X, y]`` has
        a sum of squares below 2**31 for ``SecFxp(64, 32)`` (one opened bit; passes up to about
        2**30, e.g. a root mean square up to 460 for 5000 rows), about 0.003 ms per input.

    Attributes
    ----------
    coef_ : secure array (d,), or numpy array after `reveal` at a receiver
    intercept_ : secure number, or float after `reveal` (0.0 without intercept)
    n_iter_ : int, public
    plan_ : LassoPlan
        The public range bounds of the fit (``plan_.prediction_bound`` bounds the predictions
        for inputs in the format).
    timings_ : dict
        Seconds spent at this party in the phases 'gram' (with the input check, if any),
        'step_size', 'iterations', 'finish'.

    Raises
    ------
    FixedPointOverflowError
        From `fit`, before anything out of range is opened, if the data cannot fit the
        secure type (the message names the cause and the remedy).
    """

    def __init__(self, alpha=1.0, *, max_iter=1000, tol=1e-4, fit_intercept=True,
                 fixed_iterations=None, solver='fista', int_bits=None):
        if solver not in ('fista', 'ista'):
            raise ValueError(f"solver must be 'fista' or 'ista', not {solver!r}")
        self.solver = solver
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.fixed_iterations = fixed_iterations
        self.int_bits = int_bits

    async def fit(self, X, y):
        """Fit on secure fixed-point arrays X (n, d) and y (n,); returns self (coroutine)."""
        n, d = X.shape
        if y.shape != (n,):
            raise ValueError(f'y has shape {y.shape}, expected ({n},)')
        plan = self.plan_ = LassoPlan(n, d, X.sectype, self.int_bits, self.alpha, self.solver)
        clock = [time.perf_counter()]
        if plan.check_inputs:
            inputs = mpc.np_column_stack((X, y))
            if not await fastmpc.norms_within(inputs, plan.square_sums):
                raise FixedPointOverflowError(
                    f'the columns are too large for {type_name(X.sectype)} with {n} rows (a sum of '
                    f'squares may reach 2**{math.log2(plan.square_sums):.0f}; those up to about '
                    f'2**{math.log2(plan.square_sums) - 1:.0f} pass this check): {REMEDY}')
        A, means, s = _gram(X, y, self.fit_intercept)
        fits = None
        if plan.check_gram:
            fits = mpc.np_all(mpc.np_less(_diag(A), plan.gamma * (1 + 2**-20)))
            message = (f'the variances of the data (times n/2**{s}) exceed {plan.gamma:g}, more '
                       f'than {type_name(X.sectype)} holds here: {REMEDY}')
            if not plan.system_public:   # the iteration matrix needs the bound: wait for it
                await require(fits, message)
                fits = None
        await mpc.gather(A)
        clock.append(time.perf_counter())
        system = self._system(A, min(plan.alpha, plan.gamma * (1 + MARGIN)))
        if fits is not None:   # needed from the iterations on: opened while the system is computed
            await require(fits, message)
        await mpc.gather(*system)
        clock.append(time.perf_counter())
        w, self.n_iter_ = await self._fista(*system, plan)
        clock.append(time.perf_counter())
        if self.fit_intercept:
            b = means[d:] - means[:d].reshape(1, d) @ w
        else:
            b = type(w)(np.zeros(1), integral=False)
        await mpc.gather(b)
        clock.append(time.perf_counter())
        self.timings_ = dict(zip(['gram', 'step_size', 'iterations', 'finish'], np.diff(clock)))
        self.coef_ = w
        self.intercept_ = b[0] if self.fit_intercept else 0.0
        return self

    def _system(self, A, alpha):
        """Iteration w ← soft(z − u∘(G·z − c), alpha·u) for the Gram block A = [[G, c], [cᵀ, ·]].

        Jacobi scaling r = 1/diag(G) (a tiny ridge keeps constant columns harmless: their
        coefficient stays 0) and the secure step t give u = t·r.  Returns G, u/2**e, q = u∘c
        and τ = alpha·u, with e = MOMENTUM_BITS, all derived from the same rounded u/2**e, so
        that the fixed point is exactly the Lasso's (see `_fista` for the 2**e).  alpha is
        the caller's, capped at the bound on |c| above which the solution is 0 anyway.
        """
        d = A.shape[0] - 1
        G, c = A[:d, :d], A[:d, d]
        r = 1 / (_diag(G) + 2.0**-(G.sectype.frac_length // 2))
        t = _step_size(*_trace_moments(G, r), d)
        if self.solver == 'ista':
            t = t * ISTA_STEP
        u = (t * 2.0**-MOMENTUM_BITS) * r
        return G, u, fastmpc.mul(u, c) * 2**MOMENTUM_BITS, u * (alpha * 2**MOMENTUM_BITS)

    async def _fista(self, G, u, q, tau, plan):
        """FISTA (or ISTA) iterations with the range check ||w_k||₁ < B; returns (w, k).

        The extrapolated point z = w + β·Δ also enters as 2**e·z = (2**e + p)·w − p·w_prev, an
        integer combination (β = p/2**e), so the product G·(2**e·z) needs no truncation of z
        first.  Iteration k+1 starts only once the range bit of iteration k is opened (its
        product with G relies on it); the convergence bit of iteration k is opened together
        with the range bit of iteration k+1, hiding its latency.
        """
        d = q.shape[0]
        sectype = q.sectype
        fixed = self.fixed_iterations is not None
        w = type(q)(np.zeros(d), integral=False)
        z = z_scaled = w
        tk, k = 1.0, 0
        pending = None  # (secure bit, w, k) of the previous iteration
        for k in range(1, (self.fixed_iterations if fixed else self.max_iter) + 1):
            Gz = fastmpc.matmul(G, z_scaled.reshape(d, 1)).reshape(d)
            v = z - fastmpc.mul(u, Gz) + q
            w_new = _soft_threshold(v, tau)
            vs = fastmpc.trunc(v, plan.norm_shift).reshape(1, d)
            inside = mpc.lt(fastmpc.matmul(vs, vs.T).reshape(1)[0], plan.norm_bound)
            opened = [inside] + ([pending[0]] if pending else [])
            opened = await mpc.output(security.intended(opened))
            if pending and opened[1]:
                return pending[1], pending[2]
            if not opened[0]:
                raise FixedPointOverflowError(
                    f'the coefficients could exceed {plan.iterate_bound:g} in L1 norm at iteration '
                    f'{k}, more than {type_name(sectype)} holds here: {REMEDY}')
            t_next = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
            p = round((tk - 1) / t_next * 2**MOMENTUM_BITS) if self.solver == 'fista' else 0
            delta = w_new - w
            z_scaled = w_new * 2**MOMENTUM_BITS + delta * p
            z = w_new + fastmpc.trunc(delta * p, MOMENTUM_BITS) if p else w_new
            if not fixed:
                done = mpc.lt(delta @ delta - ((w_new @ w_new) * self.tol) * self.tol,
                              2.0**-sectype.frac_length)   # i.e. ≤ 0
                pending = (done, w_new, k)
            w, tk = w_new, t_next
        if pending and await mpc.output(security.intended(pending[0])):
            return pending[1], pending[2]
        if not fixed:
            from sklearn.exceptions import ConvergenceWarning   # only here: keeps party start-up fast
            warnings.warn(f'SecureLasso did not converge in {self.max_iter} iterations',
                          ConvergenceWarning)
        return w, k

    def predict(self, X):
        """Secure predictions X @ coef_ + intercept_ for a secure array X (n, d)."""
        return X @ self.coef_ + self.intercept_

    def score(self, X, y):
        """Secure R² of the predictions on (X, y)."""
        from mpclab.metrics.regression import r2_score
        return r2_score(y, self.predict(X))

    async def reveal(self, receivers=None):
        """Open coef_ and intercept_ to `receivers` (default all parties).

        At a receiver the attributes become a numpy array and a float, and
        (coef_, intercept_) is returned; elsewhere they stay secret and None is returned.
        """
        theta = self.coef_
        if self.fit_intercept:
            theta = mpc.np_concatenate((theta, mpc.np_fromlist([self.intercept_])))
        out = await mpc.output(security.intended(theta), receivers=receivers)
        if out is None:
            return None
        out = np.asarray(out, dtype=float)
        self.coef_ = out[:len(out) - self.fit_intercept]
        self.intercept_ = float(out[-1]) if self.fit_intercept else 0.0
        return self.coef_, self.intercept_
