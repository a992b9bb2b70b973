"""Fit SecureLasso on a seeded random table input by party 0; party 0 prints the model as JSON.

    python tests/programs/lasso_party.py -M3 --rows 400 --features 6 --seed 1 --alpha 0.1
"""

import argparse
import json
import os
import sys

import numpy as np
from mpyc.runtime import mpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from mpclab.models.lasso import SecureLasso  # noqa: E402


def make_data(rows, features, seed):
    """Sparse-truth regression data (the test regenerates it for scikit-learn)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)) * rng.uniform(0.5, 2, features) + rng.normal(size=features)
    w = rng.normal(0, 2, features) * (rng.random(features) < 0.5)
    return X, X @ w + rng.normal(size=rows) + 1.0


def data_arguments(ap):
    """The options of the seeded table and of the fit that every such program takes."""
    ap.add_argument('--rows', type=int, default=400)
    ap.add_argument('--features', type=int, default=6)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--alpha', type=float, default=0.1)
    ap.add_argument('--tol', type=float, default=1e-5)


async def start_with_data(args):
    """Start the runtime; party 0 inputs `make_data`'s table, in SecFxp(64, 32): secret (X, y)."""
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    shape = (args.rows, args.features)
    X, y = make_data(*shape, args.seed) if mpc.pid == 0 else (np.zeros(shape), np.zeros(shape[0]))
    X = mpc.input(secfxp.array(X, integral=False), senders=0)
    y = mpc.input(secfxp.array(y, integral=False), senders=0)
    return X, y


async def main():
    ap = argparse.ArgumentParser()
    data_arguments(ap)
    args = ap.parse_args()
    X, y = await start_with_data(args)
    model = await SecureLasso(args.alpha, tol=args.tol).fit(X, y)
    coef, intercept = await model.reveal()
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps({'coef': coef.tolist(), 'intercept': intercept, 'n_iter': model.n_iter_,
                          'parties': len(mpc.parties), 'timings': model.timings_}), flush=True)


if __name__ == '__main__':
    mpc.run(main())
