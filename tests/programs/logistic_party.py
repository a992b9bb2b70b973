"""Fit SecureLogisticRegression with X input by party 0 and y by party 1; party 0 prints JSON.

    python tests/programs/logistic_party.py -M3 --data heart --reg-c 1.0
    python tests/programs/logistic_party.py -M5 --data random --rows 200 --features 4 --seed 3

--data heart reads data/heart_failure_clinical_records.csv (min-max scaled per column,
target DEATH_EVENT); --data random draws a seeded table.  The secret model also scores the
first --show rows of X, so the test can check predictions against plaintext ones.  With
--block-rows and --hessian-rows the fit goes over row blocks and Hessian pieces of those
sizes (the defaults are the library's) and reports the most rows of any Hessian piece.

    python tests/programs/logistic_party.py -M4 --rows 200 --block-rows 64 --hessian-rows 7
"""

import argparse
import json
import os

import numpy as np
import pandas as pd
from mpyc.runtime import mpc

from mpclab import fastmpc
from mpclab.blocks import BLOCK_ROWS, RowBlocks
from mpclab.models import logistic
from mpclab.models.logistic import SecureLogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def heart_data():
    df = pd.read_csv(os.path.join(ROOT, 'data', 'heart_failure_clinical_records.csv'))
    X = df.drop(columns='DEATH_EVENT').to_numpy(float)
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    return X, df['DEATH_EVENT'].to_numpy(float)


def random_data(rows, features, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (rows, features))
    w = rng.normal(0, 3, features)
    p = 1 / (1 + np.exp(-(X @ w - w.sum() / 2)))
    return X, (rng.uniform(size=rows) < p).astype(float)


def watch_the_hessians_pieces(columns):
    """A list that gets the rows of each product W·[X 1] the fit forms (its Hessians' pieces:
    the only products with `columns` columns)."""
    rows, real = [], fastmpc.mul

    def mul(a, b, f=None):
        shape = np.broadcast_shapes(a.shape, b.shape)
        if shape[1:] == (columns,):
            rows.append(shape[0])
        return real(a, b, f)
    fastmpc.mul = mul
    return rows


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', choices=['heart', 'random'], default='random')
    ap.add_argument('--rows', type=int, default=200)
    ap.add_argument('--features', type=int, default=4)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--reg-c', type=float, default=1.0)
    ap.add_argument('--show', type=int, default=20)
    ap.add_argument('--block-rows', type=int, default=BLOCK_ROWS)
    ap.add_argument('--hessian-rows', type=int, default=logistic.HESSIAN_ROWS)
    args = ap.parse_args()
    logistic.HESSIAN_ROWS = args.hessian_rows
    X, y = heart_data() if args.data == 'heart' else random_data(args.rows, args.features, args.seed)
    secfxp = mpc.SecFxp(64, 32)
    await mpc.start()
    # Shapes are public; the values enter only at their owners (placeholders elsewhere).
    sX = mpc.input(secfxp.array(X if mpc.pid == 0 else np.zeros(X.shape), integral=False), senders=0)
    sy = mpc.input(secfxp.array(y if mpc.pid == 1 else np.zeros(y.shape), integral=False), senders=1)
    pieces = watch_the_hessians_pieces(X.shape[1] + 1)
    model = await SecureLogisticRegression(args.reg_c).fit(RowBlocks.from_array(sX, args.block_rows), sy)
    shown = sX[:args.show]
    proba = await mpc.output(model.predict_proba(shown))
    labels = await mpc.output(model.predict(shown))
    coef, intercept = await model.reveal()
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps({'coef': coef.ravel().tolist(), 'intercept': intercept.tolist(),
                          'n_iter': model.n_iter_, 'parties': len(mpc.parties),
                          'proba': np.asarray(proba)[:, 1].tolist(),
                          'labels': np.asarray(labels).tolist(),
                          'hessian_pieces': len(pieces), 'most_hessian_rows': max(pieces, default=0)}),
              flush=True)


if __name__ == '__main__':
    mpc.run(main())
