"""The main job: secure join + Lasso on the bundled Medical Costs tables, next to scikit-learn.

    python experiments/lasso_demo.py [--parties 3] [--full-one-hot]

Runs protocols/lasso.py with real local parties (the insurer reads data/insurer.csv, the
hospital data/hospital.csv, party 2 helps), then fits scikit-learn's Lasso on the plaintext
twin: the same preprocessing, the same joined rows and the same seeded test split.
By default one dummy per category is dropped, so the Lasso optimum is unique and the two models
must agree; --full-one-hot keeps the paper's 11 features, whose optimum is not unique.
The model stays in the scaled units scikit-learn fits here (`--model-units scaled`); without
it the program reports dollars per original unit of each feature.
"""

import argparse
import os

import numpy as np
from sklearn.linear_model import Lasso
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from common import ROOT, run_protocol
from mpclab.twin import plaintext_join, plaintext_split

DATA = os.path.join(ROOT, 'data')
DROPPED = ['sex_female', 'smoker_no', 'region_northeast']


def lasso_objective(y, y_pred, coef, alpha):
    return float(np.mean((y - y_pred) ** 2) / 2 + alpha * np.abs(coef).sum())


def sklearn_twin(drop, seed, fraction, alpha, target='charges'):
    joined = plaintext_join(os.path.join(DATA, 'insurer.csv'), os.path.join(DATA, 'hospital.csv'),
                            'patient_id', scale='minmax', exclude=drop)
    train, test = plaintext_split(joined, 'patient_id', seed, fraction)
    features = [c for c in train.columns if c != target]
    model = Lasso(alpha=alpha, tol=1e-6, max_iter=100_000).fit(train[features], train[target])
    pred = model.predict(test[features])
    y = test[target].to_numpy()
    metrics = {'r2': r2_score(y, pred), 'mse': mean_squared_error(y, pred),
               'mae': mean_absolute_error(y, pred),
               'objective': lasso_objective(y, pred, model.coef_, alpha)}
    return model, features, metrics


def run(parties=3, full_one_hot=False, seed=0, fraction=0.1, alpha=0.001, tol=1e-4):
    drop = [] if full_one_hot else DROPPED
    args = ['--left', os.path.join(DATA, 'insurer.csv'), '--right', os.path.join(DATA, 'hospital.csv'),
            '--id', 'patient_id', '--target', 'charges', '--scale', 'minmax', '--alpha', str(alpha),
            '--tol', str(tol), '--test-fraction', str(fraction), '--split', 'seeded', '--seed', str(seed),
            '--model-units', 'scaled']
    if drop:
        args += ['--drop-columns', *drop]
    secure, wall = run_protocol('lasso.py', args, parties)
    model, features, metrics = sklearn_twin(drop, seed, fraction, alpha)
    return secure, wall, model, features, metrics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--full-one-hot', action='store_true')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    secure, wall, model, features, metrics = run(args.parties, args.full_one_hot, args.seed)
    print(f'Secure inner join of {secure["rows_left"]} insurer rows and {secure["rows_right"]} '
          f'hospital rows: {secure["intersection_size"]} in common '
          f'({secure["train_rows"]} train, {secure["test_rows"]} test), {args.parties} parties.')
    print(f'Secure Lasso: {secure["n_iter"]} iterations; total {wall:.1f} s wall clock.\n')
    print(f'{"coefficient":>18} {"secure":>10} {"sklearn":>10} {"|diff|":>9}')
    worst = 0.0
    for name, sk in zip(features, model.coef_):
        s = secure['coef'][name]
        worst = max(worst, abs(s - sk))
        print(f'{name:>18} {s:10.5f} {sk:10.5f} {abs(s - sk):9.1e}')
    s, sk = secure['intercept'], model.intercept_
    worst = max(worst, abs(s - sk))
    print(f'{"intercept":>18} {s:10.5f} {sk:10.5f} {abs(s - sk):9.1e}\n')
    print(f'{"test metric":>18} {"secure":>10} {"sklearn":>10}')
    for k in ('r2', 'mse', 'mae', 'objective'):
        print(f'{k:>18} {secure["metrics"][k]:10.5f} {metrics[k]:10.5f}')
    print(f'\nlargest coefficient difference: {worst:.1e}')


if __name__ == '__main__':
    main()
