"""``python -m mpclab COMMAND ...``: the same as the ``mpclab`` command (see `mpclab.cli`)."""

import sys

from mpclab.cli import console

if __name__ == '__main__':
    sys.exit(console())
