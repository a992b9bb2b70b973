"""The main job: secure inner join + Lasso regression + secure test metrics, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab lasso -M3 --left data/insurer.csv --right data/hospital.csv --id patient_id \
        --target charges --scale minmax --alpha 0.001 --model-out lasso_{party}.json

Three hosts: the same command on each, with one -P per party, its own -I and only its own
file (see the README).  The target may be held by either owner.

What is opened: table sizes, the intersection size, the test-set size, the iteration count
(one bit per iteration of the stopping rule; none with --fixed-iterations), the range bits of
`SecureLasso` and of the conversion to original units (`mpclab.units`), each 1 for data that
fit; the test metrics (R², MSE, MAE in the target's units, and the objective in scaled units
when the model stays in them) to all; the coefficients to the parties in --model-to (default
all), or to nobody with --secret-model.
"""

from __future__ import annotations

from mpyc.runtime import mpc

from mpclab import security
from mpclab.bounds import FixedPointOverflowError
from mpclab.metrics import regression
from mpclab.models.lasso import SecureLasso
from mpclab.programs.common import (Job, evaluation_split, join, model_summary, split_leaks,
                                    target_check, warn)
from mpclab.programs.modeling import deliver_model, original_units, scaling
from mpclab.session import EXIT_RANGE, PublicError
from mpclab.units import metrics_to_original

METRICS = ('r2', 'mse', 'mae', 'objective')


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    split, lasso = options.split, options.model
    result = await join(job, target_check(split.target))
    train, test = evaluation_split(result, options)
    X, y, features = train.Xy(split.target)
    scale_info = scaling(job, result, X.sectype) if original_units(job) else None
    model = SecureLasso(lasso.alpha, tol=lasso.tol, max_iter=lasso.max_iter,
                        fixed_iterations=lasso.fixed_iterations, int_bits=job.fmt.int_bits)
    try:
        with session.phase('lasso:fit'):
            await model.fit(X, y)
    except FixedPointOverflowError as exc:   # found by every party, from public facts or a bit
        raise PublicError(str(exc), EXIT_RANGE) from None
    with session.phase('lasso:evaluate'):
        Xt, yt, _ = test.Xy(split.target)
        metrics = await test_metrics(model, Xt, yt, lasso.alpha, scale_info, split.target)
    summary = {**model_summary(result, train, test, options, model), 'alpha': lasso.alpha,
               'tol': lasso.tol, 'metrics': {**metrics, 'on': 'test' if test is not train else 'train'}}
    summary.update(await deliver_model(job, 'lasso', model, features, result, train, metrics,
                                       scale_info, target=split.target))
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    job.leaks.extend(split_leaks(options))
    return summary


async def test_metrics(model, Xt, yt, alpha: float, scale_info=None, target=None) -> dict:
    """R², MSE, MAE and the Lasso objective on the test rows (None where not available).

    With `scale_info` MSE and MAE are in the target's original units and the objective, a
    scaled-units figure that would tell the target's range next to them, is not opened.
    What is opened: one bit, "every target and prediction is below 2**14 in magnitude" (the
    range the metrics need), the conversion's range bits, then the metrics.
    """
    y_pred = model.predict(Xt)
    bound = await regression.checked_bound(yt, y_pred)
    if bound is None:
        warn('the test targets or predictions exceed 2**14 in magnitude: no test metrics '
             '(scale the target)')
        return dict.fromkeys(METRICS)
    r2 = regression.r2_score(yt, y_pred, bound=bound)
    mse = regression.mean_squared_error(yt, y_pred, bound=bound)
    mae = regression.mean_absolute_error(yt, y_pred, bound=bound)
    if scale_info is None:
        objective = regression.lasso_objective(yt, y_pred, model.coef_, alpha, bound=bound)
        values = await mpc.output(security.intended([r2, mse, mae, objective]))
        return dict(zip(METRICS, map(float, values)))
    mse, mae = await metrics_to_original(mse, mae, scale_info, target)
    names = ['r2'] + [n for n, v in (('mse', mse), ('mae', mae)) if v is not None]
    values = await mpc.output(security.intended([v for v in (r2, mse, mae) if v is not None]))
    if len(names) < 3:
        warn('a test metric is beyond the fixed-point range in the target\'s units: not opened')
    return {**dict.fromkeys(METRICS), **dict(zip(names, map(float, values)))}


def lines(summary: dict) -> list[str]:
    m = summary['metrics']
    quality = (f'{m["on"]} R2 {m["r2"]:.4f}' + (f', MSE {m["mse"]:.5g}' if m['mse'] is not None else '')
               if m['r2'] is not None else 'no test metrics')
    return [f'joined {summary["intersection_size"]} rows; Lasso (alpha={summary["alpha"]}) in '
            f'{summary["n_iter"]} iterations; {quality}; model in {summary["model"]["units"]} '
            f'units' + (', kept secret' if summary['model']['secret'] else '')]
