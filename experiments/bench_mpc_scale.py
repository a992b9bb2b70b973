"""The MPC side at scale: model fit time and peak memory per party against rows, workers 1 vs
all, and the ROC AUC's memory on many test predictions.

    nice python experiments/bench_mpc_scale.py                       # the default sweep
    nice python experiments/bench_mpc_scale.py --task logistic --rows 2000 5000 --workers 1 0
    nice python experiments/bench_mpc_scale.py --task auc --rows 100000
    python experiments/bench_mpc_scale.py --plot-only                # redraw the PNG from the CSV

Every configuration is a fresh MPyC program of --parties local parties (party 0 spawns the
others; ``-W`` is MPyC's worker-thread option, which `mpclab.parallel_arith` honours; 0 means
its default, all cores).  Party 0 inputs the features (uniform on [0, 1], 15 columns), party 1
the target: 0/1 labels from a logistic model, or a sparse linear function plus noise for the
Lasso.  Measured at every party and gathered by party 0:

* ``fit_s``: wall time of ``SecureLogisticRegression(C=1, int_bits=1).fit`` on `RowBlocks`
  (every pass block by block), or of ``SecureLasso(alpha=0.001, int_bits=1).fit``;
* ``auc_s``: the histogram ROC AUC (`mpclab.metrics.classification.roc_auc_score`,
  ``method='histogram'``, 2**14 steps) of secret decision values and labels, as the program
  computes it on its test rows; ``auc_error`` is its distance to scikit-learn's exact AUC;
* ``peak_rss_mib`` per party: the process's peak resident set (VmHWM) over the whole run, and
  ``phase_peak_mib``: the peak during the timed phase alone above the resident set before it
  (VmHWM reset through /proc/self/clear_refs), i.e. the phase's own memory.

Appends one row per run to results/mpc_scale.csv with the 1-minute load average before and
after (the machine is shared; figures under load are slower, not wrong) and redraws
results/mpc_scale.png (time and phase memory against rows, log-log, with a linear reference).
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'results')
CSV = os.path.join(RESULTS, 'mpc_scale.csv')
PNG = os.path.join(RESULTS, 'mpc_scale.png')
#: runs with a 1-minute load average at or above this (2 cores) are drawn hollow
BUSY_LOAD = 4.0
FIELDS = ['task', 'rows', 'features', 'parties', 'workers', 'fit_s', 'n_iter', 'auc_s', 'auc_error',
          'peak_rss_mib', 'phase_peak_mib', 'max_coef_diff', 'load_before', 'load_after', 'date']


def _status_kib(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux: '5' to clear_refs), so that a phase's own peak
    can be read afterwards."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _data(task, n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, d))
    w = rng.normal(0, 2, d)
    z = X @ w - w.sum() / 2
    if task == 'lasso':
        w = np.where(rng.uniform(size=d) < 0.5, w, 0.0)
        return X, X @ w + rng.normal(0, 0.1, n)
    return X, (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)


async def _party(args):
    """One party's run (under MPyC): input, the timed phase, gather the measurements."""
    from mpyc.runtime import mpc
    from mpclab.blocks import RowBlocks
    sec = mpc.SecFxp(64, 32)
    await mpc.start()
    n, d = args.rows, args.features
    if args.task == 'auc':
        rng = np.random.default_rng(args.seed)
        z = rng.normal(0, 2, n)
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
        sz = mpc.input(sec.array(z if mpc.pid == 0 else np.zeros(n), integral=False), senders=0)
        sy = mpc.input(sec.array(y if mpc.pid == 1 else np.zeros(n), integral=False), senders=1)
        await mpc.barrier()
        base = _status_kib('VmRSS')
        reset = _reset_peak()
        t0 = time.perf_counter()
        from mpclab.metrics import classification
        rows = RowBlocks.from_array(sz, args.block_rows)
        auc = await mpc.output(classification.roc_auc_score(
            RowBlocks.from_array(sy, args.block_rows), rows, method='histogram'))
        elapsed = time.perf_counter() - t0
        from sklearn.metrics import roc_auc_score
        extra = {'auc_s': round(elapsed, 3), 'auc_error': abs(float(auc) - roc_auc_score(y, z))}
    else:
        X, y = _data(args.task, n, d, args.seed)
        sX = mpc.input(sec.array(X if mpc.pid == 0 else np.zeros((n, d)), integral=False), senders=0)
        sy = mpc.input(sec.array(y if mpc.pid == 1 else np.zeros(n), integral=False), senders=1)
        await mpc.barrier()
        base = _status_kib('VmRSS')
        reset = _reset_peak()
        t0 = time.perf_counter()
        if args.task == 'logistic':
            from mpclab.models.logistic import SecureLogisticRegression
            model = await SecureLogisticRegression(1.0, int_bits=1).fit(
                RowBlocks.from_array(sX, args.block_rows), sy)
        else:
            from mpclab.models.lasso import SecureLasso
            model = await SecureLasso(alpha=0.001, int_bits=1).fit(sX, sy)
        coef = await mpc.output(model.coef_.reshape(-1))
        elapsed = time.perf_counter() - t0
        if args.task == 'logistic':
            from sklearn.linear_model import LogisticRegression
            ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y).coef_.ravel()
        else:
            from sklearn.linear_model import Lasso
            ref = Lasso(alpha=0.001, tol=1e-10, max_iter=100_000).fit(X, y).coef_.ravel()
        extra = {'fit_s': round(elapsed, 3), 'n_iter': int(getattr(model, 'n_iter_', 0)),
                 'max_coef_diff': float(np.max(np.abs(np.asarray(coef, float) - ref)))}
    phase = (_status_kib('VmHWM') - base) / 1024 if reset else float('nan')
    mine = {'peak': _status_kib('VmHWM') / 1024 if reset else float('nan'), 'phase': phase}
    peaks = await mpc.transfer(mine)
    await mpc.shutdown()
    if mpc.pid == 0:
        import resource
        overall = [round(max(p['peak'], 0), 1) for p in peaks]
        overall[0] = round(max(overall[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), 1)
        print(json.dumps({**extra, 'peak_rss_mib': overall,
                          'phase_peak_mib': [round(p['phase'], 1) for p in peaks]}))


def _load():
    with open('/proc/loadavg') as f:
        return float(f.read().split()[0])


def run_one(task, rows, features, parties, workers, block_rows, seed, timeout):
    argv = [sys.executable, os.path.abspath(__file__), '--party', '--task', task, '--rows', str(rows),
            '--features', str(features), '--block-rows', str(block_rows), '--seed', str(seed),
            '-M', str(parties)]
    if workers:
        argv += ['-W', str(workers)]
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')])}
    before = _load()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    row = {'task': task, 'rows': rows, 'features': features if task != 'auc' else 1,
           'parties': parties, 'workers': workers or 'all', **res, 'load_before': before,
           'load_after': _load(), 'date': time.strftime('%Y-%m-%d %H:%M')}
    row['peak_rss_mib'] = ' '.join(map(str, row['peak_rss_mib']))
    row['phase_peak_mib'] = ' '.join(map(str, row['phase_peak_mib']))
    return row


def append(row):
    os.makedirs(RESULTS, exist_ok=True)
    new = not os.path.exists(CSV)
    with open(CSV, 'a', newline='') as f:
        w = csv.DictWriter(f, FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, '') for k in FIELDS})


def plot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import pandas as pd
    df = pd.read_csv(CSV)
    df['load'] = df[['load_before', 'load_after']].max(axis=1)
    df['busy'] = df['load'] >= BUSY_LOAD
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (task, workers), g in df.groupby(['task', 'workers']):
        # per size the run under the lowest load (the others are in the CSV)
        g = g.sort_values('load', kind='stable').groupby('rows').first().reset_index()
        t = g['fit_s'].where(g['task'] != 'auc', g['auc_s'])
        mem = g['phase_peak_mib'].map(lambda s: max(map(float, str(s).split())))
        for ax, v in ((ax_t, t), (ax_m, mem)):
            line, = ax.plot(g['rows'], v, '-', label=f'{task}, -W {workers}')
            for busy in (False, True):
                sel = g['busy'] == busy
                ax.plot(g['rows'][sel], v[sel], 'o', color=line.get_color(),
                        mfc='none' if busy else line.get_color())
    hi = df['rows'].max()
    for ax in (ax_t, ax_m):
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('rows (hollow: 1-minute load >= %g on this machine)' % BUSY_LOAD)
        ax.grid(True, which='both', alpha=0.3)
    quiet = df[(df['task'] == 'logistic') & ~df['busy']].sort_values('rows')
    if len(quiet):
        r0, t0 = quiet['rows'].iloc[0], quiet['fit_s'].iloc[0]
        ax_t.plot([r0, hi], [t0, t0 * hi / r0], 'k:', label='linear (from logistic)')
    ax_t.set_ylabel('seconds (fit, or AUC)')
    ax_m.set_ylabel('MiB above the inputs, largest party')
    ax_t.legend(fontsize=8)
    ax_m.legend(fontsize=8)
    fig.suptitle(f'mpclab MPC at scale, {int(df["parties"].iloc[0])} local parties on '
                 f'{os.cpu_count()} cores (shared machine: load in the CSV)', fontsize=10)
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--party', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--task', nargs='+', default=['logistic', 'lasso', 'auc'],
                    choices=['logistic', 'lasso', 'auc'])
    ap.add_argument('--rows', type=int, nargs='+', default=None)
    ap.add_argument('--features', type=int, default=15)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 0], help='-W values; 0: all cores')
    ap.add_argument('--block-rows', type=int, default=1 << 16)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--timeout', type=float, default=3600)
    ap.add_argument('--plot-only', action='store_true')
    args, _ = ap.parse_known_args()
    if args.party:
        args.task, args.rows = args.task[0], args.rows[0]
        from mpyc.runtime import mpc
        mpc.run(_party(args))
        return
    if not args.plot_only:
        for task in args.task:
            sizes = args.rows or ([100_000] if task == 'auc' else [2000, 5000, 10_000])
            for rows in sizes:
                for workers in args.workers:
                    row = run_one(task, rows, args.features, args.parties, workers, args.block_rows,
                                  args.seed, args.timeout)
                    append(row)
                    print(json.dumps(row), flush=True)
    plot()


if __name__ == '__main__':
    main()
