"""One data owner's table: read, check and encode it locally, before anything leaves the party.

Every check raises `InputError`, whose message names the file and the column, and whose
`public` reason is the short, data-free text that may be told to the other parties.
"""

import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpclab.fixedpoint import FixedPointFormat, FixedPointRangeError

__all__ = ['InputError', 'PartyTable', 'load_party_table', 'normalize_id']


class InputError(ValueError):
    """A party's own input is unusable; `public` is what the other parties may be told."""

    def __init__(self, message, public='input check failed'):
        super().__init__(message)
        self.public = public


def normalize_id(value):
    """Identifier as text: Unicode NFC, surrounding white space removed.

    Both owners must spell an identifier the same way for it to match; normalising here
    makes e.g. a decomposed 'é' and a composed 'é' the same person.
    """
    return unicodedata.normalize('NFC', str(value)).strip()


@dataclass
class PartyTable:
    """A validated table of one owner: identifiers, feature names, exact fixed-point encodings."""

    source: str
    id_column: str
    ids: list
    columns: list
    encoded: np.ndarray          # (n_rows, n_cols) object array of Python ints
    fmt: FixedPointFormat
    scaling: dict = field(default_factory=dict)   # column -> (min, max) when min-max scaled

    @property
    def n_rows(self):
        return len(self.ids)


def _read(source, id_column):
    if isinstance(source, pd.DataFrame):
        df = source.copy()
        if id_column in df.columns:
            df[id_column] = df[id_column].map(lambda v: v if pd.isna(v) else str(v))
        return df, '<DataFrame>'
    name = str(source)
    try:
        # Identifiers are text: '007' and '7' are different people.
        df = pd.read_csv(source, dtype={id_column: str}, keep_default_na=True)
    except FileNotFoundError:
        raise InputError(f'{name}: file not found', 'input file not found') from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f'{name}: cannot read as CSV: {reason}', 'input file unreadable') from None
    return df, name


def _check_ids(df, name, id_column):
    if id_column not in df.columns:
        raise InputError(f'{name}: no identifier column {id_column!r} (columns: {list(df.columns)})',
                         'identifier column missing')
    raw = df[id_column]
    missing = raw.isna().to_numpy()
    ids = ['' if m else normalize_id(v) for v, m in zip(raw, missing)]
    empty = [i for i, v in enumerate(ids) if v == '']
    if empty:
        raise InputError(f'{name}: column {id_column!r}: {len(empty)} missing or empty identifier(s), '
                         f'first at data row {empty[0] + 1}', 'missing or empty identifiers')
    seen = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise InputError(f'{name}: column {id_column!r}: duplicate identifier at data rows '
                             f'{seen[v] + 1} and {i + 1}', 'duplicate identifiers')
        seen[v] = i
    return ids


def _check_features(df, name, columns):
    if not columns:
        raise InputError(f'{name}: no feature columns besides the identifier', 'no feature columns')
    values = np.empty((len(df), len(columns)), dtype=float)
    for j, col in enumerate(columns):
        s = df[col]
        if not pd.api.types.is_numeric_dtype(s):
            numeric = pd.to_numeric(s, errors='coerce')
            bad = numeric.isna() & s.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f'{name}: column {col!r}: non-numeric value at data row {row + 1} '
                                 f'(encode categories as 0/1 columns first)', 'non-numeric feature')
            s = numeric
        v = s.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            kind = 'missing (NaN)' if np.isnan(v[row]) else 'infinite'
            raise InputError(f'{name}: column {col!r}: {kind} value at data row {row + 1}',
                             'missing or infinite feature values')
        values[:, j] = v
    return values


def _minmax(values, columns):
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant column becomes all zeros
    scaling = {c: (float(a), float(b)) for c, a, b in zip(columns, lo, hi)}
    return (values - lo) / span, scaling


def load_party_table(source, id_column, fmt=None, columns=None, scale=None, exclude=()):
    """Read and check one owner's table; nothing here talks to another party.

    Parameters
    ----------
    source : path or pandas.DataFrame
    id_column : str
        Column holding the identifiers; they are compared as normalised text.
    fmt : FixedPointFormat
        Input encoding; every value must satisfy ``|x| < 2**fmt.int_bits``.
    columns : list of str, optional
        Feature columns to use (default: every column except the identifier).
    scale : {None, 'minmax'}
        'minmax' maps each column to [0, 1] locally, with this owner's own minimum and maximum.
    exclude : iterable of str
        Columns to leave out (names this table does not have are ignored: the other owner's).

    Returns
    -------
    PartyTable

    Raises
    ------
    InputError
        Naming the file and the column, on any unusable input.
    """
    fmt = fmt or FixedPointFormat()
    df, name = _read(source, id_column)
    if len(df) == 0:
        raise InputError(f'{name}: no data rows', 'empty table')
    ids = _check_ids(df, name, id_column)
    if columns is None:
        columns = [c for c in df.columns if c != id_column and c not in set(exclude)]
    else:
        columns = list(columns)
        absent = [c for c in columns if c not in df.columns]
        if absent:
            raise InputError(f'{name}: no column {absent[0]!r} (columns: {list(df.columns)})',
                             'requested column missing')
        if id_column in columns:
            raise InputError(f'{name}: the identifier column {id_column!r} cannot be a feature',
                             'identifier used as feature')
    bad_names = [c for c in columns if not isinstance(c, str) or not c.strip()]
    if bad_names:
        raise InputError(f'{name}: unnamed column {bad_names[0]!r}', 'unnamed column')
    values = _check_features(df, name, columns)
    scaling = {}
    if scale == 'minmax':
        values, scaling = _minmax(values, columns)
    elif scale not in (None, 'none'):
        raise ValueError(f'unknown scaling {scale!r}')
    encoded = np.empty(values.shape, dtype=object)
    for j, col in enumerate(columns):
        try:
            encoded[:, j] = fmt.encode(values[:, j], what=f'{name}: column {col!r}')
        except FixedPointRangeError as exc:
            raise InputError(str(exc), 'value outside the fixed-point range') from None
    return PartyTable(name, id_column, ids, [str(c) for c in columns], encoded, fmt, scaling)
