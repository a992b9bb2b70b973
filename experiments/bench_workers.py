"""Each party's bulk crypto of the join, on one worker against every core, in isolation.

    nice python experiments/bench_workers.py                         # 2000 rows x 15, 1 and 2 workers
    nice python experiments/bench_workers.py --rows 4000 --features 15 --workers 1 2 4 --repeats 3

The join's stages run here as a party runs them (`mpclab.joinwork` through `mpclab.parallel.Pool`),
without the other parties and without MPC: an owner's encryption of its rows, the helper's masks
and re-randomisers ('mask'), and an owner's decryption of the returned chunks.  The runs of the
worker counts alternate, so that they share the machine's load.  Writes results/workers.csv: one
row per stage and run, with seconds, rows per second, and the 1-minute load before and after.
With 1 worker a stage runs on one thread, as with MPyC's ``-W 1``; with more, on local processes
started (and warmed up) before the clock starts.
"""

import argparse
import csv
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, ROOT  # noqa: E402

sys.path.insert(0, ROOT)
_argv, sys.argv = sys.argv, sys.argv[:1]  # MPyC parses the command line when imported
from mpclab import joinwork, paillier  # noqa: E402
from mpclab.fixedpoint import FixedPointFormat  # noqa: E402
from mpclab.join import (CHUNK_CIPHERTEXTS, JoinParameters, _blocks, _mask_bits, _new_key,  # noqa: E402
                         _offset, _public, layout)
from mpclab.parallel import Pool  # noqa: E402
sys.argv = _argv

FORMATS = {'int16': 16, 'minmax': 1}


def run_stage(pool, fn, jobs):
    """Seconds to run fn over every job on the pool (all submitted at once), and the results."""
    start = time.perf_counter()
    futures = [pool.submit(fn, *args) for args in jobs]
    out = [f.result() for f in futures]
    return time.perf_counter() - start, out


def stages(pool, n, d, params, key, rng):
    """{stage: seconds} for an owner's n rows of d values, joined in full."""
    lay = layout(d, params)
    fmt = params.fmt
    encoded = np.asarray(fmt.encode(rng.uniform(0, 1, (n, d))), dtype=object)
    public = paillier.PaillierPublicKey.from_dict(_public(key)).to_dict()
    chunks = lay.chunks(n, CHUNK_CIPHERTEXTS)
    seconds = {}
    seconds['encrypt'], _ = run_stage(pool, joinwork.encrypt_rows, [
        (key, lay, _offset(params), encoded[a:b]) for a, b in _blocks(n, lay.variants)])
    seconds['mask'], factors = run_stage(pool, joinwork.randomizers, [
        (public, lay, params.stat_sec, _mask_bits(params), r0, r1, n, p0, p1)
        for r0, r1, p0, p1 in chunks])
    # the returned chunks cost what the helper's factors cost to decrypt: same count and size
    scale = fmt.secure_frac_bits - fmt.frac_bits
    prime = (1 << 127) - 1
    seconds['decrypt'], _ = run_stage(pool, joinwork.decrypt_rows, [
        (key, lay, _offset(params), scale, prime, f, r0, r1, n, p0)
        for (f, _), (r0, r1, p0, _) in zip(factors, chunks)])
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, default=2000)
    ap.add_argument('--features', type=int, default=15)
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--format', choices=list(FORMATS), default='int16',
                    help='int16: 16 integer bits (the packed layout); minmax: 1 integer bit')
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--output', default=os.path.join(RESULTS, 'workers.csv'))
    args = ap.parse_args()
    params = JoinParameters(FixedPointFormat(int_bits=FORMATS[args.format]))
    key = _new_key(params.key_bits)
    pools = {w: Pool(workers=w) for w in args.workers}
    for pool in pools.values():   # start the processes before any clock
        run_stage(pool, joinwork.mask_bytes, [(8,)] * 2 * pool.workers)
    rows = []
    try:
        for rep in range(args.repeats):
            for w, pool in pools.items():
                before = os.getloadavg()[0]
                seconds = stages(pool, args.rows, args.features, params, key,
                                 np.random.default_rng(rep))
                after = os.getloadavg()[0]
                for stage, s in seconds.items():
                    rows.append({'stage': stage, 'workers': w, 'rows': args.rows,
                                 'features': args.features, 'format': args.format,
                                 'repeat': rep, 'seconds': round(s, 3),
                                 'rows_per_second': round(args.rows / s, 1),
                                 'load_before': round(before, 2), 'load_after': round(after, 2)})
                print(f'repeat {rep}, {w} worker(s): ' + ', '.join(
                    f'{k} {v:.2f} s' for k, v in seconds.items()) + f' (load {before:.1f})',
                    flush=True)
    finally:
        for pool in pools.values():
            pool.close()
    os.makedirs(os.path.dirname(args.output) or '.', exist_ok=True)
    with open(args.output, 'w', newline='') as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    base = min(args.workers)
    for stage in ('encrypt', 'mask', 'decrypt'):
        med = {w: statistics.median(r['seconds'] for r in rows
                                    if r['stage'] == stage and r['workers'] == w)
               for w in args.workers}
        print(f'{stage:>8}: ' + ', '.join(f'{w} workers {med[w]:.2f} s ({med[base] / med[w]:.2f}x)'
                                          for w in args.workers))
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
