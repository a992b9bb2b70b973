"""Peak memory of the test labels' secure comparisons against the rows of a block.

The programs predict the test rows' labels with `mpclab.blocks.one_at_a_time`: one block of
rows' comparisons finished before the next block's start, so their working memory (each
comparison's secret random bits and intermediates, as Python ints) is one block's.  This runs
`predict_from_decision` (one 32-bit comparison per row, as `SecureLogisticRegression.predict`)
on n secret decision values among three local parties, once per block size, in a fresh MPyC
run each, side by side (the sizes alternate over the repeats), and reports each party's peak
resident memory during the comparisons (sampled every 20 ms from /proc) above its memory when
they start, after the values were shared, and the seconds taken.

    nice python experiments/bench_block_memory.py --n 131072 --block-rows 65536 16384 4096 --repeats 2

writes results/block_memory.csv.  The labels are checked against numpy's in every run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, ROOT, write_csv  # noqa: E402

from mpclab.launch import free_base_port  # noqa: E402

ONE_RUN = r'''
import json, os, sys, threading, time
import numpy as np
from mpyc.runtime import mpc
from mpclab.blocks import one_at_a_time
from mpclab.models.logistic import predict_from_decision

PAGE = os.sysconf('SC_PAGE_SIZE')

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE

class Peak(threading.Thread):
    # the resident memory's high point from now on (ru_maxrss keeps the input phase's)
    def __init__(self):
        super().__init__(daemon=True)
        self.base = self.peak = rss()
        self.done = threading.Event()
    def run(self):
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss())

async def main(n, block_rows):
    await mpc.start()
    z = np.random.default_rng(1).uniform(-100, 100, n)
    secfxp = mpc.SecFxp(64, 32)
    sz = mpc.input(secfxp.array(z if mpc.pid == 0 else np.zeros(n), integral=False), senders=0)
    await mpc.barrier('shared')
    sampler = Peak()
    sampler.start()
    start = time.perf_counter()
    labels = await one_at_a_time(predict_from_decision, sz, block_rows=block_rows)
    seconds = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    above = (sampler.peak - sampler.base) / 2**20
    wrong = int(np.sum(np.asarray(await mpc.output(labels.array())) != (z > 0)))
    peaks = await mpc.transfer(above, receivers=0)
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps({'seconds': seconds, 'peaks': peaks, 'wrong_labels': wrong}))

mpc.run(main(int(sys.argv[-2]), int(sys.argv[-1])))
'''


def one(n, block_rows, parties):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    with tempfile.TemporaryDirectory() as tmp:
        program = os.path.join(tmp, 'predict_blocks.py')   # a file: party 0 starts the others with it
        with open(program, 'w') as f:
            f.write(ONE_RUN)
        argv = [sys.executable, program, '-M', str(parties), '-B', str(free_base_port(parties)),
                str(n), str(block_rows)]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=131072, help='secret decision values')
    ap.add_argument('--block-rows', type=int, nargs='+', default=[65536, 16384, 4096])
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--parties', type=int, default=3)
    ap.add_argument('--output', default=os.path.join(RESULTS, 'block_memory.csv'))
    args = ap.parse_args()
    rows = []
    for rep in range(args.repeats):
        for block_rows in args.block_rows:      # in turn, so load drifts hit every size
            r = one(args.n, block_rows, args.parties)
            if r['wrong_labels']:
                raise SystemExit(f'{r["wrong_labels"]} labels differ from numpy at {block_rows} rows')
            row = {'n': args.n, 'block_rows': block_rows, 'repeat': rep,
                   'seconds': round(r['seconds'], 2),
                   **{f'peak_above_baseline_mib_party{i}': round(p, 1)
                      for i, p in enumerate(r['peaks'])},
                   'load1': round(os.getloadavg()[0], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    write_csv(args.output, rows)
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
