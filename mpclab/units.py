"""A model in the owners' original units, computed in MPC from one in min-max scaled units.

Each owner scales its own column j as ``x'_j = (x_j − lo_j) / r_j`` (``r_j = hi_j − lo_j``; a
constant column becomes 0).  A model ``w'·x' + b'`` on scaled features is, on the original ones,

    w_j = w'_j / r_j,        b = b' − Σ_j w'_j·lo_j / r_j,

and for a scaled regression target ``y' = (y − lo_y) / r_y`` both are multiplied by ``r_y``
and ``lo_y`` is added to the intercept.  Each owner secret-shares ``1/r_j``, ``lo_j`` and
``r_j`` of its own columns (`share_scaling`); the products happen in MPC, so whoever receives
the converted model learns nothing about an owner's minimum or range beyond what the model
itself implies.  Test metrics convert alike: MSE by ``r_y²``, MAE by ``r_y``, R² not at all.
The scaled metrics are then not opened, since next to the converted ones they would tell
``r_y``.

Ranges.  Before anything is shared, every owner checks its own columns against public bounds
(`check_scaling`): ``|lo_j|, |hi_j| < 2**RAW_BITS`` and ``r_j ≥ 2**-RANGE_BITS`` unless constant.
With those and the model's own public bound, every product below stays in range once the
bits it relies on are established; each is opened before the product that needs it.

What is opened (each a bit that is 1 for models that fit): "every |w'_j / r_j| < 2**10", "every
|w'_j·lo_j / r_j| < 2**30 / (d+1)", for a regression target "|b'| < 2**10"; for the metrics,
"MAE·r_y < 2**30", "MSE < 2**10" and "MSE·r_y² < 2**30" (a metric that fails a bit is not
opened).
"""

from __future__ import annotations

import math

import numpy as np
from mpyc.runtime import mpc

from mpclab import fastmpc
from mpclab.data import InputError

__all__ = ['RAW_BITS', 'RANGE_BITS', 'UnitsError', 'check_scaling', 'share_scaling', 'Scaling',
           'to_original', 'metrics_to_original']

RAW_BITS = 20      # |lo|, |hi| < 2**20 in original units
RANGE_BITS = 10    # a column's range is at least 2**-10 (or the column is constant)
COEF_BITS = 10     # bound checked on w'/r before the products that use it


class UnitsError(ArithmeticError):
    """The model does not fit the fixed-point range in the owners' original units."""


def check_scaling(table, what: str = 'a model in original units') -> None:
    """Every scaled column of an owner's own table within the public bounds (InputError)."""
    for column, (lo, hi) in table.scaling.items():
        worst = max(abs(lo), abs(hi))
        if worst >= 2.0**RAW_BITS:
            raise InputError(f'{table.source}: column {column!r}: values up to {worst:g} are beyond '
                             f'the ±2**{RAW_BITS} that {what} can hold (keep the model in scaled '
                             f'units)', 'values too large for a model in original units')
        if hi > lo and hi - lo < 2.0**-RANGE_BITS:
            raise InputError(f'{table.source}: column {column!r}: its range {hi - lo:g} is below '
                             f'2**-{RANGE_BITS} (rescale the column, or keep the model in scaled '
                             f'units)', 'column range too small for a model in original units')


class Scaling:
    """Secret per-column scaling of the joined table: inverse range, minimum and range."""

    def __init__(self, inv_range, low, span, columns):
        self.inv_range, self.low, self.span, self.columns = inv_range, low, span, list(columns)

    def select(self, names):
        idx = [self.columns.index(c) for c in names]
        return self.inv_range[idx], self.low[idx], self.span[idx]


def _owner_vectors(table, columns):
    inv, low, span = [], [], []
    for c in columns:
        lo, hi = table.scaling[c]
        r = hi - lo
        inv.append(1 / r if r > 0 else 0.0)   # a constant column is 0 after scaling: no term
        low.append(lo)
        span.append(r)
    return np.array([inv, low, span], dtype=float)


def share_scaling(secfxp, tables, owner_columns, roles) -> Scaling:
    """Secret-share every owner's scaling of its own columns; every party calls this.

    `tables` has one entry per owner: this party's own PartyTable, None where it owns none;
    `owner_columns` every owner's columns, in owner order.
    """
    parts = []
    for table, columns, owner in zip(tables, owner_columns, roles.owners):
        shape = (3, len(columns))
        mine = _owner_vectors(table, columns) if mpc.pid == owner else np.zeros(shape)
        parts.append(mpc.input(secfxp.array(mine, integral=False), senders=owner))
    every = mpc.np_hstack(parts)
    return Scaling(every[0], every[1], every[2], [c for cols in owner_columns for c in cols])


async def _require(bit_coroutine, message):
    if not await bit_coroutine:
        raise UnitsError(message)


async def to_original(coef, intercept, scaling: Scaling, features, target=None):
    """Secure (coef, intercept) in original units from scaled ones (see module docstring).

    `coef` is a secure vector over `features`, `intercept` a secure value; `target` names a
    min-max scaled regression target (None for a classifier).
    """
    inv, low, _ = scaling.select(features)
    d = len(features)
    a = fastmpc.mul(coef, inv)
    await _require(fastmpc.all_within(a, COEF_BITS),
                   f'a coefficient in original units exceeds 2**{COEF_BITS}')
    p = fastmpc.mul(a, low)
    await _require(fastmpc.all_within(p, 30 - math.ceil(math.log2(d + 1))),
                   'the intercept in original units exceeds the fixed-point range')
    b = intercept - p.sum()
    if target is None:
        return a, b
    _, low_y, span_y = scaling.select([target])
    await _require(fastmpc.all_within(mpc.np_fromlist([b]), COEF_BITS),
                   f'the intercept exceeds 2**{COEF_BITS} before rescaling to the target\'s units')
    w = fastmpc.mul(a, span_y)   # broadcast the target's range over the coefficients
    b = fastmpc.mul(mpc.np_fromlist([b]), span_y)[0] + low_y[0]
    return w, b


async def metrics_to_original(mse, mae, scaling: Scaling, target):
    """Secure MSE and MAE in the target's original units, or None where a bound fails.

    Each product's range is established first, on a copy scaled down by a public power of two
    whose own product cannot leave the range (``r_y < 2**RAW_BITS``, and the metrics' own
    bound ``|y|, |ŷ| < 2**14``), so that the full-precision product is only formed once it
    is known to fit.
    """
    _, _, r = scaling.select([target])
    mae, mse = mpc.np_fromlist([mae]), mpc.np_fromlist([mse])
    out_mse = out_mae = None
    # MAE < 2**15: MAE/2**5 · r_y < 2**30 always; then MAE · r_y < 2**30 once checked.
    if await fastmpc.all_within(fastmpc.mul(fastmpc.trunc(mae, 5), r), 25):
        out_mae = fastmpc.mul(mae, r)[0]
    # MSE·r_y²: first MSE < 2**10, so that u = MSE·r_y < 2**30; then u/2**20 · r_y < 2**30
    # always, and u · r_y < 2**30 once checked.
    if await fastmpc.all_within(mse, COEF_BITS):
        u = fastmpc.mul(mse, r)
        if await fastmpc.all_within(fastmpc.mul(fastmpc.trunc(u, 20), r), COEF_BITS):
            out_mse = fastmpc.mul(u, r)[0]
    return out_mse, out_mae
