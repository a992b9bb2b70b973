"""What each party receives: no identifier or feature value of another owner, in any program.

Every party runs as its own process and records every byte it receives (test hook
MPCLAB_TEST_RECORD_DIR, tests/support); the test then searches those bytes for the other
owner's identifiers (as text and as plain SHA-256) and feature values: as float64 and decimal
text, and as integers at every bit alignment, in both byte orders (`integer_needles`), so that
an encoding packed into a Paillier plaintext, a share or a pickled big integer is found too.

The runs use a wide input format (48 fractional bits in SecFxp(96, 48)), so that every value's
encoding has at least 5 whole bytes at every alignment and a hit cannot be chance; the
protocols do not depend on the format.  A last test checks the detector itself.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mpclab.fixedpoint import FixedPointFormat
from mpclab.launch import addresses, run_parties
from partyrun import (PROTOCOLS, ROOT, confirmed_hits, integer_needles, leak_patterns, leaks,
                      run_separate)

pytestmark = pytest.mark.slow
WIDE = ['--fxp-bits', '96', '--frac-bits', '48', '--int-bits', '2']
FMT = FixedPointFormat(frac_bits=48, int_bits=2, secure_bits=96)


def owner_table(rng, prefix, n, common, label=False):
    ids = [f'{prefix}-SECRET-{i:06d}-ID' for i in rng.permutation(10**6)[:n - len(common)]]
    ids = common + ids
    # values with many significant bits: every encoding is a distinctive multi-byte pattern
    values = rng.uniform(0.5, 3.5, (n, 3))
    df = pd.DataFrame(values, columns=[f'{prefix}_public_column_{j}' for j in range(3)])
    if label:
        df['label'] = (values[:, 0] + rng.normal(0, 0.5, n) > 2).astype(int)
    df.insert(0, 'id', ids)
    return df


def received(record_dir, pid):
    data = b''
    for name in sorted(os.listdir(record_dir)):
        if name.startswith(f'party{pid}_'):
            with open(os.path.join(record_dir, name), 'rb') as f:
                data += f.read()
    return data


PROGRAMS = {
    'inner_join': [],
    'lasso': ['--target', 'R_public_column_2', '--test-fraction', '0.25', '--min-test-rows', '5'],
    'logistic': ['--target', 'label', '--test-fraction', '0.25', '--min-test-rows', '5',
                 '--auc', 'none'],
}


@pytest.mark.parametrize('program', list(PROGRAMS))
def test_no_party_receives_another_owners_identifiers_or_values(tmp_path, program):
    rng = np.random.default_rng(2024)
    common = [f'SHARED-SECRET-{i:04d}-ID' for i in range(24)]
    left = owner_table(rng, 'L', 30, common)
    right = owner_table(rng, 'R', 32, common, label=program == 'logistic')
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    args = ['--id', 'id', *WIDE, *PROGRAMS[program]]
    results = run_separate(os.path.join(PROTOCOLS, f'{program}.py'),
                           [['--left', str(lp)] + args, ['--right', str(rp)] + args, args],
                           env=env, timeout=300)
    for code, _, err in results:
        assert code == 0, err
    secrets_of = {0: leak_patterns(left, fmt=FMT), 1: leak_patterns(right, skip=['label'], fmt=FMT)}
    seen = {pid: received(record, pid) for pid in range(3)}
    assert all(len(b) > 10_000 for b in seen.values())  # the recording did capture the run
    # the helper sees neither owner's data; each owner does not see the other's
    for pid, owners in ((2, (0, 1)), (0, (1,)), (1, (0,))):
        for owner in owners:
            leaked = leaks(seen[pid], secrets_of[owner])
            assert not leaked, f'party {pid} received {leaked[:5]}'
    # the detector works: public column names, sent as text like everything else, are found
    assert b'L_public_column_2' in seen[1] and b'R_public_column_0' in seen[0]


def test_the_detector_finds_a_value_packed_at_any_bit_position_in_a_big_integer():
    rng = np.random.default_rng(7)
    value = 2.718281828459045
    needles = leak_patterns(pd.DataFrame({'id': ['x'], 'v': [value]}), fmt=FMT)
    e = int(round(value * 2**FMT.frac_bits)) + (1 << (FMT.value_bits - 1))
    for shift in (0, 3, 74, 149):   # slot alignments of a packed plaintext
        packed = (e << shift) | (int.from_bytes(rng.bytes(20), 'little') % (1 << shift))
        big = packed | (int.from_bytes(rng.bytes(40), 'little') << (shift + FMT.value_bits))
        for blob in (pickle.dumps(big), big.to_bytes(80, 'big'), pickle.dumps([big, 5])):
            noise = rng.bytes(5000)
            stream = noise + blob + noise
            found = leaks(stream, needles)   # the search the tests use, in one pass
            assert found, shift
            assert found == [k for k, p in needles.items() if confirmed_hits(stream, k, p)]
    # and random bytes of this size do not match by chance
    assert not any(p in rng.bytes(1 << 20) for p in integer_needles(e).values())
    # a needle's bytes alone, with other bits beside them, are a chance hit, not a leak
    name, core = next((k, p) for k, p in integer_needles(e).items() if k.endswith('<< 3 le'))
    real = (e << 3).to_bytes(10, 'little')
    assert confirmed_hits(b'noise' + real + b'noise', name, core)
    flipped = bytes([real[0] ^ 0x80]) + real[1:]
    assert core in flipped and not confirmed_hits(b'noise' + flipped + b'noise', name, core)
    # the one-pass search finds what `in` finds, short needles too, and only that
    assert leaks(b'xabcab', {'ab': b'ab', 'c': b'c', 'abcd': b'abcd', 'bcab': b'bcab', 'x': b'x'},
                 confirm=False) == ['ab', 'c', 'bcab', 'x']
    assert leaks(b'noise' + real + b'noise', {name: core}) == [name]
    assert leaks(b'noise' + flipped + b'noise', {name: core}) == []


def test_test_hooks_cannot_be_switched_on_by_the_environment_alone(tmp_path):
    """Without the test suite's directory on the path, the hooks' variables do nothing."""
    record = tmp_path / 'received'
    record.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(MPCLAB_TEST_RECORD_DIR=str(record), MPCLAB_TEST_FAULT='0:connect:crash',
               MPCLAB_TEST_CHECK_OPENINGS='1')
    data = os.path.join(ROOT, 'data')
    r = subprocess.run([sys.executable, os.path.join(PROTOCOLS, 'inner_join.py'), '-M3',
                        '--left', os.path.join(data, 'insurer.csv'),
                        '--right', os.path.join(data, 'hospital.csv'), '--id', 'patient_id'],
                       env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr   # no injected crash
    assert os.listdir(record) == []      # nothing recorded
    package = os.path.join(ROOT, 'mpclab')
    for name in os.listdir(package):
        if name.endswith('.py'):
            with open(os.path.join(package, name), encoding='utf-8') as f:
                assert 'MPCLAB_TEST' not in f.read(), name


def test_a_crafted_pickle_from_a_peer_is_refused_and_runs_nothing(tmp_path):
    """Messages from peers are decoded as plain data only (mpclab.wire)."""
    marker = tmp_path / 'PWNED'
    data = os.path.join(ROOT, 'data')
    common = ['--id', 'patient_id', '--connect-timeout', '20']
    where = addresses(3)
    join = os.path.join(PROTOCOLS, 'inner_join.py')
    evil = os.path.join(ROOT, 'tests', 'programs', 'evil_peer.py')
    argvs = [[sys.executable, join, *where, '-I', '0', '--left', os.path.join(data, 'insurer.csv'),
              *common],
             [sys.executable, evil, *where, '-I', '1', str(marker)],
             [sys.executable, join, *where, '-I', '2', *common]]
    results = run_parties(argvs, timeout=60, cwd=ROOT)
    for i in (0, 2):
        code, _, err = results[i]
        assert code == 2, err
        assert 'refused a message from a peer' in err and 'posix.system' in err, err
    assert not marker.exists()


def test_the_mpyc_version_is_checked(monkeypatch):
    import importlib.metadata
    from mpclab import mpyc_runtime
    mpyc_runtime.check_mpyc_version()   # the installed one is right
    monkeypatch.setattr(importlib.metadata, 'version', lambda name: '0.12')
    with pytest.raises(ImportError, match=r'internals of MPyC 0.11, but MPyC 0.12 is installed'):
        mpyc_runtime.check_mpyc_version()
