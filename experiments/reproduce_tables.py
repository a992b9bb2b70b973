"""Reproduce Tables 12.9 and 12.10 of Spini et al. (2024): secure Lasso on Medical Costs.

    python experiments/reproduce_tables.py [--parties 3] [--seed 0]

Setting of the paper: the 11 features after one-hot encoding sex, smoker and region, every
column min-max scaled to [0, 1], a 10% test split, alpha 0.001, tol 1e-4.  mpclab runs the whole
pipeline as real parties (join of the insurer's and the hospital's tables, Lasso, metrics on the
secret test split); scikit-learn's Lasso runs on the plaintext twin (same rows, same split).

Two encodings are run:
- 'full one-hot' (the paper's 11 features): each category's dummies sum to the intercept column,
  so the Lasso optimum is a whole set of coefficient vectors; secure and scikit-learn models
  may pick different members.  Compared on the objective, which is what both minimise.
- 'one dummy dropped per category' (8 features): unique optimum, compared coefficient by
  coefficient.

Writes results/table_12_9.csv (metrics), results/table_12_10.csv (coefficients) and
results/table_12_10.png.
"""

import argparse
import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from common import RESULTS
from lasso_demo import DATA, lasso_objective, run
from mpclab.twin import plaintext_join, plaintext_split

# Published values (Spini, van Egmond, Veugen, Sangers 2024, Tables 12.9 and 12.10).
PAPER_METRICS = {'scikit-learn (paper)': {'objective': 0.009, 'r2': 0.66, 'mse': 0.012, 'mae': 0.082,
                                          'intercept': 0.39},
                 'secure model (paper)': {'objective': 0.013, 'r2': 0.74, 'mse': 0.008, 'mae': 0.062,
                                          'intercept': 0.18}}
PAPER_COEF = {'scikit-learn (paper)': [0.08, 0.01, 0, 0, 0, -0.03, 0, 0, 0, 0, 0],
              'secure model (paper)': [0.17, 0.10, 0.001, 0, 0, -0.19, 0.18, 0, 0, 0, 0]}


def train_objective(secure, model, features, drop, seed):
    """Training objectives of both models on the plaintext twin (what Lasso minimises)."""
    joined = plaintext_join(os.path.join(DATA, 'insurer.csv'), os.path.join(DATA, 'hospital.csv'),
                            'patient_id', scale='minmax', exclude=drop)
    train, _ = plaintext_split(joined, 'patient_id', seed, 0.1)
    X, y = train[features].to_numpy(), train['charges'].to_numpy()
    w = np.array([secure['coef'][f] for f in features])
    obj_secure = lasso_objective(y, X @ w + secure['intercept'], w, 0.001)
    obj_sklearn = lasso_objective(y, model.predict(train[features]), model.coef_, 0.001)
    return obj_secure, obj_sklearn


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    metric_rows, coef_rows = [], []
    for label, full in (('full one-hot', True), ('one dummy dropped', False)):
        secure, wall, model, features, metrics = run(args.parties, full, args.seed)
        drop = [] if full else ['sex_female', 'smoker_no', 'region_northeast']
        obj_s, obj_k = train_objective(secure, model, features, drop, args.seed)
        for who, m, intercept, obj in (('mpclab secure', secure['metrics'], secure['intercept'], obj_s),
                                       ('scikit-learn', metrics, model.intercept_, obj_k)):
            metric_rows.append({'encoding': label, 'model': who, 'objective': m['objective'],
                                'r2': m['r2'], 'mse': m['mse'], 'mae': m['mae'],
                                'intercept': intercept, 'train_objective': obj,
                                'n_iter': secure['n_iter'] if who.startswith('mpclab') else None,
                                'seconds': wall if who.startswith('mpclab') else None})
        for f, k in zip(features, model.coef_):
            coef_rows.append({'encoding': label, 'feature': f, 'mpclab secure': secure['coef'][f],
                              'scikit-learn': k, 'abs diff': abs(secure['coef'][f] - k)})
        print(f'{label}: secure training objective {obj_s:.6f}, scikit-learn {obj_k:.6f} '
              f'(relative difference {abs(obj_s - obj_k) / obj_k:.2e}); largest coefficient '
              f'difference {max(abs(secure["coef"][f] - k) for f, k in zip(features, model.coef_)):.2e}')
    for who, m in PAPER_METRICS.items():
        metric_rows.append({'encoding': 'full one-hot (paper)', 'model': who, **m})
    for j in range(11):
        coef_rows.append({'encoding': 'full one-hot (paper)', 'feature': f'c{j + 1}',
                          'mpclab secure': PAPER_COEF['secure model (paper)'][j],
                          'scikit-learn': PAPER_COEF['scikit-learn (paper)'][j],
                          'abs diff': abs(PAPER_COEF['secure model (paper)'][j]
                                          - PAPER_COEF['scikit-learn (paper)'][j])})
    os.makedirs(RESULTS, exist_ok=True)
    t9, t10 = pd.DataFrame(metric_rows), pd.DataFrame(coef_rows)
    t9.to_csv(os.path.join(RESULTS, 'table_12_9.csv'), index=False, float_format='%.6g')
    t10.to_csv(os.path.join(RESULTS, 'table_12_10.csv'), index=False, float_format='%.6g')
    print(t9.to_string(index=False, float_format=lambda v: f'{v:.5f}'))
    print(t10.to_string(index=False, float_format=lambda v: f'{v:.5f}'))
    plot(t10)


def plot(t10):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={'width_ratios': [11, 8, 11]})
    for ax, enc in zip(axes, ['full one-hot', 'one dummy dropped', 'full one-hot (paper)']):
        t = t10[t10['encoding'] == enc]
        x = np.arange(len(t))
        ax.bar(x - 0.2, t['mpclab secure'], 0.4, label='secure' if 'paper' not in enc else 'paper: secure')
        ax.bar(x + 0.2, t['scikit-learn'], 0.4,
               label='scikit-learn' if 'paper' not in enc else 'paper: scikit-learn')
        ax.set_xticks(x, t['feature'], rotation=60, ha='right', fontsize=8)
        ax.axhline(0, color='k', lw=0.5)
        ax.set_title(enc)
        ax.legend(fontsize=8)
    axes[0].set_ylabel('coefficient (features scaled to [0, 1])')
    fig.suptitle('Lasso on Medical Costs (alpha 0.001): mpclab secure model vs scikit-learn (Table 12.10)')
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, 'table_12_10.png'), dpi=120)


if __name__ == '__main__':
    main()
