"""Run mpclab.fastmpc next to MPyC's own operations on seeded inputs of party 0; party 0
prints the largest differences (fast vs MPyC vs numpy) as JSON.

    python tests/programs/fastmpc_party.py -M3 --seed 1
"""

import argparse
import json

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc


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
    args = ap.parse_args()
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    data = make_data(args.seed)
    a, b, A, w, z = (mpc.input(secfxp.array(x if mpc.pid == 0 else np.zeros(x.shape), integral=False),
                               senders=0) for x in data)
    fast = [fastmpc.mul(a, b), fastmpc.matmul(A, w), fastmpc.matmul_t(A, A), fastmpc.trunc(a, 3),
            fastmpc.mul(a, b, 32 + 2), fastmpc.sigmoid(z)]
    stock = [a * b, A @ w, A.T @ A, mpc.np_trunc(a, f=3), (a * b) * 0.25]
    fast = [np.asarray(await mpc.output(x)) for x in fast]
    stock = [np.asarray(await mpc.output(x)) for x in stock]
    await mpc.shutdown()
    if mpc.pid == 0:
        a, b, A, w, z = data
        exact = [a * b, A @ w, A.T @ A, a / 8, a * b / 4, np.exp(-np.logaddexp(0, -z))]
        names = ['mul', 'matmul', 'matmul_t', 'trunc', 'mul_shift', 'sigmoid']
        out = {'parties': len(mpc.parties), 'threshold': mpc.threshold,
               'vs_exact': {k: float(np.abs(x - e).max()) for k, x, e in zip(names, fast, exact)},
               'vs_mpyc': {k: float(np.abs(x - s).max()) for k, x, s in zip(names, fast, stock)},
               'mean_error_mul': float(np.mean(fast[0] - exact[0]))}
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    mpc.run(main())
