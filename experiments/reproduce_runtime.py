"""Reproduce Figures 12.1 and 12.2 of Spini et al. (2024): join + Lasso time against size.

    python experiments/reproduce_runtime.py                  # both sweeps, 3 repeats
    python experiments/reproduce_runtime.py --repeats 1 --quick
    python experiments/reproduce_runtime.py --latency-ms 3   # every link delayed 3 ms each way

Total time of the main job (secure inner join + secure Lasso, alpha 0.001, tol 1e-4, on a
secret 10% test split) with real local party processes, against the number of records per
owner (30 columns: 15 per owner, the target among them) and against the number of columns
(5000 records per owner).  The tables overlap completely, as in the paper.  Medians of the
repeats; the paper's 3500 s for 2 x 5000 records and 30 features is marked.

Writes results/runtime_records.csv, results/runtime_features.csv (one row per run, with
per-phase seconds and bytes sent per party) and results/runtime.png (with --latency-ms,
the file names get a suffix, e.g. runtime_records_3ms.csv).
"""

import argparse
import os
import tempfile

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import pandas as pd
from tqdm import tqdm

from common import RESULTS, run_protocol, synthetic_tables, write_tables

PAPER_SECONDS = 3500  # 2 x 5000 records, 30 features, three hosts (Spini et al. 2024, 12.3.2)


def one_run(tmp, records, columns, repeat, parties, latency_ms):
    d_left = columns // 2
    left, right = synthetic_tables(records, d_left, columns - d_left, seed=repeat)
    lp, rp = write_tables(tmp, left, right)
    target = right.columns[-1]
    # as in the paper, every column scaled to [0, 1]
    args = ['--left', lp, '--right', rp, '--id', 'id', '--target', target, '--scale', 'minmax',
            '--alpha', '0.001', '--tol', '1e-4', '--test-fraction', '0.1']
    summary, wall = run_protocol('lasso.py', args, parties, latency_ms=latency_ms)
    t = summary['timings']
    join = sum(v for k, v in t.items() if k.startswith('join:'))
    lasso = sum(v for k, v in t.items() if k.startswith('lasso:'))
    row = {'records_per_owner': records, 'columns': columns, 'repeat': repeat, 'parties': parties,
           'latency_ms': latency_ms or 0, 'join_seconds': round(join, 3),
           'lasso_seconds': round(lasso, 3), 'total_seconds': round(join + lasso, 3),
           'wall_seconds': round(wall, 3), 'n_iter': summary['n_iter']}
    row.update({f't_{k}': round(v, 3) for k, v in t.items()})
    row.update({f'bytes_party{i}': b for i, b in enumerate(summary['bytes_sent'])})
    return row


def sweep(name, points, repeats, parties, latency_ms, suffix):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(r, c, k) for r, c in points for k in range(repeats)]
        for records, columns, k in tqdm(runs, desc=f'{name} sweep'):
            rows.append(one_run(tmp, records, columns, k, parties, latency_ms))
            tqdm.write(f'{records} records x {columns} columns: join {rows[-1]["join_seconds"]:.1f} s '
                       f'+ Lasso {rows[-1]["lasso_seconds"]:.1f} s')
    df = pd.DataFrame(rows)
    df.to_csv(os.path.join(RESULTS, f'runtime_{name}{suffix}.csv'), index=False)
    return df


def plot(records, features, suffix, latency_ms):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, df, x, label in ((axes[0], records, 'records_per_owner', 'records per owner (30 columns)'),
                             (axes[1], features, 'columns', 'columns (5000 records per owner)')):
        if df is None:
            ax.set_visible(False)
            continue
        med = df.groupby(x)[['join_seconds', 'lasso_seconds', 'total_seconds']].median()
        ax.plot(med.index, med['total_seconds'], 'o-', label='mpclab: join + Lasso (median)')
        ax.plot(med.index, med['join_seconds'], 's--', label='mpclab: join')
        ax.plot(med.index, med['lasso_seconds'], '^--', label='mpclab: Lasso')
        ax.plot([5000 if x == 'records_per_owner' else 30], [PAPER_SECONDS], 'r*', ms=14,
                label='paper: 3500 s (5000 records, 30 features)')
        ax.set_yscale('log')
        ax.set_xlabel(label)
        ax.set_ylabel('seconds')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    net = f', {latency_ms} ms links' if latency_ms else ', loopback'
    fig.suptitle(f'Secure inner join + Lasso, 3 local parties on 2 cores{net} (Figures 12.1, 12.2)')
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, f'runtime{suffix}.png'), dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--latency-ms', type=float, help='one-way delay on every link')
    ap.add_argument('--quick', action='store_true', help='fewer points')
    ap.add_argument('--only', choices=['records', 'features'])
    ap.add_argument('--records', type=int, nargs='+', help='records per owner for the records sweep')
    ap.add_argument('--columns', type=int, nargs='+', help='column counts for the features sweep')
    args = ap.parse_args()
    records = args.records or ([500, 2000, 5000] if args.quick else [500, 1000, 2000, 3000, 4000, 5000])
    columns = args.columns or ([6, 18, 30] if args.quick else [6, 10, 14, 18, 22, 26, 30])
    suffix = f'_{args.latency_ms:g}ms' if args.latency_ms else ''
    os.makedirs(RESULTS, exist_ok=True)
    r = f = None
    if args.only != 'features':
        r = sweep('records', [(n, 30) for n in records], args.repeats, args.parties, args.latency_ms, suffix)
    if args.only != 'records':
        f = sweep('features', [(5000, c) for c in columns], args.repeats, args.parties, args.latency_ms,
                  suffix)
    plot(r, f, suffix, args.latency_ms)
    for df, x in ((r, 'records_per_owner'), (f, 'columns')):
        if df is not None:
            print(df.groupby(x)[['join_seconds', 'lasso_seconds', 'total_seconds', 'wall_seconds']]
                  .median().to_string())


if __name__ == '__main__':
    main()
