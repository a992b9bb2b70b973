"""``python -m mpclab COMMAND ...``: the same as the ``mpclab`` command (see `mpclab.cli`)."""

import sys

from mpclab.cli import main

if __name__ == '__main__':
    sys.exit(main())
