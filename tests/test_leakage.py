"""What each party receives during the join: no identifier or feature value of another owner.

Every party runs as its own process and records every byte it receives (MPCLAB_RECORD_DIR);
the test then searches those bytes for the other owner's identifiers (as text and as plain
SHA-256) and feature values (as float64, as int64 fixed-point encodings in both byte orders,
with and without the packing offset, and as decimal text).
"""

import os

import numpy as np
import pandas as pd
import pytest

from partyrun import PROTOCOLS, leak_patterns, run_separate

pytestmark = pytest.mark.slow
JOIN = os.path.join(PROTOCOLS, 'inner_join.py')


def owner_table(rng, prefix, n, common):
    ids = [f'{prefix}-SECRET-{i:06d}-ID' for i in rng.permutation(10**6)[:n - len(common)]]
    ids = common + ids
    # large values with fractional parts: every encoding is a distinctive multi-byte pattern
    values = np.round(rng.uniform(1000, 30000, (n, 3)), 5)
    df = pd.DataFrame(values, columns=[f'{prefix}_public_column_{j}' for j in range(3)])
    df.insert(0, 'id', ids)
    return df


def received(record_dir, pid):
    data = b''
    for name in os.listdir(record_dir):
        if name.startswith(f'party{pid}_'):
            with open(os.path.join(record_dir, name), 'rb') as f:
                data += f.read()
    return data


def test_no_party_receives_another_owners_identifiers_or_values(tmp_path):
    rng = np.random.default_rng(2024)
    common = [f'SHARED-SECRET-{i:04d}-ID' for i in range(15)]
    left, right = owner_table(rng, 'L', 25, common), owner_table(rng, 'R', 30, common)
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_RECORD_DIR': str(record)}
    args = ['--id', 'id']
    results = run_separate(JOIN, [['--left', str(lp)] + args, ['--right', str(rp)] + args, args],
                           env=env, timeout=240)
    for code, _, err in results:
        assert code == 0, err
    secrets_of = {0: leak_patterns(left), 1: leak_patterns(right)}
    seen = {pid: received(record, pid) for pid in range(3)}
    assert all(len(b) > 10_000 for b in seen.values())  # the recording did capture the run
    # the helper sees neither owner's data; each owner does not see the other's
    for pid, owners in ((2, (0, 1)), (0, (1,)), (1, (0,))):
        for owner in owners:
            leaked = [what for what, pat in secrets_of[owner].items() if pat in seen[pid]]
            assert not leaked, f'party {pid} received {leaked[:5]}'
    # the detector works: public column names, sent as text like everything else, are found
    assert b'L_public_column_2' in seen[1] and b'R_public_column_0' in seen[0]
