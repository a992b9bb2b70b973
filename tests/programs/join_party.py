"""Run the secure join as one party and print, as one JSON line, what the tests look at:
this party's security ledger, the join's public figures, the progress it reported, and
whether MPyC's event loop kept running between chunks of bulk work (a task that wakes every
`--tick` seconds counts its wake-ups and the longest time the loop kept it waiting).  With
`--ahead K` the helper makes its masks at most K chunks ahead of their return (the default is
`join.FACTORS_AHEAD`), reports the most chunks it ever had made beyond those returned, and
`--open` adds the joined table, opened to every party, as lists of rows.

    python tests/programs/join_party.py -M1 --left L.csv --right R.csv --chunk 8
    python tests/programs/join_party.py -M3 --left L.csv --right R.csv --chunk 2 --ahead 1 --open
"""

import argparse
import asyncio
import json
import time

from mpyc.runtime import mpc

from mpclab import join, security
from mpclab.data import load_party_table
from mpclab.fixedpoint import FixedPointFormat


def watch_the_helpers_window():
    """A list that gets, each time the helper starts masks, how many chunks it has then made
    beyond those already returned (empty at an owner)."""
    ahead, real = [], join._HelperSide._make_ahead

    def make_ahead(side, returned):
        real(side, returned)
        ahead.append(side._made - returned)
    join._HelperSide._make_ahead = make_ahead
    return ahead


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--left')
    ap.add_argument('--right')
    ap.add_argument('--chunk', type=int, default=join.CHUNK_CIPHERTEXTS,
                    help='ciphertexts per chunk of bulk work')
    ap.add_argument('--stat-sec', type=int, default=40)
    ap.add_argument('--int-bits', type=int, default=16)
    ap.add_argument('--tick', type=float, default=0.001, help='seconds between wake-ups')
    ap.add_argument('--ahead', type=int, default=join.FACTORS_AHEAD,
                    help="chunks of the helper's masks made ahead of their return")
    ap.add_argument('--open', action='store_true', help='open the joined table to every party')
    args = ap.parse_args()
    join.CHUNK_CIPHERTEXTS = args.chunk
    join.FACTORS_AHEAD = args.ahead
    ahead = watch_the_helpers_window()
    roles = join.Roles.for_parties(len(mpc.parties))
    fmt = FixedPointFormat(int_bits=args.int_bits)
    params = join.JoinParameters(fmt, stat_sec=args.stat_sec)
    left = load_party_table(args.left, 'id', fmt) if mpc.pid == roles.left else None
    right = load_party_table(args.right, 'id', fmt) if mpc.pid == roles.right else None

    ticks, longest = 0, 0.0

    async def ticker():
        nonlocal ticks, longest
        last = time.perf_counter()
        while True:
            await asyncio.sleep(args.tick)
            now = time.perf_counter()
            ticks, longest = ticks + 1, max(longest, now - last)
            last = now

    events = []

    def progress(stage, done, total):
        events.append([stage, done, total, ticks])

    await mpc.start()
    task = asyncio.ensure_future(ticker()) if not mpc.options.no_async else None
    security.ledger.reset()
    result = await join.secure_inner_join(left, right, params, roles=roles, progress=progress)
    if task is not None:
        task.cancel()
    joined = (await result.table.reveal()).to_numpy().tolist() if args.open else None
    await mpc.shutdown()
    print(json.dumps({'pid': mpc.pid, 'no_async': mpc.options.no_async,
                      'longest_loop_wait_s': round(longest, 4),
                      'ledger': security.ledger.report(result.paillier_key_bits),
                      'result': {'intersection_size': result.intersection_size,
                                 'mask_bits': result.mask_bits,
                                 'masked_values': result.masked_values,
                                 'masked_ciphertexts': result.masked_ciphertexts,
                                 'paillier_key_bits': result.paillier_key_bits},
                      'progress': events, 'most_made_ahead': max(ahead, default=None),
                      'joined': joined}), flush=True)


if __name__ == '__main__':
    mpc.run(main())
