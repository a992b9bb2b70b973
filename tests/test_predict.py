"""Secure prediction on new patients: revealed or secret models, opened to one owner only."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, LogisticRegression

from mpclab.twin import plaintext_join, plaintext_split
from partyrun import PROTOCOLS, run_separate
from test_model_files import (WIDE, coefficient_needles, original_units, owner_tables, scalings,
                              write)

pytestmark = pytest.mark.slow
LASSO, LOGISTIC = os.path.join(PROTOCOLS, 'lasso.py'), os.path.join(PROTOCOLS, 'logistic.py')
PREDICT = os.path.join(PROTOCOLS, 'predict.py')


def train(program, tmp_path, lp, rp, extra, parties):
    out = tmp_path / 'train'
    out.mkdir(parents=True, exist_ok=True)
    common = ['--id', 'id', '--scale', 'minmax', '--split', 'seeded', '--seed', '5',
              '--test-fraction', '0.2', '--model-out', str(out / 'model_{party}.json'), *extra]
    args = [['--left', lp] + common, ['--right', rp] + common] + [common] * (parties - 2)
    for code, _, err in run_separate(program, args, timeout=400):
        assert code == 0, err
    return [str(out / f'model_{i}.json') for i in range(parties)]


def predict(tmp_path, models, new_left, new_right, parties, env=None, to=0, name='p'):
    lp, rp = tmp_path / f'{name}_left.csv', tmp_path / f'{name}_right.csv'
    new_left.to_csv(lp, index=False)
    new_right.to_csv(rp, index=False)
    csv = tmp_path / f'{name}_predictions.csv'
    common = ['--id', 'id', '--predictions-to', str(to), '--save-predictions', str(csv)]
    args = [['--left', str(lp), '--model', models[0]], ['--right', str(rp), '--model', models[1]]]
    args += [['--model', models[i]] for i in range(2, parties)]
    results = run_separate(PREDICT, [a + common for a in args], timeout=300, env=env)
    return results, csv


def new_patients(seed, n):
    left, right = owner_tables(seed, n=n)
    return left, right.drop(columns=['cost'])


def plaintext_lasso(lp, rp, alpha):
    joined = plaintext_join(lp, rp, 'id', scale='minmax')
    train_rows, _ = plaintext_split(joined, 'id', 5, 0.2)
    features = ['age', 'income', 'weight', 'smoker']
    sk = Lasso(alpha=alpha, tol=1e-8, max_iter=100_000).fit(train_rows[features], train_rows['cost'])
    return original_units(sk.coef_, sk.intercept_, features, scalings(lp, rp), 'cost'), features


@pytest.mark.parametrize('parties, secret', [(3, False), (3, True), (4, True)])
def test_predictions_equal_the_plaintext_models_and_reach_one_owner_only(tmp_path, parties, secret):
    lp, rp = write(tmp_path, *owner_tables(parties))
    extra = ['--target', 'cost', '--alpha', '0.0005', '--tol', '1e-6']
    extra += ['--secret-model'] if secret else []
    models = train(LASSO, tmp_path, lp, rp, extra, parties)
    (w, b), features = plaintext_lasso(lp, rp, 0.0005)
    new_left, new_right = new_patients(100 + parties, 40)
    results, csv = predict(tmp_path, models, new_left, new_right, parties)
    for code, _, err in results:
        assert code == 0, err
    got = pd.read_csv(csv)
    raw = plaintext_join(new_left, new_right, 'id', fmt=WIDE).set_index('id')
    assert sorted(got['id']) == sorted(raw.index)   # its own identifiers, for those joined
    expected = raw.loc[got['id'], features].to_numpy() @ w + b
    np.testing.assert_allclose(got['predicted_cost'], expected, rtol=1e-3)
    assert 'predictions went to party 0 only' in results[1].stdout
    assert 'predictions went to party 0 only' in results[2].stdout


def test_a_one_patient_table_gets_its_prediction(tmp_path):
    lp, rp = write(tmp_path, *owner_tables(3))
    models = train(LASSO, tmp_path, lp, rp, ['--target', 'cost', '--alpha', '0.0005', '--tol', '1e-6',
                                             '--secret-model'], 3)
    (w, b), features = plaintext_lasso(lp, rp, 0.0005)
    one_left = pd.DataFrame({'id': ['new-patient'], 'age': [61.0], 'income': [52_000.0]})
    one_right = pd.DataFrame({'id': ['new-patient'], 'weight': [88.5], 'smoker': [1.0]})
    results, csv = predict(tmp_path, models, one_left, one_right, 3, to=1)
    for code, _, err in results:
        assert code == 0, err
    got = pd.read_csv(csv)
    assert got['id'].tolist() == ['new-patient']
    assert got['predicted_cost'][0] == pytest.approx(np.array([61.0, 52_000.0, 88.5, 1.0]) @ w + b,
                                                     rel=1e-3)


def test_a_secret_logistic_model_predicts_probabilities_and_labels(tmp_path):
    left, right = owner_tables(8, n=400, classify=True)
    lp, rp = write(tmp_path, left, right)
    models = train(LOGISTIC, tmp_path, lp, rp, ['--target', 'event', '--auc', 'none',
                                                '--secret-model'], 3)
    joined = plaintext_join(lp, rp, 'id', scale='minmax')
    train_rows, _ = plaintext_split(joined, 'id', 5, 0.2)
    features = ['age', 'income', 'weight', 'smoker']
    sk = LogisticRegression(tol=1e-10, max_iter=10_000).fit(train_rows[features], train_rows['event'])
    w, b = original_units(sk.coef_[0], sk.intercept_[0], features, scalings(lp, rp))
    new_left, new_right = new_patients(77, 30)
    sizes = {'MPCLAB_TEST_SIZES': 'mpclab.programs.predict.COMPARISON_ROWS=4'}  # 4 labels at a time
    results, csv = predict(tmp_path, models, new_left, new_right, 3, env={**os.environ, **sizes})
    for code, _, err in results:
        assert code == 0, err
    got = pd.read_csv(csv)
    raw = plaintext_join(new_left, new_right, 'id', fmt=WIDE).set_index('id')
    z = raw.loc[got['id'], features].to_numpy() @ w + b
    np.testing.assert_allclose(got['probability'], 1 / (1 + np.exp(-z)), atol=2e-3)
    near_zero = np.abs(z) < 1e-2
    assert (got['label'].to_numpy()[~near_zero] == (z[~near_zero] > 0)).all()


def test_no_coefficient_of_a_secret_model_reaches_anyone_during_prediction(tmp_path):
    lp, rp = write(tmp_path, *owner_tables(21))
    extra = ['--target', 'cost', '--alpha', '0.0005', '--tol', '1e-6']
    revealed = train(LASSO, tmp_path / 'r', lp, rp, extra, 3)
    known = json.loads(open(revealed[0]).read())
    secret = train(LASSO, tmp_path / 's', lp, rp,
                   extra + ['--secret-model'], 3)
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    results, _ = predict(tmp_path, secret, *new_patients(5, 40), 3, env=env)
    for code, _, err in results:
        assert code == 0, err
    wire = b''.join((record / n).read_bytes() for n in os.listdir(record))
    needles = coefficient_needles([*known['coef'], known['intercept']])
    assert len(wire) > 10_000 and needles
    assert not [k for k, p in needles.items() if p in wire]


def test_every_party_must_bring_its_own_share_of_the_same_model(tmp_path):
    lp, rp = write(tmp_path, *owner_tables(4))
    extra = ['--target', 'cost', '--alpha', '0.0005', '--secret-model']
    first = train(LASSO, tmp_path / 'a', lp, rp, extra, 3)
    other = train(LASSO, tmp_path / 'b', lp, rp, extra, 3)
    new = new_patients(9, 20)
    results, csv = predict(tmp_path, [first[0], first[1], other[2]], *new, 3, name='mixed')
    for code, _, err in results:
        assert code == 2 and 'brings another model' in err, err
    assert not csv.exists()
    results, csv = predict(tmp_path, [first[1], first[0], first[2]], *new, 3, name='swapped')
    for code, _, err in results:
        assert code == 2 and 'brings the shares of party' in err, err
    assert not csv.exists()
