"""Dead, silent, absent and failing parties stop everyone quickly, with the real reason.

Faults are injected through the test hooks (tests/support: MPCLAB_TEST_FAULT), never through
the installed package.
"""

import os
import socket
import sys
import time

import numpy as np
import pytest

from mpclab.launch import Parties, free_base_port
from partyrun import PROTOCOLS, ROOT, run_separate, start_separate
from test_join import random_tables, write_tables

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')
LASSO = os.path.join(PROTOCOLS, 'lasso.py')
pytestmark = pytest.mark.slow


def join_args(tmp_path, timeout, rows=30, extra=()):
    left, right = random_tables(np.random.default_rng(0), rows, rows, 2 * rows // 3)
    lp, rp = write_tables(tmp_path, left, right)
    common = ['--id', 'id', '--timeout', str(timeout), '--connect-timeout', '10', *extra]
    return [['--left', lp] + common, ['--right', rp] + common, common]


def fault_env(spec):
    return {**os.environ, 'MPCLAB_TEST_FAULT': spec}


def one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def test_missing_party_fails_at_the_connection_deadline(tmp_path):
    with start_separate(JOIN, join_args(tmp_path, 60)) as parties:
        parties.processes[2].kill()   # the helper never comes
        start = time.monotonic()
        results = [parties.processes[i].wait(timeout=60) for i in (0, 1)]
        assert time.monotonic() - start < 30
        results = parties.results()[:2]
    for code, _, err in results:
        assert code in (3, 4), err
    assert any('could not connect to party 2' in err and 'within 10 s' in err
               for _, _, err in results), results


@pytest.mark.parametrize('phase', ['join:encrypt', 'join:match', 'join:decrypt'])
def test_crashed_party_stops_the_others_at_once(tmp_path, phase):
    party = 2 if phase == 'join:match' else 1
    start = time.monotonic()
    results = run_separate(JOIN, join_args(tmp_path, 120), timeout=60,
                           env=fault_env(f'{party}:{phase}:crash'))
    assert time.monotonic() - start < 30
    assert results[party][0] == 9   # the injected crash
    for i, (code, _, err) in enumerate(results):
        if i != party:
            assert code == 4, err
            assert f'lost the connection to party {party}' in one_line(err), err
            assert 'None' not in err


def test_silent_party_stops_everyone_after_the_silence_timeout(tmp_path):
    with start_separate(JOIN, join_args(tmp_path, 3), env=fault_env('2:join:match:hang')) as parties:
        start = time.monotonic()
        for i in (0, 1):
            parties.processes[i].wait(timeout=60)
        assert time.monotonic() - start < 30
        results = parties.results()[:2]
    for code, _, err in results:
        assert code in (3, 4), err
        assert "'join:match'" in err
    assert any('party 2 has been silent for' in err and '--timeout 3' in err
               for _, _, err in results), results


def test_a_healthy_phase_longer_than_the_timeout_completes(tmp_path):
    """--timeout bounds a peer's silence, not a phase: keep-alives flow during long work."""
    args = join_args(tmp_path, 1.5, rows=2500, extra=['--json', str(tmp_path / 'j{party}.json')])
    results = run_separate(JOIN, args, timeout=300)
    for code, _, err in results:
        assert code == 0, err
    import json
    timings = json.loads((tmp_path / 'j0.json').read_text())['timings']
    assert max(timings.values()) > 1.5, timings   # some phase did outlast the timeout


def test_party_killed_during_training_stops_the_others(tmp_path):
    left, right = random_tables(np.random.default_rng(4), 150, 150, 120)
    lp, rp = write_tables(tmp_path, left, right)
    common = ['--id', 'id', '--target', 'b2', '--scale', 'minmax', '--timeout', '120']
    start = time.monotonic()
    results = run_separate(LASSO, [['--left', lp] + common, ['--right', rp] + common, common],
                           timeout=90, env=fault_env('1:lasso:fit:crash'))
    assert time.monotonic() - start < 60
    assert results[1][0] == 9
    for i in (0, 2):
        code, _, err = results[i]
        assert code == 4, err
        assert "lost the connection to party 1 during phase 'lasso:fit'" in one_line(err)


def test_the_first_failure_reason_always_wins_over_a_lost_connection(tmp_path):
    """A party whose input fails leaves right after the agreement round; the others must
    report its reason (exit 2), never the lost connection (this raced about 2 runs in 95)."""
    left, right = random_tables(np.random.default_rng(1), 30, 30, 20)
    right.loc[3, 'id'] = right.loc[4, 'id']   # a duplicate identifier at party 1
    lp, rp = write_tables(tmp_path, left, right)
    common = ['--id', 'id', '--connect-timeout', '20']
    for _ in range(8):
        results = run_separate(JOIN, [['--left', lp] + common, ['--right', rp] + common, common],
                               timeout=60)
        for i, (code, _, err) in enumerate(results):
            assert code == 2, err
            line = one_line(err)
            if i != 1:
                assert 'party 1 stopped before sending any data: duplicate identifiers' in line


def test_a_busy_port_is_named_and_stops_every_party(tmp_path):
    base = free_base_port(3)
    with socket.socket() as busy:   # something else listens on party 1's port
        busy.bind(('127.0.0.1', base + 1))
        busy.listen()
        where = ['-P', f'127.0.0.1:{base}', '-P', f'127.0.0.1:{base + 1}', '-P', f'127.0.0.1:{base + 2}']
        argvs = [[sys.executable, JOIN, *where, '-I', str(i), *a]
                 for i, a in enumerate(join_args(tmp_path, 60))]
        start = time.monotonic()
        with Parties(argvs, cwd=ROOT) as parties:
            results = parties.wait(timeout=60)
            assert not parties.killed
    assert time.monotonic() - start < 30
    assert all(code != 0 for code, _, _ in results), results
    line = one_line(results[1][2])
    assert f'cannot listen on port {base + 1}' in line and 'in use' in line
    for code, _, err in (results[0], results[2]):
        one_line(err)


def test_two_local_runs_started_together_do_not_meet(tmp_path):
    """-M runs pick free ports unless -B or -P fix them (MPyC would use 11365, ... for both)."""
    data = os.path.join(ROOT, 'data')
    argv = [sys.executable, JOIN, '-M3', '--left', os.path.join(data, 'insurer.csv'),
            '--right', os.path.join(data, 'hospital.csv'), '--id', 'patient_id']
    with Parties([argv, argv], cwd=ROOT) as parties:
        results = parties.wait(timeout=120)
    for code, out, err in results:
        assert code == 0, err
        assert '1200 in common' in out
