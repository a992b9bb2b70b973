"""Fit a linear model on a seeded random table input by party 0; party 0 prints it as JSON.

    python tests/programs/linear_party.py -M3 --model ridge --rows 400 --features 6 --alpha 10
    python tests/programs/linear_party.py -M3 --model elasticnet --l1-ratio 0.5 --block-rows 128
    python tests/programs/linear_party.py -M3 --model lasso --cv 4 --alphas 0.3 0.1 0.03

With --block-rows the table is held as `RowBlocks` of that many rows.  With --cv the model is
the cross-validated one (SecureLassoCV, SecureElasticNetCV or SecureRidgeCV) on contiguous
folds, and the JSON has alpha_, alphas_ and mse_path_ too.
"""

import argparse
import json
import os
import sys

import numpy as np
from mpyc.runtime import mpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
from mpclab.blocks import RowBlocks  # noqa: E402
from mpclab.models import linear, selection  # noqa: E402
from mpclab.models.lasso import SecureLasso  # noqa: E402
# make_data: the tests import it from here too
from lasso_party import data_arguments, make_data, start_with_data  # noqa: E402,F401


def model(args):
    common = dict(tol=args.tol, int_bits=args.int_bits)
    if args.cv:
        cv = dict(cv=args.cv, **common)
        alphas = args.alphas if args.alphas else args.n_alphas
        if args.model == 'ridge':
            return selection.SecureRidgeCV(alphas=args.alphas, **cv)
        if args.model == 'elasticnet':
            return selection.SecureElasticNetCV(l1_ratio=args.l1_ratio, alphas=alphas, **cv)
        return selection.SecureLassoCV(alphas=alphas, **cv)
    if args.model == 'ridge':
        return linear.SecureRidge(args.alpha, **common)
    if args.model == 'elasticnet':
        return linear.SecureElasticNet(args.alpha, l1_ratio=args.l1_ratio, **common)
    return SecureLasso(args.alpha, **common)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', choices=['lasso', 'elasticnet', 'ridge'], default='lasso')
    data_arguments(ap)
    ap.add_argument('--l1-ratio', type=float, nargs='+', default=[0.5])
    ap.add_argument('--int-bits', type=int, default=None)
    ap.add_argument('--block-rows', type=int, default=None)
    ap.add_argument('--cv', type=int, default=None)
    ap.add_argument('--alphas', type=float, nargs='+', default=None)
    ap.add_argument('--n-alphas', type=int, default=10)
    args = ap.parse_args()
    if len(args.l1_ratio) == 1:
        args.l1_ratio = args.l1_ratio[0]
    if not args.cv:
        args.l1_ratio = float(np.ravel(args.l1_ratio)[0])
    X, y = await start_with_data(args)
    if args.block_rows:
        X = RowBlocks.from_array(X, args.block_rows)
        y = RowBlocks.from_array(y, args.block_rows)
    fitted = await model(args).fit(X, y)
    coef, intercept = await fitted.reveal()
    await mpc.shutdown()
    if mpc.pid == 0:
        out = {'coef': coef.tolist(), 'intercept': intercept, 'n_iter': fitted.n_iter_,
               'parties': len(mpc.parties)}
        for name in ('alpha_', 'l1_ratio_'):
            if hasattr(fitted, name):
                out[name] = float(getattr(fitted, name))
        for name in ('alphas_', 'mse_path_'):
            if hasattr(fitted, name):
                out[name] = np.asarray(getattr(fitted, name)).tolist()
        print(json.dumps(out), flush=True)


if __name__ == '__main__':
    mpc.run(main())
