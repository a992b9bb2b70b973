"""Peak memory and time of one party's PRSS truncation masks, whole or in chunks.

`mpclab.parallel_arith.prss_masks` makes this party's shares of the masks of a truncation
(every secure product of `mpclab.fastmpc`).  Its limbs cost far more memory than the masks
themselves, so it works through MASK_CHUNK elements at a time; this benchmark runs it on n
elements in a fresh process per run, with the chunk given and with every element at once (the
earlier behaviour), side by side, and reports the peak resident memory above the process's
baseline and the seconds taken.  Three parties at threshold 1 (two PRSS keys per party, a zero
sharing of degree 2), a 140-bit prime, 120-bit masks.

    nice python experiments/bench_mask_memory.py --n 65536 2031616 --repeats 3

writes results/mask_memory.csv (2 031 616 = 65 536 x 31: a block of the logistic Hessian).
"""

import argparse
import csv
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(ROOT, 'results')

ONE_RUN = r'''
import hashlib, json, os, resource, sys, time
from mpclab import parallel_arith
n, chunk = int(sys.argv[1]), int(sys.argv[2])
parallel_arith.MASK_CHUNK = chunk or None
p = (1 << 139) + 1491      # any odd modulus of the field's size serves for memory and time
# fixed stand-in keys (the same masks in every run, so the two ways can be compared)
keys = [hashlib.sha256(b'bench key %d' % i).digest()[:16] for i in range(2)]
components = [(key, int.from_bytes(hashlib.sha256(key).digest(), 'little') % p) for key in keys]
parallel_arith.prss_masks(p, 100, 120, 32, 1, 1, components, b'warm-up')
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
r, r_hi = parallel_arith.prss_masks(p, n, 120, 32, 1, 1, components, b'uci')
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({'seconds': seconds, 'peak_above_mib': (peak - base) / 1024,
                  'result_check': int(r[-1] % 1000003)}))
'''


def one(n, chunk):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run([sys.executable, '-c', ONE_RUN, str(n), str(chunk)], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, nargs='+', default=[65536, 2031616])
    ap.add_argument('--chunk', type=int, default=1 << 16, help='MASK_CHUNK to compare')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--output', default=os.path.join(RESULTS, 'mask_memory.csv'))
    args = ap.parse_args()
    rows = []
    for n in args.n:
        for rep in range(args.repeats):
            for chunk in (args.chunk, 0):      # alternating, so load drifts hit both
                r = one(n, chunk)
                row = {'n': n, 'mask_chunk': chunk or 'all', 'repeat': rep,
                       'seconds': round(r['seconds'], 3),
                       'peak_above_baseline_mib': round(r['peak_above_mib'], 1),
                       'result_check': r['result_check'],
                       'load1': round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    for n in args.n:   # both ways make the same masks
        if len({r['result_check'] for r in rows if r['n'] == n}) != 1:
            raise SystemExit(f'different masks at n={n}')
    with open(args.output, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
