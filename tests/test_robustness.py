"""Dead, silent and missing parties stop everyone with a message naming the phase and the party."""

import os
import time

import numpy as np
import pytest

from partyrun import PROTOCOLS, run_separate, start_separate, wait_all
from test_join import random_tables, write_tables

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')
pytestmark = pytest.mark.slow


def join_args(tmp_path, timeout):
    left, right = random_tables(np.random.default_rng(0), 30, 30, 20)
    lp, rp = write_tables(tmp_path, left, right)
    common = ['--id', 'id', '--timeout', str(timeout)]
    return [['--left', lp] + common, ['--right', rp] + common, common]


def fault_env(spec):
    return {**os.environ, 'MPCLAB_FAULT': spec}


def test_missing_party_times_out_at_connect(tmp_path):
    args = join_args(tmp_path, 4)
    procs = start_separate(JOIN, args)
    procs[2].kill()  # the helper never comes
    start = time.monotonic()
    results = wait_all(procs[:2], timeout=60)
    assert time.monotonic() - start < 30
    for code, _, err in results:
        # the first to time out names the absent helper; the other may see that one leave
        assert code in (3, 4), err
        assert "phase 'connect'" in err
    assert any("phase 'connect' timed out" in err and 'party 2' in err for _, _, err in results)


@pytest.mark.parametrize('phase', ['join:encrypt', 'join:match', 'join:decrypt'])
def test_crashed_party_stops_the_others_at_once(tmp_path, phase):
    party = 2 if phase == 'join:match' else 1
    results = run_separate(JOIN, join_args(tmp_path, 120), timeout=60,
                           env=fault_env(f'{party}:{phase}:crash'))
    for i, (code, _, err) in enumerate(results):
        assert code != 0
        if i != party:
            assert f'lost the connection to party {party}' in err or 'timed out' in err, err


def test_silent_party_times_out_naming_phase_and_party(tmp_path):
    procs = start_separate(JOIN, join_args(tmp_path, 5), env=fault_env('2:join:match:hang'))
    results = wait_all([procs[0], procs[1]], timeout=60)
    procs[2].kill()
    for code, _, err in results:
        assert code in (3, 4), err
        assert "'join:match'" in err
    assert any('timed out after 5 s' in err and 'party 2' in err for _, _, err in results)


def test_party_killed_during_training_stops_the_others(tmp_path):
    left, right = random_tables(np.random.default_rng(4), 60, 60, 50)
    lp, rp = write_tables(tmp_path, left, right)
    common = ['--id', 'id', '--target', 'b2', '--timeout', '120']
    lasso = os.path.join(PROTOCOLS, 'lasso.py')
    start = time.monotonic()
    results = run_separate(lasso, [['--left', lp] + common, ['--right', rp] + common, common],
                           timeout=90, env=fault_env('1:lasso:fit:crash'))
    assert time.monotonic() - start < 60
    assert results[1][0] == 9  # the injected crash
    for i in (0, 2):
        code, _, err = results[i]
        assert code == 4, err
        assert "lost the connection to party 1 during phase 'lasso:fit'" in err
