"""Secure predictions of a trained model for the people of new owner tables, as an MPyC program.

Every party brings its own model file from training (``--model-out``): the same file for a
revealed model, its own shares for a secret one.  The owners' new tables are joined exactly
as in training (same identifier column and normalisation, the model's columns; a model in
scaled units is applied to each owner's columns scaled by that owner's *training* minimum and
maximum, kept in its own model file), the model is applied in MPC, and the predictions are
opened only to the owner named by --predictions-to, which writes them with its own identifiers::

    mpclab predict -M3 --left new_insurer.csv --right new_hospital.csv --id patient_id \
        --model lasso_{party}.json --predictions-to 0 --save-predictions predictions.csv

What is opened: table sizes and the intersection size to every party; unless the public bound
of a revealed model settles it, one bit "every decision value is below 2**30" and, for
logistic regression, one bit "below 2**10"; to the --predictions-to owner only, which of its
people are in the intersection and their predictions (a regression value; a probability and a
0/1 label).
"""

from __future__ import annotations

import math
import os

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc, security
from mpclab.blocks import COMPARISON_ROWS, one_at_a_time
from mpclab.data import InputError, load_party_table
from mpclab.modelfile import ModelFileError, owner_columns, read_model
from mpclab.models.logistic import predict_from_decision
from mpclab.programs.common import (Job, join, missing_table, size_summary, sizes_line,
                                    table_source, warn)
from mpclab.programs.modeling import SHARES_FORMAT
from mpclab.session import EXIT_RANGE, PublicError

DECISION_BITS = 30      # |X @ w + b| < 2**30: the secure type's range, with a margin
SIGMOID_BITS = 10       # the sigmoid's domain, |z| <= 1024
MAX_INT_BITS = 24       # beyond, the scaled-down check is too coarse to rely on


def prepare(job: Job) -> None:
    """Read this party's model file and, at an owner, its new table with the model's columns."""
    options = job.options
    path = options.predict.model
    try:
        model = read_model(path)
    except ModelFileError as exc:
        raise InputError(str(exc), 'unusable model file') from None
    data = options.data
    if data.scale != 'none' or data.drop_columns:
        raise InputError('predict takes the scaling and the columns from the model file: give '
                         'neither --scale nor --drop-columns', 'invalid options')
    own_scaling = model.get('own_scaling', {})
    job.context.update(model=model, public={'model': _identity(model, job.pid)})
    trained_columns = owner_columns(model)
    if len(trained_columns) != len(job.roles.owners):
        raise InputError(f'the model was trained on the tables of {len(trained_columns)} owners, '
                         f'not {len(job.roles.owners)}: run with --owners {len(trained_columns)}',
                         'another number of owners than in training')
    job.tables = [None] * len(job.roles.owners)
    for k, owner in enumerate(job.roles.owners):
        if job.pid != owner:
            continue
        source, spelling = table_source(options, job.roles, k)
        if not source:
            raise missing_table(job.roles, k, spelling)
        columns = [c for c in trained_columns[k] if c != model['target']]
        table = load_party_table(source, data.id, options.input_format(), columns=columns,
                                 sep=data.sep, encoding=data.encoding, decimal=data.decimal,
                                 id_normalize=model['options'].get('id_normalize', 'none'))
        if model['units'] == 'scaled':
            table = _scaled_as_in_training(table, own_scaling, options)
        job.tables[k] = table


def _scaled_as_in_training(table, own_scaling: dict, options):
    """This owner's columns scaled with its own training minimum and maximum."""
    missing = [c for c in table.columns if c not in own_scaling]
    if missing:
        raise InputError(f'the model is in scaled units, but this owner\'s model file has no '
                         f'training scaling of {missing}: use the file written at this owner',
                         'model file without the owner\'s scaling')
    fmt = table.fmt
    values = fmt.decode(table.encoded)
    for j, c in enumerate(table.columns):
        lo, hi = own_scaling[c]
        values[:, j] = (values[:, j] - lo) / (hi - lo if hi > lo else 1.0)
    table.encoded = np.column_stack([fmt.encode(values[:, j], what=f'{table.source}: column {c!r}')
                                     for j, c in enumerate(table.columns)]) \
        if table.columns else table.encoded
    return table


def _identity(model: dict, pid: int) -> dict:
    """What every party must hold alike: the model, and for a secret one its own share."""
    ident = {'model_id': model['trained'].get('model_id'), 'kind': model['kind'],
             'features': model['features'], 'units': model['units'],
             'secret': 'secret' in model}
    if 'secret' in model:
        s = model['secret']
        ident.update(share_of=s.get('party'), parties=s.get('parties'), threshold=s.get('threshold'))
    return ident


def _check_models(job: Job, facts: list[dict]) -> None:
    mine = facts[job.pid]['model']
    for i, f in enumerate(facts):
        other = f['model']
        same = {k: v for k, v in other.items() if k != 'share_of'}
        if same != {k: v for k, v in mine.items() if k != 'share_of'}:
            raise PublicError(f'party {i} brings another model (id {other["model_id"]}) than party '
                              f'{job.pid} (id {mine["model_id"]}): every party needs its own file '
                              f'of the same trained model')
        if other['secret'] and (other['share_of'] != i or other['parties'] != len(mpc.parties)
                                or other['threshold'] != mpc.threshold):
            raise PublicError(f'party {i} brings the shares of party {other["share_of"]} of '
                              f'{other["parties"]} parties: a secret model works only with every '
                              f'party\'s own shares, with the parties of its training')


def _secret_coefficients(model: dict, secfxp):
    s = model['secret']
    if s.get('format') != SHARES_FORMAT or int(s['field_modulus']) != secfxp.field.modulus:
        raise PublicError('the secret model was trained with another secure type (--fxp-bits) '
                          'or statistical security parameter (-K): run with the same ones')
    shares = np.array([int(v) for v in s['shares']], dtype=object)
    theta = secfxp.array(secfxp.field.array(shares), integral=False)
    return theta[:-1], theta[-1]


def _probability_and_label(z):
    """Secure columns [sigmoid(z), z > 0] of secure decision values z within the sigmoid's domain."""
    return mpc.np_column_stack([fastmpc.sigmoid(z), predict_from_decision(z)])


async def _decision_values(X, model: dict, secfxp, int_bits: int, logistic: bool):
    """Secure z = X @ w + b, its range established before the products that rely on it.

    The public bound |z| ≤ 2**I·Σ|w_j| + |b| settles a revealed model on small data.
    Otherwise z is first computed 2**k times smaller, with k such that no representable
    model can leave the range (|w_j|, |b| < 2**31, |x| < 2**I), and one bit, "|z| < 2**30",
    is opened; for logistic regression a second, "|z| < 2**10" (the sigmoid's domain), on
    the exact z.
    """
    d = len(model['features'])
    if int_bits > MAX_INT_BITS:
        raise PublicError(f'the new data need {int_bits} integer bits; predictions support up to '
                          f'{MAX_INT_BITS} (scale the columns)', EXIT_RANGE)
    if 'secret' in model:
        w, b = _secret_coefficients(model, secfxp)
        bound = None
    else:
        coef, intercept = np.asarray(model['coef']), float(model['intercept'])
        w, b = secfxp.array(coef, integral=False), secfxp(intercept)
        bound = 2.0**int_bits * np.abs(coef).sum() + abs(intercept)
    if bound is None or bound >= 2.0**(DECISION_BITS - 1):
        k = int_bits + math.ceil(math.log2(d + 1)) + 1
        small = fastmpc.matmul(X, fastmpc.trunc(w, k)) + fastmpc.trunc(mpc.np_fromlist([b]), k)[0]
        if not await fastmpc.all_within(small, DECISION_BITS - k):
            raise PublicError(f'a decision value on these data exceeds 2**{DECISION_BITS}: the '
                              f'model does not fit the new data\'s range', EXIT_RANGE)
    z = fastmpc.matmul(X, w) + b
    if logistic and (bound is None or bound > 2.0**SIGMOID_BITS):
        if not await fastmpc.all_within(z, SIGMOID_BITS):
            raise PublicError(f'a decision value on these data exceeds 2**{SIGMOID_BITS}, the '
                              f'range of the secure sigmoid', EXIT_RANGE)
    return z


async def run(job: Job) -> dict:
    options = job.options
    model = job.context['model']
    facts = job.context.get('facts') or []
    if facts:
        _check_models(job, facts)
    to = options.predict.predictions_to
    result = await join(job, rows_to=to)
    n = result.intersection_size
    summary = {**size_summary(result), 'model_id': model['trained'].get('model_id'),
               'kind': model['kind'], 'predictions_to': to}
    job.leaks.append(f'party {to} learns which of its people are in the intersection, and their '
                     f'predictions')
    if n == 0:
        warn('the intersection is empty: no predictions')
        return summary
    table = result.table
    X = table[model['features']].values
    logistic = model['kind'] == 'logistic'
    with job.session.phase('predict:apply'):
        z = await _decision_values(X, model, X.sectype, job.fmt.int_bits, logistic)
        if logistic:   # a block of rows' comparisons at a time
            z = (await one_at_a_time(_probability_and_label, z, COMPARISON_ROWS)).array()
        opened = await mpc.output(security.intended(z), receivers=[to])
    if opened is not None:
        opened = np.asarray(opened, dtype=float).reshape(n, -1)
        ids = result.own_ids
        path = options.predict.save_predictions
        summary['predictions'] = n
        if path:
            import pandas as pd
            columns = {options.data.id: ids}
            if logistic:
                columns.update(probability=opened[:, 0], label=np.rint(opened[:, 1]).astype(int))
            else:
                columns[f'predicted_{model["target"]}'] = opened[:, 0]
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            pd.DataFrame(columns).to_csv(path, index=False)
            summary['saved_to'] = path
    return summary


def lines(summary: dict) -> list[str]:
    out = [f'{sizes_line(summary)}; {summary["kind"]} model {summary["model_id"]}']
    if 'predictions' in summary:
        where = f', written to {summary["saved_to"]}' if 'saved_to' in summary else ''
        out.append(f'{summary["predictions"]} predictions for this party{where}')
    else:
        out.append(f'predictions went to party {summary["predictions_to"]} only')
    return out
