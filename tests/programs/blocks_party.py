"""Secure signs of 11 values in blocks of 4 among real parties, with `one_at_a_time` and with a
plain loop; party 0 prints, as JSON, whether every earlier block's result was complete when
each block's work started, and the opened signs.

    python tests/programs/blocks_party.py -M3
"""

import json

import numpy as np
from mpyc.runtime import mpc

from mpclab.blocks import RowBlocks, one_at_a_time

VALUES = np.linspace(-2, 2, 11)


def recorder(seen, results):
    def sign(block):
        seen.append([bool(r.share.done()) for r in results])
        r = mpc.np_sgn(block)
        results.append(r)
        return r
    return sign


async def main():
    await mpc.start()
    secfxp = mpc.SecFxp(64, 32)
    x = secfxp.array(VALUES, integral=False)
    report = {}
    seen, results = [], []
    blocks = await one_at_a_time(recorder(seen, results), x, block_rows=4)
    report['one_at_a_time'] = {'seen': seen, 'signs': (await mpc.output(blocks.array())).tolist()}
    seen, results = [], []
    sign = recorder(seen, results)
    plain = RowBlocks([sign(b) for b in RowBlocks.from_array(x, 4)])
    report['plain'] = {'seen': seen, 'signs': (await mpc.output(plain.array())).tolist()}
    await mpc.shutdown()
    if mpc.pid == 0:
        print(json.dumps(report))


if __name__ == '__main__':
    mpc.run(main())
