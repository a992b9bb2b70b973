"""The main job: secure inner join + Lasso regression + secure test metrics, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab lasso -M3 --left data/insurer.csv --right data/hospital.csv --id patient_id \
        --target charges --scale minmax --alpha 0.001 --json lasso.json

Three hosts: the same command on each, with one -P per party, its own -I and only its own
file (see the README).  The target may be held by either owner.

What is opened: table sizes, the intersection size, the test-set size, the iteration count
(one bit per iteration of the stopping rule; none with --fixed-iterations), the range bits of
`SecureLasso`, the coefficients to the parties in --model-to (default all), and the test
metrics (R², MSE, MAE, objective) to all.
"""

from __future__ import annotations

from mpyc.runtime import mpc

from mpclab import security
from mpclab.bounds import FixedPointOverflowError
from mpclab.metrics import regression
from mpclab.models.lasso import SecureLasso
from mpclab.programs.common import (Job, evaluation_split, join, model_receivers, model_summary,
                                    split_leaks, target_check, warn)
from mpclab.session import EXIT_RANGE, PublicError


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    split, lasso = options.split, options.model
    result = await join(job, target_check(split.target))
    train, test = evaluation_split(result, options)
    X, y, features = train.Xy(split.target)
    model = SecureLasso(lasso.alpha, tol=lasso.tol, max_iter=lasso.max_iter,
                        fixed_iterations=lasso.fixed_iterations, int_bits=options.security.int_bits)
    try:
        with session.phase('lasso:fit'):
            await model.fit(X, y)
    except FixedPointOverflowError as exc:   # found by every party, from public facts or a bit
        raise PublicError(str(exc), EXIT_RANGE) from None
    with session.phase('lasso:evaluate'):
        Xt, yt, _ = test.Xy(split.target)
        metrics = await _test_metrics(model, Xt, yt, lasso.alpha)
    receivers = model_receivers(options, len(mpc.parties))
    revealed = None
    if receivers:
        with session.phase('lasso:reveal'):
            revealed = await model.reveal(receivers=receivers)
    summary = {**model_summary(result, train, test, options, model), 'alpha': lasso.alpha,
               'tol': lasso.tol,
               'metrics': {**metrics, 'on': 'test' if test is not train else 'train'},
               'model_to': receivers}
    if revealed is not None:
        summary['coef'] = dict(zip(features, map(float, model.coef_)))
        summary['intercept'] = float(model.intercept_)
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    job.leaks.extend(split_leaks(options))
    return summary


async def _test_metrics(model, Xt, yt, alpha: float) -> dict:
    """R², MSE, MAE and the Lasso objective on the test rows (None if they cannot be bounded).

    What is opened: one bit, "every target and prediction is below 2**14 in magnitude" (the
    range the metrics need), then the four metrics.
    """
    names = ('r2', 'mse', 'mae', 'objective')
    y_pred = model.predict(Xt)
    bound = await regression.checked_bound(yt, y_pred)
    if bound is None:
        warn('the test targets or predictions exceed 2**14 in magnitude: no test metrics '
             '(scale the target)')
        return dict.fromkeys(names)
    metrics = [regression.r2_score(yt, y_pred, bound=bound),
               regression.mean_squared_error(yt, y_pred, bound=bound),
               regression.mean_absolute_error(yt, y_pred, bound=bound),
               regression.lasso_objective(yt, y_pred, model.coef_, alpha, bound=bound)]
    return dict(zip(names, map(float, await mpc.output(security.intended(metrics)))))


def lines(summary: dict) -> list[str]:
    m = summary['metrics']
    quality = (f'{m["on"]} R2 {m["r2"]:.4f}, MSE {m["mse"]:.5f}' if m['r2'] is not None
               else 'no test metrics')
    return [f'joined {summary["intersection_size"]} rows; Lasso (alpha={summary["alpha"]}) in '
            f'{summary["n_iter"]} iterations; {quality}']
