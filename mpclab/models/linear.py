"""Penalised linear regression on secret-shared data: the Gram matrix and solver that Lasso,
elastic net and ridge regression share.

Every model here minimises, for the centred data (intercept not penalised),

    (1/(2n))·||y − Xw − b||² + l1·||w||₁ + (l2/2)·||w||²

which is scikit-learn's ElasticNet with ``l1 = alpha·l1_ratio`` and ``l2 = alpha·(1 − l1_ratio)``,
its Lasso with ``l2 = 0`` and its Ridge (``||y − Xw − b||² + alpha·||w||²``, not divided by n)
with ``l1 = 0`` and ``l2 = alpha/n``.  Multiplied by ``n/2**s`` (``2**s ≤ n``), this is

    ½·wᵀ(G + λ2·I)w − cᵀw + λ1·||w||₁,    λ1 = l1·n/2**s,  λ2 = l2·n/2**s,

with ``[[G, c], [cᵀ, ·]]`` the centred Gram matrix of ``[X, y]`` divided by ``2**s`` (entries near the
covariances).  The data enter only through it, computed once (`moments`: local O(n·d²) work on
BLAS and one round of truncations per block of rows, `mpclab.fastmpc.matmul_t`); the L2 penalty
is added to its diagonal; every iteration then costs O(d²) local work and a few rounds, whatever n.

Solver (`iterate`): FISTA, or plain proximal gradient (``solver='ista'``), with a Jacobi
preconditioner, ``w ← soft(z − u∘((G + λ2)·z − c), λ1·u)`` with ``u = t/(diag(G) + λ2 + ρ)``:
the method does not depend on the units of the features, like coordinate descent.  The scalar
``t ≤ 1/λmax`` of the preconditioned matrix comes from the data in MPC (Wolkowicz–Styan bound
from two trace moments, `_step_size`).  Without an L1 penalty there is no soft threshold (ridge):
the iteration is then accelerated gradient descent on a quadratic, with no secure comparison
other than the range and convergence bits below.  The soft threshold takes two secure
comparisons per coefficient.

Ranges (see `mpclab.bounds`).  Every value that is opened under a mask, here and in MPyC's
operations, is bounded before it is opened.  The public facts are n, d, the penalties, the
secure type and ``int_bits`` (every input satisfies ``|x| < 2**int_bits``, as the agreed input
format guarantees).  From them follow, before anything is computed: the Gram matrix's entries
(at most ``n·4**int_bits`` before scaling), the means, and so a public bound γ on the diagonal of
the scaled Gram matrix, γ + λ2 with the L2 penalty; from it follow the trace moments, the step
size, the iteration matrix and the soft threshold (λ1 is capped at γ, above which the solution
is 0 anyway); and a bound B on ``||w_k||₁`` bounds everything in an iteration.  No penalty bounds
the FISTA iterates usefully, so B is established by a secure check in every iteration, before
the next product with the Gram matrix.  If a public bound does not fit the type, `fit` raises
`FixedPointOverflowError` before computing anything.

What is opened (to all parties) by `fit`, and nothing else:

* ``int_bits=None`` only: one bit per block of rows, "every column of ``[X, y]`` has a sum of
  squares below its share of 2**(l-f-1)" (2**31; `mpclab.fastmpc.norms_within`), which keeps the
  Gram matrix in range, before it;
* only if the public bound on the scaled Gram diagonal is above ``GRAM_CHECK`` (2**12): one
  bit, "every diagonal entry of the scaled centred Gram matrix ``ZᵀZ/2**s`` of ``Z = [X, y]``
  is at most 2**12", after the Gram matrix and before anything that needs it;
* one range bit per computed iteration, "``||v_k||₂ ≤ B/√d``" for the point v_k before the
  soft threshold, which bounds ``||w_k||₁ ≤ B`` (B public, 2**14 for data scaled to [0, 1]),
  before the next product with the Gram matrix;
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

Tables too big for one secure array come as `mpclab.blocks.RowBlocks` (X, y or both): the Gram
matrix is then accumulated block by block, and no copy of the whole table is made.
"""

import functools
import math
import operator
import time
import warnings

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.blocks import RowBlocks, as_blocks
from mpclab.bounds import MARGIN, REMEDY, FixedPointOverflowError, Plan, limit, require, type_name

__all__ = ['SecureElasticNet', 'SecureRidge', 'LinearPlan', 'Moments', 'moments', 'fold_bounds',
           'FixedPointOverflowError']

GRID_RATIO = 2 ** (1 / 12)   # resolution of the secure step-size bound
ISTA_STEP = 1.5             # plain proximal gradient converges for steps below 2/λmax
MOMENTUM_BITS = 8            # resolution of the public momentum weights
GRAM_CHECK = 2.0**12         # bound on the scaled Gram diagonal checked when none is public
ITERATE_MAX = 2.0**14        # largest bound B on ||w||₁: keeps ||w_k - w_k-1||² below 2**31
SOLVERS = ('fista', 'ista')


def _diag(A):
    """The diagonal of a (stack of) square secure matrices, as a view."""
    i = np.arange(A.shape[-1])
    return A[..., i, i]


def _symmetric_index(d, k=0):
    """Index array mapping (i, j) to the position of (min, max) in the list of entries of
    np.triu_indices(d, k); the diagonal maps to one past the end when k = 1."""
    upper = np.triu_indices(d, k)
    index = np.full((d, d), len(upper[0]))
    index[upper] = index.T[upper] = np.arange(len(upper[0]))
    return index


def scale(a, c):
    """Secure ``a·c`` for a public float c, or for one float per row of a (a sequence).

    MPyC's own product with a public float truncates with secret random bits; here the
    constant is rounded to ``f`` fractional bits, multiplied in as a Python int (local) and the
    product truncated once by `fastmpc.trunc`, which needs ``|a·c| < 2**(l-f-1)``.
    """
    f = a.sectype.frac_length
    if np.ndim(c) == 0:
        return fastmpc.trunc(a * int(round(c * 2**f)), f)
    return fastmpc.trunc(mpc.np_stack([a[k] * int(round(ck * 2**f)) for k, ck in enumerate(c)]), f)


class LinearPlan:
    """The public range bounds of one penalised linear regression fit (see the module docstring).

    Parameters are the penalties per row, ``l1`` and ``l2``, of the objective above.
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
    lam1, lam2 : float
        The penalties on the scaled Gram matrix, ``l1·n/2**s`` and ``l2·n/2**s``.
    iterate_bound : float
        B, the bound on ``||w_k||₁`` checked in every iteration.
    prediction_bound : float
        Bound on ``|x·w + b|`` for every x with ``|x_j| < 2**J``.
    """

    def __init__(self, n, d, sectype, int_bits=None, l1=1.0, l2=0.0, solver='fista'):
        if l1 < 0 or l2 < 0:
            raise ValueError(f'penalties must be non-negative, not l1={l1}, l2={l2}')
        lim = limit(sectype) / (1 + MARGIN)
        self.n, self.d, self.sectype = n, d, sectype
        self.s = n.bit_length() - 1
        self.lam1 = l1 * n / 2**self.s
        self.lam2 = l2 * n / 2**self.s
        self.alpha = self.lam1          # the name of the L1 penalty in SecureLasso's plan
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
        self.iterate_bound = self._iterate_bound(self.gamma)
        if not self.iterate_bound:
            penalty = f'l1={l1:g}, l2={l2:g}' if l2 else f'alpha={l1:g}'
            raise FixedPointOverflowError(f'{penalty} and {d} features overflow '
                                          f'{type_name(sectype)} ({self._why}): {REMEDY}')
        self.prediction_bound = 2.0**int_bits * (1 + 2 * self.iterate_bound)
        # Whether the iteration matrix is in range by the public bound alone, so that the
        # check of the Gram diagonal can be opened while it is computed.
        rho = 2.0**-(sectype.frac_length // 2)
        public2 = public + self.lam2
        system = Plan(sectype)
        system.need('the squared Gram entries', public2 * public2)
        system.need('the trace moments', d * max(public2, 3.0 * d))
        system.need('the soft threshold', self.t_max * self.capped_l1(public) / rho)
        self.system_public = system.ok
        self.norm_shift, self.norm_bound = self.norm_check(d)

    def capped_l1(self, gamma=None):
        """λ1, capped at the bound on |c| (beyond it the solution is 0 whatever λ1 is)."""
        return min(self.lam1, (self.gamma if gamma is None else gamma) * (1 + MARGIN))

    def norm_check(self, size, bound=None):
        """(shift, bound) of the range bit for `size` coefficients in all (e.g. a batch of folds).

        The bit bounds ``||v||₂ ≤ B/√d`` (so ``||v||₁ ≤ B``; for a batch, the sum of squares
        over all of it, so each fold's) from a copy of v divided by 2**shift,
        ``shift = f//2 + ceil(log2(size)/2)``: its square sum stays in range for any v in
        range, and its comparison can run next to other comparisons.
        """
        B = self.iterate_bound if bound is None else bound
        shift = self.sectype.frac_length // 2 + math.ceil(math.log2(max(size, 1)) / 2)
        return shift, (B**2 / self.d) * 2.0**(-2 * shift)

    def _iterate_bound(self, gamma):
        """The bound B on ||w||₁ that keeps every iteration in range, or 0 if none does."""
        sectype, d, J = self.sectype, self.d, self.input_bits
        lim = limit(sectype) / (1 + MARGIN)
        rho = 2.0**-(sectype.frac_length // 2)      # the ridge in 1/diag(G)
        gamma2 = gamma + self.lam2                   # the diagonal of G + λ2·I
        # With r_j = 1/(G_jj + λ2 + rho) and |G_jk| <= sqrt(G_jj G_kk): sqrt(G_jj) r_j <= 1/(2 sqrt(rho)),
        # and λ2 r_j <= 1 for the penalty on the diagonal.
        h = self.t_max * (math.sqrt(gamma) / (2 * math.sqrt(rho)) + (1 if self.lam2 else 0))
        tau = self.t_max * self.capped_l1(gamma) / rho
        plan = Plan(sectype)
        plan.need('the squared Gram entries', gamma2 * gamma2)
        plan.need('the trace moments', d * max(gamma2, 3.0 * d))
        plan.need('the soft threshold', tau + h)
        self._why = plan.describe() if not plan.ok else ''
        if not plan.ok:
            return 0.0
        z = 3.0   # ||z||₁ <= 3 B for the extrapolated point z = w + beta (w - w_prev), beta < 1
        B = min(ITERATE_MAX,
                lim / (z * gamma2 * 2**MOMENTUM_BITS),    # G·(2**e z)
                (lim - tau - h) / (z + z * h),            # v = z - u∘(Gz) + q, then ± tau
                lim / 2**J / 2)                           # the intercept mean(y) - mean(X)·w
        if B < 1:
            self._why = f'the iterates would have to stay below {B:.2g}'
            return 0.0
        return B


# --- The data: moments of [X, y], per fold if asked -----------------------------------------

def fold_bounds(n, k):
    """Row ranges [(start, stop), ...] of k contiguous folds, as scikit-learn's KFold(k) cuts them
    (the first n % k folds one row longer)."""
    if not 2 <= k <= n:
        raise ValueError(f'cannot cut {n} rows into {k} folds')
    sizes = np.full(k, n // k)
    sizes[:n % k] += 1
    stops = np.cumsum(sizes)
    return [(int(a), int(b)) for a, b in zip(stops - sizes, stops)]


def _total(arrays):
    """The sum of secure arrays (local: no truncation, nothing sent)."""
    return functools.reduce(operator.add, arrays)


def _cuts(X, y, folds):
    cuts = {0, X.n_rows}
    for blocks in (X, y):
        offset = 0
        for b in blocks:
            offset += b.shape[0]
            cuts.add(offset)
    cuts.update(b for _, b in folds)
    return sorted(cuts)


class Moments:
    """The second moments of ``Z = [X, y]`` about its mean, scaled by ``2**-s`` (s = ⌊log2 n⌋).

    Attributes
    ----------
    n, s : int
    means : secure array (d+1,), or None without intercept (then nothing is centred)
    gram : secure array (d+1, d+1), ``Σ (z − μ)(z − μ)ᵀ / 2**s`` over all rows
    folds : list of (secure (d+1, d+1), secure (d+1,), int), or None
        Per fold: ``Σ (z − μ)(z − μ)ᵀ / 2**s`` and ``Σ (z − μ)`` over its rows, and its size;
        they add up to gram and 0.  Every training set's moments follow (see
        `mpclab.models.selection`).
    """

    def __init__(self, n, s, means, gram, folds):
        self.n, self.s, self.means, self.gram, self.folds = n, s, means, gram, folds


def moments(X, y, fit_intercept=True, folds=None):
    """The `Moments` of [X, y] (secure arrays or `RowBlocks`), per fold for `fold_bounds` rows.

    Two passes over the rows, a block (cut further at the folds' bounds) at a time: local
    column sums, then per fold one `fastmpc.matmul_t_sum` of the centred blocks (their exact
    products added up, one round of truncations), so that only one block's centred copy
    exists at a time.  Opens nothing beyond the masked openings of those truncations.
    """
    X, y = as_blocks(X), as_blocks(y)
    n = X.n_rows
    if y.n_rows != n:
        raise ValueError(f'X has {n} rows but y has {y.n_rows}')
    s = n.bit_length() - 1
    whole = [(0, n)]
    spans = list(zip(*(lambda c: (c[:-1], c[1:]))(_cuts(X, y, folds or whole))))
    f = X.blocks[0].sectype.frac_length

    def rows(a, b):
        return mpc.np_column_stack((X.rows(a, b).array(), y.rows(a, b).array()))

    sums = [rows(a, b).sum(axis=0) for a, b in spans]
    means = scale(_total(sums), 1 / n) if fit_intercept else None

    def centred(pieces):
        for a, b in pieces:
            Z = rows(a, b) - means if fit_intercept else rows(a, b)
            yield Z, Z

    per_fold = []
    for a, b in folds or whole:
        mine = [i for i, (lo, _) in enumerate(spans) if a <= lo < b]
        gram = fastmpc.matmul_t_sum(centred([spans[i] for i in mine]), f=f + s)
        total = _total(sums[i] for i in mine)   # Σ (z − μ) = Σ z − (b − a)·μ, exactly
        per_fold.append((gram, total - means * (b - a) if fit_intercept else total, b - a))
    gram = _total(M for M, _, _ in per_fold)
    return Moments(n, s, means, gram, per_fold if folds else None)


async def check_inputs(X, y, plan):
    """The secure range check of ``int_bits=None``: every column's sum of squares, per block.

    Each block of rows gets its share of the bound, ``square_sums·rows/n``, so that the sums
    over all blocks are below it.  What is opened: one bit per block.
    """
    X, y = as_blocks(X), as_blocks(y)
    n = plan.n
    cuts = _cuts(X, y, [(0, n)])
    for a, b in zip(cuts[:-1], cuts[1:]):
        inputs = mpc.np_column_stack((X.rows(a, b).array(), y.rows(a, b).array()))
        if not await fastmpc.norms_within(inputs, plan.square_sums * ((b - a) / n)):
            raise FixedPointOverflowError(
                f'the columns are too large for {type_name(plan.sectype)} with {n} rows (a sum of '
                f'squares may reach 2**{math.log2(plan.square_sums):.0f}; those up to about '
                f'2**{math.log2(plan.square_sums) - 1:.0f} pass this check): {REMEDY}')


async def check_gram(A, plan, wait):
    """The secure check of the scaled Gram diagonal (only if ``plan.check_gram``).

    Opens one bit now if `wait`, else returns a coroutine that opens it (to be awaited before
    anything that needs the bound: the caller opens it while it computes the system).
    """
    fits = mpc.np_all(mpc.np_less(_diag(A), plan.gamma * (1 + 2**-20)))
    message = (f'the variances of the data (times n/2**{plan.s}) exceed {plan.gamma:g}, more '
               f'than {type_name(plan.sectype)} holds here: {REMEDY}')
    if wait:
        await require(fits, message)
        return None
    return require(fits, message)


# --- The iteration ---------------------------------------------------------------------------

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


def jacobi(G, lam2=0.0):
    """Secure r = 1/(diag(G) + λ2 + ρ) (ρ = 2**-(f//2): constant columns stay harmless, their
    coefficient 0) and the step t ≤ 1/λmax(diag(r)·(G + λ2·I)).

    The t found for λ2 = 0 serves every λ2 ≥ 0 with its own r (`mpclab.models.selection`
    relies on this): with E = diag(sqrt((g+ρ)/(g+ρ+λ2))) the preconditioned matrix is
    E·M₀·E + I − E², whose largest eigenvalue is at most max(λmax(M₀), 1), and t < 1.
    """
    d = G.shape[0]
    r = 1 / (_diag(G) + (lam2 + 2.0**-(G.sectype.frac_length // 2)))
    Gp = G + lam2 * np.eye(d) if lam2 else G
    return r, _step_size(*_trace_moments(Gp, r), d)


def system(G, c, r, t, lam1, lam2=0.0, solver='fista'):
    """The iteration w ← soft(z − u∘((G + λ2)·z − c), λ1·u) for the secure G, c, r and t.

    Returns G + λ2·I, u/2**e, q = u∘c and τ = λ1·u (None without L1 penalty), e =
    MOMENTUM_BITS, all derived from the same rounded u/2**e, so that the fixed point is exactly
    the model's (see `iterate` for the 2**e).  λ1 is the caller's, already capped.
    """
    d = G.shape[-1]
    if solver == 'ista':
        t = t * ISTA_STEP
    u = (t * 2.0**-MOMENTUM_BITS) * r
    Gp = G + lam2 * np.eye(d) if lam2 else G
    tau = u * (lam1 * 2**MOMENTUM_BITS) if lam1 else None
    return Gp, u, fastmpc.mul(u, c) * 2**MOMENTUM_BITS, tau


def matvec(G, z):
    """Secure G·z for a (stack of) matrices G (..., d, d) and vectors z (..., d), one round."""
    return fastmpc.matmul(G, z.reshape(z.shape + (1,))).reshape(z.shape)


def sum_of_squares(x):
    """Secure Σ x² over all entries of x (one truncation)."""
    x = x.reshape(1, x.size)
    return fastmpc.matmul(x, x.T).reshape(1)[0]


def norm_bit(v, plan, bound=None):
    """The secure range bit of an iteration, ``Σ v² ≤ B²/d`` (see `LinearPlan.norm_check`)."""
    shift, limit_ = plan.norm_check(v.size, bound)
    return mpc.lt(sum_of_squares(fastmpc.trunc(v, shift)), limit_)


def _soft_threshold(v, tau):
    """sign(v)·max(|v| − τ, 0) elementwise (τ broadcast) with one batch of 2·size comparisons."""
    shape = v.shape
    lo, hi = (v - tau).reshape(-1), (v + tau).reshape(-1)
    n = lo.size
    bits = mpc.np_less(mpc.np_concatenate((lo, hi)), 0)   # [v < τ], [v < −τ]
    p = mpc.np_concatenate((1 - bits[:n], bits[n:])) * mpc.np_concatenate((lo, hi))
    return (p[:n] + p[n:]).reshape(shape)


def momentum(tk, solver):
    """(t_{k+1}, p): FISTA's next weight and the public momentum p/2**e rounded to e bits."""
    t_next = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
    p = round((tk - 1) / t_next * 2**MOMENTUM_BITS) if solver == 'fista' else 0
    return t_next, p


def extrapolate(w_new, w, p):
    """(2**e·z, z) for z = w_new + (p/2**e)·(w_new − w): the first an integer combination."""
    delta = w_new - w
    z_scaled = w_new * 2**MOMENTUM_BITS + delta * p if p else w_new * 2**MOMENTUM_BITS
    z = w_new + fastmpc.trunc(delta * p, MOMENTUM_BITS) if p else w_new
    return z_scaled, z


def converged(w_new, w, tol, batch=1):
    """Secure bit ``||w_new − w||₂ ≤ tol·||w_new||₂`` (over all entries of a batch).

    For a batch of k vectors, both are divided by 2**⌈log2(k)/2⌉ first: each vector's squared
    step is below 2**30 (``||w||₁ < B ≤ 2**14``), so the batch's sum stays in range.
    """
    delta = w_new - w
    if batch > 1:
        shift = math.ceil(math.log2(batch) / 2)
        delta, w_new = fastmpc.trunc(delta, shift), fastmpc.trunc(w_new, shift)
    return mpc.lt(sum_of_squares(delta) - (sum_of_squares(w_new) * tol) * tol,
                  2.0**-w.sectype.frac_length)   # i.e. ≤ 0


def overflow(plan, k, bound=None):
    B = plan.iterate_bound if bound is None else bound
    return FixedPointOverflowError(
        f'the coefficients could exceed {B:g} in L1 norm at iteration {k}, more than '
        f'{type_name(plan.sectype)} holds here: {REMEDY}')


async def iterate(G, u, q, tau, plan, *, w0=None, fixed_iterations=None, max_iter=1000, tol=1e-4,
                  solver='fista', name='the model'):
    """FISTA (or ISTA) iterations with the range check ||w_k||₁ < B; returns (w, k).

    G, u, q, tau as from `system` (tau None: no soft threshold); a leading batch axis (folds)
    is iterated in lockstep, with one range bit and one convergence bit for the whole batch.
    w0 warm-starts (its ||w0||₁ must be below B, as every checked iterate's is).

    The extrapolated point z = w + β·Δ also enters as 2**e·z = (2**e + p)·w − p·w_prev, an
    integer combination (β = p/2**e), so the product G·(2**e·z) needs no truncation of z
    first.  Iteration k+1 starts only once the range bit of iteration k is opened (its
    product with G relies on it); the convergence bit of iteration k is opened together
    with the range bit of iteration k+1, hiding its latency.
    """
    fixed = fixed_iterations is not None
    w = type(q)(np.zeros(q.shape), integral=False) if w0 is None else w0
    z = w
    z_scaled = w * 2**MOMENTUM_BITS
    tk, k = 1.0, 0
    pending = None  # (secure bit, w, k) of the previous iteration
    for k in range(1, (fixed_iterations if fixed else max_iter) + 1):
        v = z - fastmpc.mul(u, matvec(G, z_scaled)) + q
        w_new = v if tau is None else _soft_threshold(v, tau)
        opened = [norm_bit(v, plan)] + ([pending[0]] if pending else [])
        opened = await mpc.output(security.intended(opened))
        if pending and opened[1]:
            return pending[1], pending[2]
        if not opened[0]:
            raise overflow(plan, k)
        tk, p = momentum(tk, solver)
        z_scaled, z = extrapolate(w_new, w, p)
        if not fixed:
            pending = (converged(w_new, w, tol, batch=q.size // q.shape[-1]), w_new, k)
        w = w_new
    if pending and await mpc.output(security.intended(pending[0])):
        return pending[1], pending[2]
    if not fixed:
        warn_not_converged(name, max_iter)
    return w, k


def warn_not_converged(name, max_iter, what='iterations'):
    from sklearn.exceptions import ConvergenceWarning   # only here: keeps party start-up fast
    warnings.warn(f'{name} did not converge in {max_iter} {what}', ConvergenceWarning)


# --- The estimators --------------------------------------------------------------------------

def check_data(X, y):
    """(n, d, sectype) of X (n, d) and y (n,), secure arrays or RowBlocks."""
    if X.ndim != 2:
        raise ValueError(f'X must be 2-D, not of shape {X.shape}')
    n, d = X.shape
    if y.shape != (n,):
        raise ValueError(f'y has shape {y.shape}, expected ({n},)')
    return n, d, as_blocks(X).blocks[0].sectype


def intercept(means, w):
    """Secure b = mean(y) − mean(X)·w, as an array of one value."""
    d = w.shape[0]
    return means[d:] - means[:d].reshape(1, d) @ w


class SecureLinearModel:
    """The calling convention of mpclab's linear models: ``await fit(X, y)``, ``predict``,
    ``score``, ``await reveal(receivers)`` (see `SecureElasticNet`)."""

    def _penalties(self, n):
        """(l1, l2): the penalties per row of the objective in the module docstring."""
        raise NotImplementedError

    def _set_params(self, alpha, max_iter, tol, fit_intercept, fixed_iterations, solver, int_bits):
        """Store the options of a single fit (see `_PARAMS`), then check them."""
        self.alpha, self.max_iter, self.tol = alpha, max_iter, tol
        self.fit_intercept, self.fixed_iterations = fit_intercept, fixed_iterations
        self.solver, self.int_bits = solver, int_bits
        self._check_params()

    def _check_params(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {self.solver!r}")
        if self.max_iter < 1 or (self.fixed_iterations is not None and self.fixed_iterations < 1):
            raise ValueError('max_iter and fixed_iterations must be at least 1')

    async def fit(self, X, y):
        """Fit on secure fixed-point X (n, d) and y (n,), arrays or `RowBlocks`; returns self
        (coroutine).  See the module docstring for what is opened."""
        self._check_params()
        n, d, sectype = check_data(X, y)
        l1, l2 = self._penalties(n)
        plan = self.plan_ = LinearPlan(n, d, sectype, self.int_bits, l1, l2, self.solver)
        clock = [time.perf_counter()]
        if plan.check_inputs:
            await check_inputs(X, y, plan)
        data = moments(X, y, self.fit_intercept)
        A = data.gram
        pending = await check_gram(A, plan, wait=not plan.system_public) if plan.check_gram else None
        await mpc.gather(A)
        clock.append(time.perf_counter())
        G, c = A[:d, :d], A[:d, d]
        r, t = jacobi(G, plan.lam2)
        system_ = system(G, c, r, t, plan.capped_l1(), plan.lam2, self.solver)
        if pending is not None:   # needed from the iterations on: opened while the system is computed
            await pending
        await mpc.gather(*[a for a in system_ if a is not None])
        clock.append(time.perf_counter())
        w, self.n_iter_ = await iterate(*system_, plan, fixed_iterations=self.fixed_iterations,
                                        max_iter=self.max_iter, tol=self.tol, solver=self.solver,
                                        name=type(self).__name__)
        clock.append(time.perf_counter())
        b = intercept(data.means, w) if self.fit_intercept else type(w)(np.zeros(1), integral=False)
        await mpc.gather(b)
        clock.append(time.perf_counter())
        self.timings_ = dict(zip(['gram', 'step_size', 'iterations', 'finish'], np.diff(clock)))
        self.coef_ = w
        self.intercept_ = b[0] if self.fit_intercept else 0.0
        return self

    def predict(self, X):
        """Secure predictions X @ coef_ + intercept_ for a secure array X (n, d), or RowBlocks
        of them for RowBlocks."""
        if isinstance(X, RowBlocks):
            return RowBlocks([self.predict(b) for b in X])
        return X @ self.coef_ + self.intercept_

    def score(self, X, y):
        """Secure R² of the predictions on (X, y) (see `mpclab.metrics.regression.r2_score`)."""
        from mpclab.metrics.regression import r2_score
        if isinstance(X, RowBlocks) or isinstance(y, RowBlocks):
            return r2_score(as_blocks(y).array(), as_blocks(self.predict(X)).array())
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


_PARAMS = """max_iter : int, default 1000
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
        a sum of squares below 2**31 for ``SecFxp(64, 32)`` (one opened bit per block of rows;
        passes up to about 2**30, e.g. a root mean square up to 460 for 5000 rows), about
        0.003 ms per input.

    Attributes
    ----------
    coef_ : secure array (d,), or numpy array after `reveal` at a receiver
    intercept_ : secure number, or float after `reveal` (0.0 without intercept)
    n_iter_ : int, public
    plan_ : LinearPlan
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
    ValueError
        From `fit`, for parameters or shapes that make no sense.
    """


class SecureElasticNet(SecureLinearModel):
    __doc__ = """Elastic net linear regression trained in MPC on secret-shared data.

    Minimises scikit-learn's ElasticNet objective ``(1/(2n))·||y − Xw − b||² +
    alpha·l1_ratio·||w||₁ + 0.5·alpha·(1 − l1_ratio)·||w||²`` (see the module docstring for the
    method, its ranges and what `fit` opens; `reveal` opens the model to its receivers).

    Parameters
    ----------
    alpha : float, default 1.0
    l1_ratio : float in [0, 1], default 0.5
        1 is the Lasso; 0 is ridge regression (no soft threshold).
    """ + _PARAMS

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, max_iter=1000, tol=1e-4, fit_intercept=True,
                 fixed_iterations=None, solver='fista', int_bits=None):
        self.l1_ratio = l1_ratio
        self._set_params(alpha, max_iter, tol, fit_intercept, fixed_iterations, solver, int_bits)

    def _check_params(self):
        super()._check_params()
        if not 0 <= self.l1_ratio <= 1:
            raise ValueError(f'l1_ratio must be in [0, 1], not {self.l1_ratio}')
        if self.alpha < 0:
            raise ValueError(f'alpha must be non-negative, not {self.alpha}')

    def _penalties(self, n):
        return self.alpha * self.l1_ratio, self.alpha * (1 - self.l1_ratio)


class SecureRidge(SecureLinearModel):
    __doc__ = """Ridge regression trained in MPC on secret-shared data.

    Minimises scikit-learn's Ridge objective ``||y − Xw − b||² + alpha·||w||²`` (not divided by
    n), by accelerated gradient descent on the Gram matrix with the penalty on its diagonal: no
    soft threshold, so an iteration takes no secure comparison beyond its range and convergence
    bits (see the module docstring for ranges and what `fit` opens; `reveal` opens the model).

    Parameters
    ----------
    alpha : float, default 1.0
    """ + _PARAMS

    def __init__(self, alpha=1.0, *, max_iter=1000, tol=1e-4, fit_intercept=True,
                 fixed_iterations=None, solver='fista', int_bits=None):
        self._set_params(alpha, max_iter, tol, fit_intercept, fixed_iterations, solver, int_bits)

    def _check_params(self):
        super()._check_params()
        if self.alpha < 0:
            raise ValueError(f'alpha must be non-negative, not {self.alpha}')

    def _penalties(self, n):
        return 0.0, self.alpha / n
