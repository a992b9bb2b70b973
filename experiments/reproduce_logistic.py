"""Logistic regression in MPC: accuracy on the heart failure data, and time against rows.

    python experiments/reproduce_logistic.py                 # both parts
    python experiments/reproduce_logistic.py --only accuracy
    python experiments/reproduce_logistic.py --only time --rows 1000 5000 10000 50000 100000

Accuracy: protocols/logistic.py with three local parties on the bundled heart failure tables
(the clinic's and the hospital's; min-max scaled; C = 1; seeded 20% test split; model revealed)
against scikit-learn's LogisticRegression on the plaintext twin (same rows, same split), and the
same run with --secret-model.  Writes results/logistic_heart.csv and
results/logistic_heart_coef.csv.

Time: the whole program (linking = secure join, training, evaluation on a 10% secret test split)
on synthetic tables with 10 features (5 per owner; the label is an 11th column) and full overlap,
against the number of rows per owner; one curve per phase, as in the blog post's three graphs.
AUC sorts the test rows in MPC, so it is computed up to --auc-max-rows only.  Writes
results/logistic_time.csv (with bytes sent per party) and results/logistic_time.png.
"""

import argparse
import os
import tempfile

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pandas as pd
from sklearn import metrics
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from common import RESULTS, ROOT, run_protocol, synthetic_tables, write_tables
from mpclab.twin import plaintext_join, plaintext_split

DATA = os.path.join(ROOT, 'data')


def accuracy(parties, seed=0, fraction=0.2, C=1.0):
    left, right = os.path.join(DATA, 'heart_clinic.csv'), os.path.join(DATA, 'heart_hospital.csv')
    args = ['--left', left, '--right', right, '--id', 'patient_id', '--target', 'DEATH_EVENT',
            '--scale', 'minmax', '--reg-c', str(C), '--split', 'seeded', '--seed', str(seed),
            '--test-fraction', str(fraction), '--model-units', 'scaled']   # as scikit-learn fits it
    revealed, _ = run_protocol('logistic.py', args, parties)
    secret, _ = run_protocol('logistic.py', args + ['--secret-model'], parties)
    joined = plaintext_join(left, right, 'patient_id', scale='minmax')
    train, test = plaintext_split(joined, 'patient_id', seed, fraction)
    features = [c for c in train.columns if c != 'DEATH_EVENT']
    sk = LogisticRegression(C=C, max_iter=10_000, tol=1e-10).fit(train[features], train['DEATH_EVENT'])
    y, pred, score = test['DEATH_EVENT'], sk.predict(test[features]), sk.decision_function(test[features])
    plain = {'accuracy': metrics.accuracy_score(y, pred), 'precision': metrics.precision_score(y, pred),
             'recall': metrics.recall_score(y, pred), 'f1': metrics.f1_score(y, pred),
             'auc': metrics.roc_auc_score(y, score),
             'confusion': metrics.confusion_matrix(y, pred).tolist()}
    rows = []
    for who, m in (('mpclab, model revealed', revealed['metrics']),
                   ('mpclab, secret model', secret['metrics']),
                   ('scikit-learn', plain)):
        rows.append({'model': who, **{k: m[k] for k in ('accuracy', 'precision', 'recall', 'f1', 'auc')},
                     'confusion': m['confusion'], 'test_rows': len(test)})
    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(RESULTS, 'logistic_heart.csv'), index=False, float_format='%.6g')
    coef = pd.DataFrame({'feature': features + ['intercept'],
                         'mpclab secure': [revealed['coef'][f] for f in features] + [revealed['intercept']],
                         'scikit-learn': list(sk.coef_[0]) + [sk.intercept_[0]]})
    coef['abs diff'] = (coef['mpclab secure'] - coef['scikit-learn']).abs()
    coef.to_csv(os.path.join(RESULTS, 'logistic_heart_coef.csv'), index=False, float_format='%.6g')
    print(table.to_string(index=False))
    print(coef.to_string(index=False))
    print(f'largest coefficient difference {coef["abs diff"].max():.2e}; Newton steps {revealed["n_iter"]}')


def timing(parties, rows, repeats, auc_max_rows):
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(n, k) for n in rows for k in range(repeats)]
        for n, k in tqdm(runs, desc='logistic sweep'):
            left, right = synthetic_tables(n, 5, 6, seed=k, labels=True)
            lp, rp = write_tables(tmp, left, right)
            auc = 'exact' if n <= auc_max_rows else 'none'
            args = ['--left', lp, '--right', rp, '--id', 'id', '--target', right.columns[-1],
                    '--scale', 'minmax', '--test-fraction', '0.1', '--auc', auc]
            s, wall = run_protocol('logistic.py', args, parties)
            t = s['timings']
            row = {'rows_per_owner': n, 'features': 10, 'repeat': k, 'parties': parties,
                   'linking_seconds': round(sum(v for a, v in t.items() if a.startswith('join:')), 3),
                   'training_seconds': round(t['logistic:fit'], 3),
                   'evaluation_seconds': round(t['logistic:evaluate'], 3), 'auc_computed': auc == 'exact',
                   'wall_seconds': round(wall, 3), 'newton_steps': s['n_iter'],
                   'test_accuracy': s['metrics']['accuracy']}
            row.update({f'bytes_party{i}': b for i, b in enumerate(s['bytes_sent'])})
            out.append(row)
            tqdm.write(f'{n} rows: linking {row["linking_seconds"]:.1f} s, training '
                       f'{row["training_seconds"]:.1f} s, evaluation {row["evaluation_seconds"]:.1f} s')
    df = pd.DataFrame(out)
    df.to_csv(os.path.join(RESULTS, 'logistic_time.csv'), index=False)
    med = df.groupby('rows_per_owner')[['linking_seconds', 'training_seconds', 'evaluation_seconds']].median()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, col, title in zip(axes, med.columns, ['linking (secure join)', 'training', 'evaluation']):
        ax.plot(med.index, med[col], 'o-')
        ax.set_title(title)
        ax.set_xlabel('rows per owner (10 features)')
        ax.set_ylabel('seconds')
        ax.grid(True, alpha=0.3)
    fig.suptitle('Secure logistic regression, 3 local parties on 2 cores (medians)')
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, 'logistic_time.png'), dpi=120)
    print(med.to_string())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--only', choices=['accuracy', 'time'])
    ap.add_argument('--rows', type=int, nargs='+', default=[1000, 5000, 10000, 50000, 100000])
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--auc-max-rows', type=int, default=10000)
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    if args.only != 'time':
        accuracy(args.parties)
    if args.only != 'accuracy':
        timing(args.parties, args.rows, args.repeats, args.auc_max_rows)


if __name__ == '__main__':
    main()
