"""Secure inner join + logistic regression + secure evaluation, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab logistic -M3 --left data/heart_clinic.csv --right data/heart_hospital.csv \
        --id patient_id --target DEATH_EVENT --scale minmax --reg-c 1.0 --json logistic.json

--secret-model keeps the model secret from everyone: it is trained, used for the test
predictions and scored in MPC, and only the metrics are opened; with --model-out each party
keeps its own shares of it.  Otherwise the coefficients go to the parties in --model-to
(default all), in the owners' original units unless --model-units scaled.  The target must be
0/1; either owner may hold it.

What is opened: table sizes, the intersection size, the test-set size, the number of Newton
steps (one bit per step; none with --fixed-iterations), the range bits of
`SecureLogisticRegression` (each 1 for data that fit), whether the training and the test rows
hold both classes, the metrics (accuracy, precision, recall, F1, ROC AUC if both classes are present,
confusion matrix on the test rows) and, unless --secret-model, the model.
"""

from __future__ import annotations

import numpy as np
from mpyc.runtime import mpc

from mpclab import security
from mpclab.metrics import classification
from mpclab.models.logistic import (FixedPointOverflowError, SecureLogisticRegression,
                                    SingleClassError)
from mpclab.programs.common import (Job, evaluation_split, join, model_summary, split_leaks,
                                    target_check, warn)
from mpclab.programs.modeling import deliver_model, original_units, scaling
from mpclab.session import EXIT_INPUT, EXIT_RANGE, PublicError


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    split, logistic = options.split, options.model
    result = await join(job, target_check(split.target))
    train, test = evaluation_split(result, options)
    X, y, features = train.Xy(split.target)
    scale_info = scaling(job, result, X.sectype) if original_units(job) else None
    fixed = logistic.fixed_iterations is not None
    model = SecureLogisticRegression(logistic.reg_c,
                                     max_iter=logistic.fixed_iterations if fixed else logistic.max_iter,
                                     tol=None if fixed else logistic.tol,
                                     int_bits=job.fmt.int_bits)
    try:
        with session.phase('logistic:fit'):
            await model.fit(X, y)
    except FixedPointOverflowError as exc:   # every party knows: from public facts or a bit
        raise PublicError(str(exc), EXIT_RANGE) from None
    except SingleClassError as exc:
        raise PublicError(f'{exc}: a classifier needs both classes among the training rows',
                          EXIT_INPUT) from None
    with session.phase('logistic:evaluate'):
        Xt, yt, _ = test.Xy(split.target)
        scores = model.decision_function(Xt)
        labels = model.predict(Xt)
        cm = classification.confusion_matrix(yt, labels)
        quality = [classification.accuracy_score(yt, labels), classification.precision_score(yt, labels),
                   classification.recall_score(yt, labels), classification.f1_score(yt, labels)]
        opened = list(map(float, await mpc.output(security.intended(quality))))
        auc = None
        if logistic.auc == 'exact':
            if await mpc.output(security.intended(classification.both_classes(yt))):
                auc = float(await mpc.output(security.intended(
                    classification.roc_auc_score(yt, scores))))
            else:
                warn('the test rows hold one class only: ROC AUC is undefined (reported as null)')
        confusion = np.rint(await mpc.output(security.intended(cm))).astype(int).tolist()
    accuracy, precision, recall, f1 = opened
    metrics = {'accuracy': accuracy, 'precision': precision, 'recall': recall, 'f1': f1,
               'auc': auc, 'confusion': confusion}
    summary = {**model_summary(result, train, test, options, model), 'reg_c': logistic.reg_c,
               'metrics': {**metrics, 'on': 'test' if test is not train else 'train'}}
    summary.update(await deliver_model(job, 'logistic', model, features, result, train, metrics,
                                       scale_info))
    summary['fit_timings'] = {k: round(float(v), 4) for k, v in model.timings_.items()}
    job.leaks.extend(split_leaks(options))
    return summary


def lines(summary: dict) -> list[str]:
    m = summary['metrics']
    auc = '-' if m['auc'] is None else f'{m["auc"]:.4f}'
    return [f'joined {summary["intersection_size"]} rows; logistic regression (C={summary["reg_c"]}) '
            f'in {summary["n_iter"]} Newton steps; {m["on"]} accuracy {m["accuracy"]:.4f}, '
            f'F1 {m["f1"]:.4f}, AUC {auc}; confusion {m["confusion"]}; model in '
            f'{summary["model"]["units"]} units' + (', kept secret' if summary['model']['secret'] else '')]
