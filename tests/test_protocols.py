"""The protocol programs end to end, as real parties, against their plaintext twins."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, LogisticRegression
from sklearn import metrics

from mpclab.twin import plaintext_join, plaintext_split
from partyrun import PROTOCOLS, run_local, run_separate, write_tables as write

pytestmark = pytest.mark.slow
LASSO = os.path.join(PROTOCOLS, 'lasso.py')
LOGISTIC = os.path.join(PROTOCOLS, 'logistic.py')


def owner_tables(seed, n=240, overlap=0.8, d_left=3, d_right=2, classify=False):
    """Two owners' tables; the right owner holds the target, a sparse function of all features."""
    rng = np.random.default_rng(seed)
    ids = [f'id{i}' for i in rng.permutation(4 * n)]
    n_common = int(overlap * n)
    left_ids, right_ids = ids[:n], ids[:n_common] + ids[n:2 * n - n_common]
    lx = pd.DataFrame(rng.uniform(0, 1, (n, d_left)), columns=[f'x{j}' for j in range(d_left)])
    rx = pd.DataFrame(rng.uniform(0, 1, (n, d_right)), columns=[f'z{j}' for j in range(d_right)])
    lx.insert(0, 'id', left_ids)
    rx.insert(0, 'id', right_ids)
    w = np.array([1.5, 0.0, -2.0, 0.8, 0.0, 0.3][:d_left + d_right])
    merged = lx.set_index('id').reindex(right_ids)
    signal = np.nan_to_num(merged.to_numpy()) @ w[:d_left] + rx.iloc[:, 1:].to_numpy() @ w[d_left:]
    signal = signal + rng.normal(0, 0.1, n)
    if classify:
        rx['y'] = (signal - signal.mean() + rng.logistic(0, 0.3, n) > 0).astype(float)
    else:
        rx['y'] = signal
    return lx, rx


def twin(lp, rp, seed, fraction, scale=None):
    joined = plaintext_join(lp, rp, 'id', scale=scale)
    train, test = plaintext_split(joined, 'id', seed, fraction)
    features = [c for c in train.columns if c != 'y']
    return train[features], train['y'], test[features], test['y'], features


@pytest.mark.parametrize('parties', [1, 3, 4])
def test_lasso_program_matches_sklearn(tmp_path, parties):
    # at 4 parties the test rows' absolute errors go 5 rows at a time
    left, right = owner_tables(parties)
    lp, rp = write(tmp_path, left, right)
    js = tmp_path / 'out.json'
    alpha = 0.01
    r = run_local(LASSO, ['--left', lp, '--right', rp, '--id', 'id', '--target', 'y',
                          '--int-bits', '2', '--alpha', str(alpha), '--tol', '1e-6',
                          '--split', 'seeded', '--seed', '3',
                          '--test-fraction', '0.2', '--json', str(js)], parties, timeout=300,
                  env={**os.environ, 'MPCLAB_TEST_SIZES': 'mpclab.programs.linear.COMPARISON_ROWS=5'}
                  if parties == 4 else None)
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    X, y, Xt, yt, features = twin(lp, rp, 3, 0.2)
    assert (out['train_rows'], out['test_rows']) == (len(X), len(Xt))
    sk = Lasso(alpha=alpha, tol=1e-6, max_iter=100_000).fit(X, y)
    coef = np.array([out['coef'][f] for f in features])
    np.testing.assert_allclose(coef, sk.coef_, atol=1e-3)
    assert abs(out['intercept'] - sk.intercept_) < 1e-3
    assert np.all((np.abs(coef) < 1e-6) == (sk.coef_ == 0))
    pred = sk.predict(Xt)
    assert out['metrics']['r2'] == pytest.approx(metrics.r2_score(yt, pred), abs=2e-3)
    assert out['metrics']['mse'] == pytest.approx(metrics.mean_squared_error(yt, pred), rel=1e-2)
    assert out['metrics']['mae'] == pytest.approx(metrics.mean_absolute_error(yt, pred), rel=1e-2)


def test_lasso_target_held_by_left_owner_and_minmax(tmp_path):
    left, right = owner_tables(11)
    left, right = right.rename(columns={'y': 'cost'}), left   # target now at party 0
    lp, rp = write(tmp_path, left, right)
    js = tmp_path / 'out.json'
    r = run_local(LASSO, ['--left', lp, '--right', rp, '--id', 'id', '--target', 'cost',
                          '--scale', 'minmax', '--test-fraction', '0', '--alpha', '0.001',
                          '--tol', '1e-6', '--model-units', 'scaled', '--json', str(js)], 3, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    joined = plaintext_join(lp, rp, 'id', scale='minmax').drop(columns='id')
    features = [c for c in joined.columns if c != 'cost']
    sk = Lasso(alpha=0.001, tol=1e-6, max_iter=100_000).fit(joined[features], joined['cost'])
    np.testing.assert_allclose([out['coef'][f] for f in features], sk.coef_, atol=1e-3)
    assert out['metrics']['on'] == 'train' and out['train_rows'] == len(joined)


def test_lasso_keeps_model_secret_when_asked(tmp_path):
    left, right = owner_tables(5, n=140)
    lp, rp = write(tmp_path, left, right)
    common = ['--id', 'id', '--target', 'y', '--int-bits', '2', '--model-to', '1',
              '--json', str(tmp_path / 'out_{party}.json')]
    results = run_separate(LASSO, [['--left', lp] + common, ['--right', rp] + common, common])
    assert all(code == 0 for code, _, _ in results), results
    views = [json.loads((tmp_path / f'out_{i}.json').read_text()) for i in range(3)]
    assert [v['party'] for v in views] == [0, 1, 2]   # every party writes its own view
    assert all('r2' in v['metrics'] for v in views)
    assert 'coef' in views[1] and 'coef' not in views[0] and 'coef' not in views[2]
    assert 'intercept' in results[1].stdout and 'intercept' not in results[0].stdout


@pytest.mark.skipif(not os.path.exists(LOGISTIC), reason='no logistic program')
@pytest.mark.parametrize('parties, secret', [(1, False), (3, True), (5, False)])
def test_logistic_program_matches_sklearn(tmp_path, parties, secret):
    left, right = owner_tables(20 + parties, n=200, classify=True)
    lp, rp = write(tmp_path, left, right)
    js = tmp_path / 'out.json'
    args = ['--left', lp, '--right', rp, '--id', 'id', '--target', 'y', '--int-bits', '2',
            '--reg-c', '1.0',
            '--split', 'seeded', '--seed', '1', '--test-fraction', '0.25', '--json', str(js)]
    r = run_local(LOGISTIC, args + (['--secret-model'] if secret else []), parties, timeout=400)
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    X, y, Xt, yt, features = twin(lp, rp, 1, 0.25)
    sk = LogisticRegression(C=1.0, tol=1e-8, max_iter=10_000).fit(X, y)
    pred, score = sk.predict(Xt), sk.decision_function(Xt)
    m = out['metrics']
    assert abs(m['accuracy'] - metrics.accuracy_score(yt, pred)) <= 0.005 + 1 / len(yt)
    assert m['auc'] == pytest.approx(metrics.roc_auc_score(yt, score), abs=0.01)
    assert np.sum(m['confusion']) == len(yt)
    if secret:
        assert 'coef' not in out and 'intercept' not in out
    else:
        np.testing.assert_allclose([out['coef'][f] for f in features], sk.coef_[0], atol=1e-2)
        assert abs(out['intercept'] - sk.intercept_[0]) < 1e-2
