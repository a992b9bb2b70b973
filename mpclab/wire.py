"""Decoding what other parties send, so that no message can run code here.

MPyC 0.11 turns every Python object and every share array it receives back into objects with
``pickle.loads``, and a pickle can name any importable function to call: a compromised peer
could run code on a hospital's server just by sending a message.  `loads` is a restricted
unpickler that knows only plain data: ``None``, booleans, ints, floats, strings, bytes,
lists, tuples, dicts, sets, and numpy arrays and scalars of a fixed list of dtypes (as MPyC's
share arrays are pickled).  Everything else, whatever it names, is refused with `WireError`
before any of it is executed.  It keeps the C unpickler's speed: only the few allowed names
go through Python.

`install` puts it in place of ``pickle.loads`` inside MPyC's runtime (sending is unchanged:
``pickle.dumps`` of plain data).  `mpclab.fastmpc` sends its openings through `dumps` and
`loads` directly.
"""

from __future__ import annotations

import io
import pickle
from types import SimpleNamespace

import numpy as np

__all__ = ['WireError', 'dumps', 'loads', 'install', 'installed']

# numpy's own pickles of arrays and scalars need these names, and nothing else does.
_NUMPY_MODULES = ('numpy._core.multiarray', 'numpy.core.multiarray')
_DTYPES = frozenset(['O8', 'b1', 'i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8'])
_SCALAR_DTYPES = _DTYPES - {'O8'}


class WireError(pickle.UnpicklingError):
    """A message from another party is not plain data; it was refused before being decoded."""


def _dtype(name, align=False, copy=True):
    if name not in _DTYPES:
        raise WireError(f'a message holds an array of dtype {name!r}, which mpclab does not accept')
    return np.dtype(name, align, copy)


def _reconstruct(subtype, shape, dtype_code):
    if subtype is not np.ndarray:
        raise WireError('a message holds an array subclass, which mpclab does not accept')
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.str[1:] not in _SCALAR_DTYPES:
        raise WireError('a message holds a numpy scalar of a type mpclab does not accept')
    if not isinstance(data, bytes):
        raise WireError('a message holds a malformed numpy scalar')
    return np.frombuffer(data, dtype=dtype, count=1)[0]


_ALLOWED = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): _dtype,
    **{(m, '_reconstruct'): _reconstruct for m in _NUMPY_MODULES},
    **{(m, 'scalar'): _scalar for m in _NUMPY_MODULES},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise WireError(f'a message asks to load {module}.{name}: refused, messages between '
                            f'parties may hold plain data only') from None

    def persistent_load(self, pid):
        raise WireError('a message holds a persistent reference: refused')


def loads(data: bytes):
    """Decode a message from another party; raises `WireError` for anything but plain data."""
    try:
        return _Unpickler(io.BytesIO(data)).load()
    except WireError:
        raise
    except Exception as exc:  # truncated or malformed: also not something to act on
        raise WireError(f'a message could not be decoded: {type(exc).__name__}: {exc}') from None


def dumps(obj) -> bytes:
    """Encode plain data for another party (the inverse of `loads`)."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


_installed = False


def install() -> None:
    """Make MPyC's runtime decode every received object and share array with `loads`."""
    global _installed
    import mpyc.runtime
    mpyc.runtime.pickle = SimpleNamespace(dumps=pickle.dumps, loads=loads,
                                          HIGHEST_PROTOCOL=pickle.HIGHEST_PROTOCOL)
    _installed = True


def installed() -> bool:
    return _installed
