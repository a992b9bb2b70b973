"""How the secure inner join, and join + model, scale: rows, per-phase time, peak memory and
bytes per party, MPyC's ``-W 1`` against every core, with real local party processes.

    nice python experiments/bench_scale.py                                # 10k and 100k rows
    nice python experiments/bench_scale.py --rows 10000 --workers 1 all --format auto int16 minmax
    nice python experiments/bench_scale.py --program lasso --rows 1000000 --format minmax --workers all
    nice python experiments/bench_scale.py --packing      # CPU per row of each stage, packed or not

Each party is its own process (`mpclab.launch`); a sampler sums the resident memory of each
party's process tree (the party and its worker processes) every 0.2 s, so "peak RSS" is the
largest such sum.  Writes results/scale.csv (one row per run, appended to any earlier rows
with other settings) and results/scale.png (time and peak memory against rows, log-log, with
a linear reference).  The machine's 1-minute load average before and after each run is in the
CSV: on a shared machine it says how much the figures are worth.  Measured, never asserted.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PROTOCOLS, RESULTS, ROOT, read_csv, synthetic_tables, write_csv, write_tables  # noqa: E402

from mpclab.launch import Parties, local_argvs  # noqa: E402

PHASES = ['join:schema', 'join:key', 'join:match', 'join:encrypt', 'join:decrypt', 'join:share']
KEY = ('program', 'rows_per_owner', 'features_per_owner', 'format', 'workers')
#: the program run on the joined table: the join alone (inner_join.py), or join + a model on
#: the right table's last column (synthetic: a sparse linear target, or 0/1 labels), with the
#: programs' default 20% test rows
PROGRAMS = {'join': [], 'lasso': ['--alpha', '0.001'], 'logistic': []}

#: input formats: the programs' default (--int-bits auto: the integer bits the data need, 1 for
#: these data in [0, 1]), 16 integer bits as before auto (74-bit slots, the packing's case), and
#: --scale minmax
FORMATS = {'auto': [], 'int16': ['--int-bits', '16'], 'minmax': ['--scale', 'minmax']}


class TreeSampler:
    """Peak of the summed RSS of each process tree, sampled in a thread."""

    def __init__(self, pids, every=0.2):
        self.pids, self.every = list(pids), every
        self.peak = [0] * len(self.pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, pid):
        try:
            root = psutil.Process(pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            for i, pid in enumerate(self.pids):
                self.peak[i] = max(self.peak[i], self._rss(pid))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_join(lp, rp, workers, fmt, timeout, parties=3, program='join', target=None):
    """One join (or join + model); returns (each party's summary, each party's peak RSS in
    bytes, wall seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, 'summary_{party}.json')
        args = ['--left', lp, '--right', rp, '--id', 'id', *FORMATS[fmt],
                '--timeout', str(timeout), '--json', js, *PROGRAMS[program]]
        if program != 'join':
            args += ['--target', target]
        mpyc = ['-W', '1'] if workers == '1' else []
        name = 'inner_join' if program == 'join' else program
        argvs = local_argvs(os.path.join(PROTOCOLS, f'{name}.py'), [args] * parties, mpyc)
        start = time.perf_counter()
        with Parties(argvs, cwd=ROOT) as ps:
            with TreeSampler([p.pid for p in ps.processes]) as sampler:
                results = ps.wait(4 * timeout)
        wall = time.perf_counter() - start
        failed = [r for r in results if r.returncode]
        if failed:
            raise RuntimeError(f'the {program} run failed: '
                               f'{(failed[0].stderr or "").strip()[-2000:]}')
        summaries = []
        for i in range(parties):
            with open(js.format(party=i)) as f:
                summaries.append(json.load(f))
        return summaries, sampler.peak, wall


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = [r for r in rows if r.get('program', 'join') == 'join']   # the join's figures
    if not rows:
        return
    series = sorted({(r['format'], r['workers']) for r in rows})
    for fmt, workers in series:
        pts = sorted((int(r['rows_per_owner']), float(r['join_seconds']),
                      max(float(r[f'peak_rss_mib_party{i}']) for i in range(3)))
                     for r in rows if (r['format'], r['workers']) == (fmt, workers))
        n = [p[0] for p in pts]
        label = f'{fmt}, -W {workers}' if workers == '1' else f'{fmt}, all cores'
        ax_t.plot(n, [p[1] for p in pts], 'o-', label=label)
        ax_m.plot(n, [p[2] for p in pts], 'o-', label=label)
    every = [(int(r['rows_per_owner']), float(r['join_seconds'])) for r in rows]
    if every:
        n0, t0 = min(every)
        ns = sorted({n for n, _ in every})
        ax_t.plot(ns, [t0 * n / n0 for n in ns], 'k:', label='linear in rows')
    for ax, what in ((ax_t, 'join time (s)'), (ax_m, 'peak RSS, largest party (MiB)')):
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('rows per owner (full overlap)')
        ax.set_ylabel(what)
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle('Secure inner join, 3 local parties on one machine (load average in results/scale.csv)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def packing_costs(n=300, d=15, value_bits=33, stat_sec=40, key_bits=2048):
    """CPU seconds per row of each crypto stage, in this process, for rows of `d` values of
    16 integer bits: the join's packing against one full plaintext per row.  Returns rows for
    a CSV; each round trip is checked (shares minus masks give the values back)."""
    import numpy as np
    from mpclab import joinwork, paillier
    from mpclab.joinwork import Layout
    sk = paillier.generate_keypair(key_bits)[1]
    pub = sk.public_key.to_dict()
    key = {**pub, 'p': int(sk.p), 'q': int(sk.q)}
    values = np.random.default_rng(0).integers(0, 2**value_bits, (n, d))
    packed = Layout.choose(d, value_bits, stat_sec, key_bits)
    plain = Layout(d, packed.slot_bits, packed.slots, False, 0)
    prime, mask_bits, w = 2**127 - 1, value_bits + stat_sec, sk.public_key.ciphertext_bytes
    out = []
    for rep in range(2):   # the first round builds the keys' tables
        for name, lay in (('one plaintext per row', plain), ('packed', packed)):
            t = {}
            start = time.process_time()
            cts = joinwork.encrypt_rows(key, lay, 0, values)
            t['encrypt'] = time.process_time() - start
            k, v, pt, q = lay.targets(np.arange(n), n)
            mp = lay.max_pieces
            pieces = np.zeros((lay.n_pts(n) * mp, w), np.uint8)
            pieces[pt * mp + q] = np.frombuffer(cts, np.uint8).reshape(-1, w)[k * lay.variants + v]
            start = time.process_time()
            factors, masks = joinwork.randomizers(pub, lay, stat_sec, mask_bits, 0, n, n, 0, lay.n_pts(n))
            back = joinwork.assemble(pub, pieces.tobytes(), factors, mp)
            t['mask'] = time.process_time() - start
            start = time.process_time()
            shares = joinwork.decrypt_rows(key, lay, 0, 0, prime, back, 0, n, n, 0)
            t['decrypt'] = time.process_time() - start
            nb = joinwork.mask_bytes(mask_bits)
            zs = [int.from_bytes(masks[i:i + nb], 'little') for i in range(0, len(masks), nb)]
            assert [(x - z) % prime for x, z in zip(shares, zs)] == values.reshape(-1).tolist()
            if rep:
                row = {'layout': name, 'values': d, 'slot_bits': lay.slot_bits,
                       'plaintexts_per_row': round(lay.n_pts(n) / n, 3),
                       'ciphertexts_sent_per_row': lay.variants}
                row.update({f'{s}_ms_per_row': round(1000 * x / n, 3) for s, x in t.items()})
                row['total_ms_per_row'] = round(1000 * sum(t.values()) / n, 3)
                row['load1'] = round(os.getloadavg()[0], 2)
                out.append(row)
                print(json.dumps(row), flush=True)
    return out


def _commit():
    """This checkout's commit (short), to tell the rows of different code apart."""
    out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True,
                         text=True)
    return out.stdout.strip() or 'unknown'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, nargs='+', default=[10000, 100000])
    ap.add_argument('--features', type=int, default=15, help='features per owner')
    ap.add_argument('--program', default='join', choices=list(PROGRAMS),
                    help='the join alone, or join + Lasso / logistic regression')
    ap.add_argument('--workers', nargs='+', default=['1', 'all'], choices=['1', 'all'],
                    help="1: MPyC's -W 1 (one thread per party); all: every core (the default)")
    ap.add_argument('--format', nargs='+', default=['auto', 'int16', 'minmax'], choices=list(FORMATS))
    ap.add_argument('--timeout', type=float, default=7200, help="the programs' --timeout")
    ap.add_argument('--output', default=os.path.join(RESULTS, 'scale.csv'))
    ap.add_argument('--packing', action='store_true',
                    help='only the CPU cost per row of each crypto stage, packed or not, in this '
                         'process (results/scale_packing.csv)')
    args = ap.parse_args()
    if args.packing:
        write_csv(os.path.join(RESULTS, 'scale_packing.csv'), packing_costs())
        return
    rows = [{'program': 'join', **r} for r in read_csv(args.output)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            left, right = synthetic_tables(n, args.features, args.features,
                                           target=args.program != 'join',
                                           labels=args.program == 'logistic')
            lp, rp = write_tables(tmp, left, right)
            target = right.columns[-1]
            del left, right
            for fmt in args.format:
                for workers in args.workers:
                    load_before = os.getloadavg()[0]
                    summaries, peaks, wall = run_join(lp, rp, workers, fmt, args.timeout,
                                                      program=args.program, target=target)
                    timings = [s['timings'] for s in summaries]
                    row = {'commit': _commit(), 'program': args.program,
                           'rows_per_owner': n, 'features_per_owner': args.features,
                           'format': fmt, 'workers': workers, 'cores': os.cpu_count(),
                           'intersection': summaries[0]['intersection_size'],
                           # the phases end together at every party: the slowest party's clock
                           'join_seconds': round(max(sum(t.get(p, 0) for p in PHASES)
                                                     for t in timings), 2),
                           'wall_seconds': round(wall, 2)}
                    row.update({p.replace('join:', 't_'): round(max(t.get(p, 0) for t in timings), 2)
                                for p in PHASES})
                    # each party's own clock per phase: a phase's maximum above includes a
                    # party's wait for the others (the helper 'shares' while the owners decrypt)
                    row['timings_by_party'] = json.dumps(
                        [{k: round(v, 2) for k, v in t.items()} for t in timings])
                    for stage in ('fit', 'evaluate'):   # the model's phases (0 for the join)
                        row[f't_{stage}'] = round(max(t.get(f'{args.program}:{stage}', 0)
                                                      for t in timings), 2)
                    row.update({f'peak_rss_mib_party{i}': round(b / 2**20, 1)
                                for i, b in enumerate(peaks)})
                    row.update({f'bytes_party{i}': b
                                for i, b in enumerate(summaries[0]['bytes_sent'])})
                    row.update({'load1_before': round(load_before, 2),
                                'load1_after': round(os.getloadavg()[0], 2)})
                    print(json.dumps(row), flush=True)
                    rows = [r for r in rows if tuple(str(r[k]) for k in KEY) !=
                            tuple(str(row[k]) for k in KEY)] + [row]
                    write_csv(args.output, rows)   # after every run
                    plot([{k: str(v) for k, v in r.items()} for r in rows],
                         os.path.splitext(args.output)[0] + '.png')
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
