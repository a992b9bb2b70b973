"""Lasso regression on secret-shared data: accelerated proximal gradient on the Gram matrix.

Minimises scikit-learn's objective ``(1/(2n))·||y − Xw − b||² + alpha·||w||₁`` (intercept not
penalised) in MPC.  The data enter once, through the centred Gram matrix of ``[X, y]``: local
O(n·d²) work on BLAS and one round of truncations (`mpclab.fastmpc.matmul_t`).  Every iteration
then costs O(d²) local work, a few rounds of d products and 2d secure comparisons, whatever n
is.  Products use mpclab.fastmpc's truncation (PRSS masks, no secret random bits; results may
be off by a few units in the last place); comparisons are MPyC's.

Solver: FISTA (or plain proximal gradient, ``solver='ista'``) with a Jacobi preconditioner, so
the step for coefficient j is ``t / var_j`` and the method does not depend on the units of the
features, like coordinate descent.  The scalar ``t ≤ 1/λmax(D⁻¹G)`` comes from the data in MPC
(Wolkowicz–Styan bound from two trace moments, see `_step_size`), not from a public guess.
The soft threshold ``sign(v)·max(|v| − τ, 0)`` takes two secure comparisons per coefficient.

Calling convention (as for the other mpclab estimators): ``await model.fit(X, y)`` and
``await model.reveal(receivers)`` are coroutines, because fit opens bits; ``predict`` and
``score`` return secure values at once, as MPyC operations do.

What is opened (to all parties), and nothing else:

* adaptive mode (``fixed_iterations=None``): one bit per iteration, "converged yet", i.e.
  ``||w_k − w_{k−1}||₂ ≤ tol·||w_k||₂``; hence also the iteration count ``n_iter_``;
* fixed mode (``fixed_iterations=k``): nothing during the iterations;
* range checks (``check_range=True``): two bits, each 1 for well-scaled data, that guard
  against fixed-point overflow: the Gram matrix fits, and every coefficient and the
  intercept are below 2**24 in magnitude.  A 0 raises `FixedPointOverflowError`.  With fixed
  mode and ``check_range=False`` fit opens nothing at all.

Fixed-point limits (``SecFxp(64, 32)``): over the columns z of ``[X, y]`` the centred sums of
squares ``Σ_j Σ_i (z_ij − mean_j)²`` must stay below 2**30 and the variances must add up to
less than about 2**15 (their squares are formed): scale the data (e.g. to [0, 1], or charges
in thousands) if the check fails.  The stopping test compares squared norms, so it cannot
resolve steps below about 2**-16 in norm.
"""

import math
import time
import warnings

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc

__all__ = ['SecureLasso', 'FixedPointOverflowError']

GRID_RATIO = 2 ** (1 / 12)   # resolution of the secure step-size bound
ISTA_STEP = 1.5             # plain proximal gradient converges for steps below 2/λmax
MOMENTUM_BITS = 8            # resolution of the public momentum weights


class FixedPointOverflowError(ArithmeticError):
    """A secure range check failed: the data or the model do not fit the fixed-point type."""


async def _require(bit, message):
    if not await mpc.output(bit):
        raise FixedPointOverflowError(message)


def _wide(sectype):
    """Bit length l + f: comparisons and truncations stay exact for values up to 2**(l - 1),
    the square of the type's range (96 bits and 2**63 for SecFxp(64, 32))."""
    return sectype.bit_length + sectype.frac_length


def _range_bits(sectype):
    """Integer bits i of SecFxp(l, f), i = l - f: values must stay below 2**(i - 1)."""
    return sectype.bit_length - sectype.frac_length


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


def _bounded(a, bound):
    """Secure bit: all |a_i| < bound.  Exact beyond the type's range (up to its square), so it
    also catches values that have outgrown the type but not yet wrapped around the field."""
    return mpc.np_all(mpc.np_sgn(mpc.np_concatenate((a - bound, -a - bound)),
                                 l=_wide(a.sectype), LT=True))


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
    k = r * _diag(G)
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
    check_range : bool, default True
        Open two overflow bits (see module docstring) and raise on failure.
    solver : {'fista', 'ista'}, default 'fista'
        'fista': accelerated, step t.  'ista': no momentum, step 1.5·t (safe, as t ≤ 1/λmax);
        often about twice as fast on well-conditioned data, much slower on ill-conditioned.

    Attributes
    ----------
    coef_ : secure array (d,), or numpy array after `reveal` at a receiver
    intercept_ : secure number, or float after `reveal` (0.0 without intercept)
    n_iter_ : int, public
    timings_ : dict
        Seconds spent at this party in the phases 'gram', 'step_size', 'iterations', 'finish'.
    """

    def __init__(self, alpha=1.0, *, max_iter=1000, tol=1e-4, fit_intercept=True,
                 fixed_iterations=None, check_range=True, solver='fista'):
        if solver not in ('fista', 'ista'):
            raise ValueError(f"solver must be 'fista' or 'ista', not {solver!r}")
        self.solver = solver
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.fixed_iterations = fixed_iterations
        self.check_range = check_range

    async def fit(self, X, y):
        """Fit on secure fixed-point arrays X (n, d) and y (n,); returns self (coroutine)."""
        n, d = X.shape
        if y.shape != (n,):
            raise ValueError(f'y has shape {y.shape}, expected ({n},)')
        clock = [time.perf_counter()]
        A, means, s = _gram(X, y, self.fit_intercept)
        i = _range_bits(X.sectype)   # 32 for SecFxp(64, 32)
        if self.check_range:   # opened after the next phase is under way, to hide its latency
            fits = mpc.sgn(_diag(A).sum() - 2.0**min(i - 2 - s, i // 2 - 1),
                           l=_wide(X.sectype), LT=True)
        await mpc.gather(A)
        clock.append(time.perf_counter())
        system = self._system(A, self.alpha * n / 2**s)
        if self.check_range:
            await _require(fits, 'the Gram matrix overflows the fixed-point range: '
                                 'scale the features and the target down (e.g. to [0, 1])')
        await mpc.gather(*system)
        clock.append(time.perf_counter())
        w, self.n_iter_ = await self._fista(*system)
        clock.append(time.perf_counter())
        if self.fit_intercept:
            b = means[d:] - means[:d].reshape(1, d) @ w
        else:
            b = type(w)(np.zeros(1), integral=False)
        if self.check_range:
            bound = 2.0**(i - 8)
            await _require(_bounded(mpc.np_concatenate((w, b)), bound),
                           f'coefficients exceed {bound:g} in magnitude: rescale the data')
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
        that the fixed point is exactly the Lasso's (see `_fista` for the 2**e).
        """
        d = A.shape[0] - 1
        G, c = A[:d, :d], A[:d, d]
        r = 1 / (_diag(G) + 2.0**-(G.sectype.frac_length // 2))
        t = _step_size(*_trace_moments(G, r), d)
        if self.solver == 'ista':
            t = t * ISTA_STEP
        u = (t * 2.0**-MOMENTUM_BITS) * r
        return G, u, fastmpc.mul(u, c) * 2**MOMENTUM_BITS, u * (alpha * 2**MOMENTUM_BITS)

    async def _fista(self, G, u, q, tau):
        """FISTA (or ISTA) iterations; returns (w, iterations).

        The extrapolated point z = w + β·Δ also enters as 2**e·z = (2**e + p)·w − p·w_prev, an
        integer combination (β = p/2**e), so the product G·(2**e·z) needs no truncation of z
        first.  The convergence bit of iteration k is opened while iteration k+1 is computed,
        hiding its latency; exactly one bit per reported iteration is opened.
        """
        d = q.shape[0]
        fixed = self.fixed_iterations is not None
        w = type(q)(np.zeros(d), integral=False)
        z = z_scaled = w
        tk, k = 1.0, 0
        pending = None  # (secure bit, w, k) of the previous iteration
        for k in range(1, (self.fixed_iterations if fixed else self.max_iter) + 1):
            Gz = fastmpc.matmul(G, z_scaled.reshape(d, 1)).reshape(d)
            w_new = _soft_threshold(z - fastmpc.mul(u, Gz) + q, tau)
            t_next = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
            p = round((tk - 1) / t_next * 2**MOMENTUM_BITS) if self.solver == 'fista' else 0
            delta = w_new - w
            z_scaled = w_new * 2**MOMENTUM_BITS + delta * p
            z = w_new + fastmpc.trunc(delta * p, MOMENTUM_BITS) if p else w_new
            if not fixed:
                done = mpc.lt(delta @ delta - ((w_new @ w_new) * self.tol) * self.tol,
                              2.0**-q.sectype.frac_length)   # i.e. ≤ 0
                if pending and await mpc.output(pending[0]):
                    return pending[1], pending[2]
                pending = (done, w_new, k)
            w, tk = w_new, t_next
        if pending and await mpc.output(pending[0]):
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
        out = await mpc.output(theta, receivers=receivers)
        if out is None:
            return None
        out = np.asarray(out, dtype=float)
        self.coef_ = out[:len(out) - self.fit_intercept]
        self.intercept_ = float(out[-1]) if self.fit_intercept else 0.0
        return self.coef_, self.intercept_
