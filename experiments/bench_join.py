"""Time the secure inner join for rows x features, with real local party processes.

    python experiments/bench_join.py                       # the default sweep
    python experiments/bench_join.py --rows 5000 --features 15 --repeats 3
    python experiments/bench_join.py --rows 5000 100000 --features 15 --scale minmax

Writes results/bench_join.csv (with --scale minmax: results/bench_join_minmax.csv): one row
per run with per-phase seconds (party 0's clock), total wall time, bytes sent per party, and
the join's statistical hiding: values and ciphertexts masked, stat_sec bits each, and the
union bound over them (log2), from the public sizes as every party records them.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, RESULTS, run_protocol, synthetic_tables, write_csv, write_tables  # noqa: E402

sys.path.insert(0, ROOT)
_argv, sys.argv = sys.argv, sys.argv[:1]  # MPyC parses the command line when imported
from mpclab.fixedpoint import FixedPointFormat  # noqa: E402
from mpclab.join import JoinParameters, masked_counts  # noqa: E402
sys.argv = _argv

PHASES = ['join:schema', 'join:key', 'join:encrypt', 'join:match', 'join:decrypt', 'join:share']


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, nargs='+', default=[1000, 5000, 20000, 100000])
    ap.add_argument('--features', type=int, nargs='+', default=[5, 15, 30],
                    help='features per owner')
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--repeats', type=int, default=1)
    ap.add_argument('--scale', choices=['none', 'minmax'], default='none',
                    help='minmax: inputs in [0, 1], so 1 integer bit instead of 16 (cheaper)')
    ap.add_argument('--timeout', type=float, default=7200,
                    help="the programs' --timeout: seconds per phase (a loaded machine needs more)")
    ap.add_argument('--output', help='default results/bench_join.csv, with --scale minmax '
                                     'results/bench_join_minmax.csv')
    args = ap.parse_args()
    suffix = '_minmax' if args.scale == 'minmax' else ''
    args.output = args.output or os.path.join(RESULTS, f'bench_join{suffix}.csv')
    # the programs' defaults: 16 integer bits, 1 with --scale minmax
    params = JoinParameters(FixedPointFormat(int_bits=1 if args.scale == 'minmax' else 16))
    runs = [(n, d, r) for n in args.rows for d in args.features for r in range(args.repeats)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, d, rep in tqdm(runs, desc='join sweep'):
            left, right = synthetic_tables(n, d, d, seed=rep, target=False)
            lp, rp = write_tables(tmp, left, right)
            summary, wall = run_protocol('inner_join.py', ['--left', lp, '--right', rp, '--id', 'id',
                                                           '--scale', args.scale,
                                                           '--timeout', str(args.timeout)],
                                         args.parties, timeout=4 * args.timeout)
            t = summary['timings']
            row = {'rows_per_owner': n, 'features_per_owner': d, 'parties': args.parties,
                   'scale': args.scale,
                   'repeat': rep, 'intersection': summary['intersection_size'],
                   'join_seconds': round(sum(t.get(p, 0) for p in PHASES), 3),
                   'wall_seconds': round(wall, 3)}
            row.update({p.replace('join:', 't_'): round(t.get(p, 0), 3) for p in PHASES})
            row.update({f'bytes_party{i}': b for i, b in enumerate(summary['bytes_sent'])})
            values, cts = masked_counts(summary['intersection_size'], (d, d), params)
            row.update({'masked_values': values, 'masked_ciphertexts': cts,
                        'mask_bits': params.stat_sec,
                        'join_bound_log2': round(math.log2(values + cts) - params.stat_sec, 2),
                        'load_avg': round(os.getloadavg()[0], 2)})  # 2 cores: above 2 is contended
            rows.append(row)
            tqdm.write(f'{n} rows x {d}+{d} features: join {row["join_seconds"]:.2f} s '
                       f'(wall {wall:.2f} s)')
            write_csv(args.output, rows)  # after every run: a failed one keeps those before
    by = {}
    for r in rows:
        by.setdefault((r['rows_per_owner'], r['features_per_owner']), []).append(r['join_seconds'])
    for (n, d), ts in sorted(by.items()):
        print(f'{n:>7} rows x {d:>2}+{d:<2} features: median {statistics.median(ts):8.2f} s')
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
