"""Bad input and bad options stop every party at once, with one clear line, before any data moves.

Every case runs each party as its own process (`run_separate`), so every exit code and every
stderr is seen, and records every byte each party receives (MPCLAB_TEST_RECORD_DIR).  For every
case and every party the test checks:

* exit code EXIT_INPUT, well before the --timeout deadline (nobody is left waiting);
* stderr is exactly one line, no traceback, naming the cause: at the party with the bad input
  the detailed reason (with the file and the column for file problems), at the others the
  party at fault and its data-free public reason (or the option and both of its values);
* no party received an identifier or a feature value of either owner (as text, SHA-256,
  float64, decimal text and fixed-point encodings), nor the bad party's file name, and only
  a few kilobytes in all: just the agreement round happened.

The join runs every data case with the bad owner being party 0 and party 1; the model
programs share its input checks (`mpclab.programs.start_and_join`), so they run a
representative subset (owner alternating) plus their own model options.
"""

import functools
import importlib.util
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from mpclab.session import EXIT_INPUT
from partyrun import PROTOCOLS, free_base_port, leak_patterns, run_separate

pytestmark = pytest.mark.slow

TIMEOUT = 60           # --timeout given to the programs
WALL_LIMIT = 40        # every party must have finished well before that deadline
RECEIVED_LIMIT = 20_000


@dataclass
class Program:
    name: str
    file: str
    args: list                      # extra options every party needs
    differing: list                 # [(flag, key in the message, usual value, odd value)]
    model: bool = False             # trains a model: has --target
    cases: tuple = None             # data cases to run (None: all, bad owner 0 and 1)

    @property
    def path(self):
        return os.path.join(PROTOCOLS, self.file)


MODEL_CASES = ('duplicate id', 'out of range', 'file not found', 'no file')
PROGRAMS = [
    Program('inner_join', 'inner_join.py', [],
            [('--int-bits', 'int_bits', '16', '20'), ('--stat-sec', 'stat_sec', '40', '48')]),
    Program('lasso', 'lasso.py', ['--target', 'charges'],
            [('--alpha', 'alpha', '0.001', '0.01')], model=True, cases=MODEL_CASES),
]
if os.path.exists(os.path.join(PROTOCOLS, 'logistic.py')):
    PROGRAMS.append(Program('logistic', 'logistic.py', ['--target', 'smoker'],
                            [('--reg-c', 'reg_c', '1.0', '2.0')], model=True, cases=MODEL_CASES))


@functools.lru_cache(maxsize=None)
def import_problem(path):
    """Why the program cannot be imported (e.g. a module still being written), or None."""
    name = '_bad_input_' + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as exc:  # noqa: BLE001 -- any import failure means: skip, saying why
        return f'{type(exc).__name__}: {exc}'
    return None


def require(program):
    problem = import_problem(program.path)
    if problem:
        pytest.skip(f'{program.file} does not import yet ({problem})')


# -- the owners' tables: distinctive identifiers and values ------------------------------------
def base_tables():
    rng = np.random.default_rng(31)
    ids = [f'SECRET-ID-{i:04d}' for i in rng.permutation(10_000)[:16]]

    def values(n, d):
        # large, with fractional parts: every encoding is a distinctive multi-byte pattern
        return np.round(rng.uniform(1000, 30000, (n, d)), 5)
    left = pd.DataFrame(values(12, 2), columns=['age_L', 'bmi_L'])
    left.insert(0, 'id', ids[:12])
    right = pd.DataFrame(values(12, 2), columns=['charges', 'cost_R'])
    right.insert(0, 'id', ids[4:])
    right['smoker'] = rng.integers(0, 2, 12)  # a 0/1 target for the classifier
    return left, right


BROKEN_COLUMN = {0: 'bmi_L', 1: 'cost_R'}
TEXT_VALUE = 'SECRET-TEXT-VALUE'


def secret_patterns(left, right):
    """Byte patterns of every identifier and feature value of both owners."""
    out = {f'text {TEXT_VALUE}': TEXT_VALUE.encode()}
    for df in (left, right):
        out.update(leak_patterns(df, skip=['smoker']))
    return out


# -- data cases: what breaks the bad owner's input, and what each side must be told ------------
def _set(row, column, value):
    def edit(df, owner):
        col = column if column != 'feature' else BROKEN_COLUMN[owner]
        df = df.astype({col: object}) if isinstance(value, str) else df.copy()
        df.loc[row, col] = value
        return df
    return edit


def _duplicate(df, owner):
    df = df.copy()
    df.loc[5, 'id'] = df.loc[2, 'id']
    return df


@dataclass
class DataCase:
    edit: object = None     # DataFrame edit, or 'missing', 'directory', 'garbage', 'empty', 'absent'
    cause: str = ''         # regex the bad party's line must match
    public: str = ''        # regex the others' line must match (after "party i stopped ...")
    column: str = None      # 'id' or 'feature': the line must name it
    names_file: bool = True


DATA_CASES = {
    'duplicate id': DataCase(_duplicate, r'duplicate identifier', r'duplicate', 'id'),
    'missing id': DataCase(_set(3, 'id', None), r'missing or empty identifier', r'missing|empty', 'id'),
    'blank id': DataCase(_set(3, 'id', ' \t '), r'missing or empty identifier', r'missing|empty', 'id'),
    'NaN feature': DataCase(_set(4, 'feature', np.nan), r'missing \(NaN\)', r'missing', 'feature'),
    'text feature': DataCase(_set(4, 'feature', TEXT_VALUE), r'non-numeric', r'non-numeric', 'feature'),
    'infinite feature': DataCase(_set(4, 'feature', np.inf), r'infinite', r'infinite', 'feature'),
    # beyond the widest --int-bits auto can choose (2**31), and for a model in original units
    # beyond the ±2**20 the conversion holds
    'out of range': DataCase(_set(4, 'feature', 1e12),
                             r'outside the fixed-point range|beyond the ±2\*\*20',
                             r'fixed-point range|too large for a model', 'feature'),
    'no id column': DataCase(lambda df, owner: df.rename(columns={'id': 'ident'}),
                             r"no identifier column 'id'", r'identifier column'),
    'file not found': DataCase('missing', r'not found', r'not found'),
    'directory': DataCase('directory', r'is a directory', r'unreadable'),
    'binary garbage': DataCase('garbage', r'not utf-8 text', r'encoding'),
    'empty file': DataCase('empty', r'empty file', r'empty'),
    'no file': DataCase('absent', r'pass --(left|right)', r'no --(left|right) table', names_file=False),
}


def write_bad_input(tmp_path, case, table, owner):
    """The bad owner's --left/--right option list, and its path (or None)."""
    path = tmp_path / f'owner{owner}-PRIVATE-FILENAME.csv'
    if case.edit == 'absent':
        return [], None
    if case.edit == 'directory':
        path.mkdir()
    elif case.edit == 'garbage':
        path.write_bytes(b'\x1f\x8b\x08\x00' + np.random.default_rng(5).bytes(2000))
    elif case.edit == 'empty':
        path.write_bytes(b'')
    elif case.edit != 'missing':
        case.edit(table, owner).to_csv(path, index=False)
    return [('--left', '--right')[owner], str(path)], str(path)


# -- running and checking -----------------------------------------------------------------------
@dataclass
class Run:
    results: list
    seconds: float
    received: dict = field(default_factory=dict)   # pid -> all bytes it received


def run_parties(tmp_path, program, args_per_party, timeout=TIMEOUT):
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    # per-party options last, so that they override the program's usual ones
    common = ['--id', 'id', '--timeout', str(timeout)] + program.args
    start = time.monotonic()
    results = run_separate(program.path, [common + a for a in args_per_party], timeout=120, env=env)
    seconds = time.monotonic() - start
    received = {}
    for name in os.listdir(record):
        # 'fromNone': bytes that came before the peer said who it is
        pid = int(re.fullmatch(r'party(\d+)_from(\d+|None)\.bin', name).group(1))
        received[pid] = received.get(pid, b'') + (record / name).read_bytes()
    return Run(results, seconds, received)


def error_line(pid, code, err):
    """The single line a party wrote to stderr, without the 'mpclab party i: ' prefix."""
    assert code == EXIT_INPUT, f'party {pid} exited with {code}: {err}'
    assert 'Traceback' not in err, f'party {pid}: {err}'
    lines = err.strip().splitlines()
    assert len(lines) == 1, f'party {pid} wrote {len(lines)} lines: {err!r}'
    prefix = f'mpclab party {pid}: '
    assert lines[0].startswith(prefix), lines[0]
    message = lines[0][len(prefix):].strip()
    assert message, f'party {pid}: empty message'
    return message


def check_run(run, expected, secrets, private=None, connected=True):
    """expected[pid]: regexes that party's line must all match (case-insensitive).

    private: {pid: text} that only that party may know (its file name).
    """
    private = private or {}
    assert run.seconds < WALL_LIMIT, f'took {run.seconds:.1f} s: {run.results}'
    assert len(run.results) == len(expected)
    for pid, (code, _, err) in enumerate(run.results):
        message = error_line(pid, code, err)
        for pattern in expected[pid]:
            assert re.search(pattern, message, re.IGNORECASE), \
                f'party {pid}: {message!r} does not match {pattern!r}'
        if pid not in private:
            for secret in private.values():
                assert secret not in err, f'party {pid} was told {secret!r}: {err}'
    total = sum(map(len, run.received.values()))
    assert total < RECEIVED_LIMIT, f'{total} bytes received: more than the agreement round'
    for pid, data in run.received.items():
        leaked = [what for what, pattern in secrets.items() if pattern in data]
        assert not leaked, f'party {pid} received {leaked[:5]}'
        for secret in private.values():
            assert secret.encode() not in data, f'party {pid} received {secret!r}'
    if connected:
        # the recorder did capture the agreement round: its public part is found
        for pid in range(len(expected)):
            assert b'fingerprint' in run.received.get(pid, b''), f'party {pid} recorded nothing'
    else:
        assert total == 0


def others_told(bad, public, n=3):
    told = [rf'party {bad} stopped before sending any data', public]
    return {pid: told for pid in range(n) if pid != bad}


def program_params(select):
    out = []
    for program in PROGRAMS:
        for params in select(program):
            out.append(pytest.param(program, *params, id='-'.join([program.name, *map(str, params)])))
    return out


def data_params(program):
    if program.cases is None:
        return [(case, owner) for case in DATA_CASES for owner in (0, 1)]
    return [(case, k % 2) for k, case in enumerate(program.cases)]


@pytest.mark.parametrize('program, case_name, owner', program_params(data_params))
def test_bad_data_stops_everyone_before_any_data(tmp_path, program, case_name, owner):
    require(program)
    case = DATA_CASES[case_name]
    left, right = base_tables()
    tables = [left, right]
    args = [['--left', str(tmp_path / 'left.csv')], ['--right', str(tmp_path / 'right.csv')], []]
    left.to_csv(args[0][1], index=False)
    right.to_csv(args[1][1], index=False)
    args[owner], path = write_bad_input(tmp_path, case, tables[owner], owner)
    run = run_parties(tmp_path, program, args)

    mine = [case.cause]
    if case.names_file:
        mine.append(re.escape(path))
    if case.column:
        column = 'id' if case.column == 'id' else BROKEN_COLUMN[owner]
        mine.append(re.escape(f'column {column!r}'))
    expected = {owner: mine, **others_told(owner, case.public)}
    private = {owner: os.path.basename(path)} if path else {}
    check_run(run, [expected[i] for i in range(3)], secret_patterns(left, right), private)


def _good_args(tmp_path):
    left, right = base_tables()
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    return [['--left', str(lp)], ['--right', str(rp)], []], secret_patterns(left, right)


def differing_params(program):
    odd = (0, 1) if not program.model else (2,)
    return [(flag, party) for flag, *_ in program.differing for party in odd]


@pytest.mark.parametrize('program, flag, odd', program_params(differing_params))
def test_options_that_differ_are_named_with_both_values(tmp_path, program, flag, odd):
    require(program)
    _, key, usual, other = next(d for d in program.differing if d[0] == flag)
    args, secrets = _good_args(tmp_path)
    for pid in range(3):
        args[pid] += [flag, other if pid == odd else usual]
    run = run_parties(tmp_path, program, args)
    key = key.replace('_', '[_-]')
    told = [r'options differ', key, rf'\b{re.escape(usual)}\b', rf'\b{re.escape(other)}\b']
    check_run(run, [told] * 3, secrets)


@pytest.mark.parametrize('program', [pytest.param(p, id=p.name) for p in PROGRAMS if p.model])
def test_target_in_neither_table(tmp_path, program):
    require(program)
    args, secrets = _good_args(tmp_path)
    run = run_parties(tmp_path, program, [a + ['--target', 'nope'] for a in args])
    check_run(run, [[r"--target 'nope' is in neither table"]] * 3, secrets)
    # the schema (column names, public) did go round; identifiers and values did not
    assert b'cost_R' in run.received[0] and b'bmi_L' in run.received[1]


def test_column_in_both_tables(tmp_path):
    program = PROGRAMS[0]
    left, right = base_tables()
    right = right.rename(columns={'cost_R': 'bmi_L'})
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    run = run_parties(tmp_path, program, [['--left', str(lp)], ['--right', str(rp)], []])
    check_run(run, [[r"both tables have a column named 'bmi_L'"]] * 3, secret_patterns(left, right))


def test_helper_index_out_of_range(tmp_path):
    program = PROGRAMS[0]
    args, secrets = _good_args(tmp_path)
    run = run_parties(tmp_path, program, [a + ['--join-helper', '5'] for a in args])
    check_run(run, [[r'--join-helper: 5', r'between 2 and 2']] * 3, secrets)


def test_helper_index_out_of_range_at_one_party(tmp_path):
    program = PROGRAMS[0]
    args, secrets = _good_args(tmp_path)
    args[0] += ['--join-helper', '5']
    run = run_parties(tmp_path, program, args, timeout=5)
    told = [r'party 0 stopped before sending any data|options differ.*join.helper']
    check_run(run, [[r'--join-helper: 5']] + [told] * 2, secrets)


def test_two_separate_parties(tmp_path):
    program = PROGRAMS[0]  # the party count is checked in start_and_join, shared by all programs
    args, secrets = _good_args(tmp_path)
    run = run_parties(tmp_path, program, args[:2])
    check_run(run, [[r'needs 3 or more parties', r'not 2']] * 2, secrets, connected=False)


def _processes_mentioning(marker):
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass  # gone meanwhile
    return found


def test_two_local_parties(tmp_path):
    """-M2: party 0 and the party it spawns (output to /dev/null) both stop at once."""
    args, _ = _good_args(tmp_path)
    argv = [sys.executable, PROGRAMS[0].path, '-M', '2', '-B', str(free_base_port(2)),
            *args[0], *args[1], '--id', 'id', '--timeout', str(TIMEOUT)]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - start < WALL_LIMIT
    message = error_line(0, proc.returncode, proc.stderr)
    assert re.search(r'needs 3 or more parties.*not 2', message), message
    # the spawned party 1 is no child of ours: it must not linger
    deadline = time.monotonic() + 20
    while _processes_mentioning(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_mentioning(str(tmp_path)), 'the spawned party 1 is still running'
