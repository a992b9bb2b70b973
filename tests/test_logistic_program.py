"""The logistic program's cross-validation (--cv K --cs ...) as real parties, against
scikit-learn's LogisticRegressionCV on the same rows and folds; its options."""

import json
import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

from mpclab.options import OptionError, from_values
from mpclab.twin import plaintext_join, plaintext_split
from partyrun import PROTOCOLS, run_local
from test_protocols import owner_tables, write

LOGISTIC = os.path.join(PROTOCOLS, 'logistic.py')
BASE = {'left': 'l.csv', 'right': 'r.csv', 'id': 'id', 'target': 'y'}


def test_cv_options():
    o = from_values('logistic', {**BASE, 'cv': 4, 'cs': [0.1, 1, 10]}).model
    assert (o.cv, o.cs, o.candidates()) == (4, (0.1, 1.0, 10.0), (0.1, 1.0, 10.0))
    default = from_values('logistic', {**BASE, 'cv': 3}).model
    assert default.candidates() == tuple(np.logspace(-4, 4, 10))
    assert default.auc == 'auto'
    from mpclab.programs.logistic import auc_method
    assert [auc_method('auto', n) for n in (10, 128, 129)] == ['pairs', 'pairs', 'histogram']
    assert [auc_method('exact', n) for n in (10, 10**5)] == ['pairs', 'sort']
    for values, message in [({'cs': [1.0]}, 'need --cv'), ({'cv': 1}, 'at least 2'),
                            ({'cv': 3, 'cs': [1.0, -1.0]}, 'positive'),
                            ({'cv': 3, 'cs': [1.0, 1.0]}, 'twice')]:
        with pytest.raises(OptionError, match=message):
            from_values('logistic', {**BASE, **values})


def test_cv_from_the_command_line():
    from mpclab.options import from_command_line
    options, rest = from_command_line('logistic', ['--left', 'l.csv', '--right', 'r.csv', '--id',
                                                   'id', '--target', 'y', '--cv', '3', '--cs',
                                                   '0.5', '2', '-M3'])
    assert (options.model.cv, options.model.cs, rest) == (3, (0.5, 2.0), ['-M3'])


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::FutureWarning')   # LogisticRegressionCV's coming defaults
@pytest.mark.parametrize('parties, sizes', [
    (3, None),
    # held-out labels 7 rows, test labels 5 rows at a time, Hessians in pieces of 9 rows
    (4, 'mpclab.models.logistic.COMPARISON_ROWS=7;mpclab.programs.logistic.COMPARISON_ROWS=5;'
        'mpclab.models.logistic.HESSIAN_ROWS=9')])
def test_cv_program_chooses_sklearns_C_with_its_scores(tmp_path, parties, sizes):
    """The training rows (in the secret order, opened by a test hook) are cross-validated by
    scikit-learn on the same contiguous folds; they are the plaintext twin's training rows."""
    # 120 rows and two candidates whose scores stay apart in scikit-learn's CV over random row
    # orders (170 rows and 0.05, 0.5, 5: within a row or tied in 2 of 3 orders at 4 parties)
    left, right = owner_tables(40 + parties, n=120, classify=True)
    lp, rp = write(tmp_path, left, right)
    js, dump = tmp_path / 'out_{party}.json', tmp_path / 'rows.npz'   # each party its own
    Cs, K = [0.02, 1.0], 3
    args = ['--left', lp, '--right', rp, '--id', 'id', '--target', 'y', '--int-bits', '2',
            '--cv', str(K), '--cs', *map(str, Cs), '--tol', '1e-6', '--auc', 'none',
            '--split', 'seeded', '--seed', '2', '--test-fraction', '0.2', '--json', str(js)]
    env = {**os.environ, 'MPCLAB_TEST_DUMP_CV': str(dump), **({'MPCLAB_TEST_SIZES': sizes} if sizes else {})}
    r = run_local(LOGISTIC, args, parties, timeout=400, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / 'out_0.json').read_text())
    rows = np.load(dump)
    X, y = rows['X'], rows['y']
    joined = plaintext_join(lp, rp, 'id')
    train, test = plaintext_split(joined, 'id', 2, 0.2)
    features = [c for c in train.columns if c != 'y']
    twin = np.column_stack((train[features].to_numpy(float), train['y'].to_numpy(float)))
    mine = np.column_stack((X, y))
    np.testing.assert_allclose(mine[np.lexsort(mine.T[::-1])], twin[np.lexsort(twin.T[::-1])],
                               atol=2**-15)
    n = len(y)
    edges = np.cumsum([0] + [n // K + (k < n % K) for k in range(K)])   # KFold's sizes
    folds = [(np.r_[0:a, b:n], np.arange(a, b)) for a, b in zip(edges[:-1], edges[1:])]
    sk = LogisticRegressionCV(Cs=Cs, cv=folds, scoring='accuracy', tol=1e-10,
                              max_iter=10_000).fit(X, y)
    cv = out['cv']
    assert cv['Cs'] == Cs and cv['folds'] == K
    assert cv['C_'] == sk.C_[0] == out['reg_c']
    # a held-out row on the decision boundary may fall either way under the secure fixed
    # point's random rounding: allow one such row (a mean score moves by 1/(K*fold size))
    one_row = 1 / (K * (n // K))
    np.testing.assert_allclose(cv['mean_scores'], sk.scores_[1].mean(axis=0), atol=one_row + 1e-9)
    final = LogisticRegression(C=cv['C_'], tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose([out['coef'][f] for f in features], final.coef_[0], atol=1e-2)
    assert abs(out['intercept'] - final.intercept_[0]) < 1e-2
    # the test rows' labels (a row on the decision boundary may again fall either way)
    accuracy = final.score(test[features].to_numpy(float), test['y'].to_numpy(float))
    assert out['metrics']['on'] == 'test'
    assert abs(out['metrics']['accuracy'] - accuracy) <= 1 / len(test) + 1e-9
    assert any(leak.startswith(f'--cv {K}:') for leak in out['leaks'])


def test_exact_auc_too_large_for_this_machine_is_refused_before_training(monkeypatch):
    from mpyc.runtime import mpc
    from mpclab.metrics import classification
    from mpclab.programs import logistic
    from mpclab.session import PublicError
    monkeypatch.setattr(classification, '_available_bytes', lambda: 3 * 2**30)   # one local party
    with pytest.raises(PublicError, match=r"party 0: the ROC AUC of 10000 predictions by the "
                                          r"'sort' method .*--auc histogram"):
        mpc.run(logistic._check_auc_memory('exact', 10_000))
    mpc.run(logistic._check_auc_memory('exact', 100))        # pairs: small
    mpc.run(logistic._check_auc_memory('histogram', 10**6))  # bounded: never refused
