"""Model selection by cross-validation in MPC: SecureLassoCV, SecureElasticNetCV, SecureRidgeCV.

Named and scored as scikit-learn's LassoCV, ElasticNetCV and RidgeCV (the last with
``scoring='neg_mean_squared_error'``): each candidate alpha (and l1_ratio) is trained on K − 1
folds and scored by the mean squared error on the held-out fold; the candidate with the least
mean over the folds wins, and the model is refitted on all rows with it.  The folds are K
contiguous blocks of the secret row order, cut as scikit-learn's ``KFold(K)`` cuts them (the
first ``n % K`` one row longer); the row order is the helper's shuffle, so nobody can link a fold
to people.  Everything happens in MPC:

* one pass over the rows gives every fold's moments about the overall mean,
  ``Σ (z − μ)(z − μ)ᵀ``, ``Σ (z − μ)`` and its size (`mpclab.models.linear.moments`: one
  `fastmpc.matmul_t` per block of rows); every training set's centred Gram matrix and every
  held-out fold's squared errors follow from them by O(K·d²) products;
* one step size and one Jacobi preconditioner, those of all rows, serve every training set and
  every alpha (a training set's Gram matrix is at most all rows' one, and see
  `mpclab.models.linear.jacobi` for the L2 penalty);
* the folds go down the alpha path in lockstep, each alpha warm-started from the previous one;
  the validation error of every fold is computed from its moments, O(d²) per fold and alpha.

The path solver.  A soft threshold costs two secure comparisons per coefficient and fold, far
more than the rest of a step, so the Lasso and elastic-net paths refresh it only every
``path_steps + 1`` steps: a *round* is ``path_steps`` accelerated steps that keep the last
threshold decisions (which coefficients are zero, and the signs of the others: each such step is
linear, a gradient step of the Lasso restricted to that face) followed by one proximal gradient
step that decides afresh.  Once the decisions no longer change, the round is exactly proximal
gradient, and its fixed point is the solution.  An alpha ends with the first round whose deciding
step keeps the decisions of the round's other steps and moves the coefficients by at most
tol/(path_steps + 1): that step is then one proximal gradient step, so this is a single fit's
stopping test, with the tolerance shared out over the steps of a round (a test of a whole
round's change against tol, made before, needed one more round per alpha; a test of the one
step against tol was up to 5e-4 off LassoCV's validation errors).  The first round of an alpha
keeps the previous alpha's decisions, so an alpha with the previous one's zeros and signs can
end after one round.  The fresh decisions compare at a reduced precision
(``compare_frac`` fractional bits, a public function of int_bits, instead of 32), which halves
their cost; a decision can only be wrong where ``|v| − τ`` is below 2**-compare_frac, and then it
moves a coefficient by less than that.  The final fit on all rows uses the estimator's own exact
solver (`mpclab.models.linear.iterate`), warm-started from the folds' mean at the chosen alpha.
Ridge regression has no threshold: its path is accelerated gradient descent on all folds at once.

Ranges, as for the single fits (`mpclab.models.linear`), from public n, d, the fold sizes, the
largest penalties of the path, the secure type and ``int_bits``; a path step additionally keeps
the previous threshold decisions, which may add up to τ to a coefficient, so the path checks
``||v||₁ ≤ B/2`` and takes the preconditioner no larger than ``B/(2·d·λ1)`` (one batch of d
comparisons per preconditioner; only coordinates whose variance is tiny compared with alpha_max
get smaller steps), which keeps ``||w||₁ ≤ B`` and every compared value below ``B/√d``.

What is opened (to all parties) by `fit`, and nothing else:

* as for a single fit: with ``int_bits=None`` one bit per block of rows (the inputs' sums of
  squares), and if the public Gram bound exceeds 2**12 one bit for the Gram diagonal;
* with ``alphas`` a number (a path from alpha_max, as LassoCV builds it): alpha_max, rounded
  up to a power of 2**(1/16), found by bisection on that public grid: about ten bits,
  "``max_j |xⱼᵀy|/n`` (centred) is at most 2**(k/16)" for the k tried;
* one range bit per path step ("``||v||₁ ≤ B/2``" for every fold at once; 1 in every run that
  completes);
* adaptive mode (``fixed_iterations=None``): one convergence bit per round and alpha, "the
  round's deciding step kept every fold's decisions and changed the coefficients by at most
  tol/(path_steps + 1)" (one bit for all folds at once: no decision changed, and ``Σ_k ||Δ_k||²
  ≤ (tol/(path_steps + 1))²·Σ_k ||w_k||²`` over that step; for ridge one per step); hence
  the number of rounds per alpha, ``path_iterations_``.  The first step after a round is
  computed while its bit is opened, so the range bit of that step is opened too, also after
  the last round of an alpha;  fixed mode: nothing about convergence;
* the mean validation MSE of every candidate, ``mse_path_`` (not the per-fold values), and so
  the chosen ``alpha_`` (and ``l1_ratio_``), a function of them;
* the final fit's bits, as for the single estimator (range bits, and convergence bits in
  adaptive mode).

The model itself is opened only by `reveal`, to its receivers.
"""

import math
import time

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.bounds import MARGIN, REMEDY, FixedPointOverflowError, Plan, limit
from mpclab.models import linear
from mpclab.models.linear import MOMENTUM_BITS, LinearPlan, SecureLinearModel, check_data, scale

__all__ = ['SecureLassoCV', 'SecureElasticNetCV', 'SecureRidgeCV', 'CVPlan', 'FixedPointOverflowError']

PATH_STEPS = 4               # steps that keep the threshold decisions, per round
COMPARE_FRAC = 12            # fractional bits of the path's threshold comparisons, beyond int_bits
ALPHA_MAX_STEPS = 16         # alpha_max is opened rounded up to a power of 2**(1/16)
ALPHA_MAX_OCTAVES = 40       # ... at most this many octaves below its public bound
RECIPROCAL_NEWTON = 0.75     # update 1/(g + λ2) by Newton from the previous alpha up to this change


class CVPlan:
    """The public range bounds of one cross-validated path (see the module docstring).

    Parameters
    ----------
    n, d, sectype, int_bits : as for `mpclab.models.linear.LinearPlan`
    folds : list of (start, stop)
    l1, l2 : float
        The largest penalties per row of the path (over all alphas and l1 ratios).

    Attributes
    ----------
    fit : LinearPlan
        The single-fit plan for all rows with the largest penalties: its bounds hold for every
        training set and candidate (``fit.iterate_bound`` is B).
    check_bound : float
        The bound on ``||v||₁`` a path step checks: B/2 with an L1 penalty, else B.
    u_clip : float or None
        Largest preconditioner u (times 2**-MOMENTUM_BITS) on the L1 path.
    compare_frac, compare_bits : int
        Fractional bits and bit length of the path's threshold comparisons.
    mse_shift : int
        h: the validation errors are computed for ``w/2**h`` and opened divided by 4**h.
    """

    def __init__(self, n, d, sectype, int_bits, folds, l1, l2):
        fit = self.fit = LinearPlan(n, d, sectype, int_bits, l1=l1, l2=l2)
        self.n, self.d, self.sectype, self.s = n, d, sectype, fit.s
        self.sizes = np.array([b - a for a, b in folds])
        lim = limit(sectype) / (1 + MARGIN)
        J, B = fit.input_bits, fit.iterate_bound
        f = sectype.frac_length
        lam1 = fit.capped_l1()
        self.check_bound = B / 2 if lam1 else B
        self.u_clip = self.check_bound / (d * lam1) * 2.0**-MOMENTUM_BITS if lam1 else None
        # |v ∓ τ| ≤ ||v||₂ + max τ ≤ B/(2√d) + B/(2d), then rounded to compare_frac bits
        self.compare_frac = min(f, COMPARE_FRAC + max(0, math.ceil(J)))
        largest = (self.check_bound / math.sqrt(d) + self.check_bound / d) * (1 + MARGIN)
        self.compare_bits = math.ceil(math.log2(largest * 2**self.compare_frac + 4)) + 1
        n_T = n - self.sizes
        # the fold means m_k = Σ_k (z − μ)/n_T and the held-out folds' moments about the
        # training means (with int_bits: |z − μ_T| < 2**(J+1); else from the sums of squares)
        means = 2.0**J * (1 + np.sqrt(n / self.sizes)) * self.sizes / n_T
        if int_bits is None:
            held = (2 * n * 4.0**J + 2 * self.sizes * (n / n_T) * 4.0**J) / 2**self.s
        else:
            held = self.sizes * 4.0**(J + 1) / 2**self.s
        plan = Plan(sectype)
        plan.need('the fold sums', float(np.max(self.sizes * 2.0**J * (1 + np.sqrt(n / self.sizes)))))
        plan.need('the products of the fold means',
                  float(np.max(means**2 * (2 * n_T + self.sizes) / 2**self.s)))
        plan.need('the validation Gram matrices', float(np.max(held)))
        plan.refuse(f'{len(folds)} folds of {n} rows with inputs up to 2**{J:g}', REMEDY)
        # Σ_k-fold (y − ŷ)² ≤ (1 + B)²·held, over n_k rows for the mean
        worst = (1 + B)**2 * max(float(np.max(held)), float(np.max(held * 2**self.s / self.sizes)))
        self.mse_shift = max(0, math.ceil(math.log2(worst / lim) / 2))
        self.validation_weights = 2.0**self.s / (self.sizes * len(folds))


# --- The folds' systems ----------------------------------------------------------------------

def training_moments(data, fit_intercept):
    """Every training set's scaled centred Gram block A_k (K, d+1, d+1), and every held-out
    fold's scaled moments C_k about its training set's means (K, d+1, d+1).

    With m_k = Σ_fold k (z − μ)/n_T (the overall mean minus the training mean):
    ``A_k = A − M_k − (n_T/2**s)·m_k m_kᵀ`` and ``C_k = M_k + ((2 n_T + n_k)/2**s)·m_k m_kᵀ``.
    """
    n, s = data.n, data.s
    M = mpc.np_stack([M for M, _, _ in data.folds])
    A = data.gram - M
    if not fit_intercept:
        return A, M
    sizes = np.array([k for _, _, k in data.folds])
    n_T = n - sizes
    S = mpc.np_stack([S for _, S, _ in data.folds])
    m = scale(S, 1 / n_T)
    left = scale(mpc.np_concatenate((m, m)), np.concatenate((n_T, 2 * n_T + sizes)) / 2**s)
    K, D = m.shape
    right = m.reshape(K, 1, D)
    outer_T = fastmpc.mul(left[:K].reshape(K, D, 1), right)
    outer_C = fastmpc.mul(left[K:].reshape(K, D, 1), right)
    return A - outer_T, M + outer_C


def clip(u, bound):
    """Secure min(u, bound) elementwise (one batch of comparisons)."""
    above = mpc.np_less(bound, u)
    return u + above * (bound - u)


def newton_reciprocal(a, x, change):
    """Secure 1/a from x ≤ 1/a with ``1 − a·x ≤ change`` (public), by Newton from below.

    Every iterate stays below 1/a and the relative error squares each time, so the public
    number of steps brings it below 2**-12; any under-estimate is a valid preconditioner.
    """
    if change <= 2**-12:
        return x
    steps = max(0, math.ceil(math.log2(12 * math.log(2) / -math.log(change))))
    for _ in range(steps):
        x = fastmpc.mul(x, 2 - fastmpc.mul(a, x))
    return x


def validation_mse(C, W, plan):
    """Secure mean over the folds of the held-out mean squared error, divided by 4**h.

    For a = (−w, 1) the residuals of fold k about its training means give
    ``Σ (y − ŷ)² = aᵀ C_k a·2**s``.
    """
    K = W.shape[0]
    ones = type(W)(np.ones((K, 1)), integral=False)
    a = mpc.np_hstack((-W, ones))
    if plan.mse_shift:
        a = fastmpc.trunc(a, plan.mse_shift)
    q = linear.matvec(C, a)
    D = a.shape[1]
    terms = fastmpc.matmul(a.reshape(K, 1, D), q.reshape(K, D, 1)).reshape(K)
    return scale(terms.reshape(K, 1), plan.validation_weights).sum(axis=0)


class _Path:
    """One path over the alphas of one l1 ratio, all folds in lockstep (see the module docstring)."""

    def __init__(self, model, plan, A, C, r0, t, g):
        self.model, self.plan, self.C, self.r0, self.t, self.g = model, plan, C, r0, t, g
        d = plan.d
        self.G, self.c = A[:, :d, :d], A[:, :d, d]
        self.n_T = plan.n - plan.sizes
        self.rounds, self.mse, self.coefs, self.reciprocals = [], [], [], []
        self.converged = True
        self._cached = (None, None)

    def penalties(self, alpha, l1_ratio):
        """Per fold (λ1_k capped, λ2_k) on the scaled Gram matrices, and λ2 of all rows."""
        scaled = self.n_T / 2**self.plan.s
        pen = [self.model._penalties(alpha, l1_ratio, rows) for rows in self.n_T]
        lam1 = np.minimum(np.array([p[0] for p in pen]) * scaled, self.plan.fit.gamma * (1 + MARGIN))
        lam2 = np.array([p[1] for p in pen]) * scaled
        full = self.model._penalties(alpha, l1_ratio, self.plan.n)[1] * self.plan.n / 2**self.plan.s
        return lam1, lam2, full

    def reciprocal(self, lam2, previous):
        """1/(g + ρ + λ2) of all rows, updated from the previous alpha's when it changed little."""
        if not lam2:
            return self.r0
        rho = 2.0**-(self.plan.sectype.frac_length // 2)
        a = self.g + (lam2 + rho)
        if previous is not None:
            r, lam_prev = previous
            change = (lam_prev - lam2) / (lam_prev + rho)
            if 0 <= change <= RECIPROCAL_NEWTON:
                return newton_reciprocal(a, r, change)
        return 1 / a

    async def run(self, alphas, l1_ratio):
        previous = None
        W = type(self.c)(np.zeros(self.c.shape), integral=False)
        bits = None
        for alpha in alphas:
            lam1, lam2, full = self.penalties(alpha, l1_ratio)
            r = self.reciprocal(full, previous)
            previous = (r, full)
            self.reciprocals.append(r)
            u, q = self.step(r, lam1.any())
            G = self.G + lam2.reshape(-1, 1, 1) * np.eye(self.plan.d) if lam2.any() else self.G
            if lam1.any():
                tau = scale(mpc.np_stack([u] * len(lam1)), lam1 * 2**MOMENTUM_BITS)
                W, bits, k = await self._l1(G, u, q, tau, W, bits)
            else:
                W, k = await self._ridge(G, u, q, W)
            self.rounds.append(k)
            self.coefs.append(W)
            self.mse.append(validation_mse(self.C, W, self.plan))

    def step(self, r, clipped):
        """u/2**e for the preconditioner r (clipped on the L1 path) and q = u∘c, per fold."""
        if self._cached[0] is r:   # the Lasso's preconditioner is the same at every alpha
            return self._cached[1]
        u = (self.t * 2.0**-MOMENTUM_BITS) * r
        if clipped:
            u = clip(u, self.plan.u_clip)
        self._cached = r, (u, fastmpc.mul(u, self.c) * 2**MOMENTUM_BITS)
        return self._cached[1]

    async def _ridge(self, G, u, q, W):
        m = self.model
        w, k = await linear.iterate(G, u, q, None, self.plan.fit, w0=W, fixed_iterations=m.fixed_iterations,
                                    max_iter=m.max_iter, tol=m.tol, name=type(m).__name__)
        if m.fixed_iterations is None and k == m.max_iter:
            self.converged = False
        return w, k

    async def _check(self, v, k, pending=None):
        """Open the range bit of v, with the pending convergence bit of the previous round if
        any; True if that bit says converged (then v is discarded, so its range bit does not
        matter), else raises if v is out of range."""
        opened = [linear.norm_bit(v, self.plan.fit, self.plan.check_bound)]
        if pending is not None:
            opened.append(pending[0])
        opened = await mpc.output(security.intended(opened))
        if pending is not None and opened[1]:
            return True
        if not opened[0]:
            raise linear.overflow(self.plan.fit, k, self.plan.check_bound)
        return False

    def _converged(self, W_new, W, bits, kept):
        """Secure bit: the deciding step W → W_new took the decisions `kept` of the round's
        other steps (if any) and moved every fold's coefficients by at most tol/(path_steps + 1)
        relative (as `mpclab.models.linear.converged`, over all folds at once).

        With the decisions kept, the deciding step is one proximal gradient step, so the bit
        bounds its fixed-point residual, as a single fit's stopping test does; the steps
        before it, and the change of alpha before the round, do not enter.
        """
        # a step's share of a round's tolerance (see the module docstring)
        tol = self.model.tol / (self.model.path_steps + 1)
        small = linear.converged(W_new, W, tol, batch=W.shape[0])
        if kept is None:
            return small
        # the decisions are exact 0/1 values: Σ (new − kept)² counts the changed ones
        changed = mpc.np_concatenate([(new - old).reshape(-1) for new, old in zip(bits, kept)])
        return small * mpc.lt(changed @ changed, 1)

    def _point(self, G, u, q, z, z_scaled):
        return z - fastmpc.mul(u, linear.matvec(G, z_scaled)) + q

    def _decide(self, v, tau):
        """Threshold decisions (P, N) = ([v > τ], [v < −τ]) at the plan's reduced precision."""
        plan = self.plan
        shape = v.shape
        x = mpc.np_concatenate(((v - tau).reshape(-1), (v + tau).reshape(-1)))
        drop = plan.sectype.frac_length - plan.compare_frac
        if drop:
            x = fastmpc.trunc(x, drop)
        below = mpc.np_sgn(x, l=plan.compare_bits, LT=True)   # [v − τ < 0], [v + τ < 0]
        n = v.size
        return (1 - below[:n]).reshape(shape), below[n:].reshape(shape)

    async def _l1(self, G, u, q, tau, W, bits):
        """Rounds of PATH_STEPS steps on the last decisions plus one deciding step, until a
        round's deciding step keeps the decisions and moves the coefficients by at most
        tol/(path_steps + 1) (or max_iter rounds); returns (W, (P, N), rounds).

        A round's convergence bit is opened together with the first range bit of the next
        round, which is computed meanwhile (and discarded if the bit says converged), as
        `mpclab.models.linear.iterate` does: one round trip less per round.
        """
        m = self.model
        fixed = m.fixed_iterations is not None
        steps = 0
        pending = None   # (convergence bit, W, (P, N), k) of the previous round
        for k in range(1, (m.fixed_iterations if fixed else m.max_iter) + 1):
            if bits is not None:
                P, N = bits
                keep, sign = P + N, N - P
                w, z, z_scaled, tk = W, W, W * 2**MOMENTUM_BITS, 1.0
                for _ in range(m.path_steps):
                    steps += 1
                    v = self._point(G, u, q, z, z_scaled)
                    if await self._check(v, steps, pending):
                        return pending[1:]
                    pending = None
                    w_new = keep * v + sign * tau
                    tk, p = linear.momentum(tk, 'fista')
                    z_scaled, z = linear.extrapolate(w_new, w, p)
                    w = w_new
                W = w
            steps += 1
            v = self._point(G, u, q, W, W * 2**MOMENTUM_BITS)
            if await self._check(v, steps, pending):
                return pending[1:]
            pending = None
            kept = bits
            P, N = bits = self._decide(v, tau)
            W_new = P * (v - tau) + N * (v + tau)
            if not fixed:
                pending = (self._converged(W_new, W, bits, kept), W_new, bits, k)
            W = W_new
        if pending is not None and await mpc.output(security.intended(pending[0])):
            return pending[1:]
        if not fixed:
            self.converged = False
        return W, bits, k


async def alpha_max(c, plan):
    """alpha_max = max_j |c_j|·2**s/n, rounded up to a power of 2**(1/ALPHA_MAX_STEPS) (coroutine).

    What is opened: the bits of a bisection on that public grid, about ten ("is alpha_max at
    most 2**(k/16)" for the k tried), which give the rounded value and nothing else.
    """
    negative = mpc.np_less(c, 0)
    largest = mpc.np_amax(c - 2 * negative * c)
    to_alpha = 2.0**plan.s / plan.n
    top = math.ceil(ALPHA_MAX_STEPS * math.log2(plan.fit.gamma * (1 + MARGIN) * to_alpha))
    lo, hi = top - ALPHA_MAX_STEPS * ALPHA_MAX_OCTAVES, top
    while lo < hi:
        mid = (lo + hi) // 2
        below = mpc.lt(largest, 2.0**(mid / ALPHA_MAX_STEPS) / to_alpha)
        if await mpc.output(security.intended(below)):
            hi = mid
        else:
            lo = mid + 1
    return 2.0**(lo / ALPHA_MAX_STEPS)


class _LinearModelCV(SecureLinearModel):
    """Cross-validated penalised linear regression: the common part of the three estimators."""

    def _l1_ratios(self):
        return [1.0]

    def _penalties(self, alpha, l1_ratio, rows):
        """(l1, l2) per row for a training set of `rows` rows."""
        return alpha * l1_ratio, alpha * (1 - l1_ratio)

    def _check_cv(self):
        if not isinstance(self.cv, (int, np.integer)) or self.cv < 2:
            raise ValueError(f'cv must be a number of folds, at least 2, not {self.cv!r} (the folds '
                             f'are contiguous blocks of the secret row order)')
        if self.path_steps < 0:
            raise ValueError(f'path_steps must be non-negative, not {self.path_steps}')
        linear.SecureLinearModel._check_params(self)

    def _grid(self, l1_ratio, top):
        """The candidate alphas for one l1 ratio, largest first; `top` is alpha_max (or None)."""
        alphas = self.alphas
        if self.n_alphas is not None:
            if not isinstance(alphas, (int, np.integer)) and alphas is not None:
                raise ValueError('give either alphas (a list) or n_alphas, not both')
            alphas = self.n_alphas
        if isinstance(alphas, (int, np.integer)):
            if l1_ratio == 0:
                raise ValueError('a path from alpha_max needs l1_ratio > 0: give alphas')
            return np.geomspace(top / l1_ratio, top / l1_ratio * self.eps, num=int(alphas))
        alphas = np.sort(np.asarray(alphas, dtype=float))[::-1]
        if not len(alphas) or alphas[-1] < 0:
            raise ValueError(f'alphas must be non-negative and not empty, not {self.alphas!r}')
        return alphas

    def _automatic(self):
        return self.n_alphas is not None or isinstance(self.alphas, (int, np.integer))

    async def fit(self, X, y):
        """Cross-validate, then fit on all rows with the best candidate; returns self (coroutine).

        X (n, d) and y (n,) are secure fixed-point arrays or `RowBlocks`.  See the module
        docstring for what is opened.
        """
        self._check_cv()
        n, d, sectype = check_data(X, y)
        folds = self.folds_ = linear.fold_bounds(n, self.cv)
        ratios = self._l1_ratios()
        clock = [time.perf_counter()]
        # Public bounds first: with alpha_max unknown, the largest L1 penalty is capped at γ.
        probe = [self._grid(l1r, 1.0) for l1r in ratios] if not self._automatic() else None
        first = LinearPlan(n, d, sectype, self.int_bits, l1=0.0, l2=0.0)
        if first.check_inputs:
            await linear.check_inputs(X, y, first)
        data = linear.moments(X, y, self.fit_intercept, folds)
        A_full = data.gram
        if first.check_gram:
            await linear.check_gram(A_full, first, wait=True)
        A, C = training_moments(data, self.fit_intercept)
        G_full, c_full = A_full[:d, :d], A_full[:d, d]
        r0, t = linear.jacobi(G_full)
        await mpc.gather(A, C, r0, t)
        clock.append(time.perf_counter())
        if probe is None:
            top = await alpha_max(c_full, CVPlan(n, d, sectype, self.int_bits, folds, 0.0, 0.0))
            grids = [self._grid(l1r, top) for l1r in ratios]
        else:
            grids = probe
        clock.append(time.perf_counter())
        pens = [self._penalties(a, l1r, n) for l1r, grid in zip(ratios, grids) for a in grid]
        plan = self.plan_ = CVPlan(n, d, sectype, self.int_bits, folds,
                                   max(p[0] for p in pens), max(p[1] for p in pens))
        g = linear._diag(G_full)
        paths, opened = [], []
        for l1r, grid in zip(ratios, grids):
            path = _Path(self, plan, A, C, r0, t, g)
            await path.run(grid, l1r)
            paths.append(path)
            opened += path.mse
        scaled = await mpc.output(security.intended(mpc.np_concatenate(opened)))
        clock.append(time.perf_counter())
        mse = np.asarray(scaled, dtype=float).reshape(len(ratios), -1) * 4.0**plan.mse_shift
        if not all(p.converged for p in paths):
            linear.warn_not_converged(type(self).__name__, self.max_iter, 'rounds at some alpha')
        best, best_mse = (0, 0), np.inf
        for i, row in enumerate(mse):      # the first l1 ratio wins a tie, as in scikit-learn
            j = int(np.argmin(row))
            if row[j] < best_mse:
                best, best_mse = (i, j), row[j]
        i, j = best
        self._set_path(ratios, np.array(grids), mse, [p.rounds for p in paths], i, j)
        await self._refit(paths[i], j, A_full, data.means, plan)
        clock.append(time.perf_counter())
        self.timings_ = dict(zip(['moments', 'alpha_max', 'path', 'final'], np.diff(clock)))
        return self

    def _set_path(self, ratios, grids, mse, rounds, i, j):
        self.alphas_, self.mse_path_, self.path_iterations_ = grids[0], mse[0], rounds[0]
        self.alpha_ = float(grids[i][j])

    async def _refit(self, path, j, A, means, cvplan):
        """The final fit on all rows at the chosen candidate, warm-started from the folds' mean."""
        n, d = cvplan.n, cvplan.d
        l1, l2 = self._penalties(self.alpha_, self._chosen_ratio(), n)
        plan = self.final_plan_ = LinearPlan(n, d, cvplan.sectype, self.int_bits, l1=l1, l2=l2,
                                             solver=self.solver)
        G, c = A[:d, :d], A[:d, d]
        system = linear.system(G, c, path.reciprocals[j], path.t, plan.capped_l1(), plan.lam2, self.solver)
        K = len(cvplan.sizes)
        w0 = scale(path.coefs[j].sum(axis=0), 1 / K)
        w, self.n_iter_ = await linear.iterate(*system, plan, w0=w0, fixed_iterations=self.fixed_iterations,
                                               max_iter=self.max_iter, tol=self.tol, solver=self.solver,
                                               name=type(self).__name__)
        b = linear.intercept(means, w) if self.fit_intercept else None
        await mpc.gather(w)
        self.coef_ = w
        self.intercept_ = b[0] if self.fit_intercept else 0.0

    def _chosen_ratio(self):
        return 1.0


_CV_PARAMS = """eps : float, default 1e-3
        alpha_min / alpha_max of a path built from alpha_max.
    alphas : int or array-like, default 100
        A number: that many alphas on a geometric path from alpha_max down to eps·alpha_max
        (alpha_max is computed in MPC and opened rounded up to a power of 2**(1/16)); or the
        candidate alphas themselves (then nothing about alpha_max is opened).
    n_alphas : int or None, default None
        The number of alphas of the path, as the earlier spelling ``n_alphas=N``.
    cv : int, default 5
        The number of folds: contiguous blocks of the secret row order, as ``KFold(cv)``.
    fit_intercept : bool, default True
    max_iter : int, default 1000
        Per alpha, the limit on rounds of the path; and the iteration limit of the final fit.
    tol : float, default 1e-4
        Per alpha, stop when a round's deciding step keeps every fold's decisions and changes
        the coefficients by at most tol/(path_steps + 1) relative (one opened bit per round;
        ridge: by tol per step); the final fit's tolerance.
    fixed_iterations : int or None, default None
        Exactly this many rounds per alpha and iterations in the final fit: nothing about
        convergence is opened.
    solver : {'fista', 'ista'}, default 'fista'
        The final fit's solver.
    int_bits : int or None, default None
        Public bound on the inputs, as for the single estimators.
    path_steps : int, default 4
        Steps per round that keep the last threshold decisions (0: proximal gradient).

    Attributes
    ----------
    alpha_ : float
        The chosen alpha (public).
    alphas_ : ndarray (n_alphas,)
        The candidates, largest first (public).
    mse_path_ : ndarray (n_alphas,)
        The mean over the folds of the held-out mean squared error per candidate (public):
        scikit-learn's ``mse_path_.mean(axis=-1)``; the per-fold errors stay secret.
    path_iterations_ : list of int
        Rounds per candidate (public, from the opened convergence bits).
    coef_, intercept_ : secure, or numpy after `reveal` at a receiver
        The model fitted on all rows with alpha_.
    n_iter_ : int
        Iterations of the final fit.
    folds_ : list of (start, stop)
    plan_ : CVPlan
    timings_ : dict
        Seconds at this party in 'moments' (and the systems), 'alpha_max', 'path', 'final'.

    Raises
    ------
    FixedPointOverflowError
        From `fit`, before anything out of range is opened (the message names the cause and
        the remedy).
    ValueError
        From `fit`, for parameters or shapes that make no sense.
    """


class SecureLassoCV(_LinearModelCV):
    __doc__ = """Lasso with alpha chosen by K-fold cross-validation in MPC, as scikit-learn's LassoCV.

    See the module docstring for the method and for what `fit` opens (the chosen alpha, the
    mean validation error per candidate, and bits; `reveal` opens the final model).

    Parameters
    ----------
    """ + _CV_PARAMS

    def __init__(self, *, eps=1e-3, alphas=100, n_alphas=None, cv=5, fit_intercept=True,
                 max_iter=1000, tol=1e-4, fixed_iterations=None, solver='fista', int_bits=None,
                 path_steps=PATH_STEPS):
        self.eps, self.alphas, self.n_alphas, self.cv = eps, alphas, n_alphas, cv
        self.fit_intercept, self.max_iter, self.tol = fit_intercept, max_iter, tol
        self.fixed_iterations, self.solver, self.int_bits = fixed_iterations, solver, int_bits
        self.path_steps = path_steps
        self._check_cv()


class SecureElasticNetCV(_LinearModelCV):
    __doc__ = """Elastic net with alpha (and l1_ratio) chosen by K-fold cross-validation in MPC, as
    scikit-learn's ElasticNetCV.

    See the module docstring for the method and for what `fit` opens; `reveal` opens the final
    model.

    Parameters
    ----------
    l1_ratio : float or list of float, default 0.5
        A list is searched too (one path per value, as ElasticNetCV); then ``alphas_`` and
        ``mse_path_`` have a row per value, and ``l1_ratio_`` is the chosen one.
    """ + _CV_PARAMS

    def __init__(self, *, l1_ratio=0.5, eps=1e-3, alphas=100, n_alphas=None, cv=5,
                 fit_intercept=True, max_iter=1000, tol=1e-4, fixed_iterations=None, solver='fista',
                 int_bits=None, path_steps=PATH_STEPS):
        self.l1_ratio = l1_ratio
        self.eps, self.alphas, self.n_alphas, self.cv = eps, alphas, n_alphas, cv
        self.fit_intercept, self.max_iter, self.tol = fit_intercept, max_iter, tol
        self.fixed_iterations, self.solver, self.int_bits = fixed_iterations, solver, int_bits
        self.path_steps = path_steps
        self._check_cv()

    def _check_cv(self):
        super()._check_cv()
        if any(not 0 <= r <= 1 for r in np.ravel(self.l1_ratio)):
            raise ValueError(f'l1_ratio must be in [0, 1], not {self.l1_ratio}')

    def _l1_ratios(self):
        return [float(r) for r in np.ravel(self.l1_ratio)]

    def _set_path(self, ratios, grids, mse, rounds, i, j):
        self.l1_ratio_ = ratios[i]
        self.alpha_ = float(grids[i][j])
        single = np.ndim(self.l1_ratio) == 0
        self.alphas_ = grids[0] if single else grids
        self.mse_path_ = mse[0] if single else mse
        self.path_iterations_ = rounds[0] if single else rounds

    def _chosen_ratio(self):
        return self.l1_ratio_


class SecureRidgeCV(_LinearModelCV):
    __doc__ = """Ridge regression with alpha chosen by K-fold cross-validation in MPC, as
    scikit-learn's ``RidgeCV(alphas, cv=K, scoring='neg_mean_squared_error')``.

    Minimises ``||y − Xw − b||² + alpha·||w||²`` on each training set; no soft threshold, so the
    path is accelerated gradient descent on all folds at once, warm-started along the alphas.
    See the module docstring for what `fit` opens; `reveal` opens the final model.

    Parameters
    ----------
    alphas : array-like, default (0.1, 1.0, 10.0)
        The candidates (no path from alpha_max: ridge has none).
    cv, fit_intercept, max_iter, tol, fixed_iterations, solver, int_bits :
        As for SecureLassoCV (max_iter and tol per step of the path; no rounds).

    Attributes
    ----------
    alpha_, alphas_, mse_path_, path_iterations_, coef_, intercept_, n_iter_, folds_, plan_, timings_ :
        As for SecureLassoCV (``path_iterations_``: steps per candidate).
    best_score_ : float
        Minus the least mean validation MSE, as RidgeCV's with that scoring.
    """

    def __init__(self, alphas=(0.1, 1.0, 10.0), *, cv=5, fit_intercept=True, max_iter=1000,
                 tol=1e-4, fixed_iterations=None, solver='fista', int_bits=None):
        self.alphas, self.n_alphas, self.eps, self.cv = alphas, None, None, cv
        self.fit_intercept, self.max_iter, self.tol = fit_intercept, max_iter, tol
        self.fixed_iterations, self.solver, self.int_bits = fixed_iterations, solver, int_bits
        self.path_steps = 0
        self._check_cv()

    def _check_cv(self):
        super()._check_cv()
        if isinstance(self.alphas, (int, np.integer)):
            raise ValueError('SecureRidgeCV needs the candidate alphas (a list)')

    def _l1_ratios(self):
        return [0.0]

    def _penalties(self, alpha, l1_ratio, rows):
        return 0.0, alpha / rows

    def _chosen_ratio(self):
        return 0.0

    def _set_path(self, ratios, grids, mse, rounds, i, j):
        super()._set_path(ratios, grids, mse, rounds, i, j)
        self.best_score_ = -float(mse[i][j])

