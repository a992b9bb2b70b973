"""Command line of mpclab: ``python -m mpclab COMMAND [options]``.

Commands:

* ``certs``: TLS certificates for MPyC's ``--ssl`` (see :mod:`mpclab.certs`).

This is not an MPyC program: MPyC is not imported here, so its command line options do
not apply.  Each command module provides ``add_arguments(parser)`` and ``main(args)``
and is imported only when its command runs; add a command by adding a line to
``COMMANDS``.
"""

import argparse
import importlib
import sys

# name: (module, one-line help)
COMMANDS = {
    'certs': ('mpclab.certs', 'create a CA and TLS certificates for MPyC --ssl'),
}


def _module(name):
    return importlib.import_module(COMMANDS[name][0])


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m mpclab', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    argv = sys.argv[1:] if argv is None else argv
    for name, (_, help_text) in COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text)
        # Import a command's module (and its dependencies) only when it runs.
        if argv and argv[0] == name:
            _module(name).add_arguments(subparser)
    args = parser.parse_args(argv)
    return _module(args.command).main(args)


if __name__ == '__main__':
    sys.exit(main())
