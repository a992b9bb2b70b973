"""Time SecureLasso alone on a secret n x d table with local MPyC parties.

    python experiments/bench_lasso.py                         # 5000 x 30, 3 parties, 3 repeats each solver
    python experiments/bench_lasso.py --rows 1000 5000 --features 10 30 --tol 1e-5
    python experiments/bench_lasso.py --sec-params 30 42 --solver fista   # MPyC -K side by side

Without -M the script runs itself as an MPyC program with -M{--parties}.  Party 0 inputs a
random table (standard normal features, sparse true coefficients, unit noise), every repeat
fits on the same secret table, and party 0 compares the revealed model with scikit-learn's
Lasso(tol=1e-6).  Writes results/bench_lasso.csv: per-phase seconds at party 0 (Gram matrix,
step size and iteration matrix, iterations, final range check), party 0's CPU seconds (less
sensitive to other load on the machine than wall time) and the accuracy.

The model gets the public bound of the data, ``int_bits=6`` (every |x| and |y| below 64; then
one bit checks the Gram diagonal), or with ``--int-bits none`` checks the inputs securely.
``--sec-params K...`` runs every repeat at each MPyC ``-K`` in turn (-K 30 is MPyC's default,
28 bits of hiding per opening with 3 parties; -K 42 gives 40) and prints the medians side by
side; ``--baseline DIR`` adds a run of an earlier checkout's script at the first -K.
"""

import argparse
import csv
import inspect
import json
import os
import subprocess
import tempfile
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_base_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_TMP = os.path.join(tempfile.gettempdir(), 'mpclab_bench_lasso')


def make_table(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(0, 2, d) * (rng.random(d) < 0.5)
    return X, X @ w + rng.normal(size=n) + 1.0


async def run(args):
    from mpyc.runtime import mpc
    from sklearn.linear_model import Lasso
    from mpclab.models.lasso import SecureLasso

    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    rows = []
    for n in args.rows:
        for d in args.features:
            X, y = make_table(n, d, args.seed) if mpc.pid == 0 else (np.zeros((n, d)), np.zeros(n))
            sX = mpc.input(secfxp.array(X, integral=False), senders=0)
            sy = mpc.input(secfxp.array(y, integral=False), senders=0)
            await mpc.gather(sX, sy)
            await mpc.barrier(f'{n}x{d}')
            sk = Lasso(alpha=args.alpha, tol=1e-6, max_iter=100_000).fit(X, y) if mpc.pid == 0 else None
            for solver, rep in [(s, r) for s in args.solver for r in range(args.repeats)]:
                load = os.getloadavg()[0]
                start, cpu = time.perf_counter(), time.process_time()
                options = {'int_bits': args.int_bits} \
                    if 'int_bits' in inspect.signature(SecureLasso).parameters else {}
                model = await SecureLasso(args.alpha, tol=args.tol, fixed_iterations=args.fixed,
                                          solver=solver, **options).fit(sX, sy)
                total, cpu = time.perf_counter() - start, time.process_time() - cpu
                coef, intercept = await model.reveal()
                t = model.timings_
                row = {'rows': n, 'features': d, 'parties': len(mpc.parties),
                       'sec_param': mpc.options.sec_param, 'int_bits': args.int_bits, 'solver': solver,
                       'alpha': args.alpha, 'tol': args.tol, 'repeat': rep, 'n_iter': model.n_iter_,
                       'fit_seconds': round(total, 3), 'cpu_seconds_party0': round(cpu, 3),
                       **{f't_{k}': round(v, 3) for k, v in t.items()},
                       't_per_iteration': round(t['iterations'] / model.n_iter_, 4),
                       'load_avg_1min': round(load, 2)}
                if mpc.pid == 0:
                    row.update(max_coef_error=float(f'{np.abs(coef - sk.coef_).max():.3g}'),
                               intercept_error=float(f'{abs(intercept - sk.intercept_):.3g}'),
                               same_zeros=bool(np.array_equal(coef == 0, sk.coef_ == 0)))
                    print(', '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}'
                                    for k, v in row.items()), flush=True)
                    print('ROW ' + json.dumps(row), flush=True)
                rows.append(row)
    await mpc.shutdown()
    if mpc.pid == 0 and args.csv != '-':
        write_csv(args.csv, rows)


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f'wrote {path}')


def compare(args, passed):
    """Run the benchmark once per repeat and -K (and baseline), alternating; medians side by side."""
    runs = [(f'-K {k}', os.path.abspath(__file__), k) for k in args.sec_params]
    if args.baseline:
        runs.insert(0, (f'base -K {args.sec_params[0]}',
                        os.path.join(os.path.abspath(args.baseline), 'experiments', 'bench_lasso.py'),
                        args.sec_params[0]))
    rows = {label: [] for label, _, _ in runs}
    for rep in range(args.repeats):
        for label, script, k in runs:
            argv = [sys.executable, script, '-M', str(args.parties), '-B',
                    str(free_base_port(args.parties)), '-K', str(k), *passed, '--repeats', '1',
                    '--csv', os.path.join(RESULTS_TMP, f'bench_lasso_{rep}_{k}.csv')]
            out = subprocess.run(argv, capture_output=True, text=True,
                                 cwd=os.path.dirname(os.path.dirname(script)))
            if out.returncode:
                raise RuntimeError(f'{label}: {out.stderr[-3000:]}')
            got = [json.loads(line[4:]) for line in out.stdout.splitlines() if line.startswith('ROW ')]
            if not got:   # an earlier version without ROW lines: read its CSV
                with open(argv[-1], newline='') as f:
                    got = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
            for r in got:
                r['repeat'] = rep
                r['run'] = label
            rows[label] += got
    keys = ['fit_seconds', 'cpu_seconds_party0', 't_gram', 't_step_size', 't_iterations',
            't_per_iteration', 'n_iter', 'max_coef_error']
    labels = list(rows)
    for solver in args.solver:
        print(f'{solver}: {args.rows} x {args.features}, {args.parties} parties, median of '
              f'{args.repeats} (load {os.getloadavg()[0]:.1f}); ratios to the first column')
        print(f'{"":22s}' + ''.join(f'{label:>13s}' for label in labels) +
              ''.join(f'{"/ first":>10s}' for _ in labels[1:]))
        for key in keys:
            med = [float(np.median([r[key] for r in rows[label] if r['solver'] == solver and key in r]
                                   or [np.nan])) for label in labels]
            print(f'{key:22s}' + ''.join(f'{m:13.4g}' for m in med) +
                  ''.join(f'{m / med[0]:10.2f}' for m in med[1:]))
    if args.csv != '-':
        write_csv(args.csv, [dict(r) for label in labels if not label.startswith('base')
                             for r in rows[label]])


def _number(v):
    try:
        return float(v)
    except ValueError:
        return v


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, nargs='+', default=[5000])
    ap.add_argument('--features', type=int, nargs='+', default=[30])
    ap.add_argument('--alpha', type=float, default=0.1)
    ap.add_argument('--tol', type=float, default=1e-4)
    ap.add_argument('--fixed', type=int, default=None, help='fixed number of iterations')
    ap.add_argument('--solver', choices=['fista', 'ista'], nargs='+', default=['fista', 'ista'])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--csv', default=os.path.join(ROOT, 'results', 'bench_lasso.csv'),
                    help="where to write the rows ('-': nowhere)")
    ap.add_argument('--int-bits', type=lambda v: v if v == 'none' else int(v), default=6,
                    help='public bound of the inputs given to the model (default 6; none: checked)')
    ap.add_argument('--sec-params', type=int, nargs='+', metavar='K',
                    help="MPyC's -K values to run side by side (one run per repeat and value)")
    ap.add_argument('--baseline', metavar='DIR',
                    help='with --sec-params: also run the checkout DIR (an earlier version) at the '
                         'first -K, for comparison')
    return ap


def parse(argv):
    args, _ = parser().parse_known_args(argv)
    if args.int_bits == 'none':
        args.int_bits = None
    return args


if __name__ == '__main__':
    own = sys.argv[1:]
    if not any(a.startswith(('-M', '-I', '-P', '-C')) for a in own):
        args = parse(own)
        if args.sec_params:
            drop = {'--sec-params', '--baseline', '--repeats', '--csv'}
            passed, skip = [], False
            for a in own:   # the options to pass on: all but those of the comparison itself
                if a.startswith('--'):
                    skip = a in drop
                if not skip:
                    passed.append(a)
            compare(args, passed)
            sys.exit()
        argv = ['-M', str(args.parties), '-B', str(free_base_port(args.parties)), *own]
        sys.exit(subprocess.call([sys.executable, os.path.abspath(__file__), *argv], cwd=ROOT))
    sys.path.insert(0, ROOT)
    from mpyc.runtime import mpc
    mpc.run(run(parse(own)))
