"""Study files and owner approval: every organisation sees and pins the exact analysis.

A study file is TOML whose keys are the programs' long option names with ``_`` for ``-``,
so that it reads like the command line it replaces::

    program = "lasso"
    id = "patient_id"
    target = "charges"
    scale = "minmax"
    alpha = 0.001
    test_fraction = 0.1
    json = "lasso_{party}.json"     # a path: {party} becomes the party's number

It holds every option that must agree; each party adds only its own things on the command
line (its data file, ``-I``, ``-P``, where to write).  ``parties = 3`` pins the number of
parties.

``mpclab approve study.toml`` prints the analysis fingerprint: SHA-256 over the program,
mpclab's version and the canonical agreed options, defaults included (so writing a default
out or leaving it away gives the same analysis).  An owner that runs with
``--approved FINGERPRINT`` stops every party before any data flows if the analysis of the run
is not that one.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from mpclab.options import OptionError, PROGRAMS, from_values, option_specs

__all__ = ['Study', 'read_study', 'approve']


@dataclass(frozen=True)
class Study:
    program: str
    values: dict
    parties: int | None = None


def read_study(path: str, program: str | None = None) -> Study:
    """Read a study file; `program`, if given, must be the study's program."""
    try:
        with open(path, 'rb') as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise OptionError('study', f'--study: no file {path}') from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OptionError('study', f'--study: {path} is not a valid TOML file: {exc}') from None
    name = data.pop('program', program)
    if name is None:
        raise OptionError('study', f'{path}: say which program the study runs (program = "lasso")')
    if program is not None and name != program:
        raise OptionError('study', f'{path} is a study for {name!r}, not for {program!r}')
    if name not in PROGRAMS:
        raise OptionError('study', f'{path}: unknown program {name!r}; one of {", ".join(PROGRAMS)}')
    parties = data.pop('parties', None)
    if parties is not None and (not isinstance(parties, int) or parties < 1):
        raise OptionError('study', f'{path}: parties must be a positive whole number')
    tables = [k for k, v in data.items() if isinstance(v, dict)]
    if tables:
        raise OptionError('study', f'{path}: [{tables[0]}] tables are not used; write the options '
                                   f'at the top level')
    specs = option_specs(name)
    unknown = [k for k in data if k not in specs]
    if unknown:
        raise OptionError('study', f'{path}: {name} has no option {unknown[0]!r}')
    return Study(name, data, parties)


def approve(path: str) -> tuple[str, dict]:
    """The fingerprint of a study's analysis and its agreed options (defaults resolved).

    Options that need a value but are a party's own (none are) would be missing here; the
    party-only options of the study (paths) are ignored.
    """
    study = read_study(path)
    options = from_values(study.program, study.values, {k: path for k in study.values},
                          study.parties)
    return options.fingerprint(), options.agreed()


def add_arguments(parser) -> None:
    parser.add_argument('study', metavar='STUDY.toml', help='the study file to approve')
    parser.add_argument('--json', action='store_true', help='print the agreed options as JSON')


def main(args) -> int:
    """``mpclab approve STUDY.toml``: print the fingerprint an owner approves."""
    import json
    try:
        fp, agreed = approve(args.study)
    except OptionError as exc:
        raise SystemExit(f'mpclab approve: {exc}') from None
    program = read_study(args.study).program
    if args.json:
        print(json.dumps({'program': program, 'fingerprint': fp, 'options': agreed}, indent=2))
        return 0
    print(f'study {args.study}: program {program}')
    for name, value in agreed.items():   # TOML-like; an option left unset is a comment
        print(f'  # {name}: not set' if value is None else f'  {name} = {json.dumps(value)}')
    print(f'fingerprint {fp}')
    print(f'run with --approved {fp} to stop every party if the analysis differs')
    return 0
