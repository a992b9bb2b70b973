"""How far the secure logistic regression's stopping rule leaves the model from the optimum,
computed in plaintext: no MPC, only the iteration's arithmetic.

    python experiments/logistic_stopping.py                       # the bench_logistic sizes
    python experiments/logistic_stopping.py --sizes 65536x30 100000x10 --tol 1e-4 1e-5

`SecureLogisticRegression` stops when every entry of the gradient, scaled by 1/(C·n), is at
most ``tol`` (scikit-learn's lbfgs rule) and then takes one last step with the previous
Hessian.  This runs that same Newton iteration in float64 on `bench_logistic`'s data (same
generator, same seed) and reports, for each size and tol, its steps and its largest
coefficient distance from scikit-learn's ``tol=1e-10`` optimum, beside that of scikit-learn's
own default run (``tol=1e-4``).  What it tells apart: a secure fit's ``max_coef_diff`` in
results/bench_logistic.csv that equals the plaintext iteration's comes from the stopping rule,
not from fixed-point arithmetic.  Writes results/logistic_stopping.csv.
"""

import argparse
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_logistic import make_data  # noqa: E402
from common import RESULTS, write_csv  # noqa: E402


def newton_as_the_secure_fit(X, y, C, tol, max_iter=100):
    """(w with the intercept last, steps): the secure fit's iteration in plaintext.

    The first step uses the Böhning bound XᵀX/4 (p = 1/2 at w = 0); each later one the exact
    Hessian, until max|g|/(C·n) <= tol, then one step with the previous Hessian.
    """
    n, d = X.shape
    Xa = np.hstack([X, np.ones((n, 1))])
    lam = np.append(np.full(d, 1 / C), 0.0)      # the intercept is not penalised
    H = Xa.T @ Xa / 4 + np.diag(lam)
    w = -np.linalg.solve(H, Xa.T @ (0.5 - y))
    steps = 1
    while steps < max_iter:
        p = 1 / (1 + np.exp(-Xa @ w))
        g = Xa.T @ (p - y) + lam * w
        if np.abs(g).max() / (C * n) <= tol:
            return w - np.linalg.solve(H, g), steps + 1
        H = (Xa * (p * (1 - p))[:, None]).T @ Xa + np.diag(lam)
        w = w - np.linalg.solve(H, g)
        steps += 1
    return w, steps


def parameters(model):
    return np.append(model.coef_.ravel(), model.intercept_)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', nargs='+', default=['1000x10', '10000x10', '100000x10', '65536x30'],
                    help='ROWSxFEATURES')
    ap.add_argument('--tol', type=float, nargs='+', default=[1e-4])
    ap.add_argument('-C', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=0, help="bench_logistic's --seed")
    ap.add_argument('--output', default=os.path.join(RESULTS, 'logistic_stopping.csv'))
    args = ap.parse_args()
    rows = []
    for size in args.sizes:
        n, d = map(int, size.split('x'))
        X, y = make_data(n, d, args.seed)
        best = parameters(LogisticRegression(C=args.C, tol=1e-10, max_iter=10_000).fit(X, y))
        default = LogisticRegression(C=args.C).fit(X, y)
        for tol in args.tol:
            w, steps = newton_as_the_secure_fit(X, y, args.C, tol)
            row = {'rows': n, 'features': d, 'C': args.C, 'tol': tol, 'newton_steps': steps,
                   'max_coef_diff_newton': float(np.abs(w - best).max()),
                   'max_coef_diff_sklearn_default': float(np.abs(parameters(default) - best).max()),
                   'sklearn_default_iterations': int(default.n_iter_[0]),
                   'max_abs_coef': float(np.abs(best).max())}
            print(row, flush=True)
            rows.append(row)
    write_csv(args.output, rows)
    print(f'wrote {args.output}')


if __name__ == '__main__':
    main()
