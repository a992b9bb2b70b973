"""Shared plumbing for the experiments: synthetic tables and running protocol programs as parties."""

import csv
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# This checkout's mpclab, whatever is installed: a benchmark run against a baseline checkout
# (--baseline) must time that checkout's library, not the installed one.
sys.path.insert(0, ROOT)

from mpclab.launch import free_base_port, local_argvs, run_parties  # noqa: E402,F401 (re-export)
PROTOCOLS = os.path.join(ROOT, 'protocols')
RESULTS = os.path.join(ROOT, 'results')


def synthetic_tables(n_rows, d_left, d_right, overlap=1.0, seed=0, target=True, labels=False):
    """Two owners' tables on the same people (a fraction `overlap` in common).

    Features are uniform on [0, 1]; with `target`, the right table's last column is a sparse
    linear function of all features plus noise (so regressions have something to find), or
    with `labels` a 0/1 label drawn from a logistic model of it.
    """
    rng = np.random.default_rng(seed)
    n_common = int(round(overlap * n_rows))
    ids = [f'P{i:07d}' for i in rng.permutation(2 * n_rows)]
    left_ids = ids[:n_rows]
    right_ids = ids[:n_common] + ids[n_rows:2 * n_rows - n_common]
    X_left = rng.uniform(0, 1, (n_rows, d_left))
    X_right = rng.uniform(0, 1, (n_rows, d_right))
    left = pd.DataFrame(X_left, columns=[f'a{j}' for j in range(d_left)])
    left.insert(0, 'id', left_ids)
    right = pd.DataFrame(X_right, columns=[f'b{j}' for j in range(d_right)])
    right.insert(0, 'id', right_ids)
    if target:
        d = d_left + d_right - 1
        w = np.where(rng.uniform(size=d) < 0.5, rng.normal(0, 1, d), 0.0)
        merged = left.merge(right, on='id')
        y = merged.drop(columns=['id', right.columns[-1]]).to_numpy() @ w
        y = y + rng.normal(0, 0.1, len(y))
        if labels:
            y = (y - np.median(y) + rng.logistic(0, 0.3, len(y)) > 0).astype(float)
        lo, hi = y.min(), y.max()
        right.loc[right['id'].isin(merged['id']), right.columns[-1]] = (
            pd.Series((y - lo) / (hi - lo), index=merged['id']).reindex(
                right.loc[right['id'].isin(merged['id']), 'id']).to_numpy())
    return left, right


def run_protocol(program, args, parties=3, timeout=3600, extra_mpyc=(), latency_ms=None):
    """Run protocols/<program> with `parties` local parties; returns (party 0's summary, wall s).

    Every party is its own process (`mpclab.launch`).  With `latency_ms`, every link passes
    through a relay that delays each direction by that much (mpclab.netsim), as on a LAN or WAN.
    """
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, 'summary_{party}.json')
        prog = os.path.join(PROTOCOLS, program)
        start = time.perf_counter()
        if latency_ms is None:
            argvs = local_argvs(prog, [[*args, '--json', js]] * parties, extra_mpyc)
            results = run_parties(argvs, timeout, cwd=ROOT)
        else:
            from mpclab.netsim import start_relays
            relays, argv_for = start_relays(parties, latency_s=latency_ms / 1000)
            with relays:
                argvs = [[sys.executable, prog, *argv_for(i), '-I', str(i), *extra_mpyc, *args,
                          '--json', js] for i in range(parties)]
                results = run_parties(argvs, timeout, cwd=ROOT)
        wall = time.perf_counter() - start
        failed = [r for r in results if r.returncode]
        if failed:
            r = failed[0]
            raise RuntimeError(f'{program} failed ({r.returncode}): '
                               f'{(r.stderr or r.stdout or "").strip()[-2000:]}')
        with open(js.format(party=0)) as f:
            return json.load(f), wall


def write_tables(tmp, left, right):
    lp, rp = os.path.join(tmp, 'left.csv'), os.path.join(tmp, 'right.csv')
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    return lp, rp


def read_csv(path):
    """The rows of a results CSV as dicts of strings; [] if there is none yet."""
    if not os.path.exists(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def write_csv(path, rows):
    """Write rows (dicts) as a CSV whose columns are every key met, in order of first appearance."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
