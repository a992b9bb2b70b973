"""The ``mpclab`` command, and the entry point of the programs in ``protocols/``.

    mpclab join|lasso|ridge|elasticnet|logistic|describe|predict [options]
                                            an MPyC program (-h: its options)
    mpclab approve STUDY.toml               the analysis fingerprint an owner approves
    mpclab certs [options]                  TLS certificates for --ssl
    mpclab netsim [options]                 delaying relays, to see LAN/WAN links locally

The programs are MPyC programs: ``-M3`` runs three local parties, ``-P host:port`` once per
party with ``-I i`` runs one party of a run across hosts (``python -m mpyc -H`` lists MPyC's
own options).  ``python protocols/lasso.py ...`` is the same as ``mpclab lasso ...``.
Nothing is imported before a command is chosen: MPyC reads the command line when imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ['main', 'run_program', 'PROGRAMS', 'TOOLS']

PROGRAMS = {'join': 'secure inner join of two tables via a helper party',
            'lasso': 'secure inner join and Lasso regression',
            'ridge': 'secure inner join and ridge regression',
            'elasticnet': 'secure inner join and elastic net regression',
            'logistic': 'secure inner join and logistic regression',
            'describe': 'secure inner join and descriptive statistics of the joined table',
            'predict': 'secure predictions of a trained model for the people of new tables'}
# name: (module with add_arguments(parser) and main(args), one-line help)
TOOLS = {'approve': ('mpclab.study', 'print the analysis fingerprint of a study file'),
         'certs': ('mpclab.certs', 'create a CA and TLS certificates for MPyC --ssl'),
         'netsim': ('mpclab.netsim', 'run delaying relays between local parties')}


def _usage() -> str:
    width = max(map(len, [*PROGRAMS, *TOOLS]))
    rows = [f'  {name:<{width}}  {text}' for name, text in PROGRAMS.items()]
    rows += [f'  {name:<{width}}  {text}' for name, (_, text) in TOOLS.items()]
    return ('usage: mpclab COMMAND [options]   (mpclab COMMAND -h for its options)\n\n'
            'commands:\n' + '\n'.join(rows))


def run_program(program: str) -> None:
    """Entry point of ``protocols/<program>.py``: run one party of `program`."""
    from mpclab.party import main as party
    sys.exit(party(program))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in PROGRAMS:
        from mpclab.party import main as party
        return party(command, rest, respawn=[sys.argv[0], command], prog=f'mpclab {command}')
    if command in TOOLS:
        module = importlib.import_module(TOOLS[command][0])
        parser = argparse.ArgumentParser(prog=f'mpclab {command}', description=TOOLS[command][1])
        module.add_arguments(parser)
        return module.main(parser.parse_args(rest)) or 0
    print(f'mpclab: unknown command {command!r}\n\n{_usage()}', file=sys.stderr)
    return 2


def console() -> int:
    """The console script: main, quiet when its output is cut short (e.g. by `head`)."""
    try:
        return main()
    except BrokenPipeError:
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == '__main__':
    sys.exit(console())
