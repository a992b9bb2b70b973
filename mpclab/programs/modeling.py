"""What the model programs share after training: units, who learns the model, model files.

A trained model leaves a program in one of two ways: *revealed* to the `--model-to` parties
(default all), or *secret* (`--secret-model`): nobody learns a coefficient and every party keeps
its own Shamir shares.  With `--model-out PATH` every party that receives the model, or its
shares, writes it as a model file (`mpclab.modelfile`).  With `--scale minmax` the model is
expressed in the owners' original units (`mpclab.units`, in MPC) unless `--model-units scaled`.
"""

from __future__ import annotations

import secrets

import numpy as np
from mpyc.runtime import mpc

from mpclab import security
from mpclab.modelfile import columns_entry, model_document, write_model
from mpclab.programs.common import Job, model_receivers, warn
from mpclab.session import EXIT_RANGE, PublicError
from mpclab.units import UnitsError, share_scaling, to_original

__all__ = ['original_units', 'secret_parameters', 'deliver_model', 'SHARES_FORMAT']

SHARES_FORMAT = 'shamir-v1'


def original_units(job: Job) -> bool:
    """Whether the model leaves in the owners' original units after min-max scaling."""
    o = job.options
    return o.data.scale == 'minmax' and o.output.model_units == 'original'


def scaling(job: Job, result, secfxp):
    """Every owner's secret-shared scaling of its own columns (every party calls this)."""
    return share_scaling(secfxp, job.tables, result.owner_columns, job.roles)


def secret_parameters(model):
    """(coef (d,), intercept) of a fitted estimator, as secure values."""
    coef, intercept = getattr(model, '_params', (model.coef_, model.intercept_))
    coef = coef.reshape(-1)
    if getattr(intercept, 'shape', None) == (1,):
        intercept = intercept[0]
    if isinstance(intercept, float):   # no intercept was fitted
        intercept = type(coef)(np.zeros(1), integral=False)[0]
    return coef, intercept


async def _model_id() -> str:
    """A random identifier of this model, the same at every party (party 0 draws it)."""
    mine = secrets.token_hex(16) if mpc.pid == 0 else None
    return await mpc.transfer(mine, senders=0)


def _own_scaling(job: Job) -> dict:
    """This owner's own scaling, for its own file of a model in scaled units."""
    out = {}
    for table in job.own:
        out.update({c: list(v) for c, v in table.scaling.items()})
    return out


async def deliver_model(job: Job, kind: str, model, features, result, train, metrics: dict,
                        scale_info=None, target: str | None = None, params: dict | None = None) -> dict:
    """Convert, reveal or keep secret, and write the model files; the summary's model fields.

    `scale_info` is the `mpclab.units.Scaling` of the run (with original units), `target` the
    scaled regression target (None for a classifier), `params` the hyper-parameters the model
    was fitted with where they are not the agreed options' (chosen by cross-validation).
    """
    options, session = job.options, job.session
    out = options.output
    coef, intercept = secret_parameters(model)
    units = 'original'
    if scale_info is not None:
        try:
            with session.phase(f'{kind}:units'):
                coef, intercept = await to_original(coef, intercept, scale_info, features, target)
        except UnitsError as exc:
            raise PublicError(f'{exc}: keep the model in scaled units (--model-units scaled)',
                              EXIT_RANGE) from None
    elif options.data.scale == 'minmax':
        units = 'scaled'
    model_id = await _model_id()
    receivers = model_receivers(options, len(mpc.parties))
    opened = None
    if receivers:
        with session.phase(f'{kind}:reveal'):
            theta = mpc.np_concatenate((coef, mpc.np_fromlist([intercept])))
            opened = await mpc.output(security.intended(theta), receivers=receivers)
    summary = {'model': {'units': units, 'model_id': model_id, 'secret': out.secret_model,
                         'to': receivers}}
    trained = {'rows': train.n_rows, 'metrics': metrics, 'fingerprint': options.fingerprint(),
               'model_id': model_id}
    if params:
        trained['params'] = dict(params)
    document = dict(kind=kind, features=features,
                    target=options.split.target, units=units, options=options.agreed(),
                    columns=columns_entry(result.owner_columns),
                    trained=trained)
    if opened is not None:
        values = np.asarray(opened, dtype=float)
        summary['coef'] = dict(zip(features, map(float, values[:-1])))
        summary['intercept'] = float(values[-1])
        document.update(coef=values[:-1], intercept=values[-1])
    elif out.secret_model:
        shares = await mpc.gather(mpc.np_concatenate((coef, mpc.np_fromlist([intercept]))))
        field = type(coef).sectype.field if hasattr(type(coef), 'sectype') else coef.sectype.field
        document['secret'] = {'format': SHARES_FORMAT, 'model_id': model_id, 'party': mpc.pid,
                              'parties': len(mpc.parties), 'threshold': mpc.threshold,
                              'field_modulus': str(field.modulus),
                              'secure_type': {'bits': coef.sectype.bit_length,
                                              'frac_bits': coef.sectype.frac_length},
                              'shares': [str(int(v)) for v in np.asarray(shares.value).reshape(-1)]}
    if out.model_out and ('secret' in document or opened is not None):
        if units == 'scaled':
            own = _own_scaling(job)
            if own:
                document['own_scaling'] = own   # this owner's own: keep as private as the data
        write_model(out.model_out, model_document(**document))
        summary['model']['file'] = out.model_out
    elif out.model_out:
        warn(f'party {mpc.pid} did not receive the model: nothing written to {out.model_out}')
    return summary
