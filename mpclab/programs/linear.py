"""Secure inner join + penalised linear regression + secure test metrics: the programs ``lasso``,
``elasticnet`` and ``ridge``, one MPyC program parameterised by the penalty.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab lasso -M3 --left data/insurer.csv --right data/hospital.csv --id patient_id \
        --target charges --scale minmax --alpha 0.001 --model-out lasso_{party}.json
    mpclab elasticnet -M3 ... --alpha 0.001 --l1-ratio 0.5
    mpclab ridge -M3 ... --alpha 1.0
    mpclab lasso -M3 ... --cv 5 --n-alphas 20          # alpha chosen by 5-fold CV in MPC
    mpclab ridge -M3 ... --cv 5 --alphas 0.1 1 10 100

Three hosts: the same command on each, with one -P per party, its own -I and only its own
file (see the README).  The target may be held by either owner.  The objectives and parameter
names are scikit-learn's Lasso, ElasticNet and Ridge (`mpclab.models.linear`); with --cv K
those of LassoCV, ElasticNetCV and RidgeCV on K contiguous folds of the training rows in the
helper's secret order (`mpclab.models.selection`).

What is opened: table sizes, the intersection size, the test-set size, the iteration count
(one bit per iteration of the stopping rule; none with --fixed-iterations), the range bits of
the estimator and of the conversion to original units (`mpclab.units`), each 1 for data that
fit; with --cv also the chosen alpha_, the mean validation MSE of every candidate (never a
fold's own) and the number of rounds per candidate (one convergence bit per round), and with
--n-alphas alpha_max rounded up to a power of 2**(1/16); the test metrics (R², MSE, MAE in the
target's units, and the objective in scaled units when the model stays in them; none for
ridge) to all; the coefficients to the parties in --model-to (default all), or to nobody with
--secret-model.
"""

from __future__ import annotations

from mpyc.runtime import mpc

from mpclab import security
from mpclab.blocks import COMPARISON_ROWS, one_at_a_time
from mpclab.bounds import FixedPointOverflowError
from mpclab.metrics import regression
from mpclab.models.lasso import SecureLasso
from mpclab.models.linear import SecureElasticNet, SecureRidge
from mpclab.models.selection import SecureElasticNetCV, SecureLassoCV, SecureRidgeCV
from mpclab.programs.common import (Job, evaluation_split, join, model_summary, split_leaks,
                                    target_check, warn)
from mpclab.programs.modeling import deliver_model, original_units, scaling
from mpclab.session import EXIT_INPUT, EXIT_RANGE, PublicError
from mpclab.units import metrics_to_original

__all__ = ['run', 'lines', 'estimator', 'test_metrics', 'MODELS']

METRICS = ('r2', 'mse', 'mae', 'objective')

#: program -> (name in messages, single estimator, cross-validated estimator)
MODELS = {'lasso': ('Lasso', SecureLasso, SecureLassoCV),
          'elasticnet': ('elastic net', SecureElasticNet, SecureElasticNetCV),
          'ridge': ('ridge', SecureRidge, SecureRidgeCV)}


def estimator(program: str, opts, int_bits):
    """The estimator of a program's model options (a `LassoOptions` or one derived from it)."""
    _, single, searched = MODELS[program]
    params = dict(tol=opts.tol, max_iter=opts.max_iter, fixed_iterations=opts.fixed_iterations,
                  int_bits=int_bits)
    if program == 'elasticnet':
        params['l1_ratio'] = opts.l1_ratio
    if opts.cv is None:
        return single(opts.alpha, **params)
    return searched(alphas=list(opts.alphas) or opts.n_alphas, cv=opts.cv, **params)


def cv_leaks(opts) -> list[str]:
    if opts.cv is None:
        return []
    out = [f'--cv {opts.cv}: every party learns the chosen alpha_ and the mean validation MSE of '
           f'every candidate alpha over the folds (not a fold\'s own)'
           + ('' if opts.fixed_iterations else ', and the rounds of the path per candidate')]
    if opts.n_alphas is not None:
        out.append('--n-alphas: every party learns alpha_max = max_j |x_jᵀy|/n of the training '
                   'rows (centred), rounded up to a power of 2**(1/16)')
    return out


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    program, split, opts = options.program, options.split, options.model
    result = await join(job, target_check(split.target))
    train, test = evaluation_split(result, options)
    X, y, features = train.Xy(split.target)
    scale_info = scaling(job, result, X.sectype) if original_units(job) else None
    model = estimator(program, opts, job.fmt.int_bits)
    if opts.cv is not None and train.n_rows < opts.cv:
        raise PublicError(f'--cv {opts.cv}: only {train.n_rows} training rows', EXIT_INPUT)
    try:
        with session.phase(f'{program}:fit'):
            await model.fit(X, y)
    except FixedPointOverflowError as exc:   # found by every party, from public facts or a bit
        raise PublicError(str(exc), EXIT_RANGE) from None
    alpha = model.alpha_ if opts.cv is not None else opts.alpha
    with session.phase(f'{program}:evaluate'):
        Xt, yt, _ = test.Xy(split.target)
        metrics = await test_metrics(model, Xt, yt, penalties(program, opts, alpha), scale_info,
                                     split.target)
    summary = {**model_summary(result, train, test, options, model), 'alpha': alpha,
               'tol': opts.tol, 'metrics': {**metrics, 'on': 'test' if test is not train else 'train'}}
    if program == 'elasticnet':
        summary['l1_ratio'] = opts.l1_ratio
    if opts.cv is not None:
        summary['cv'] = {'folds': opts.cv, 'alphas': [float(a) for a in model.alphas_],
                         'mean_validation_mse': [float(m) for m in model.mse_path_],
                         'alpha_': model.alpha_, 'rounds': [int(k) for k in model.path_iterations_]}
    summary.update(await deliver_model(job, program, model, features, result, train, metrics,
                                       scale_info, target=split.target,
                                       params={'alpha': alpha} if opts.cv is not None else None))
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    job.leaks.extend(split_leaks(options) + cv_leaks(opts))
    return summary


def penalties(program: str, opts, alpha: float) -> tuple[float, float] | None:
    """(l1, l2) of scikit-learn's per-row objective of the model, or None (ridge: its objective
    is not divided by n, so it is not comparable across test-set sizes and is not reported)."""
    if program == 'ridge':
        return None
    l1_ratio = opts.l1_ratio if program == 'elasticnet' else 1.0
    return alpha * l1_ratio, alpha * (1 - l1_ratio)


async def test_metrics(model, Xt, yt, penalty=None, scale_info=None, target=None) -> dict:
    """R², MSE, MAE and the objective on the test rows (None where not available).

    `penalty` is (l1, l2) of the objective ``(1/(2n))·||y − ŷ||² + l1·||w||₁ + (l2/2)·||w||²``
    (None: no objective).  With `scale_info` MSE and MAE are in the target's original units and
    the objective, a scaled-units figure that would tell the target's range next to them, is
    not opened.  What is opened: one bit, "every target and prediction is below 2**14 in
    magnitude" (the range the metrics need), the conversion's range bits, then the metrics.
    """
    y_pred = await one_at_a_time(model.predict, Xt)   # a block's products at a time
    bound = await regression.checked_bound(yt, y_pred)
    if bound is None:
        warn('the test targets or predictions exceed 2**14 in magnitude: no test metrics '
             '(scale the target)')
        return dict.fromkeys(METRICS)
    r2 = regression.r2_score(yt, y_pred, bound=bound)
    mse = regression.mean_squared_error(yt, y_pred, bound=bound)
    mae = await regression.mean_absolute_error_in_blocks(yt, y_pred, bound=bound,
                                                         block_rows=COMPARISON_ROWS)
    if scale_info is None:
        values = [r2, mse, mae]
        if penalty is not None:
            l1, l2 = penalty
            objective = regression.lasso_objective(yt, y_pred, model.coef_, l1, bound=bound)
            if l2:   # ||w||² ≤ ||w||₁² < 2**28: the fit's range check bounds ||w||₁ by 2**14
                objective = objective + (model.coef_ @ model.coef_) * (l2 / 2)
            values.append(objective)
        values = await mpc.output(security.intended(values))
        return {**dict.fromkeys(METRICS), **dict(zip(METRICS, map(float, values)))}
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
    name = MODELS[summary['program']][0] if 'program' in summary else 'linear model'
    params = f'alpha={summary["alpha"]:g}' + (f', l1_ratio={summary["l1_ratio"]:g}'
                                              if 'l1_ratio' in summary else '')
    cv = summary.get('cv')
    chosen = f' chosen by {cv["folds"]}-fold CV among {len(cv["alphas"])}' if cv else ''
    return [f'joined {summary["intersection_size"]} rows; {name} ({params}{chosen}) in '
            f'{summary["n_iter"]} iterations; {quality}; model in {summary["model"]["units"]} '
            f'units' + (', kept secret' if summary['model']['secret'] else '')]
