"""Secure inner join + logistic regression + secure evaluation, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/logistic.py -M3 --left data/heart_clinic.csv --right data/heart_hospital.csv \
        --id patient_id --target DEATH_EVENT --scale minmax --reg-c 1.0 --json logistic.json

Add --secret-model to keep the model secret from everyone: it is trained, used for the test
predictions and scored in MPC, and only the metrics are opened.  Otherwise the coefficients go
to the parties in --model-to (default all).  The target must be 0/1; either owner may hold it.

Revealed: table sizes, the intersection size, the test-set size, the number of Newton steps
(one bit per step; none with --fixed-iterations), the metrics (accuracy, precision, recall, F1,
ROC AUC, confusion matrix on the test rows) and, unless --secret-model, the model.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
from mpyc.runtime import mpc  # noqa: E402

from mpclab.metrics import classification  # noqa: E402
from mpclab.models.logistic import SecureLogisticRegression  # noqa: E402
from mpclab.programs import (evaluation_split, finish, model_summary, print_model,  # noqa: E402
                             start_and_join, target_check)
from mpclab.session import (ProtocolError, add_common_arguments, add_model_arguments,  # noqa: E402
                            argument_parser, main)


def parser():
    p = argument_parser('Secure inner join and logistic regression (MPyC program).')
    add_common_arguments(p)
    add_model_arguments(p)
    g = p.add_argument_group('logistic regression (must be equal at every party)')
    # scikit-learn's C; not --c, which MPyC would read as --config
    g.add_argument('--reg-c', type=float, default=1.0, metavar='C',
                   help="inverse L2 strength, scikit-learn's C (default 1.0)")
    g.add_argument('--max-iter', type=int, default=25, help='maximum Newton steps (default 25)')
    g.add_argument('--tol', type=float, default=1e-4, help='stop when no coefficient moves more (default 1e-4)')
    g.add_argument('--fixed-iterations', type=int, metavar='K',
                   help='run exactly K Newton steps; reveals nothing about convergence')
    g.add_argument('--secret-model', action='store_true',
                   help='never reveal the model; only the test metrics are opened')
    g.add_argument('--auc', choices=['exact', 'none'], default='exact',
                   help='ROC AUC by secure sorting (about n log^2 n comparisons on the test rows: '
                        'minutes for tens of thousands of rows), or skip it (default exact)')
    return p


def public_options(args):
    return {'target': args.target, 'reg_c': args.reg_c, 'max_iter': args.max_iter, 'tol': args.tol,
            'fixed_iterations': args.fixed_iterations, 'secret_model': args.secret_model,
            'test_fraction': args.test_fraction, 'seed': args.seed, 'model_to': args.model_to,
            'auc': args.auc}


def check_options(args):
    if args.secret_model and args.model_to:
        raise ProtocolError('--secret-model and --model-to contradict each other')
    if args.reg_c <= 0:
        raise ProtocolError('--reg-c must be positive')
    if args.max_iter < 1 or (args.fixed_iterations is not None and args.fixed_iterations < 1):
        raise ProtocolError('the number of Newton steps must be at least 1')


async def run(args):
    args.binary_target = args.target
    split = None if args.seed is None else (args.seed, args.test_fraction)
    session, roles, result = await start_and_join(args, 'logistic', public_options(args), split,
                                                  target_check(args.target),
                                                  validate=lambda: check_options(args))
    train, test = evaluation_split(result, args)
    X, y, features = train.Xy(args.target)
    fixed = args.fixed_iterations is not None
    model = SecureLogisticRegression(args.reg_c, max_iter=args.fixed_iterations if fixed else args.max_iter,
                                     tol=None if fixed else args.tol)
    with session.phase('logistic:fit'):
        await model.fit(X, y)
    with session.phase('logistic:evaluate'):
        Xt, yt, _ = test.Xy(args.target)
        scores = model.decision_function(Xt)
        labels = model.predict(Xt)
        cm = classification.confusion_matrix(yt, labels)
        quality = [classification.accuracy_score(yt, labels), classification.precision_score(yt, labels),
                   classification.recall_score(yt, labels), classification.f1_score(yt, labels)]
        if args.auc == 'exact':
            quality.append(classification.roc_auc_score(yt, scores))
        opened = list(map(float, await mpc.output(quality))) + [None]
        confusion = np.rint(await mpc.output(cm)).astype(int).tolist()
    accuracy, precision, recall, f1, auc = opened[:5]
    revealed = None
    if not args.secret_model and args.model_to != []:
        with session.phase('logistic:reveal'):
            revealed = await model.reveal(receivers=args.model_to)
    summary = {**model_summary(result, train, test, args, model), 'reg_c': args.reg_c,
               'secret_model': args.secret_model,
               'metrics': {'accuracy': accuracy, 'precision': precision, 'recall': recall, 'f1': f1,
                           'auc': auc, 'confusion': confusion,
                           'on': 'test' if test is not train else 'train'}}
    if revealed is not None:
        summary['coef'] = dict(zip(features, map(float, model.coef_.ravel())))
        summary['intercept'] = float(model.intercept_[0])
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    summary = await finish(session, args, summary)
    if mpc.pid == 0:
        m = summary['metrics']
        print(f'joined {result.intersection_size} rows; logistic regression (C={args.reg_c}) in '
              f'{model.n_iter_} Newton steps; {m["on"]} accuracy {accuracy:.4f}, F1 {f1:.4f}, '
              f'AUC {"-" if auc is None else f"{auc:.4f}"}; confusion {confusion}')
    print_model(summary, width=26)


if __name__ == '__main__':
    main(run, parser())
