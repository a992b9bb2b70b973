"""Secure sum of the parties' indices plus one, then --rounds sequential openings.

Prints 'sum = m(m+1)/2' and 'rounds time = T' (seconds spent in the openings), to show
the cost of latency: each opening needs at least one message over a link.
"""

import argparse
import time

from mpyc.runtime import mpc


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=10)
    args = parser.parse_args()
    secint = mpc.SecInt(32)
    await mpc.start()
    x = mpc.sum(mpc.input(secint(mpc.pid + 1)))
    total = await mpc.output(x)
    t = time.perf_counter()
    for _ in range(args.rounds):
        x = x + await mpc.output(x)  # the next opening depends on this one
    elapsed = time.perf_counter() - t
    assert await mpc.output(x) == total << args.rounds
    await mpc.shutdown()
    print(f'sum = {total}', flush=True)
    print(f'rounds time = {elapsed:.4f}', flush=True)


if __name__ == '__main__':
    mpc.run(main())
