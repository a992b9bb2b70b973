"""Secure inner join of two owners' tables, as an MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps):

    python protocols/inner_join.py -M3 --left data/insurer.csv --right data/hospital.csv \
        --id patient_id --json join.json

Three hosts: every party runs the same program with the same -P list, its own -I and only
its own file (the helper passes no file):

    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 0 \
        --left insurer.csv --id patient_id --ssl
    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 1 \
        --right hospital.csv --id patient_id --ssl
    python protocols/inner_join.py -P hostA:11365 -P hostB:11365 -P hostH:11365 -I 2 \
        --id patient_id --ssl

Only sizes are revealed, unless --reveal-to I --save-joined PATH opens the joined table to
party I (testing and debugging only: it discloses the joined records).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from mpyc.runtime import mpc  # noqa: E402

from mpclab.programs import finish, start_and_join, warn  # noqa: E402
from mpclab.session import add_common_arguments, argument_parser, main, ProtocolError  # noqa: E402


def parser():
    p = argument_parser('Secure inner join of two tables via a helper party (MPyC program).')
    add_common_arguments(p)
    g = p.add_argument_group('revealing (testing and debugging only)')
    g.add_argument('--reveal-to', type=int, metavar='I', help='open the joined table to party I')
    g.add_argument('--save-joined', metavar='CSV', help='where party I writes the opened table')
    return p


def check_reveal(args):
    if (args.reveal_to is None) != (args.save_joined is None):
        raise ProtocolError('--reveal-to and --save-joined go together')
    if args.reveal_to is not None and not 0 <= args.reveal_to < len(mpc.parties):
        raise ProtocolError(f'--reveal-to {args.reveal_to}: no such party')


async def run(args):
    session, roles, result = await start_and_join(args, 'inner_join', {'reveal_to': args.reveal_to},
                                                  validate=lambda: check_reveal(args))
    table = result.table
    if args.reveal_to is not None:
        with session.phase('reveal'):
            df = await table.reveal(receivers=[args.reveal_to])
        if df is not None:
            warn(f'party {mpc.pid} writes the opened joined table to {args.save_joined}: '
                 f'this reveals the joined records')
            df.to_csv(args.save_joined, index=False)
    summary = {'rows_left': result.rows_left, 'rows_right': result.rows_right,
               'intersection_size': result.intersection_size, 'columns': table.columns,
               'parties': len(mpc.parties), 'helper': roles.helper}
    summary = await finish(session, args, summary)
    if mpc.pid == 0:
        print(f'joined {result.rows_left} x {result.rows_right} rows: '
              f'{result.intersection_size} in common, {len(table.columns)} columns; '
              f'{sum(summary["timings"].values()):.1f} s')


if __name__ == '__main__':
    main(run, parser())
