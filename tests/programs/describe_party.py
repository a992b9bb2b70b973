"""Run mpclab.stats on a seeded table that party 0 inputs (no join), at any party count.

Every party writes to --save-dir DIR/party{i}.json what it computed and a log of every opening of
stats (`Sharing.reveal`) and of MPyC (`mpc.output`); party 0 adds the table itself (its own
data), so that a test can compare with pandas and numpy and check what was opened.

    python tests/programs/describe_party.py -M3 --seed 1 --save-dir DIR
"""

import argparse
import json
import os

import numpy as np
from mpyc.runtime import mpc

from mpclab import security, stats
from mpclab.fixedpoint import FixedPointFormat
from mpclab.table import SecretTable

OPENED = []


def make_table(seed, rows, cols, fmt):
    """Input-format values: a few wide columns, an integer one, a 0/1 one, a constant one, and
    a column with small, distinctive cells at both ends."""
    rng = np.random.default_rng(seed)
    bound = 2.0**fmt.int_bits
    X = rng.uniform(-bound / 2, bound / 2, (rows, cols))
    X[:, 0] = rng.integers(0, 50, rows)
    if cols > 1:
        X[:, 1] = rng.integers(0, 2, rows)
    if cols > 2:
        X[:, 2] = 0.375
    if cols > 3:   # unit bins from 0 to 10 at --bins 10: 1 and 4 people in the end bins
        X[:, 3] = np.concatenate([[0.0, 10.0], [9.5] * 3, rng.uniform(2, 8, rows - 5)])
    X[rows // 2, cols - 1] = bound - 2.0**-fmt.frac_bits   # the extremes of the format
    X[rows // 3, cols - 1] = -bound + 2.0**-fmt.frac_bits
    return np.ldexp(np.round(np.ldexp(X, fmt.frac_bits)), -fmt.frac_bits)


def log_openings():
    reveal, output = stats.Sharing.reveal, mpc.output

    async def logged_reveal(self, x):
        y = await reveal(self, x)
        OPENED.append({'by': 'stats', 'shape': list(y.shape),
                       'ints': stats._planes_to_ints(y & np.uint64(1)).reshape(-1).tolist()})
        return y

    async def logged_output(x, *args, **kwargs):
        y = await output(x, *args, **kwargs)
        OPENED.append({'by': 'mpyc', 'size': int(np.size(getattr(y, 'value', y)))})
        return y
    stats.Sharing.reveal = logged_reveal
    mpc.output = logged_output


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--rows', type=int, default=150)
    ap.add_argument('--cols', type=int, default=5)
    ap.add_argument('--bins', type=int, default=10)
    ap.add_argument('--min-count', type=int, default=5)
    ap.add_argument('--int-bits', type=int, default=12)
    ap.add_argument('--frac-bits', type=int, default=16)
    ap.add_argument('--histogram', type=int, nargs='*', default=[0, 3])
    ap.add_argument('--overflow', action='store_true', help='input one value beyond the format')
    ap.add_argument('--save-dir', required=True)
    args = ap.parse_args()
    fmt = FixedPointFormat(args.frac_bits, args.int_bits, 64)
    await mpc.start()
    security.install_mpyc_counter(mpc)
    log_openings()
    X = make_table(args.seed, args.rows, args.cols, fmt)
    if args.overflow:
        X[7, 0] = 2.0**args.int_bits + 1
    columns = [f'c{j}' for j in range(args.cols)]
    secfxp = fmt.secfxp()
    values = secfxp.array(X if mpc.pid == 0 else np.zeros(X.shape), integral=False)
    table = SecretTable(mpc.input(values, senders=0), columns)
    hist = [columns[j] for j in args.histogram if j < args.cols]
    out = await stats.describe(table, fmt, hist, args.bins, args.min_count)
    await mpc.shutdown()
    out.update(parties=len(mpc.parties), opened=OPENED, ledger=security.ledger.report())
    if mpc.pid == 0:
        out['table'] = X.tolist()
    with open(os.path.join(args.save_dir, f'party{mpc.pid}.json'), 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    mpc.run(main())
