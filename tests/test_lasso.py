"""SecureLasso against scikit-learn's Lasso(tol=1e-6), in one process and as real parties."""

import json
import os
import sys

import numpy as np
import pytest
from mpyc.runtime import mpc
from sklearn.linear_model import Lasso

from mpclab.models import lasso as L
from mpclab.models.lasso import FixedPointOverflowError, SecureLasso
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
    _, coef, intercept = fit(X, y, alpha=alpha, tol=1e-6)
    assert_close(coef, intercept, sk)


def count_openings(monkeypatch):
    """Record what the lasso module opens (MPyC's own masked openings inside a protocol
    are not counted: they reveal nothing)."""
    calls = []

    class Runtime:
        def __getattr__(self, name):
            return getattr(mpc, name)

        def output(self, x, *args, **kwargs):
            calls.append(getattr(x, 'shape', ()))
            return mpc.output(x, *args, **kwargs)
    monkeypatch.setattr(L, 'mpc', Runtime())
    return calls


def test_fixed_iterations_open_nothing(monkeypatch):
    X, y = sparse_data(300, 6, 8)
    sk = reference(X, y, 0.1)
    calls = count_openings(monkeypatch)

    async def go():
        return await SecureLasso(0.1, fixed_iterations=60, check_range=False).fit(secret(X), secret(y))
    model = mpc.run(go())
    assert calls == [] and model.n_iter_ == 60
    monkeypatch.undo()
    coef, intercept = mpc.run(model.reveal())
    assert_close(coef, intercept, sk)


def test_adaptive_mode_opens_one_bit_per_iteration(monkeypatch):
    X, y = sparse_data(300, 6, 9)
    calls = count_openings(monkeypatch)
    model = mpc.run(SecureLasso(0.1).fit(secret(X), secret(y)))
    assert calls == [()] * (model.n_iter_ + 2)   # plus the two range checks


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


def test_coefficient_range_check():
    values = np.array([0.0, -3.5, 2.0**23, -(2.0**23), 2.0**25, -(2.0**40), 2.0**50])
    async def go(a):
        return await mpc.output(L._bounded(secret(a), 2.0**24))
    assert mpc.run(go(values[:4])) == 1
    for v in values[4:]:
        assert mpc.run(go(np.append(values[:4], v))) == 0


def test_gram_is_correct_for_large_negative_entries():
    """Regression: a too small mask in the truncation made some negative entries wrap around."""
    rng = np.random.default_rng(14)
    base = rng.normal(0, 30, size=(256, 1))
    x = base * (-1) ** np.arange(10) + rng.normal(size=(256, 10))   # half the entries near -2**18
    expected = x.T @ x / 2**8
    for _ in range(10):
        A, _, s = L._gram(secret(x[:, :-1]), secret(x[:, -1]), fit_intercept=False)
        assert s == 8
        np.testing.assert_allclose(mpc.run(mpc.output(A)), expected, atol=1e-6)


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
    tr, T2 = L._trace_moments(secret(G), secret(1 / np.diag(G)))
    assert mpc.run(mpc.output(mpc.np_fromlist([tr, T2]))) == pytest.approx([d * m, np.sum(K * K.T)], rel=1e-6)
    t = mpc.run(mpc.output(L._step_size(tr, T2, d)))
    assert t * lam <= 1
    assert t * ws * (1 + 2**-6) * L.GRID_RATIO >= 1 - 1e-6


@pytest.mark.slow
@pytest.mark.parametrize('parties', [3, 4])
def test_separate_parties(parties):
    r = run_local(PARTY, ['--rows', '300', '--features', '6', '--seed', '13', '--alpha', '0.1'],
                  parties, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['parties'] == parties
    X, y = make_data(300, 6, 13)
    sk = reference(X, y, 0.1)
    assert_close(np.array(got['coef']), got['intercept'], sk)
