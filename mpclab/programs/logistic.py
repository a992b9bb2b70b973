"""Secure inner join + logistic regression + secure evaluation, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab logistic -M3 --left data/heart_clinic.csv --right data/heart_hospital.csv \
        --id patient_id --target DEATH_EVENT --scale minmax --reg-c 1.0 --json logistic.json

--secret-model keeps the model secret from everyone: it is trained, used for the test
predictions and scored in MPC, and only the metrics are opened; with --model-out each party
keeps its own shares of it.  Otherwise the coefficients go to the parties in --model-to
(default all), in the owners' original units unless --model-units scaled.  The target must be
0/1; either owner may hold it.

With ``--cv K`` the C is chosen by K-fold cross-validation on the training rows, in MPC
(`mpclab.models.logistic.SecureLogisticRegressionCV`: folds are contiguous blocks of the
helper's secret row order, each candidate of ``--cs`` is fitted on K−1 folds and scored by
its accuracy on the held-out one), and the final model is fitted with the chosen C on all
training rows.  ``--progress`` shows the training's progress (Gram matrix blocks, Newton
steps, or the cross-validation's fits).

The ROC AUC (``--auc``) is by default (``auto``) exact on test sets of up to
`classification.PAIRS_MAX` rows (all pairs compared, cheaper there) and otherwise the histogram
method (a public choice: the test-set size is public).  The histogram is exact for the scores
put on a scale of 2**14 steps of their sigmoid, so positive–negative pairs whose sigmoids differ by less
than about 2.4e-4 may count as ties or either way (`mpclab.metrics.histogram`); memory is
bounded and time linear in the test rows.  ``--auc exact`` compares or sorts in MPC (exact;
a size whose memory would not fit at some party is refused after the join, before training).

What is opened: table sizes, the intersection size, the test-set size, the number of Newton
steps (one bit per step; none with --fixed-iterations), the range bits of
`SecureLogisticRegression` (each 1 for data that fit), whether the training and the test rows
hold both classes, the metrics (accuracy, precision, recall, F1, ROC AUC if both classes are present,
confusion matrix on the test rows) and, unless --secret-model, the model.  With --cv K
also: the same bits for every one of the K·len(Cs) fold fits and the final fit, the mean
held-out accuracy of every candidate C, and hence the chosen C (``C_``); the fold models and
the per-fold accuracies stay secret.  With --auc exact on a test set too large for this
machine: each party's one bit "it would not fit here", before training.
"""

from __future__ import annotations

import numpy as np
from mpyc.runtime import mpc

from mpclab import security
from mpclab.blocks import COMPARISON_ROWS, one_at_a_time
from mpclab.metrics import classification, histogram
from mpclab.models.logistic import (FixedPointOverflowError, SecureLogisticRegression,
                                    SecureLogisticRegressionCV, SingleClassError)
from mpclab.programs.common import (Job, evaluation_split, join, model_summary, split_leaks,
                                    target_check, warn)
from mpclab.programs.modeling import deliver_model, original_units, scaling
from mpclab.session import EXIT_INPUT, EXIT_RANGE, PublicError


async def _check_auc_memory(method: str, n_test: int) -> None:
    """Stop every party, before training, if the exact AUC would not fit some party's memory.

    Each party judges its own machine (`classification.check_roc_auc_memory`); the verdicts
    are exchanged so that all parties stop together rather than one dying mid-protocol.
    """
    if method != 'exact':
        return
    parties = len(mpc.parties)
    try:
        classification.check_roc_auc_memory(n_test, 'auto' if n_test <= classification.PAIRS_MAX
                                             else 'sort', parties=parties)
        mine = None
    except classification.AUCMemoryError as exc:
        mine = str(exc)
    verdicts = await mpc.transfer(mine) if parties > 1 else [mine]
    refused = [(i, v) for i, v in enumerate(verdicts) if v]
    if refused:
        i, why = refused[0]
        raise PublicError(f'party {i}: {why} (--auc histogram)', EXIT_INPUT)


def auc_method(option: str, n_test: int) -> str:
    """The AUC method --auc asks for on `n_test` rows: 'pairs', 'sort', 'histogram' or 'none'."""
    if option == 'auto':
        return 'pairs' if n_test <= classification.PAIRS_MAX else 'histogram'
    if option == 'exact':
        return 'pairs' if n_test <= classification.PAIRS_MAX else 'sort'
    return option


def _auc(yt, scores, method: str):
    """The secure ROC AUC by `auc_method`'s method (the scores are the model's decision values,
    within ±1024 as `SecureLogisticRegression` guarantees, which the histogram needs)."""
    return classification.roc_auc_score(yt, scores, method=method)


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    split, logistic = options.split, options.model
    result = await join(job, target_check(split.target))
    train, test = evaluation_split(result, options)
    await _check_auc_memory(logistic.auc, test.n_rows)
    X, y, features = train.Xy(split.target)
    scale_info = scaling(job, result, X.sectype) if original_units(job) else None
    fixed = logistic.fixed_iterations is not None
    settings = dict(max_iter=logistic.fixed_iterations if fixed else logistic.max_iter,
                    tol=None if fixed else logistic.tol, int_bits=job.fmt.int_bits)
    if logistic.cv is None:
        model = SecureLogisticRegression(logistic.reg_c, **settings)
    else:
        model = SecureLogisticRegressionCV(list(logistic.candidates()), cv=logistic.cv, **settings)
    try:
        with session.phase('logistic:fit'):
            await model.fit(X, y, progress=job.progress)
    except FixedPointOverflowError as exc:   # every party knows: from public facts or a bit
        raise PublicError(str(exc), EXIT_RANGE) from None
    except SingleClassError as exc:
        raise PublicError(f'{exc}: a classifier needs both classes among the training rows',
                          EXIT_INPUT) from None
    final = model if logistic.cv is None else model.model_
    with session.phase('logistic:evaluate'):
        Xt, yt, _ = test.Xy(split.target)
        scores = await one_at_a_time(final.decision_function, Xt)
        labels = await one_at_a_time(final.predict, Xt, COMPARISON_ROWS)
        cm = classification.confusion_matrix(yt, labels)
        quality = [classification.accuracy_score(yt, labels), classification.precision_score(yt, labels),
                   classification.recall_score(yt, labels), classification.f1_score(yt, labels)]
        opened = list(map(float, await mpc.output(security.intended(quality))))
        auc, method = None, auc_method(logistic.auc, test.n_rows)
        if method != 'none':
            if await mpc.output(security.intended(classification.both_classes(yt))):
                auc = float(await mpc.output(security.intended(_auc(yt, scores, method))))
            else:
                warn('the test rows hold one class only: ROC AUC is undefined (reported as null)')
        confusion = np.rint(await mpc.output(security.intended(cm))).astype(int).tolist()
    accuracy, precision, recall, f1 = opened
    metrics = {'accuracy': accuracy, 'precision': precision, 'recall': recall, 'f1': f1,
               'auc': auc, 'auc_method': method, 'confusion': confusion}
    if method == 'histogram':
        metrics['auc_resolution_bits'] = histogram.DEFAULT_BITS
    reg_c = logistic.reg_c if logistic.cv is None else model.C_
    summary = {**model_summary(result, train, test, options, final), 'reg_c': reg_c,
               'metrics': {**metrics, 'on': 'test' if test is not train else 'train'}}
    if logistic.cv is not None:
        summary['cv'] = {'folds': logistic.cv, 'Cs': [float(c) for c in model.Cs_], 'C_': model.C_,
                         'mean_scores': [float(v) for v in model.mean_scores_],
                         'scoring': 'accuracy'}
        job.leaks.append(f'--cv {logistic.cv}: every party learns the mean held-out accuracy of '
                         f'each of the {len(model.Cs_)} candidate Cs, and so the chosen C')
    summary.update(await deliver_model(job, 'logistic', final, features, result, train, metrics,
                                       scale_info))
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in final.timings_.items()}
    job.leaks.extend(split_leaks(options))
    return summary


def lines(summary: dict) -> list[str]:
    m = summary['metrics']
    auc = '-' if m['auc'] is None else f'{m["auc"]:.4f}'
    chosen = f', chosen by {summary["cv"]["folds"]}-fold cross-validation' if 'cv' in summary else ''
    return [f'joined {summary["intersection_size"]} rows; logistic regression (C={summary["reg_c"]:g}'
            f'{chosen}) '
            f'in {summary["n_iter"]} Newton steps; {m["on"]} accuracy {m["accuracy"]:.4f}, '
            f'F1 {m["f1"]:.4f}, AUC {auc}; confusion {m["confusion"]}; model in '
            f'{summary["model"]["units"]} units' + (', kept secret' if summary['model']['secret'] else '')]
