"""Time the secure inner join of two and of three owners side by side, with real local parties.

    python experiments/bench_owners.py                              # 5000 rows, 15 features each
    python experiments/bench_owners.py --rows 5000 --features 15 --owners 2 3 4 --repeats 3

Every owner holds `--rows` rows of `--features` columns on the same people (full overlap);
K owners run with K + 1 parties (the helper is party K).  The runs of different owner counts
alternate, so that they share the machine's load.  Writes results/join_owners.csv: one row
per run with per-phase seconds (party 0's clock), wall time, bytes sent per party, and the
1-minute load average.
"""

import argparse
import csv
import os
import statistics
import sys
import tempfile

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, run_protocol  # noqa: E402

PHASES = ['join:schema', 'join:key', 'join:encrypt', 'join:match', 'join:decrypt', 'join:share']


def owner_tables(n_rows, n_owners, width, seed=0):
    """`n_owners` tables of the same `n_rows` people, each in its own order, features in [0, 1]."""
    rng = np.random.default_rng(seed)
    ids = np.array([f'P{i:07d}' for i in rng.permutation(10 * n_rows)[:n_rows]])
    tables = []
    for k in range(n_owners):
        df = pd.DataFrame(rng.uniform(0, 1, (n_rows, width)),
                          columns=[f'o{k}c{j}' for j in range(width)])
        df.insert(0, 'id', ids[rng.permutation(n_rows)])
        tables.append(df)
    return tables


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, default=5000, help='rows per owner')
    ap.add_argument('--features', type=int, default=15, help='features per owner')
    ap.add_argument('--owners', type=int, nargs='+', default=[2, 3])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--output', default=os.path.join(RESULTS, 'join_owners.csv'))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for k in args.owners:
                data = os.path.join(tmp, f'{k}_owner_{{party}}.csv')
                for i, t in enumerate(owner_tables(args.rows, k, args.features, seed=rep)):
                    t.to_csv(data.format(party=i), index=False)
                load = os.getloadavg()[0]
                summary, wall = run_protocol('inner_join.py', ['--owners', str(k), '--data', data,
                                                               '--id', 'id'], k + 1)
                t = summary['timings']
                row = {'owners': k, 'parties': k + 1, 'rows_per_owner': args.rows,
                       'features_per_owner': args.features, 'repeat': rep,
                       'intersection': summary['intersection_size'],
                       'join_seconds': round(sum(t.get(p, 0) for p in PHASES), 3),
                       'wall_seconds': round(wall, 3)}
                row.update({p.replace('join:', 't_'): round(t.get(p, 0), 3) for p in PHASES})
                row.update({f'bytes_party{i}': b for i, b in enumerate(summary['bytes_sent'])})
                row['load_before'] = round(load, 2)
                row['load_after'] = round(os.getloadavg()[0], 2)
                rows.append(row)
                print(f'{k} owners x {args.rows} rows x {args.features} features: join '
                      f'{row["join_seconds"]:.2f} s (wall {wall:.2f} s, load {load:.1f})', flush=True)
    os.makedirs(os.path.dirname(args.output) or '.', exist_ok=True)
    with open(args.output, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    for k in args.owners:
        ts = [r['join_seconds'] for r in rows if r['owners'] == k]
        print(f'{k} owners: median join {statistics.median(ts):.2f} s over {len(ts)} runs')
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
