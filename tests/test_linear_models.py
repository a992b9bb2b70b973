"""SecureRidge and SecureElasticNet against scikit-learn's Ridge and ElasticNet, in one process and as
real parties."""

import json
import os
import sys

import numpy as np
import pytest
from mpyc.runtime import mpc
from sklearn.linear_model import ElasticNet, Ridge

from mpclab.blocks import RowBlocks
from mpclab.models.lasso import SecureLasso
from mpclab.models.linear import FixedPointOverflowError, SecureElasticNet, SecureRidge
from partyrun import ROOT, run_local

secfxp = mpc.SecFxp(64, 32)
PARTY = os.path.join(ROOT, 'tests', 'programs', 'linear_party.py')
sys.path.insert(0, os.path.dirname(PARTY))
from linear_party import make_data  # noqa: E402

# The party processes import this checkout's mpclab, not the installed one (sitecustomize
# imports mpclab before the program can put its own directory first on sys.path).
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [ROOT, os.environ.get('PYTHONPATH')] if p))


def secret(a):
    return secfxp.array(np.asarray(a, dtype=float), integral=False)


def fit(model, X, y, block_rows=None):
    async def go():
        sX, sy = secret(X), secret(y)
        if block_rows:
            sX, sy = RowBlocks.from_array(sX, block_rows), RowBlocks.from_array(sy, block_rows)
        fitted = await model.fit(sX, sy)
        return fitted, await fitted.reveal()
    fitted, (coef, intercept) = mpc.run(go())
    return fitted, coef, intercept


def reference(name, alpha, l1_ratio=0.5, fit_intercept=True):
    if name == 'ridge':
        return Ridge(alpha=alpha, fit_intercept=fit_intercept, solver='cholesky')
    return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-8, max_iter=100_000, fit_intercept=fit_intercept)


def assert_close(coef, intercept, sk, atol=1e-3):
    np.testing.assert_allclose(coef, sk.coef_, atol=atol)
    assert intercept == pytest.approx(sk.intercept_, abs=atol)
    np.testing.assert_array_equal(coef == 0, sk.coef_ == 0)


@pytest.mark.parametrize('n, d, alpha, seed', [(300, 5, 1.0, 0), (800, 12, 30.0, 1), (2000, 25, 300.0, 2)])
def test_ridge_matches_sklearn(n, d, alpha, seed):
    X, y = make_data(n, d, seed)
    sk = reference('ridge', alpha).fit(X, y)
    model, coef, intercept = fit(SecureRidge(alpha, tol=1e-6), X, y)
    assert_close(coef, intercept, sk)
    assert model.plan_.lam1 == 0


@pytest.mark.parametrize('n, d, alpha, l1_ratio, seed', [(300, 6, 0.1, 0.5, 3), (1000, 15, 0.2, 0.3, 4),
                                                         (500, 10, 0.05, 0.9, 5)])
def test_elastic_net_matches_sklearn(n, d, alpha, l1_ratio, seed):
    X, y = make_data(n, d, seed)
    sk = reference('elasticnet', alpha, l1_ratio).fit(X, y)
    assert 0 < np.sum(sk.coef_ == 0) < d   # the zero pattern is really tested
    _, coef, intercept = fit(SecureElasticNet(alpha, l1_ratio=l1_ratio, tol=1e-6), X, y)
    assert_close(coef, intercept, sk)


def test_elastic_net_with_l1_ratio_1_is_the_lasso():
    X, y = make_data(300, 6, 6)
    _, coef, intercept = fit(SecureElasticNet(0.1, l1_ratio=1.0, tol=1e-6), X, y)
    _, coef2, intercept2 = fit(SecureLasso(0.1, tol=1e-6), X, y)
    np.testing.assert_allclose(coef, coef2, atol=1e-4)
    assert intercept == pytest.approx(intercept2, abs=1e-4)


def test_elastic_net_with_l1_ratio_0_and_without_intercept():
    X, y = make_data(400, 5, 7)
    sk = ElasticNet(alpha=0.2, l1_ratio=0.0, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(X, y)
    _, coef, intercept = fit(SecureElasticNet(0.2, l1_ratio=0.0, tol=1e-6, fit_intercept=False), X, y)
    assert intercept == 0.0
    assert_close(coef, 0.0, sk)


def test_ridge_on_row_blocks():
    X, y = make_data(500, 6, 8)
    sk = reference('ridge', 5.0).fit(X, y)
    _, coef, intercept = fit(SecureRidge(5.0, tol=1e-6, int_bits=5), X, y, block_rows=128)
    assert_close(coef, intercept, sk)


def test_parameters_are_checked():
    with pytest.raises(ValueError, match='l1_ratio'):
        SecureElasticNet(0.1, l1_ratio=1.5)
    with pytest.raises(ValueError, match='alpha'):
        SecureRidge(-1.0)
    X, y = make_data(200, 3, 9)
    with pytest.raises(FixedPointOverflowError):
        fit(SecureRidge(1.0, int_bits=16), X, y)


@pytest.mark.slow
@pytest.mark.parametrize('parties, name, extra', [(3, 'ridge', ['--alpha', '20']),
                                                  (4, 'elasticnet', ['--alpha', '0.1', '--l1-ratio', '0.5'])])
def test_separate_parties(parties, name, extra):
    r = run_local(PARTY, ['--model', name, '--rows', '300', '--features', '6', '--seed', '13', *extra],
                  parties, timeout=180, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['parties'] == parties
    X, y = make_data(300, 6, 13)
    alpha = float(extra[1])
    sk = reference(name, alpha).fit(X, y)
    assert_close(np.array(got['coef']), got['intercept'], sk)


def program_run(program, tmp_path, parties, extra, seed):
    """`protocols/<program>.py` as real parties on two owners' tables (test_protocols' tables,
    seeded split); (summary of party 0, model file of party 0, plaintext twin)."""
    from test_protocols import owner_tables, twin, write
    lp, rp = write(tmp_path, *owner_tables(seed))
    js, model = tmp_path / 'out.json', tmp_path / 'model_{party}.json'
    r = run_local(os.path.join(ROOT, 'protocols', f'{program}.py'),
                  ['--left', lp, '--right', rp, '--id', 'id', '--target', 'y', '--int-bits', '2',
                   '--tol', '1e-6', '--split', 'seeded', '--seed', '3', '--test-fraction', '0.2',
                   '--json', str(js), '--model-out', str(model), *extra], parties, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads((tmp_path / 'model_0.json').read_text())
    return json.loads(js.read_text()), doc, twin(lp, rp, 3, 0.2)


@pytest.mark.slow
@pytest.mark.parametrize('program, parties, extra, sk', [
    ('ridge', 3, ['--alpha', '3'], Ridge(alpha=3.0)),
    ('elasticnet', 4, ['--alpha', '0.02', '--l1-ratio', '0.6'],
     ElasticNet(alpha=0.02, l1_ratio=0.6, tol=1e-10, max_iter=100_000))])
def test_programs_match_sklearn(tmp_path, program, parties, extra, sk):
    from sklearn import metrics
    out, doc, (X, y, Xt, yt, features) = program_run(program, tmp_path, parties, extra, seed=parties)
    assert out['program'] == program and out['parties'] == parties
    assert (out['train_rows'], out['test_rows']) == (len(X), len(Xt))
    sk.fit(X, y)
    coef = np.array([out['coef'][f] for f in features])
    assert_close(coef, out['intercept'], sk)
    if program == 'elasticnet':
        assert 0 < np.sum(sk.coef_ == 0)
    assert doc['kind'] == program and doc['features'] == features
    np.testing.assert_allclose(doc['coef'], coef)
    pred = sk.predict(Xt)
    assert out['metrics']['r2'] == pytest.approx(metrics.r2_score(yt, pred), abs=2e-3)
    assert out['metrics']['mse'] == pytest.approx(metrics.mean_squared_error(yt, pred), rel=1e-2)
    if program == 'elasticnet':   # scikit-learn's objective on the test rows
        objective = (metrics.mean_squared_error(yt, pred) / 2 + 0.02 * 0.6 * np.abs(sk.coef_).sum()
                     + 0.5 * 0.02 * 0.4 * sk.coef_ @ sk.coef_)
        assert out['metrics']['objective'] == pytest.approx(objective, rel=1e-2)
    else:
        assert out['metrics']['objective'] is None


def test_program_options():
    from mpclab.options import OptionError, from_command_line, from_values
    base = {'id': 'id', 'target': 'y'}
    assert from_values('ridge', base).model.alpha == 1.0
    assert from_values('elasticnet', base).model.l1_ratio == 0.5
    opts, rest = from_command_line('lasso', ['--id', 'id', '--target', 'y', '--cv', '5', '--alphas', '1',
                                             '0.1', '-M3'])
    assert (opts.model.cv, opts.model.alphas, rest) == (5, (1.0, 0.1), ['-M3'])
    assert from_values('elasticnet', {**base, 'cv': 3, 'alphas': 0.5}).model.alphas == (0.5,)
    for program, values, name in [('lasso', {'cv': 5}, 'cv'), ('lasso', {'alphas': [1.0]}, 'alphas'),
                                  ('lasso', {'cv': 5, 'alphas': [1.0], 'n_alphas': 3}, 'cv'),
                                  ('ridge', {'cv': 5, 'n_alphas': 10}, 'n_alphas'),
                                  ('elasticnet', {'l1_ratio': 1.5}, 'l1_ratio'),
                                  ('elasticnet', {'cv': 5, 'n_alphas': 4, 'l1_ratio': 0.0}, 'n_alphas'),
                                  ('ridge', {'cv': 1, 'alphas': [1.0]}, 'cv')]:
        with pytest.raises(OptionError) as info:
            from_values(program, {**base, **values})
        assert info.value.option == name
