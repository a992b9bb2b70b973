"""Time SecureLogisticRegression (training and evaluation) against the number of rows.

    python experiments/bench_logistic.py                      # 1k, 5k, 10k, 50k, 100k rows x 10
    python experiments/bench_logistic.py --max-rows 10000     # stop the sweep at 10k rows
    python experiments/bench_logistic.py --rows 2000 --parties 3 --no-plot
    python experiments/bench_logistic.py --plot-only          # redraw the PNG from the CSV
    python experiments/bench_logistic.py --primitives 20000 -M3   # single operations, ms/element
    python experiments/bench_logistic.py --rows 10000 --sec-params 30 42 --no-plot   # -K side by side
    python experiments/bench_logistic.py --primitives 20000 --sec-params 30 42 --repeats 3

Every size runs as a fresh MPyC program with --parties local parties (default 3; party 0
spawns the others).  Party 0 inputs a random table X (uniform on [0, 1]) and party 1 the 0/1
labels drawn from a logistic model.  Timed at party 0, between barriers:

* input: secret-sharing X and y;
* fit: SecureLogisticRegression(C).fit, with its phases (Gram matrix, first step, Newton);
* evaluate: on the training rows, predict_proba, predict (one secure comparison per row) and
  the secure accuracy, precision, recall, F1 and confusion matrix (no AUC: its comparisons
  grow faster than linearly, see mpclab.metrics.classification).

The model gets the public bound of the data, ``int_bits=1`` (|x| < 2, as the program layer
passes for data scaled to [0, 1]); ``--int-bits none`` makes it check the inputs securely
instead.  ``--sec-params K...`` runs every size (or, with ``--primitives``, the single
operations ``--repeats`` times, alternating) at each MPyC ``-K`` and prints them side by side:
-K 30 is MPyC's default (28 bits of hiding per opening with 3 parties), -K 42 gives 40 bits.

Party 0 also fits scikit-learn's LogisticRegression(C, tol=1e-10) on the same data and reports
the largest coefficient difference and both accuracies.  Results are appended per size to
results/bench_logistic.csv (one row per run; existing rows of other sizes are kept) and
plotted to results/bench_logistic.png, with party 0's peak resident memory over the run (its
``ru_maxrss``: the other parties hold shares of the same size).  The machine's 1-minute load
average is recorded, because other work on the same cores slows the parties down.
"""

import argparse
import csv
import inspect
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_base_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'results')
CSV = os.path.join(RESULTS, 'bench_logistic.csv')
PNG = os.path.join(RESULTS, 'bench_logistic.png')
SIZES = [1000, 5000, 10000, 50000, 100000]
FIELDS = ['rows', 'features', 'parties', 'sec_param', 'int_bits', 'C', 'n_iter', 'input_s', 'fit_s',
          'fit_cpu_s', 'fit_gram_s',
          'fit_first_step_s', 'fit_newton_s', 'evaluate_s', 'total_s', 'max_coef_diff',
          'accuracy_mpc', 'accuracy_sklearn', 'peak_rss_mib_party0', 'load_avg_1min', 'date']


def make_data(n, d, seed):
    """Features uniform on [0, 1]; labels from a logistic model with a moderate signal."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, d))
    w = rng.normal(0, 2, d)
    b = -0.5 * w.sum()
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ w + b)))).astype(float)
    return X, y


def _accepts(cls, keyword):
    """Whether the estimator takes the keyword (earlier versions, run with --baseline, do not)."""
    return keyword in inspect.signature(cls).parameters


async def party(args):
    """One MPyC run (this process is one of the parties)."""
    from mpyc.runtime import mpc
    from sklearn.linear_model import LogisticRegression
    sys.path.insert(0, ROOT)
    from mpclab.metrics import classification as cl
    from mpclab.models.logistic import SecureLogisticRegression

    n, d = args.rows[0], args.features
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    X, y = make_data(n, d, args.seed)
    await mpc.barrier('input')
    t0 = time.perf_counter()
    sX = mpc.input(secfxp.array(X if mpc.pid == 0 else np.zeros((n, d)), integral=False), senders=0)
    sy = mpc.input(secfxp.array(y if mpc.pid == 1 else np.zeros(n), integral=False), senders=1)
    await mpc.gather(sX, sy)
    await mpc.barrier('fit')
    t1, cpu = time.perf_counter(), time.process_time()
    options = {'int_bits': args.int_bits} if _accepts(SecureLogisticRegression, 'int_bits') else {}
    model = await SecureLogisticRegression(args.reg_c, **options).fit(sX, sy)
    cpu = time.process_time() - cpu
    await mpc.barrier('evaluate')
    t2 = time.perf_counter()
    proba = model.predict_proba(sX)
    labels = model.predict(sX)
    metrics = [cl.accuracy_score(sy, labels), cl.precision_score(sy, labels),
               cl.recall_score(sy, labels), cl.f1_score(sy, labels)]
    opened = await mpc.output(metrics)
    await mpc.output(cl.confusion_matrix(sy, labels))
    await mpc.gather(proba)
    t3 = time.perf_counter()
    coef, intercept = await model.reveal()
    await mpc.shutdown()
    if mpc.pid == 0:
        sk = LogisticRegression(C=args.reg_c, tol=1e-10, max_iter=10000).fit(X, y)
        theta = np.append(coef.ravel(), intercept)
        ref = np.append(sk.coef_.ravel(), sk.intercept_)
        t = model.timings_
        row = {'rows': n, 'features': d, 'parties': len(mpc.parties),
               'sec_param': mpc.options.sec_param, 'int_bits': args.int_bits, 'C': args.reg_c,
               'n_iter': model.n_iter_, 'input_s': t1 - t0, 'fit_s': t2 - t1, 'fit_cpu_s': cpu,
               'fit_gram_s': t['gram'], 'fit_first_step_s': t['first_step'],
               'fit_newton_s': t['newton'], 'evaluate_s': t3 - t2, 'total_s': t3 - t0,
               'max_coef_diff': float(np.abs(theta - ref).max()),
               'accuracy_mpc': float(opened[0]), 'accuracy_sklearn': float(sk.score(X, y)),
               # the whole run's peak at party 0 (the others hold shares of the same size)
               'peak_rss_mib_party0': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               'load_avg_1min': os.getloadavg()[0], 'date': time.strftime('%Y-%m-%d %H:%M')}
        print('RESULT ' + json.dumps(row), flush=True)


async def primitives(args):
    """Per-element cost of MPyC's operations and of mpclab.fastmpc's (this process is a party)."""
    from mpyc.runtime import mpc
    sys.path.insert(0, ROOT)
    from mpclab import fastmpc
    n = args.primitives
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    rng = np.random.default_rng(args.seed)
    a, b = (mpc.input(secfxp.array(rng.uniform(-4, 4, n) if mpc.pid == 0 else np.zeros(n),
                                   integral=False), senders=0) for _ in range(2))
    A = a.reshape(n // 10, 10)
    await mpc.gather(a, b)
    ops = [('MPyC a * b', lambda: a * b), ('fastmpc.mul(a, b)', lambda: fastmpc.mul(a, b)),
           ('MPyC np_trunc(a, 8)', lambda: mpc.np_trunc(a, f=8)),
           ('fastmpc.trunc(a, 8)', lambda: fastmpc.trunc(a, 8)),
           ('MPyC a < b', lambda: a < b), ('fastmpc.sigmoid(a)', lambda: fastmpc.sigmoid(a)),
           ('fastmpc.matmul_t(A, A)', lambda: fastmpc.matmul_t(A, A))]
    if hasattr(fastmpc, 'all_within'):
        ops.append(('fastmpc.all_within(a)', lambda: fastmpc.all_within(a, 3)))   # a coroutine
    field_bits = secfxp.field.modulus.bit_length()
    if mpc.pid == 0:
        print(f'-K {mpc.options.sec_param}: SecFxp(64, 32) field of {field_bits} bits', flush=True)
    for name, op in ops:
        await mpc.barrier(name)
        t, cpu = time.perf_counter(), time.process_time()
        result = op()
        await (result if inspect.iscoroutine(result) else mpc.gather(result))
        t, cpu = time.perf_counter() - t, time.process_time() - cpu
        if mpc.pid == 0:   # CPU time at party 0: less sensitive to other load on the machine
            print(f'{name:22s} {1e3 * t / n:8.4f} ms per element ({1e3 * cpu / n:.4f} ms CPU)',
                  flush=True)
    await mpc.shutdown()


def _runs(args):
    """(column name, script, -K) of every configuration compared: the baseline first, if any."""
    runs = [(f'-K {k}', os.path.abspath(__file__), k) for k in args.sec_params]
    if args.baseline:
        script = os.path.join(os.path.abspath(args.baseline), 'experiments', 'bench_logistic.py')
        runs.insert(0, (f'base -K {args.sec_params[0]}', script, args.sec_params[0]))
    return runs


def compare_primitives(args):
    """Run the primitives in every configuration, alternating, and print medians side by side."""
    import re
    times = {}
    runs = _runs(args)
    for rep in range(args.repeats):
        for label, script, k in runs:
            argv = [sys.executable, script, '--primitives', str(args.primitives),
                    '-M', str(args.parties), '-B', str(free_base_port(args.parties)), '-K', str(k)]
            out = subprocess.run(argv, capture_output=True, text=True,
                                 cwd=os.path.dirname(os.path.dirname(script)))
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            for line in out.stdout.splitlines():
                m = re.match(r'(.+?)\s+([0-9.]+) ms per element(?: \(([0-9.]+) ms CPU\))?', line)
                if m:
                    times.setdefault(m[1], {}).setdefault(label, []).append(float(m[2]))
                    if m[3]:
                        times.setdefault(m[1] + ' [CPU]', {}).setdefault(label, []).append(float(m[3]))
    labels = [label for label, _, _ in runs]
    print(f'{args.primitives} elements, {args.parties} parties, median of {args.repeats} runs '
          f'(ms per element, wall and [CPU] at party 0; load {os.getloadavg()[0]:.1f}); ratios to '
          f'the first column')
    print(f'{"":24s}' + ''.join(f'{label:>13s}' for label in labels) +
          ''.join(f'{"/ first":>10s}' for _ in labels[1:]))
    for name, by in sorted(times.items(), key=lambda item: list(times).index(item[0].split(' [')[0])):
        med = [float(np.median(by[label])) if label in by else float('nan') for label in labels]
        print(f'{name:24s}' + ''.join(f'{m:13.4f}' for m in med) +
              ''.join(f'{m / med[0]:10.2f}' for m in med[1:]))


def run_size(n, args, k=None, script=None):
    script = script or os.path.abspath(__file__)
    argv = [sys.executable, script, '--rows', str(n), '--features',
            str(args.features), '--reg-c', str(args.reg_c), '--seed', str(args.seed),
            '--int-bits', str(args.int_bits).lower(),
            '-M', str(args.parties), '-B', str(free_base_port(args.parties))]
    if k is not None:
        argv += ['-K', str(k)]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(script)))
    for line in out.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    raise RuntimeError(f'run with {n} rows failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}')


def load_rows():
    if not os.path.exists(CSV):
        return []
    with open(CSV, newline='') as f:
        return list(csv.DictReader(f))


def save_rows(rows):
    os.makedirs(RESULTS, exist_ok=True)
    with open(CSV, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            # rows of earlier runs: -K 30, no CPU or memory figures
            r = {'sec_param': 30, 'int_bits': '', 'fit_cpu_s': '', 'peak_rss_mib_party0': '', **r}
            w.writerow({k: (f'{r[k]:.4g}' if isinstance(r[k], float) else r[k]) for k in FIELDS})


def plot(rows):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = sorted((r for r in rows if int(r['parties']) == 3 and int(r.get('sec_param') or 30) ==
                   max(int(q.get('sec_param') or 30) for q in rows)), key=lambda r: int(r['rows']))
    n = np.array([int(r['rows']) for r in rows])

    def col(key):
        return np.array([float(r[key]) for r in rows])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in [('fit_s', 'training (fit)'), ('evaluate_s', 'evaluation'),
                       ('input_s', 'secret-sharing the input')]:
        ax.plot(n, col(key), 'o-', label=label)
    for x, y, r in zip(n, col('fit_s'), rows):
        if x >= 10000:
            ax.annotate(f"{r['n_iter']} steps", (x, y), textcoords='offset points',
                        xytext=(-6, 6), ha='right', fontsize=8)
    ax.set_xlabel('rows (10 features)')
    ax.set_ylabel('seconds')
    ax.set_title('3 local MPyC parties on 2 cores')
    ax.legend()
    # Newton steps after the first cost one sigmoid pass each (the last one no Hessian).
    bx.plot(n, col('fit_newton_s') / np.maximum(col('n_iter') - 1, 1), 'o-',
            label='training, per Newton step after the first')
    bx.set_xlabel('rows (10 features)')
    bx.set_ylabel('seconds')
    bx.set_title('one Newton step (one sigmoid pass over the rows)')
    bx.legend()
    for a in (ax, bx):
        a.grid(alpha=0.3)
    fig.suptitle('Secure logistic regression (SecFxp(64, 32))')
    fig.tight_layout()
    fig.savefig(PNG, dpi=120)
    print(f'wrote {os.path.relpath(PNG, ROOT)}')


def driver(args):
    sizes = args.rows or [s for s in SIZES if s <= args.max_rows]
    rows = load_rows()
    runs = _runs(args) if args.sec_params else [('', None, None)]
    for n in sizes:
        for label, script, k in runs:
            row = run_size(n, args, k, script)
            if label.startswith('base'):   # an earlier version, for comparison only: not saved
                cpu = f", {row['fit_cpu_s']:.1f} s CPU" if 'fit_cpu_s' in row else ''
                peak = (f", peak {row['peak_rss_mib_party0']:.0f} MiB at party 0"
                        if 'peak_rss_mib_party0' in row else '')
                print(f"{n:>7} rows, {label}: fit {row['fit_s']:7.1f} s ({row['n_iter']} Newton "
                      f"steps{cpu}), evaluate {row['evaluate_s']:6.1f} s{peak}; load "
                      f"{row['load_avg_1min']:.1f}", flush=True)
                continue
            print(f"{n:>7} rows, -K {row['sec_param']}: fit {row['fit_s']:7.1f} s "
                  f"({row['fit_cpu_s']:.1f} s CPU, {row['n_iter']} "
                  f"Newton steps), evaluate {row['evaluate_s']:6.1f} s, input {row['input_s']:5.1f} s; "
                  f"max |coef - sklearn| {row['max_coef_diff']:.1e}; accuracy "
                  f"{row['accuracy_mpc']:.4f} vs {row['accuracy_sklearn']:.4f}; "
                  f"peak {row['peak_rss_mib_party0']:.0f} MiB at party 0; "
                  f"load {row['load_avg_1min']:.1f}", flush=True)
            key = (n, args.parties, args.features, row['sec_param'])
            rows = [r for r in rows if (int(r['rows']), int(r['parties']), int(r['features']),
                                        int(r.get('sec_param') or 30)) != key] + [row]
            rows.sort(key=lambda r: (int(r['parties']), int(r['features']), int(r['rows']),
                                     int(r.get('sec_param') or 30)))
            save_rows(rows)
    print(f'wrote {os.path.relpath(CSV, ROOT)}')
    if not args.no_plot:
        plot([r for r in rows if int(r['features']) == args.features])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, nargs='+', help='sizes to run (default: the sweep)')
    ap.add_argument('--max-rows', type=int, default=max(SIZES), help='largest size of the sweep')
    ap.add_argument('--features', type=int, default=10)
    ap.add_argument('--reg-c', type=float, default=1.0, help="scikit-learn's C (default 1.0)")
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--no-plot', action='store_true')
    ap.add_argument('--plot-only', action='store_true', help='redraw the PNG from the CSV')
    ap.add_argument('--primitives', type=int, metavar='N',
                    help='instead: time single operations on N elements (run with -M3, or '
                         'with --sec-params to compare)')
    ap.add_argument('--int-bits', type=lambda v: None if v.lower() == 'none' else int(v), default=1,
                    help='public bound of the inputs given to the model (default 1; none: checked)')
    ap.add_argument('--sec-params', type=int, nargs='+', metavar='K',
                    help="MPyC's -K values to run side by side")
    ap.add_argument('--repeats', type=int, default=3, help='runs per -K of --primitives (default 3)')
    ap.add_argument('--baseline', metavar='DIR',
                    help='with --sec-params: also run the checkout DIR (an earlier version) at the '
                         'first -K, for comparison')
    args, _ = ap.parse_known_args()  # MPyC's own options (-M, -B, -I, -K) pass through
    if args.plot_only:
        plot([r for r in load_rows() if int(r['features']) == args.features])
    elif any(a.startswith('-M') or a == '-I' for a in sys.argv[1:]):
        from mpyc.runtime import mpc
        mpc.run(primitives(args) if args.primitives else party(args))
    elif args.primitives:
        args.sec_params = args.sec_params or [30]
        compare_primitives(args)
    else:
        driver(args)


if __name__ == '__main__':
    main()
