"""Cost of a cross-validated Lasso search against one Lasso fit, side by side in one run.

    python experiments/bench_cv.py                       # 5000 x 30, 5 folds, 20 alphas, 3 parties, -K 42
    python experiments/bench_cv.py --rows 2000 --features 10 --folds 4 --alphas 10 --repeats 1

Without -M the script runs itself as an MPyC program with -M{--parties} and -K{--mpyc-k}
(42: 40 bits of hiding per opening with 3 parties, as mpclab's programs run).  Party 0 inputs
the table of `bench_lasso.py` (standard normal features, sparse true coefficients, unit noise;
the models get its public bound int_bits=6); every repeat runs, on the same secret table, one
SecureLasso fit (alpha 0.1, tol 1e-4, FISTA: bench_lasso.py's fit), one at the alpha the search
chooses, and the SecureLassoCV search (cv folds, alphas from alpha_max, its final fit on all
rows included), alternating so that the machine's load affects them alike.  Party 0 compares
the search with scikit-learn's LassoCV on the same contiguous folds and candidates.

Writes results/cv.csv: per run, wall seconds, party 0's CPU seconds (less sensitive to other
load on the shared cores), the phases, the ratio to the first single fit of the repeat, and the
agreement with scikit-learn.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]   # this checkout's mpclab first
from bench_lasso import make_table, write_csv  # noqa: E402
from common import free_base_port  # noqa: E402


async def timed(coro):
    start, cpu = time.perf_counter(), time.process_time()
    result = await coro
    return result, time.perf_counter() - start, time.process_time() - cpu


async def run(args):
    from mpyc.runtime import mpc
    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold
    from mpclab.models.lasso import SecureLasso
    from mpclab.models.selection import SecureLassoCV

    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    n, d = args.rows, args.features
    X, y = make_table(n, d, args.seed) if mpc.pid == 0 else (np.zeros((n, d)), np.zeros(n))
    sX = mpc.input(secfxp.array(X, integral=False), senders=0)
    sy = mpc.input(secfxp.array(y, integral=False), senders=0)
    await mpc.gather(sX, sy)
    rows = []
    base = dict(rows=n, features=d, parties=len(mpc.parties), sec_param=mpc.options.sec_param,
                int_bits=args.int_bits, tol=args.tol)
    for rep in range(args.repeats):
        await mpc.barrier(f'repeat {rep}')
        load = os.getloadavg()[0]
        single, wall1, cpu1 = await timed(SecureLasso(args.alpha, tol=args.tol, int_bits=args.int_bits)
                                          .fit(sX, sy))
        await mpc.barrier(f'cv {rep}')
        search = SecureLassoCV(cv=args.folds, alphas=args.alphas, tol=args.tol, int_bits=args.int_bits,
                               path_steps=args.path_steps)
        search, wall, cpu = await timed(search.fit(sX, sy))
        await mpc.barrier(f'chosen {rep}')
        chosen, wall2, cpu2 = await timed(SecureLasso(search.alpha_, tol=args.tol, int_bits=args.int_bits)
                                          .fit(sX, sy))
        coef, intercept = await search.reveal()
        common = dict(base, repeat=rep, load_avg_1min=round(load, 2))
        rows.append(dict(common, run='single fit', alpha=args.alpha, n_iter=single.n_iter_,
                         fit_seconds=round(wall1, 3), cpu_seconds_party0=round(cpu1, 3), cpu_ratio=1.0))
        rows.append(dict(common, run='single fit at alpha_', alpha=search.alpha_, n_iter=chosen.n_iter_,
                         fit_seconds=round(wall2, 3), cpu_seconds_party0=round(cpu2, 3),
                         cpu_ratio=round(cpu2 / cpu1, 2)))
        row = dict(common, run=f'{args.folds}-fold, {len(search.alphas_)}-alpha search',
                   alpha=search.alpha_, n_iter=search.n_iter_, fit_seconds=round(wall, 3),
                   cpu_seconds_party0=round(cpu, 3), cpu_ratio=round(cpu / cpu1, 2),
                   path_rounds=int(sum(search.path_iterations_)),
                   **{f't_{k}': round(float(v), 3) for k, v in search.timings_.items()})
        if mpc.pid == 0:
            sk = LassoCV(alphas=search.alphas_, cv=KFold(args.folds), tol=1e-8, max_iter=100_000).fit(X, y)
            mse_error = np.abs(search.mse_path_ - sk.mse_path_.mean(axis=1)).max()
            row.update(same_alpha=bool(sk.alpha_ == search.alpha_), max_mse_error=float(f'{mse_error:.3g}'),
                       max_coef_error=float(f'{np.abs(coef - sk.coef_).max():.3g}'),
                       same_zeros=bool(np.array_equal(coef == 0, sk.coef_ == 0)))
        rows.append(row)
        if mpc.pid == 0:
            for r in rows[-3:]:
                print(', '.join(f'{k}={v}' for k, v in r.items()), flush=True)
                print('ROW ' + json.dumps(r), flush=True)
    await mpc.shutdown()
    if mpc.pid == 0 and args.csv != '-':
        write_csv(args.csv, rows)
        summarise(rows)


def summarise(rows):
    """Medians per run over the repeats."""
    print(f'{"":34s}{"wall s":>9s}{"cpu s (party 0)":>17s}{"cpu / single":>14s}')
    for name in dict.fromkeys(r['run'] for r in rows):
        mine = [r for r in rows if r['run'] == name]
        print(f'{name:34s}{np.median([r["fit_seconds"] for r in mine]):9.2f}'
              f'{np.median([r["cpu_seconds_party0"] for r in mine]):17.2f}'
              f'{np.median([r["cpu_ratio"] for r in mine]):14.2f}')


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, default=5000)
    ap.add_argument('--features', type=int, default=30)
    ap.add_argument('--folds', type=int, default=5)
    ap.add_argument('--alphas', type=int, default=20, help='number of alphas of the path')
    ap.add_argument('--alpha', type=float, default=0.1, help='alpha of the single fit')
    ap.add_argument('--tol', type=float, default=1e-4)
    ap.add_argument('--path-steps', type=int, default=4)
    ap.add_argument('--int-bits', type=int, default=6)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--mpyc-k', type=int, default=42, help="MPyC's -K when the script starts the parties")
    ap.add_argument('--csv', default=os.path.join(ROOT, 'results', 'cv.csv'),
                    help="where to write the rows ('-': nowhere)")
    return ap


if __name__ == '__main__':
    own = sys.argv[1:]
    args, _ = parser().parse_known_args(own)
    if not any(a.startswith(('-M', '-I', '-P', '-C')) for a in own):
        argv = ['-M', str(args.parties), '-B', str(free_base_port(args.parties)), '-K', str(args.mpyc_k),
                *own]
        sys.exit(subprocess.call([sys.executable, os.path.abspath(__file__), *argv], cwd=ROOT))
    from mpyc.runtime import mpc
    mpc.run(run(args))
