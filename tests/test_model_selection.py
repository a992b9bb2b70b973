"""Cross-validation in MPC against scikit-learn's LassoCV, ElasticNetCV and RidgeCV on the same
contiguous folds (KFold without shuffling: the secret row order is the folds' order)."""

import json
import os
import sys

import numpy as np
import pytest
from mpyc.runtime import mpc
from sklearn.linear_model import ElasticNetCV, LassoCV, Ridge, RidgeCV, lasso_path
from sklearn.model_selection import KFold, cross_val_score

from mpclab.models import linear, selection
from mpclab.models.selection import SecureElasticNetCV, SecureLassoCV, SecureRidgeCV
from partyrun import ROOT, run_local

secfxp = mpc.SecFxp(64, 32)
PARTY = os.path.join(ROOT, 'tests', 'programs', 'linear_party.py')
sys.path.insert(0, os.path.dirname(PARTY))
from linear_party import make_data  # noqa: E402
from test_linear_models import ENV  # noqa: E402


def secret(a):
    return secfxp.array(np.asarray(a, dtype=float), integral=False)


def fit(model, X, y):
    async def go():
        fitted = await model.fit(secret(X), secret(y))
        await fitted.reveal()
        return fitted
    return mpc.run(go())


def noisy_data(n, d, seed):
    """Few rows, many weak features: the best alpha is inside the grid, not at its end."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(0, 0.3, d) + rng.normal(0, 2, n)


def assert_model(model, sk):
    np.testing.assert_allclose(model.coef_, sk.coef_, atol=1e-3)
    assert model.intercept_ == pytest.approx(sk.intercept_, abs=1e-3)
    np.testing.assert_array_equal(model.coef_ == 0, sk.coef_ == 0)


def test_fold_bounds_are_kfold():
    for n, k in [(10, 3), (400, 5), (17, 17)]:
        expected = [(int(t[0]), int(t[-1]) + 1) for _, t in KFold(k).split(np.zeros(n))]
        assert linear.fold_bounds(n, k) == expected
    with pytest.raises(ValueError, match='folds'):
        linear.fold_bounds(3, 4)


def test_lasso_cv_path_from_alpha_max():
    X, y = make_data(400, 6, 0)
    model = fit(SecureLassoCV(cv=4, alphas=10, tol=1e-5), X, y)
    sk = LassoCV(alphas=model.alphas_, cv=KFold(4), tol=1e-8, max_iter=100_000).fit(X, y)
    # the path starts at alpha_max rounded up to the public grid, as LassoCV's up to that rounding
    true_max = LassoCV(alphas=10, cv=KFold(4)).fit(X, y).alphas_[0]
    assert true_max <= model.alphas_[0] < true_max * 2**(1 / 16)
    assert model.alpha_ == sk.alpha_
    assert 0 < np.argmin(model.mse_path_) < len(model.alphas_) - 1
    np.testing.assert_allclose(model.mse_path_, sk.mse_path_.mean(axis=1), atol=1e-3)
    assert_model(model, sk)


def test_lasso_cv_alpha_with_the_same_zeros_ends_after_one_round():
    """The first round at an alpha keeps the previous alpha's decisions: where they still hold
    (close alphas, the same zeros and signs), that round's convergence bit ends the alpha."""
    X, y = make_data(400, 6, 0)
    alphas = [0.1, 0.0999]
    sk = LassoCV(alphas=alphas, cv=KFold(4), tol=1e-8, max_iter=100_000).fit(X, y)
    for a, b in linear.fold_bounds(400, 4):    # the same zeros and signs on every training set
        rows = np.r_[:a, b:400]
        Xt, yt = X[rows] - X[rows].mean(axis=0), y[rows] - y[rows].mean()
        signs = np.sign(lasso_path(Xt, yt, alphas=alphas, tol=1e-10)[1])
        assert np.array_equal(signs[:, 0], signs[:, 1])
    model = fit(SecureLassoCV(cv=4, alphas=alphas, tol=1e-5), X, y)
    assert model.path_iterations_[1] == 1
    assert model.alpha_ == sk.alpha_
    np.testing.assert_allclose(model.mse_path_, sk.mse_path_.mean(axis=1), atol=1e-3)
    assert_model(model, sk)


def test_elastic_net_cv_searches_l1_ratios():
    X, y = make_data(400, 6, 1)
    alphas = [1.0, 0.3, 0.1, 0.03, 0.01]
    model = fit(SecureElasticNetCV(l1_ratio=[0.3, 0.8], alphas=alphas, cv=4, tol=1e-5), X, y)
    sk = ElasticNetCV(l1_ratio=[0.3, 0.8], alphas=alphas, cv=KFold(4), tol=1e-8, max_iter=100_000).fit(X, y)
    assert (model.alpha_, model.l1_ratio_) == (sk.alpha_, sk.l1_ratio_)
    np.testing.assert_allclose(model.mse_path_, sk.mse_path_.mean(axis=-1), atol=1e-3)
    assert_model(model, sk)


def test_ridge_cv_matches_cross_validated_ridge():
    X, y = noisy_data(120, 12, 2)
    alphas = [0.1, 1.0, 10.0, 100.0, 1000.0]
    model = fit(SecureRidgeCV(alphas=alphas, cv=5, tol=1e-6), X, y)
    scores = [-cross_val_score(Ridge(alpha=a), X, y, cv=KFold(5), scoring='neg_mean_squared_error').mean()
              for a in model.alphas_]
    sk = RidgeCV(alphas=alphas, cv=KFold(5), scoring='neg_mean_squared_error').fit(X, y)
    assert model.alpha_ == sk.alpha_ and alphas[0] < model.alpha_ < alphas[-1]
    np.testing.assert_allclose(model.mse_path_, scores, atol=1e-3)
    assert model.best_score_ == pytest.approx(sk.best_score_, abs=1e-3)
    assert_model(model, sk)


def test_only_the_mean_scores_and_bits_are_opened(monkeypatch):
    """With given alphas and fixed iterations: range bits (one per step for all folds), then the
    mean validation errors in one opening, then the final fit's range bits."""
    calls = []

    class Runtime:
        def __getattr__(self, name):
            return getattr(mpc, name)

        def output(self, x, *args, **kwargs):
            calls.append(len(x) if isinstance(x, list) else x.size if hasattr(x, 'size') else 1)
            return mpc.output(x, *args, **kwargs)
    monkeypatch.setattr(linear, 'mpc', Runtime())
    monkeypatch.setattr(selection, 'mpc', Runtime())
    X, y = make_data(200, 4, 3)
    alphas = [0.3, 0.1, 0.03]
    model = mpc.run(SecureLassoCV(cv=3, alphas=alphas, fixed_iterations=2, path_steps=2, int_bits=5)
                    .fit(secret(X), secret(y)))
    steps = len(alphas) * 2 * (2 + 1) - 2     # the first round of the path has no decisions yet
    assert calls == [1] * steps + [len(alphas)] + [1] * 2
    assert model.mse_path_.shape == (3,)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match='folds'):
        SecureLassoCV(cv=1)
    with pytest.raises(ValueError, match='list'):
        SecureRidgeCV(alphas=10)
    X, y = make_data(100, 3, 4)
    with pytest.raises(ValueError, match='l1_ratio > 0'):
        fit(SecureElasticNetCV(l1_ratio=0.0, alphas=5, cv=3), X, y)


@pytest.mark.slow
@pytest.mark.parametrize('parties, name, extra', [(3, 'lasso', ['--n-alphas', '8']),
                                                  (4, 'ridge', ['--alphas', '1000', '100', '10', '1'])])
def test_separate_parties(parties, name, extra):
    X, y = make_data(300, 6, 13)
    r = run_local(PARTY, ['--model', name, '--rows', '300', '--features', '6', '--seed', '13', '--cv', '3',
                          *extra], parties, timeout=240, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['parties'] == parties
    alphas = np.array(got['alphas_'])
    if name == 'lasso':
        sk = LassoCV(alphas=alphas, cv=KFold(3), tol=1e-8, max_iter=100_000).fit(X, y)
        expected = sk.mse_path_.mean(axis=1)
    else:
        sk = RidgeCV(alphas=alphas, cv=KFold(3), scoring='neg_mean_squared_error').fit(X, y)
        expected = [-cross_val_score(Ridge(alpha=a), X, y, cv=KFold(3),
                                     scoring='neg_mean_squared_error').mean() for a in alphas]
    assert got['alpha_'] == sk.alpha_
    np.testing.assert_allclose(got['mse_path_'], expected, atol=1e-3)
    np.testing.assert_allclose(got['coef'], sk.coef_, atol=1e-3)
    np.testing.assert_array_equal(np.array(got['coef']) == 0, sk.coef_ == 0)


@pytest.mark.slow
@pytest.mark.parametrize('program, parties, extra', [
    ('lasso', 3, ['--n-alphas', '6']),
    ('ridge', 4, ['--alphas', '100', '10', '1', '0.1'])])
def test_cv_programs(tmp_path, program, parties, extra):
    """The programs' wiring: alpha_ is the best candidate, the final model is scikit-learn's at
    alpha_ on all training rows, and only the means are reported.  (The folds are blocks of the
    helper's secret row order, so no plaintext twin can reproduce them here; the estimator is
    tested against scikit-learn on the same folds above.)"""
    from test_linear_models import program_run
    from sklearn.linear_model import Lasso
    out, doc, (X, y, _, _, features) = program_run(program, tmp_path, parties, ['--cv', '3', *extra],
                                                   seed=10 + parties)
    cv = out['cv']
    assert cv['folds'] == 3 and len(cv['alphas']) == len(cv['mean_validation_mse']) == (
        6 if program == 'lasso' else 4)
    assert cv['alpha_'] == out['alpha'] == cv['alphas'][int(np.argmin(cv['mean_validation_mse']))]
    assert any('--cv 3' in leak for leak in out['leaks'])
    assert (program == 'lasso') == any('alpha_max' in leak for leak in out['leaks'])
    if program == 'lasso':
        sk = Lasso(alpha=out['alpha'], tol=1e-10, max_iter=100_000).fit(X, y)
    else:
        sk = Ridge(alpha=out['alpha']).fit(X, y)
    coef = np.array([out['coef'][f] for f in features])
    np.testing.assert_allclose(coef, sk.coef_, atol=1e-3)
    np.testing.assert_array_equal(np.abs(coef) == 0, sk.coef_ == 0)
    assert out['intercept'] == pytest.approx(sk.intercept_, abs=1e-3)
    # the mean validation errors are those of some 3-fold split of the same rows
    shuffled = [-cross_val_score(Ridge(alpha=a) if program == 'ridge' else Lasso(alpha=a), X, y,
                                 cv=KFold(3, shuffle=True, random_state=0),
                                 scoring='neg_mean_squared_error').mean() for a in cv['alphas']]
    np.testing.assert_allclose(cv['mean_validation_mse'], shuffled, rtol=0.3)
    assert doc['kind'] == program
    # the model file remembers the alpha it was fitted with, not the unused --alpha
    assert doc['trained']['params'] == {'alpha': out['alpha']}
    from mpclab.modelfile import RevealedModel
    assert RevealedModel(doc).to_sklearn().alpha == out['alpha']
