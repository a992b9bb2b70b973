"""Two 1-D arguments of a metric, secure arrays, RowBlocks or public arrays, as aligned blocks."""

from __future__ import annotations

import numpy as np
from mpyc.runtime import mpc

from mpclab.blocks import RowBlocks

__all__ = ['aligned', 'shape_of']


def shape_of(a) -> tuple:
    return tuple(a.shape) if hasattr(a, 'shape') else np.shape(a)


def _pieces(a):
    return list(a.blocks) if isinstance(a, RowBlocks) else [a]


def _slice(a, start, stop):
    if isinstance(a, RowBlocks):
        part = a.rows(start, stop)
        return part.blocks[0] if len(part.blocks) == 1 else part.array()
    if isinstance(a, mpc.SecureArray):
        return a[start:stop]
    return np.asarray(a, dtype=float)[start:stop]


def aligned(a, b):
    """([(a_k, b_k)], n, stype): both arguments over the same blocks of rows (those of the first
    RowBlocks among them, else one block), as views; public arrays stay numpy arrays.

    stype is the secure array type of the secure argument(s).  Raises TypeError if neither is
    secure, ValueError unless both are 1-D of equal length.
    """
    secure = [x for x in (a, b) if isinstance(x, (mpc.SecureArray, RowBlocks))]
    if not secure:
        raise TypeError('at least one argument must be a secure array')
    sa, sb = shape_of(a), shape_of(b)
    if len(sa) != 1 or sa != sb:
        raise ValueError(f'expected two 1-D arrays of equal length, got {sa} and {sb}')
    first = secure[0]
    stype = first.sectype if isinstance(first, RowBlocks) else type(first)
    lead = next((x for x in (a, b) if isinstance(x, RowBlocks)), first)
    pairs, start = [], 0
    for block in _pieces(lead):
        stop = start + block.shape[0]
        pairs.append((_slice(a, start, stop), _slice(b, start, stop)))
        start = stop
    return pairs, sa[0], stype
