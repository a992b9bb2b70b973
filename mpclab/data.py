"""One data owner's table: read, check and encode it locally, before anything leaves the party.

Every check raises `InputError`, whose message names the file, the column and the data row
(the n-th line after the header, blank lines counted), and whose `public` reason is the
short, data-free text that may be told to the other parties.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mpclab.fixedpoint import FixedPointFormat, FixedPointRangeError

__all__ = ['InputError', 'PartyTable', 'load_party_table', 'normalize_id', 'ID_NORMALIZATIONS',
           'detect_separator']

ID_NORMALIZATIONS = ('none', 'casefold', 'strip-zeros')
SEPARATORS = (',', ';', '\t', '|')
_DECIMAL_COMMA = re.compile(r'^\s*[-+]?\d+,\d+\s*$')


class InputError(ValueError):
    """A party's own input is unusable; `public` is what the other parties may be told."""

    def __init__(self, message: str, public: str = 'input check failed'):
        super().__init__(message)
        self.public = public


def normalize_id(value, how: str = 'none') -> str:
    """Identifier as text: Unicode NFC, surrounding white space removed, then `how`.

    Both owners must spell an identifier the same way for it to match; normalising here
    makes e.g. a decomposed 'é' and a composed 'é' the same person.  ``how`` is agreed:
    'casefold' also ignores case ('AB12' = 'ab12'), 'strip-zeros' drops leading zeros
    ('007' = '7'; '000' stays '0').
    """
    text = unicodedata.normalize('NFC', str(value)).strip()
    if how == 'casefold':
        return text.casefold()
    if how == 'strip-zeros':
        return text.lstrip('0') or ('0' if text else '')
    if how != 'none':
        raise ValueError(f'unknown identifier normalisation {how!r}; one of {ID_NORMALIZATIONS}')
    return text


@dataclass
class PartyTable:
    """A validated table of one owner: identifiers, feature names, exact fixed-point encodings."""

    source: str
    id_column: str
    ids: list
    columns: list
    encoded: np.ndarray          # (n_rows, n_cols) ints: int64, or Python ints beyond 63 bits
    fmt: FixedPointFormat
    scaling: dict = field(default_factory=dict)   # column -> (min, max) when min-max scaled
    separator: str = ','
    dropped: list = field(default_factory=list)   # requested drops this table had

    @property
    def n_rows(self) -> int:
        return len(self.ids)


def detect_separator(header: str, lines: list[str]) -> str:
    """The field separator of a CSV file, from its header line and a few more lines.

    The candidate (, ; tab |) that occurs in the header and equally often in every following
    line wins; ',' for a one-column file.
    """
    best, best_count = ',', 0
    for sep in SEPARATORS:
        count = header.count(sep)
        if count and all(line.count(sep) == count for line in lines if line.strip()) \
                and count > best_count:
            best, best_count = sep, count
    return best


def _read_text(source, encoding: str) -> tuple[bytes, str, str]:
    """The file's bytes, the codec they decode with (checked: a bad byte is named here, by
    line) and the file's name."""
    name = str(source)
    codec = 'utf-8-sig' if encoding.lower().replace('_', '-') in ('utf-8', 'utf8') else encoding
    try:
        with open(source, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(f'{name}: file not found', 'input file not found') from None
    except IsADirectoryError:
        raise InputError(f'{name}: is a directory, not a file', 'input file unreadable') from None
    except OSError as exc:
        raise InputError(f'{name}: cannot read: {exc.strerror or exc}', 'input file unreadable') from None
    try:
        raw.decode(codec)
        return raw, codec, name
    except LookupError:
        raise InputError(f'{name}: unknown encoding {encoding!r}', 'unknown file encoding') from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b'\n') + 1
        raise InputError(f'{name}: not {encoding} text (byte 0x{raw[exc.start]:02x} on line {line}); '
                         f'give the file\'s encoding, e.g. latin-1', 'input file not in the agreed '
                         'encoding') from None


def _first_lines(raw: bytes, codec: str, n: int) -> list[str]:
    """The first n lines of the decoded file (the header and a sample for the separator)."""
    end = -1
    for _ in range(n):
        end = raw.find(b'\n', end + 1)
        if end < 0:
            end = len(raw)
            break
    try:
        return raw[:end].decode(codec).splitlines()
    except UnicodeDecodeError:   # an encoding in which b'\n' is not a whole character
        return raw.decode(codec).splitlines()[:n]


def _read(source, id_column: str, sep: str | None, encoding: str, decimal: str):
    """The table as text columns, its name and its separator."""
    if isinstance(source, pd.DataFrame):
        if len(set(map(str, source.columns))) != len(source.columns):
            dup = _duplicates([str(c) for c in source.columns])
            raise InputError(f'<DataFrame>: duplicate column names {dup}', 'duplicate column names')
        df = source.copy()
        if id_column in df.columns:
            df[id_column] = df[id_column].map(lambda v: v if pd.isna(v) else str(v))
        return df, '<DataFrame>', ','
    raw, codec, name = _read_text(source, encoding)
    lines = _first_lines(raw, codec, 21)
    if not lines or not lines[0].strip():
        raise InputError(f'{name}: empty file, no header line', 'empty table')
    if sep == r'\t':
        sep = '\t'
    sep = sep or detect_separator(lines[0], lines[1:20])
    if sep == decimal:
        raise InputError(f'{name}: the separator {sep!r} is also the decimal mark', 'bad CSV format')
    header = next(csv.reader([lines[0]], delimiter=sep))
    dup = _duplicates(header)
    if dup:
        raise InputError(f'{name}: duplicate column names {dup} in the header', 'duplicate column names')
    try:
        # Identifiers are text: '007' and '7' are different people.  Blank lines are kept
        # (as missing values) so that row numbers are the file's data rows.
        # From the bytes: a str in a StringIO would take four bytes a character (about 1.2 GB
        # for a million rows of 16 columns).
        df = pd.read_csv(io.BytesIO(raw), sep=sep, decimal=decimal, dtype={id_column: str},
                         encoding=codec, keep_default_na=True, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f'{name}: cannot read as CSV: {reason}', 'input file unreadable') from None
    # A blank line at the very end is no data row.
    while len(df) and df.iloc[-1].isna().all():
        df = df.iloc[:-1]
    return df, name, sep


def _duplicates(names: list[str]) -> list[str]:
    seen, dup = set(), []
    for n in names:
        if n in seen and n not in dup:
            dup.append(n)
        seen.add(n)
    return dup


def _check_ids(df: pd.DataFrame, name: str, id_column: str, how: str) -> list[str]:
    if id_column not in df.columns:
        raise InputError(f'{name}: no identifier column {id_column!r} (columns: {list(df.columns)})',
                         'identifier column missing')
    raw = df[id_column]
    missing = raw.isna().to_numpy()
    ids = ['' if m else normalize_id(v, how) for v, m in zip(raw, missing)]
    empty = [i for i, v in enumerate(ids) if v == '']
    if empty:
        raise InputError(f'{name}: column {id_column!r}: {len(empty)} missing or empty identifier(s), '
                         f'first at data row {empty[0] + 1}', 'missing or empty identifiers')
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            same = '' if how == 'none' else f' (the same after {how} normalisation)'
            raise InputError(f'{name}: column {id_column!r}: duplicate identifier at data rows '
                             f'{seen[v] + 1} and {i + 1}{same}', 'duplicate identifiers')
        seen[v] = i
    return ids


def _check_features(df: pd.DataFrame, name: str, columns: list[str]) -> np.ndarray:
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
                value = str(s.iloc[row])
                hint = (' (a decimal comma? give the decimal mark ,)' if _DECIMAL_COMMA.match(value)
                        else ' (encode categories as 0/1 columns first)')
                raise InputError(f'{name}: column {col!r}: non-numeric value at data row {row + 1}'
                                 f'{hint}', 'non-numeric feature')
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


def _check_binary(values: np.ndarray, name: str, col: str) -> None:
    """A 0/1 column (a classification target): every value 0 or 1, and both present."""
    bad = np.flatnonzero((values != 0) & (values != 1))
    if len(bad):
        raise InputError(f'{name}: column {col!r}: label {values[bad[0]]:g} at data row '
                         f'{bad[0] + 1} is not 0 or 1', 'target labels not 0/1')
    if len(np.unique(values)) < 2:
        raise InputError(f'{name}: column {col!r} holds only {values[0]:g}s: a classifier needs '
                         f'both classes', 'target labels of one class only')


def _minmax(values: np.ndarray, columns: list[str]):
    lo, hi = values.min(axis=0), values.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)  # a constant column becomes all zeros
    scaling = {c: (float(a), float(b)) for c, a, b in zip(columns, lo, hi)}
    return (values - lo) / span, scaling


def load_party_table(source, id_column: str, fmt: FixedPointFormat | None = None,
                     columns: list[str] | None = None, scale: str | None = None,
                     exclude=(), *, sep: str | None = None, encoding: str = 'utf-8',
                     decimal: str = '.', id_normalize: str = 'none',
                     binary_columns=()) -> PartyTable:
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
    scale : {None, 'none', 'minmax'}
        'minmax' maps each column to [0, 1] locally, with this owner's own minimum and maximum.
    exclude : iterable of str
        Columns to leave out (names this table does not have are ignored: the other
        owner's; `PartyTable.dropped` lists the ones it had).
    sep, encoding, decimal : str
        The file's CSV format; `sep` None detects it from the header (, ; tab |).
    id_normalize : {'none', 'casefold', 'strip-zeros'}
        See `normalize_id`.
    binary_columns : iterable of str
        Columns that must hold 0/1 labels of both classes (checked before any scaling).

    Returns
    -------
    PartyTable

    Raises
    ------
    InputError
        Naming the file, the column and the data row, on any unusable input.
    """
    fmt = fmt or FixedPointFormat()
    df, name, separator = _read(source, id_column, sep, encoding, decimal)
    if len(df) == 0:
        raise InputError(f'{name}: no data rows', 'empty table')
    ids = _check_ids(df, name, id_column, id_normalize)
    exclude = list(exclude)
    dropped = [c for c in exclude if c in df.columns]
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
    bad_names = [c for c in columns if not isinstance(c, str) or not c.strip()
                 or c.startswith('Unnamed: ')]
    if bad_names:
        raise InputError(f'{name}: unnamed column {bad_names[0]!r}', 'unnamed column')
    values = _check_features(df, name, columns)
    for j, col in enumerate(columns):
        if col in set(binary_columns):
            _check_binary(values[:, j], name, col)
    scaling = {}
    if scale == 'minmax':
        values, scaling = _minmax(values, columns)
    elif scale not in (None, 'none'):
        raise ValueError(f'unknown scaling {scale!r}')
    # int64 where the format fits (8 bytes a value, not ~36 as Python ints: 0.5 GB at 1M x 15)
    encoded = np.empty(values.shape, dtype=np.int64 if fmt.value_bits <= 63 else object)
    for j, col in enumerate(columns):
        try:
            encoded[:, j] = fmt.encode(values[:, j], what=f'{name}: column {col!r}')
        except FixedPointRangeError as exc:
            raise InputError(str(exc), 'value outside the fixed-point range') from None
    return PartyTable(name, id_column, ids, [str(c) for c in columns], encoded, fmt, scaling,
                      separator, dropped)
