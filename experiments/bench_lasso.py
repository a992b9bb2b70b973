"""Time SecureLasso alone on a secret n x d table with local MPyC parties.

    python experiments/bench_lasso.py                         # 5000 x 30, 3 parties, 3 repeats each solver
    python experiments/bench_lasso.py --rows 1000 5000 --features 10 30 --tol 1e-5

Without -M the script runs itself as an MPyC program with -M{--parties}.  Party 0 inputs a
random table (standard normal features, sparse true coefficients, unit noise), every repeat
fits on the same secret table, and party 0 compares the revealed model with scikit-learn's
Lasso(tol=1e-6).  Writes results/bench_lasso.csv: per-phase seconds at party 0 (Gram matrix,
step size and iteration matrix, iterations, final range check), party 0's CPU seconds (less
sensitive to other load on the machine than wall time) and the accuracy.
"""

import argparse
import csv
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_base_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
                model = await SecureLasso(args.alpha, tol=args.tol, fixed_iterations=args.fixed,
                                          solver=solver).fit(sX, sy)
                total, cpu = time.perf_counter() - start, time.process_time() - cpu
                coef, intercept = await model.reveal()
                t = model.timings_
                row = {'rows': n, 'features': d, 'parties': len(mpc.parties), 'solver': solver,
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
                rows.append(row)
    await mpc.shutdown()
    if mpc.pid == 0:
        os.makedirs(os.path.dirname(args.csv), exist_ok=True)
        with open(args.csv, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f'wrote {args.csv}')


def main():
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
    ap.add_argument('--csv', default=os.path.join(ROOT, 'results', 'bench_lasso.csv'))
    args, _ = ap.parse_known_args()
    from mpyc.runtime import mpc
    mpc.run(run(args))


if __name__ == '__main__':
    if not any(a.startswith(('-M', '-I', '-P', '-C')) for a in sys.argv[1:]):
        parties = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == '--parties'), '3')
        argv = ['-M', parties, '-B', str(free_base_port(int(parties))), *sys.argv[1:]]
        sys.exit(subprocess.call([sys.executable, os.path.abspath(__file__), *argv], cwd=ROOT))
    sys.path.insert(0, ROOT)
    main()
