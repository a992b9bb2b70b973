"""What the protocol programs in protocols/ share: own input, start, join, summary."""

import sys

from mpyc.runtime import mpc

from mpclab.data import InputError, load_party_table
from mpclab.join import JoinParameters, Roles, secure_inner_join, slot_layout
from mpclab.session import ProtocolError, Session, fixed_point_format, write_json

__all__ = ['join_options', 'start_and_join', 'finish', 'target_check', 'evaluation_split',
           'model_summary', 'print_model']


def join_options(args):
    """The options every party must agree on for the join (no file names, no data)."""
    return {'id': args.id, 'scale': args.scale, 'frac_bits': args.frac_bits,
            'int_bits': args.int_bits, 'fxp_bits': args.fxp_bits, 'key_bits': args.key_bits,
            'stat_sec': args.stat_sec, 'join_helper': args.join_helper,
            'n_parties': len(mpc.parties)}


def _own_tables(args, roles, fmt):
    """Load this party's own table(s); errors are kept to report after connecting."""
    scale = None if args.scale == 'none' else args.scale
    tables = {}
    for side, owner, path in (('left', roles.left, args.left), ('right', roles.right, args.right)):
        if mpc.pid != owner:
            continue
        if not path:
            raise InputError(f'party {owner} holds the {side} table: pass --{side} CSV',
                             f'no --{side} table given')
        table = load_party_table(path, args.id, fmt, scale=scale,
                                 exclude=getattr(args, 'drop_columns', None) or ())
        _check_labels(table, getattr(args, 'binary_target', None))
        tables[side] = table
    return tables.get('left'), tables.get('right')


def _check_labels(table, target):
    """A classification target must hold 0/1 labels; checked by its owner before sending."""
    if target is None or target not in table.columns:
        return
    j = table.columns.index(target)
    one = 1 << table.fmt.frac_bits
    bad = [i for i, v in enumerate(table.encoded[:, j]) if v not in (0, one)]
    if bad:
        raise InputError(f'{table.source}: column {target!r}: label at data row {bad[0] + 1} is '
                         f'not 0 or 1', 'target labels not 0/1')


async def start_and_join(args, name, public_options, split=None, check_columns=None,
                         validate=None):
    """Check own input, connect, agree, join.  Returns (session, roles, JoinResult).

    Every problem found before connecting (bad input, bad option values, a failing
    `validate()`) is reported through the agreement round, so that all parties stop together
    with a message saying which party failed and why.  Only a wrong number of parties stops
    at once: then there is no one to agree with.
    """
    n = len(mpc.parties)
    roles = Roles.for_parties(n)   # raises at once for 2 parties: nobody to agree with
    session = Session(name, {**join_options(args), **public_options}, timeout=args.timeout)
    left, right, error = None, None, None
    try:
        roles = Roles.for_parties(n, args.join_helper)
        if not 0 <= getattr(args, 'test_fraction', 0) < 1:
            raise ProtocolError('--test-fraction must lie in [0, 1)')
        for i in getattr(args, 'model_to', None) or []:
            if not 0 <= i < n:
                raise ProtocolError(f'--model-to {i}: no such party')
        if validate is not None:
            validate()
        fmt = fixed_point_format(args)
        try:
            params = JoinParameters(fmt, key_bits=args.key_bits, stat_sec=args.stat_sec)
        except ValueError as exc:
            raise ProtocolError(f'--stat-sec: {exc}') from None
        slot_layout(1, params)   # do the slots fit the key?
        with session.phase('load'):
            left, right = _own_tables(args, roles, fmt)
    except InputError as exc:
        error = exc
    except ProtocolError as exc:
        error = InputError(str(exc), f'invalid options ({exc})')
    await session.start(input_error=error)
    result = await secure_inner_join(left, right, params, session, roles, split=split,
                                     check_columns=check_columns)
    return session, roles, result


def target_check(target):
    """A check, run on the public schema before any data moves, that the target exists."""
    def check(columns_left, columns_right):
        if target not in columns_left + columns_right:
            raise ProtocolError(f'target column {target!r} is in neither table '
                                f'(columns: {columns_left + columns_right})')
        if len(columns_left) + len(columns_right) < 2:
            raise ProtocolError('no feature columns besides the target')
    return check


def evaluation_split(result, args):
    """(train, test) tables: seeded split from the join, or a block of the secret order."""
    try:
        if args.seed is not None:
            return result.table.split(n_test=result.n_test)
        return result.table.split(args.test_fraction)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


def model_summary(result, train, test, args, model):
    """The summary fields every model program reports."""
    return {'rows_left': result.rows_left, 'rows_right': result.rows_right,
            'intersection_size': result.intersection_size, 'columns': result.table.columns,
            'target': args.target, 'scale': args.scale, 'train_rows': train.n_rows,
            'test_rows': test.n_rows if test is not train else 0, 'n_iter': model.n_iter_}


def print_model(summary, width=24):
    """Print the model, at every party that learned it."""
    if 'coef' not in summary:
        return
    print(f'model learned by party {mpc.pid}:')
    for name, value in [*summary['coef'].items(), ('intercept', summary['intercept'])]:
        print(f'  {name:>{width}} {value: .6f}')


async def finish(session, args, summary):
    """Collect bytes sent, shut down, and let party 0 print and save the summary."""
    summary['bytes_sent'] = await session.all_bytes_sent()
    await session.stop()
    summary['timings'] = {k: round(v, 4) for k, v in session.timings.items()}
    if mpc.pid == 0 and args.json:
        write_json(args.json, summary)
    return summary


def warn(message):
    print(f'WARNING: {message}', file=sys.stderr)


__all__ += ['warn', 'ProtocolError']
