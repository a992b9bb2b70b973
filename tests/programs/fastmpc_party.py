"""Run mpclab.fastmpc next to MPyC's own operations on seeded inputs of party 0; party 0
prints the largest differences (fast vs MPyC vs numpy) and the ledger's counts as JSON.

    python tests/programs/fastmpc_party.py -M3 --seed 1
    python tests/programs/fastmpc_party.py -M3 -K 42 --seed 1
    python tests/programs/fastmpc_party.py -M3 --overflow   # a product out of range: fails
"""

import argparse
import json

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security


def make_data(seed, n=300, d=5):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-50, 50, n)
    b = rng.uniform(-3, 3, n)
    A = rng.uniform(-1, 1, (n, d))
    w = rng.uniform(-4, 4, d)
    z = np.concatenate([rng.uniform(-30, 30, n - 4), [0.0, 1000.0, -1000.0, 1e-6]])
    return a, b, A, w, z


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--overflow', action='store_true', help='multiply 2**20 by itself')
    args, _ = ap.parse_known_args()
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    if args.overflow:
        a = mpc.input(secfxp.array(np.array([2.0**20]), integral=False), senders=0)
        await mpc.output(fastmpc.mul(a, a))   # the opening check must stop every party here
        await mpc.shutdown()
        return
    data = make_data(args.seed)
    a, b, A, w, z = (mpc.input(secfxp.array(x if mpc.pid == 0 else np.zeros(x.shape), integral=False),
                               senders=0) for x in data)
    fast = [fastmpc.mul(a, b), fastmpc.matmul(A, w), fastmpc.matmul_t(A, A), fastmpc.trunc(a, 3),
            fastmpc.mul(a, b, 32 + 2), fastmpc.sigmoid(z),
            fastmpc.matmul_t_sum((A[i:i + 70], A[i:i + 70]) for i in range(0, len(a), 70))]
    stock = [a * b, A @ w, A.T @ A, mpc.np_trunc(a, f=3), (a * b) * 0.25]
    fast = [np.asarray(await mpc.output(x)) for x in fast]
    stock = [np.asarray(await mpc.output(x)) for x in stock]
    n = len(data[0])
    # mul, matmul, matmul_t (d*d), trunc, mul with shift, sigmoid (38 products and a shift)
    # ... and matmul_t_sum over blocks of 70 rows (d*d)
    expected = n + n + data[2].shape[1]**2 + n + n + 39 * n + data[2].shape[1]**2
    ledger = security.ledger.report()
    opened = security.ledger.count('mpc')
    within = [await fastmpc.all_within(a, 9), await fastmpc.all_within(a, 5)]   # |a| < 50
    expected += 2 * 2 * n
    # A is uniform in [-1, 1]: its columns' sums of squares are about 100
    norms = [await fastmpc.norms_within(A, 2.0**8), await fastmpc.norms_within(A, 2.0**6)]
    expected += 2 * (A.size + A.shape[1])
    opened_all = security.ledger.count('mpc')
    await mpc.shutdown()
    if mpc.pid == 0:
        a, b, A, w, z = data
        exact = [a * b, A @ w, A.T @ A, a / 8, a * b / 4, np.exp(-np.logaddexp(0, -z)), A.T @ A]
        names = ['mul', 'matmul', 'matmul_t', 'trunc', 'mul_shift', 'sigmoid', 'matmul_t_sum']
        out = {'parties': len(mpc.parties), 'threshold': mpc.threshold,
               'vs_exact': {k: float(np.abs(x - e).max()) for k, x, e in zip(names, fast, exact)},
               'vs_mpyc': {k: float(np.abs(x - s).max()) for k, x, s in zip(names, fast, stock)},
               'mean_error_mul': float(np.mean(fast[0] - exact[0])),
               'mpc_openings': opened_all, 'expected_openings': expected, 'before_checks': opened,
               'mpc_mask_bits': ledger['mpc_mask_bits'], 'within': within, 'norms': norms,
               'field_bits': secfxp.field.modulus.bit_length()}
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    mpc.run(main())
