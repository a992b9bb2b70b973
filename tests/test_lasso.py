"""SecureLasso against scikit-learn's Lasso(tol=1e-6), in one process and as real parties."""

import json
import os
import sys

import numpy as np
import pytest
from mpyc.runtime import mpc
from sklearn.linear_model import Lasso

from mpclab import _hooks, bounds, fastmpc
from mpclab.models import lasso as L
from mpclab.models import linear
from mpclab.models.lasso import FixedPointOverflowError, LassoPlan, SecureLasso
from partyrun import ROOT, run_local

secfxp = mpc.SecFxp(64, 32)
PARTY = os.path.join(ROOT, 'tests', 'programs', 'lasso_party.py')
sys.path.insert(0, os.path.dirname(PARTY))
from lasso_party import make_data  # noqa: E402


def secret(a):
    return secfxp.array(np.asarray(a, dtype=float), integral=False)


def sparse_data(n, d, seed, intercept=1.5, offset=True):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.3, 3, d) + (rng.normal(size=d) if offset else 0)
    w = rng.normal(0, 2, d) * (rng.random(d) < 0.5)
    return X, X @ w + rng.normal(size=n) + intercept


def fit(X, y, **kw):
    async def go():
        model = await SecureLasso(**kw).fit(secret(X), secret(y))
        return model, await model.reveal()
    model, (coef, intercept) = mpc.run(go())
    return model, coef, intercept


def reference(X, y, alpha, fit_intercept=True):
    return Lasso(alpha=alpha, tol=1e-6, max_iter=100_000, fit_intercept=fit_intercept).fit(X, y)


def assert_close(coef, intercept, sk, atol=1e-3):
    np.testing.assert_allclose(coef, sk.coef_, atol=atol)
    assert intercept == pytest.approx(sk.intercept_, abs=atol)
    np.testing.assert_array_equal(coef == 0, sk.coef_ == 0)


@pytest.mark.parametrize('n, d, alpha, seed', [(200, 5, 0.1, 0), (500, 10, 0.1, 1), (1000, 20, 0.05, 2),
                                               (300, 8, 0.5, 3), (2000, 30, 0.1, 4)])
def test_matches_sklearn(n, d, alpha, seed):
    X, y = sparse_data(n, d, seed)
    sk = reference(X, y, alpha)
    assert 0 < np.sum(sk.coef_ == 0) < d  # the zero pattern is really tested
    model, coef, intercept = fit(X, y, alpha=alpha, tol=1e-5)
    assert_close(coef, intercept, sk)
    assert 1 <= model.n_iter_ < 100


@pytest.mark.parametrize('seed', [15, 16])
def test_ista_solver(seed):
    X, y = sparse_data(800, 12, seed)
    sk = reference(X, y, 0.1)
    model, coef, intercept = fit(X, y, alpha=0.1, tol=1e-5, solver='ista')
    assert_close(coef, intercept, sk)


def test_iteration_limit_warns():
    from sklearn.exceptions import ConvergenceWarning
    X, y = sparse_data(200, 5, 17)
    with pytest.warns(ConvergenceWarning):
        model, _, _ = fit(X, y, alpha=0.1, max_iter=2)
    assert model.n_iter_ == 2


def test_without_intercept():
    X, y = sparse_data(400, 6, 5, intercept=0, offset=False)
    sk = reference(X, y, 0.1, fit_intercept=False)
    _, coef, intercept = fit(X, y, alpha=0.1, tol=1e-5, fit_intercept=False)
    assert intercept == 0.0
    assert_close(coef, 0.0, sk)


def test_large_alpha_gives_zero_model():
    X, y = sparse_data(300, 4, 6)
    _, coef, intercept = fit(X, y, alpha=1e3)
    assert np.all(coef == 0)
    assert intercept == pytest.approx(y.mean(), abs=1e-6)


def test_constant_column_gets_zero_coefficient():
    X, y = sparse_data(300, 5, 7)
    X[:, 2] = 4.25
    sk = reference(X, y, 0.1)
    _, coef, intercept = fit(X, y, alpha=0.1, tol=1e-5)
    assert coef[2] == 0
    assert_close(coef, intercept, sk)


@pytest.mark.parametrize('scaling', ['unit', 'raw'])
def test_medical_costs(scaling):
    """The issue's real-data case: one dummy dropped per category, so the optimum is unique."""
    import pandas as pd
    df = pd.read_csv(os.path.join(ROOT, 'data', 'insurance.csv'))
    df = pd.get_dummies(df, columns=['sex', 'smoker', 'region'], drop_first=True, dtype=float)
    y = df.pop('charges').to_numpy() / 1000
    X = df.to_numpy()
    alpha = 0.1
    if scaling == 'unit':   # as in the book chapter: every column scaled to [0, 1]
        X = (X - X.min(0)) / np.ptp(X, axis=0)
        y = (y - y.min()) / np.ptp(y)
        alpha = 0.001
    sk = reference(X, y, alpha)
    _, coef, intercept = fit(X, y, alpha=alpha, tol=1e-6, int_bits=1 if scaling == 'unit' else 7)
    assert_close(coef, intercept, sk)


def count_openings(monkeypatch):
    """Record how many values the lasso module opens on purpose (MPyC's own masked openings
    inside a protocol are not counted: they reveal nothing)."""
    calls = []

    class Runtime:
        def __getattr__(self, name):
            return getattr(mpc, name)

        def output(self, x, *args, **kwargs):
            calls.append(len(x) if isinstance(x, list) else 1)
            return mpc.output(x, *args, **kwargs)
    monkeypatch.setattr(linear, 'mpc', Runtime())
    monkeypatch.setattr(bounds, 'mpc', Runtime())
    return calls


def test_fixed_iterations_open_only_range_bits(monkeypatch):
    """Nothing about convergence: one range bit per iteration (1 in every run that ends)."""
    X, y = sparse_data(300, 6, 8)
    sk = reference(X, y, 0.1)
    calls = count_openings(monkeypatch)

    async def go():
        return await SecureLasso(0.1, fixed_iterations=60, int_bits=5).fit(secret(X), secret(y))
    model = mpc.run(go())
    assert calls == [1] * 60 and model.n_iter_ == 60
    monkeypatch.undo()
    coef, intercept = mpc.run(model.reveal())
    assert_close(coef, intercept, sk)


def test_adaptive_mode_opens_one_bit_per_iteration(monkeypatch):
    """Per iteration a range bit and the previous iteration's convergence bit, together."""
    X, y = sparse_data(300, 6, 9)
    calls = count_openings(monkeypatch)
    model = mpc.run(SecureLasso(0.1, int_bits=5).fit(secret(X), secret(y)))
    assert calls == [1] + [2] * model.n_iter_   # the iteration after the last is computed too
    assert not model.plan_.check_inputs and not model.plan_.check_gram


def test_without_int_bits_the_inputs_and_the_gram_are_checked(monkeypatch):
    X, y = sparse_data(300, 6, 9)
    calls = count_openings(monkeypatch)
    checked = []
    within = fastmpc.norms_within

    async def norms_within(a, bound):
        checked.append((a.shape, bound))
        return await within(a, bound)
    monkeypatch.setattr(fastmpc, 'norms_within', norms_within)
    model = mpc.run(SecureLasso(0.1).fit(secret(X), secret(y)))
    assert checked == [((300, 7), model.plan_.square_sums)] and 2**30.9 < checked[0][1] < 2**31
    assert model.plan_.check_gram and calls == [1, 1] + [2] * model.n_iter_


def test_predict_and_score_stay_secret():
    X, y = sparse_data(200, 5, 10)
    Xt, yt = sparse_data(100, 5, 10)

    async def go():
        model = await SecureLasso(0.1, tol=1e-5).fit(secret(X), secret(y))
        sXt, syt = secret(Xt), secret(yt)
        secure = await mpc.output(model.predict(sXt)), await mpc.output(model.score(sXt, syt))
        await model.reveal()
        public = await mpc.output(model.predict(sXt)), await mpc.output(model.score(sXt, syt))
        return model, secure, public
    model, secure, public = mpc.run(go())
    expected = Xt @ model.coef_ + model.intercept_
    r2 = 1 - np.sum((yt - expected)**2) / np.sum((yt - yt.mean())**2)
    for pred, score in (secure, public):
        np.testing.assert_allclose(pred, expected, atol=1e-6)
        assert score == pytest.approx(r2, abs=1e-6)


def test_gram_overflow_raises():
    X, y = sparse_data(500, 3, 11)
    with pytest.raises(FixedPointOverflowError, match='scale'):
        fit(X, y * 1e4, alpha=0.1)   # e.g. medical charges in dollars


class Openings:
    """The opening check's view: every masked opening, with the bit length of its largest
    |value| (the check itself still runs after this one)."""

    def __init__(self, monkeypatch):
        self.seen = []

        async def record(field, shares, threshold, bound_bits, what):
            values = await fastmpc._open(field, np.asarray(shares, dtype=object).reshape(-1), threshold)
            p = field.modulus
            worst = max((min(int(v), p - int(v)) for v in values), default=0)
            self.seen.append((what, worst.bit_length()))
        monkeypatch.setattr(_hooks, 'opening_checks', [record] + list(_hooks.opening_checks))


def unscaled_case(seed=0, n=64):
    """The issue's case: unscaled inputs inside the documented range, |x| about 2**14."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2**14, 2**14, (n, 3))
    return X, X @ np.array([1.0, -2.0, 0.0]) + rng.normal(size=n)


def test_unscaled_inputs_refused_before_anything_is_opened(monkeypatch):
    """With the format's int_bits 16 the public bound refuses before computing anything
    (before: masked Gram entries up to 2**100 and trace moments up to 2**110 were opened)."""
    openings = Openings(monkeypatch)
    X, y = unscaled_case()
    with pytest.raises(FixedPointOverflowError) as info:
        fit(X, y, alpha=0.1, int_bits=16)
    assert openings.seen == []
    assert "the inputs' range 2**16 and 64 rows overflow SecFxp(64, 32)" in str(info.value)
    assert 'scale the data to [0, 1]' in str(info.value)


def test_unscaled_inputs_without_int_bits_fail_the_input_check(monkeypatch):
    """Without a public bound the one opened bit of the input check stops the fit; its own
    openings are all in range (the opening check raises otherwise)."""
    openings = Openings(monkeypatch)
    X, y = unscaled_case()
    with pytest.raises(FixedPointOverflowError, match='the columns are too large'):
        fit(X, y, alpha=0.1)
    assert openings.seen and {what for what, _ in openings.seen} == {'fastmpc.norms_within'}
    assert max(bits for _, bits in openings.seen) < 95


def test_large_coefficients_stop_the_iterations_in_range():
    """Tiny feature spreads need coefficients of 1e4 and more: the per-iteration range bit
    stops FISTA before the next Gram product (the opening check sees nothing out of range)."""
    rng = np.random.default_rng(12)
    X = rng.uniform(0, 1e-4, (400, 3))
    y = X @ np.array([3e4, -3e4, 2e4]) + 0.5 + rng.normal(0, 0.01, 400)
    assert np.abs(reference(X, y, 1e-8).coef_).sum() > 2**14
    with pytest.raises(FixedPointOverflowError, match='coefficients could exceed 16384 in L1 norm'):
        fit(X, y, alpha=1e-8, int_bits=1)


def test_plan():
    plan = LassoPlan(1338, 8, secfxp, int_bits=1, alpha=0.001)   # the bundled data, in [0, 1]
    assert not plan.check_inputs and not plan.check_gram and plan.iterate_bound == 2**14
    plan = LassoPlan(1338, 8, secfxp, int_bits=7, alpha=0.1)     # raw medical costs
    assert plan.check_gram and plan.gamma == L.GRAM_CHECK and 600 < plan.iterate_bound < 700
    plan = LassoPlan(5000, 30, secfxp, alpha=0.1)
    assert plan.check_inputs and 9.3 < plan.input_bits < 9.4   # root mean squares below 2**9.35
    with pytest.raises(FixedPointOverflowError, match=r"2\*\*16 and 5000 rows"):
        LassoPlan(5000, 30, secfxp, int_bits=16)
    with pytest.raises(FixedPointOverflowError, match='wider secure type'):
        LassoPlan(2**33, 3, secfxp)


def test_gram_is_correct_for_large_negative_entries():
    """Regression: a too small mask in the truncation made some negative entries wrap around."""
    rng = np.random.default_rng(14)
    base = rng.normal(0, 30, size=(256, 1))
    x = base * (-1) ** np.arange(10) + rng.normal(size=(256, 10))   # half the entries near -2**18
    expected = x.T @ x / 2**8
    for _ in range(10):
        data = linear.moments(secret(x[:, :-1]), secret(x[:, -1]), fit_intercept=False)
        assert data.s == 8
        np.testing.assert_allclose(mpc.run(mpc.output(data.gram)), expected, atol=1e-6)


@pytest.mark.parametrize('seed', range(4))
def test_step_size_is_safe_and_tight(seed):
    """t·λmax(D⁻¹G) ≤ 1 always, and t is 1/(Wolkowicz–Styan bound) up to the grid step."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 25))
    B = rng.normal(size=(3 * d, d)) @ np.diag(rng.uniform(0.1, 10, d))
    B[:, 0] += rng.uniform(0, 3) * B[:, 1]   # some correlation
    G = B.T @ B / (3 * d)
    K = G / np.diag(G)[:, None]
    lam = np.linalg.eigvals(K).real.max()
    m, V = np.trace(K) / d, np.sum(K * K.T) - np.trace(K)**2 / d
    ws = m + np.sqrt((d - 1) / d * V)
    tr, T2 = linear._trace_moments(secret(G), secret(1 / np.diag(G)))
    assert mpc.run(mpc.output(mpc.np_fromlist([tr, T2]))) == pytest.approx([d * m, np.sum(K * K.T)], rel=1e-6)
    t = mpc.run(mpc.output(linear._step_size(tr, T2, d)))
    assert t * lam <= 1
    assert t * ws * (1 + 2**-6) * L.GRID_RATIO >= 1 - 1e-6


@pytest.mark.slow
@pytest.mark.parametrize('parties, K', [(3, 30), (4, 42)])
def test_separate_parties(parties, K):
    r = run_local(PARTY, ['--rows', '300', '--features', '6', '--seed', '13', '--alpha', '0.1',
                          '-K', str(K)], parties, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['parties'] == parties
    X, y = make_data(300, 6, 13)
    sk = reference(X, y, 0.1)
    assert_close(np.array(got['coef']), got['intercept'], sk)
