"""What the programs share: each owner's own table, the join, sizes, the split, summaries.

Every function here takes typed `mpclab.options.Options` (never a command line) and turns
the library's exceptions into `ProtocolError`s whose messages use the flags a user types.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np
from mpyc.runtime import mpc

from mpclab.data import InputError, PartyTable, load_party_table
from mpclab.fixedpoint import FixedPointFormat
from mpclab.join import JoinParameters, Roles, secure_join, slot_layout
from mpclab.options import Options, flag
from mpclab.parallel import Pool
from mpclab.session import EXIT_INPUT, ProtocolError, PublicError, Session
from mpclab.table import SecretTable
from mpclab.units import check_scaling

__all__ = ['Job', 'own_tables', 'join', 'check_sizes', 'evaluation_split',
           'model_summary', 'target_check', 'warn', 'model_receivers']

#: a warning when the intersection is below this fraction of the smaller table
SMALL_INTERSECTION = 0.01


def warn(message: str) -> None:
    print(f'mpclab party {mpc.pid}: warning: {message}', file=sys.stderr, flush=True)


@dataclass
class Job:
    """One party's run of a program: its options, session, roles and own tables.

    `tables` has one entry per owner, in owner order: this party's own table, None where
    another party owns it (empty until `prepare`).
    """

    options: Options
    session: Session
    roles: Roles
    tables: list = field(default_factory=list)
    progress: object = None
    leaks: list = field(default_factory=list)   # opt-in disclosures chosen for this run
    fmt: FixedPointFormat | None = None          # the agreed input format (after `agree_format`)
    context: dict = field(default_factory=dict)  # what a program's `prepare` keeps for its run

    @property
    def pid(self) -> int:
        return mpc.pid

    @property
    def own(self) -> list[PartyTable]:
        """This party's own tables (one at an owner, none elsewhere; all with one party)."""
        return [t for t in self.tables if t is not None]


def table_source(options: Options, roles: Roles, k: int) -> tuple[str | None, str]:
    """(path, flag) of owner k's table at that owner: --data, or the two-owner --left/--right."""
    data = options.data
    if data.data or len(roles.owners) > 2:
        return data.data, 'data'
    side = ('left', 'right')[k]
    return getattr(data, side), side


def missing_table(roles: Roles, k: int, spelling: str) -> InputError:
    owner = roles.owners[k]
    if spelling == 'data':
        return InputError(f'party {owner} owns table {k} of {len(roles.owners)}: pass --data CSV',
                          'no --data table given')
    return InputError(f'party {owner} holds the {spelling} table: pass {flag(spelling)} CSV',
                      f'no {flag(spelling)} table given')


def own_tables(options: Options, roles: Roles, pid: int, binary_target: bool = False):
    """Load this party's own table(s): a list with one entry per owner, None where another
    party owns it.

    Raises InputError (reported to everyone in the agreement round).
    """
    data = options.data
    target = options.split.target if 'split' in options else None
    fmt = options.input_format()   # with --int-bits auto: the widest, until the bits are agreed
    tables = [None] * len(roles.owners)
    for k, owner in enumerate(roles.owners):
        if pid != owner:
            continue
        path, spelling = table_source(options, roles, k)
        if not path:
            raise missing_table(roles, k, spelling)
        table = load_party_table(
            path, data.id, fmt, scale=data.scale, exclude=data.drop_columns, sep=data.sep,
            encoding=data.encoding, decimal=data.decimal, id_normalize=data.id_normalize,
            binary_columns=(target,) if binary_target and target else ())
        if 'output' in options and data.scale == 'minmax' and \
                options.output.model_units == 'original':
            check_scaling(table)   # the conversion's public bounds, on this owner's own columns
        tables[k] = table
    return tables


def needed_int_bits(table: PartyTable) -> int:
    """The fewest integer bits I with |x| < 2**I for every value of a table (as encoded)."""
    largest = int(np.abs(table.encoded).max()) if table.encoded.size else 0
    return max(0, largest.bit_length() - table.fmt.frac_bits)


def prepare(job: Job) -> None:
    """This party's own tables, read and checked before connecting (raises InputError)."""
    job.tables = own_tables(job.options, job.roles, job.pid,
                            binary_target=job.options.program == 'logistic')


def public_facts(job: Job) -> dict:
    """What this party tells everyone in the agreement round: which of the requested drops it
    made (column names are public anyway), with --int-bits auto the bits its data need, and
    whatever its program's `prepare` put under ``context['public']``."""
    tables = job.own
    facts = {'dropped': [c for t in tables for c in t.dropped], **job.context.get('public', {})}
    if job.options is not None and job.options.security.int_bits == 'auto' and tables:
        facts['int_bits'] = max(needed_int_bits(t) for t in tables)
    return facts


def agree_format(job: Job, facts: list[dict]) -> FixedPointFormat:
    """The input format of the run: the agreed --int-bits, or with auto the largest proposal.

    Sets it on this party's own tables (their encodings stay: only the bound they are known
    to satisfy changes) and on the job.
    """
    options = job.options
    int_bits = options.security.int_bits
    if int_bits == 'auto':
        int_bits = max([f['int_bits'] for f in facts if f.get('int_bits') is not None], default=0)
        if options.data.scale != 'minmax':   # with min-max scaling it is 1, known to all
            job.leaks.append(f'--int-bits auto: every party learns I = {int_bits}, the power of '
                             f'two above the largest |value| of any owner (a fixed --int-bits '
                             f'reveals nothing)')
    fmt = options.input_format(int_bits)
    for table in job.own:
        table.fmt = fmt
    job.fmt = fmt
    return fmt


def check_drop_columns(options: Options, facts: list[dict]) -> None:
    """Every name in --drop-columns must be a column of some table."""
    had = {c for f in facts for c in f.get('dropped', ())}
    absent = [c for c in options.data.drop_columns if c not in had]
    if absent:
        raise PublicError(f'--drop-columns: no table has a column {absent[0]!r}')


def join_parameters(options: Options, fmt: FixedPointFormat) -> JoinParameters:
    s = options.security
    params = JoinParameters(fmt, key_bits=s.key_bits, stat_sec=s.stat_sec)
    try:
        slot_layout(1, params)
    except ValueError as exc:
        raise ProtocolError(f'{exc} (lower --stat-sec, --int-bits or --frac-bits, or raise '
                            f'--key-bits)') from None
    return params


def joined_columns(owner_columns) -> tuple[list[str], str]:
    """Every owner's columns in owner order, and how to say "in none of the tables"."""
    columns = [c for cols in owner_columns for c in cols]
    return columns, 'neither table' if len(owner_columns) == 2 else 'no table'


def target_check(target: str):
    """A check, run on the public column names before any data moves, that the target exists."""
    def check(*owner_columns):
        columns, nowhere = joined_columns(owner_columns)
        if target not in columns:
            raise PublicError(f'--target {target!r} is in {nowhere} (columns: {columns})')
        if len(columns) < 2:
            raise PublicError('no feature columns besides the target')
    return check


async def join(job: Job, check_columns=None, rows_to: int | None = None):
    """The secure inner join of the owners' tables; every party calls it.

    `rows_to`: an owner that learns which of its rows are joined (for predictions).
    """
    options = job.options
    split = None
    if 'split' in options and options.split.split == 'seeded':
        split = (options.split.seed, options.split.test_fraction)
    # This party's own choice of where its bulk work runs (never agreed, never sent).
    pool = None
    if options.run.dask:
        try:
            pool = Pool(dask=options.run.dask, inline=mpc.options.no_async)
        except (OSError, RuntimeError) as exc:   # unreachable, or dask not installed
            raise ProtocolError(f'{flag("dask")} {options.run.dask}: {exc}') from None
    try:
        result = await secure_join(job.tables, join_parameters(options, job.fmt), job.session,
                                   job.roles, split=split, check_columns=check_columns,
                                   progress=job.progress, rows_to=rows_to, pool=pool)
    except ProtocolError:
        raise
    except ValueError as exc:   # the join's own, data-free errors
        raise PublicError(str(exc)) from None
    finally:
        if pool is not None:
            pool.close()
    smaller = min(result.owner_rows)
    m = result.intersection_size
    if m == 0:
        warn('the intersection is empty: check that every table spells the identifiers alike '
             '(see --id-normalize)')
    elif m < SMALL_INTERSECTION * smaller:
        warn(f'only {m} of {smaller} rows of the smaller table are in the intersection: check '
             f'that every table spells the identifiers alike (see --id-normalize)')
    return result


def check_sizes(result, options: Options) -> int:
    """Stop before training on an intersection or test set too small; returns n_test."""
    m = result.intersection_size
    split = options.split
    if m == 0:
        raise PublicError('the intersection is empty: nothing to train on')
    if m < split.min_rows:
        raise PublicError(f'the intersection has {m} rows, fewer than --min-rows '
                            f'{split.min_rows}: too few people to train on safely')
    if split.test_fraction == 0:
        return 0
    n_test = result.n_test if split.split == 'seeded' else math.floor(m * split.test_fraction + 0.5)
    if n_test < split.min_test_rows:
        raise PublicError(f'the test set would have {n_test} of the {m} joined rows, fewer than '
                            f'--min-test-rows {split.min_test_rows}: raise --test-fraction, or '
                            f'train and report on all rows with --test-fraction 0')
    if n_test >= m:
        raise PublicError(f'the test set would take all {m} joined rows: lower --test-fraction')
    return n_test


def evaluation_split(result, options: Options) -> tuple[SecretTable, SecretTable]:
    """(train, test): the first n_test rows of the secret order; with no test rows both are
    the whole table."""
    n_test = check_sizes(result, options)
    return result.table.split(n_test=n_test)


def split_leaks(options: Options) -> list[str]:
    if 'split' in options and options.split.split == 'seeded':
        return ['--split seeded: each owner learns how many of its own rows whose seeded hash '
                'falls below the test fraction are in the intersection (the test-set size), '
                'and the helper which pseudonyms are test rows']
    return []


def model_receivers(options: Options, n_parties: int) -> list[int]:
    """The parties that learn the model: --model-to, default all; none for a secret model."""
    if options.output.secret_model:
        return []
    to = options.output.model_to
    return list(range(n_parties)) if to is None else list(to)


def size_summary(result) -> dict:
    """Every owner's table size (the two-owner names too) and the intersection size."""
    return {'rows_left': result.rows_left, 'rows_right': result.rows_right,
            'owner_rows': list(result.owner_rows), 'intersection_size': result.intersection_size}


def sizes_line(summary: dict) -> str:
    """'joined 40 x 30 rows: 20 in common' (every owner's rows)."""
    rows = summary.get('owner_rows') or [summary['rows_left'], summary['rows_right']]
    m = summary['intersection_size']
    common = 'the intersection is empty' if m == 0 else f'{m} in common'
    return f'joined {" x ".join(map(str, rows))} rows: {common}'


def model_summary(result, train, test, options: Options, model) -> dict:
    """The summary fields every model program reports."""
    return {**size_summary(result), 'columns': result.table.columns,
            'target': options.split.target, 'scale': options.data.scale,
            'train_rows': train.n_rows, 'test_rows': test.n_rows if test is not train else 0,
            'split': options.split.split, 'n_iter': model.n_iter_}


def join_summary(result) -> dict:
    return {**size_summary(result), 'columns': result.table.columns}


__all__ += ['EXIT_INPUT', 'public_facts', 'check_drop_columns', 'join_parameters',
            'split_leaks', 'join_summary', 'size_summary', 'sizes_line', 'table_source',
            'missing_table', 'joined_columns']
