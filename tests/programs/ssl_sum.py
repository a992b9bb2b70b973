"""Secure sum of the parties' indices plus one: prints 'sum = m(m+1)/2'.

Used by tests with real separate party processes, e.g. with --ssl or through relays.
"""

from mpyc.runtime import mpc


async def main():
    secint = mpc.SecInt(32)
    await mpc.start()
    total = await mpc.output(mpc.sum(mpc.input(secint(mpc.pid + 1))))
    await mpc.shutdown()
    print(f'sum = {total}', flush=True)


if __name__ == '__main__':
    mpc.run(main())
