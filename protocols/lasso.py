"""The main job: secure inner join + Lasso regression + secure test metrics, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/lasso.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --target charges --scale minmax --alpha 0.001 --json lasso.json

Three hosts: the same program on each, with one -P per party, its own -I and only its own
file (see protocols/inner_join.py and the README).  The target may be held by either owner.

Revealed: table sizes, the intersection size, the test-set size, the iteration count (one
bit per iteration of the stopping rule; none with --fixed-iterations), the coefficients to
the parties in --model-to (default all), and the test metrics (R², MSE, MAE, objective) to all.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from mpyc.runtime import mpc  # noqa: E402

from mpclab.metrics import regression  # noqa: E402
from mpclab.models.lasso import FixedPointOverflowError, SecureLasso  # noqa: E402
from mpclab.programs import (evaluation_split, finish, model_summary, print_model,  # noqa: E402
                             start_and_join, target_check)
from mpclab.session import (ProtocolError, add_common_arguments, add_model_arguments,  # noqa: E402
                            argument_parser, main)


def parser():
    p = argument_parser('Secure inner join and Lasso regression (MPyC program).')
    add_common_arguments(p)
    add_model_arguments(p)
    g = p.add_argument_group('Lasso (must be equal at every party)')
    g.add_argument('--alpha', type=float, default=0.001, help='L1 penalty, as in scikit-learn (default 0.001)')
    g.add_argument('--tol', type=float, default=1e-4, help='relative step size at which to stop (default 1e-4)')
    g.add_argument('--max-iter', type=int, default=1000, help='iteration limit (default 1000)')
    g.add_argument('--fixed-iterations', type=int, metavar='K',
                   help='run exactly K iterations; reveals nothing about convergence')
    return p


def public_options(args):
    return {'target': args.target, 'alpha': args.alpha, 'tol': args.tol, 'max_iter': args.max_iter,
            'fixed_iterations': args.fixed_iterations, 'test_fraction': args.test_fraction,
            'seed': args.seed, 'model_to': args.model_to}


def check_options(args):
    if args.alpha < 0 or args.tol <= 0:
        raise ProtocolError('--alpha must be non-negative and --tol positive')
    if args.max_iter < 1 or (args.fixed_iterations is not None and args.fixed_iterations < 1):
        raise ProtocolError('the number of iterations must be at least 1')


async def run(args):
    split = None if args.seed is None else (args.seed, args.test_fraction)
    session, roles, result = await start_and_join(args, 'lasso', public_options(args), split,
                                                  target_check(args.target),
                                                  validate=lambda: check_options(args))
    train, test = evaluation_split(result, args)
    X, y, features = train.Xy(args.target)
    model = SecureLasso(args.alpha, tol=args.tol, max_iter=args.max_iter,
                        fixed_iterations=args.fixed_iterations)
    try:
        with session.phase('lasso:fit'):
            await model.fit(X, y)
    except FixedPointOverflowError as exc:
        raise ProtocolError(f'{exc} (try --scale minmax)', exit_code=5) from None
    with session.phase('lasso:evaluate'):
        Xt, yt, _ = test.Xy(args.target)
        y_pred = model.predict(Xt)
        metrics = [regression.r2_score(yt, y_pred), regression.mean_squared_error(yt, y_pred),
                   regression.mean_absolute_error(yt, y_pred),
                   regression.lasso_objective(yt, y_pred, model.coef_, args.alpha)]
        r2, mse, mae, objective = await mpc.output(metrics)
    with session.phase('lasso:reveal'):
        revealed = await model.reveal(receivers=args.model_to)
    summary = {**model_summary(result, train, test, args, model), 'alpha': args.alpha, 'tol': args.tol,
               'metrics': {'r2': r2, 'mse': mse, 'mae': mae, 'objective': objective,
                           'on': 'test' if test is not train else 'train'}}
    if revealed is not None:
        summary['coef'] = dict(zip(features, map(float, model.coef_)))
        summary['intercept'] = float(model.intercept_)
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    summary = await finish(session, args, summary)
    if mpc.pid == 0:
        print(f'joined {result.intersection_size} rows; Lasso (alpha={args.alpha}) converged in '
              f'{model.n_iter_} iterations; {summary["metrics"]["on"]} R2 {r2:.4f}, MSE {mse:.5f}')
    print_model(summary)


if __name__ == '__main__':
    main(run, parser())
