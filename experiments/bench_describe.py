"""Time `mpclab describe` (secure join + descriptive statistics) and its comparisons.

    python experiments/bench_describe.py                        # 100 000 rows x (15 + 15), 3 parties
    python experiments/bench_describe.py --rows 5000 20000 --histogram 2
    python experiments/bench_describe.py --compare 1000 10 -M3  # min and max: stats vs MPyC

The first form runs protocols/describe.py with --parties local parties (each its own process)
on synthetic tables (features uniform on [0, 1], every row in both tables) and appends one row
per run to results/describe.csv: the join's and each describe phase's seconds (party 0's
clock), the wall time, bytes sent per party, the number of masked openings and their bits of
hiding.  --histogram H adds histograms of the first H columns (--bins, --min-count).

The second form is itself one MPyC program (party 0 inputs a random n x d table in the
default input format, 16 + 16 bits): it times the minimum and maximum of every column three
ways, between barriers, and appends to results/describe_comparisons.csv: by `mpclab.stats`
(bit conversion, then boolean comparison trees), and by trees of MPyC's own secure
comparisons, both at the secure type's bit length (``a < b``, 64 bits) and at the input
format's (``np_sgn(a - b, l=50)``: 48 bits and a sign of the raw differences), with the pairing
step (1.5 n comparisons per column) in all three.  Each row also gives the time per comparison
and the extrapolation to 100 000 x 30.  The machine's 1-minute load average is recorded,
because other work on the same cores slows the parties down.
"""

import argparse
import csv
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, run_protocol, synthetic_tables, write_tables  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ['join:encrypt', 'join:match', 'join:decrypt', 'join:share', 'describe:moments',
          'describe:bits', 'describe:extremes', 'describe:histograms']


def append(path, rows):
    """Append rows (dicts) to a CSV file, writing the header if the file is new."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    new = not os.path.exists(path)
    with open(path, 'a', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            w.writeheader()
        w.writerows(rows)


def stamp():
    return {'load_avg_1min': round(os.getloadavg()[0], 2), 'date': time.strftime('%Y-%m-%d %H:%M')}


# -- the program, end to end -----------------------------------------------------------------

def bench_program(args):
    rows = []
    for n in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            left, right = synthetic_tables(n, args.features, args.features, seed=n, target=False)
            lp, rp = write_tables(tmp, left, right)
            hist = list(left.columns[1:1 + args.histogram])
            extra = ['--histogram', *hist, '--bins', str(args.bins), '--min-count',
                     str(args.min_count)] if hist else []
            # a long --timeout: the join's decryption keeps a loaded machine busy for minutes
            summary, wall = run_protocol('describe.py', ['--left', lp, '--right', rp, '--id', 'id',
                                                         '--timeout', '3600', *extra], args.parties,
                                         timeout=7200)
        t = summary['timings']
        join = sum(v for k, v in t.items() if k.startswith('join:'))
        describe = sum(v for k, v in t.items() if k.startswith('describe:'))
        sec = summary['security']
        row = {'rows': n, 'columns': 2 * args.features, 'parties': args.parties,
               'histograms': len(hist), 'bins': args.bins if hist else 0,
               'join_s': round(join, 2), 'describe_s': round(describe, 2),
               **{p.replace(':', '_') + '_s': round(t.get(p, 0.0), 2) for p in PHASES},
               'wall_s': round(wall, 1),
               **{f'bytes_party{i}': b for i, b in enumerate(summary['bytes_sent'])},
               'masked_openings': sec['openings'], 'mask_bits': sec['mpc_mask_bits'],
               'run_bound_log2': sec['run_bound_log2'], **stamp()}
        rows.append(row)
        print(f'{n} rows x {2 * args.features} columns: join {join:.1f} s, describe {describe:.1f} s '
              f'(moments {t.get("describe:moments", 0):.1f}, bits {t.get("describe:bits", 0):.1f}, '
              f'min/max {t.get("describe:extremes", 0):.1f}, histograms '
              f'{t.get("describe:histograms", 0):.1f}), wall {wall:.0f} s', flush=True)
    append(args.output or os.path.join(RESULTS, 'describe.csv'), rows)


# -- min and max: stats against MPyC's comparisons -------------------------------------------

async def mpyc_extremes(mpc, x, less):
    """Per column min and max by a pairing step and two trees of the comparison `less`."""
    def select(s, a, b):
        return b + s * (a - b)
    h = x.shape[0] // 2
    a, b = x[:h], x[h:2 * h]
    s = less(a, b)
    lo = select(s, a, b)
    hi = a + b - lo
    if x.shape[0] % 2:
        lo, hi = mpc.np_vstack((lo, x[-1:])), mpc.np_vstack((hi, x[-1:]))
    y = mpc.np_hstack((lo, -hi))
    while y.shape[0] > 1:
        h = y.shape[0] // 2
        a, b = y[:h], y[h:2 * h]
        z = select(less(a, b), a, b)
        y = mpc.np_vstack((z, y[-1:])) if y.shape[0] % 2 else z
    out = await mpc.output(y[0])
    d = x.shape[1]
    return np.asarray(out[:d]), -np.asarray(out[d:])


async def compare(args):
    from mpyc.runtime import mpc
    sys.path.insert(0, ROOT)
    from mpclab import stats
    from mpclab.fixedpoint import FixedPointFormat
    from mpclab.table import SecretTable
    n, d = args.compare
    fmt = FixedPointFormat()
    await mpc.start()
    X = np.ldexp(np.round(np.ldexp(np.random.default_rng(1).uniform(-1000, 1000, (n, d)), 16)), -16)
    secfxp = fmt.secfxp()
    x = mpc.input(secfxp.array(X if mpc.pid == 0 else np.zeros((n, d)), integral=False), senders=0)
    await mpc.gather(x)
    comparisons = d * (n // 2 + 2 * (n - n // 2 - 1))
    ways = {'stats': None,
            'mpyc_64_bits': lambda a, b: a < b,
            'mpyc_input_bits': lambda a, b: mpc.np_sgn(a - b, l=stats.bit_length(fmt) + 16 + 1, LT=True)}
    rows = []
    for name in args.methods:
        less = ways[name]
        await mpc.barrier(name)
        start = time.perf_counter()
        if less is None:
            bits = await stats.to_bits(SecretTable(x, [f'c{j}' for j in range(d)]), fmt)
            converted = time.perf_counter() - start
            lo, hi = await stats.extremes(bits)
            lo, hi = np.array(list(lo.values())), np.array(list(hi.values()))
        else:
            converted = 0.0
            lo, hi = await mpyc_extremes(mpc, x, less)
        await mpc.barrier(name + ' done')
        seconds = time.perf_counter() - start
        exact = bool(np.all(lo == X.min(axis=0)) and np.all(hi == X.max(axis=0)))
        per = seconds / comparisons
        rows.append({'method': name, 'rows': n, 'columns': d, 'parties': len(mpc.parties),
                     'comparisons': comparisons, 'seconds': round(seconds, 3),
                     'conversion_s': round(converted, 3), 'ms_per_comparison': round(1000 * per, 4),
                     'exact': exact,
                     'extrapolated_100k_x_30_s': round(per * 30 * (50_000 + 2 * 49_999), 1),
                     **stamp()})
        if mpc.pid == 0:
            print(f'{name}: {seconds:.2f} s for {comparisons} comparisons '
                  f'({1000 * per:.3f} ms each), exact: {exact}', flush=True)
    await mpc.shutdown()
    if mpc.pid == 0:
        append(args.output or os.path.join(RESULTS, 'describe_comparisons.csv'), rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, nargs='+', default=[100_000])
    ap.add_argument('--features', type=int, default=15, help='columns per owner (default 15)')
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--histogram', type=int, default=0, help='histograms of the first H columns')
    ap.add_argument('--bins', type=int, default=10)
    ap.add_argument('--min-count', type=int, default=5)
    ap.add_argument('--compare', type=int, nargs=2, metavar=('N', 'D'),
                    help='time min and max of an N x D table three ways (an MPyC program: -M3)')
    ap.add_argument('--methods', nargs='+', default=['stats', 'mpyc_64_bits', 'mpyc_input_bits'],
                    choices=['stats', 'mpyc_64_bits', 'mpyc_input_bits'], help='with --compare')
    ap.add_argument('--save-csv', dest='output', help='CSV to append to')
    args, _ = ap.parse_known_args()
    if args.compare:
        from mpyc.runtime import mpc
        mpc.run(compare(args))
    else:
        bench_program(args)


if __name__ == '__main__':
    main()
