"""The secure inner join against pandas' inner merge, in one process and as real parties."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mpyc.runtime import mpc

from mpclab.data import load_party_table
from mpclab.join import JoinParameters, is_test_id, secure_inner_join, slot_layout
from partyrun import PROTOCOLS, run_local, run_separate

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')
EPS = 2.0**-16


def plain_join(left, right, key='id'):
    """The plaintext twin: pandas' inner merge on normalised text identifiers."""
    merged = pd.merge(left.astype({key: str}), right.astype({key: str}), on=key, how='inner')
    return merged.drop(columns=[key])


def canonical(df):
    """Rows in a canonical order (the secure join returns them in a secret random order)."""
    a = np.round(np.asarray(df, dtype=float) / EPS).astype(np.int64)
    return a[np.lexsort(a.T[::-1])] if len(a) else a


def assert_same_rows(got, expected):
    assert list(got.columns) == list(expected.columns)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(canonical(got), canonical(expected))


def secure_join_in_process(left, right, split=None, **kw):
    async def go():
        await mpc.start()
        res = await secure_inner_join(load_party_table(left, 'id'), load_party_table(right, 'id'),
                                      JoinParameters(**kw), split=split)
        df = await res.table.reveal()
        await mpc.shutdown()
        return res, df
    return mpc.run(go())


def random_tables(rng, n_left, n_right, n_common, d_left=2, d_right=3, ids=None):
    ids = ids if ids is not None else [f'P{i:05d}' for i in rng.permutation(10 * (n_left + n_right))]
    common = ids[:n_common]
    only_l = ids[n_common:n_left]
    only_r = ids[n_left:n_left + n_right - n_common]
    lid, rid = list(common) + list(only_l), list(common) + list(only_r)
    rng.shuffle(lid)
    rng.shuffle(rid)

    def values(n, d, prefix):
        # values on the 2**-16 grid, so the comparison can be exact
        v = np.round(rng.uniform(-1000, 1000, size=(n, d)) / EPS) * EPS
        return {f'{prefix}{j}': v[:, j] for j in range(d)}
    left = pd.DataFrame({'id': lid, **values(len(lid), d_left, 'a')})
    right = pd.DataFrame({'id': rid, **values(len(rid), d_right, 'b')})
    return left, right


@pytest.mark.parametrize('n_left, n_right, n_common', [(20, 15, 10), (5, 5, 5), (1, 1, 1), (6, 4, 0)])
def test_join_equals_merge(n_left, n_right, n_common):
    left, right = random_tables(np.random.default_rng(n_left), n_left, n_right, n_common)
    res, got = secure_join_in_process(left, right)
    assert res.intersection_size == n_common
    assert (res.rows_left, res.rows_right) == (n_left, n_right)
    assert_same_rows(got, plain_join(left, right))


def test_seeded_split_puts_exactly_the_test_people_first():
    left, right = random_tables(np.random.default_rng(5), 60, 50, 40)
    res, got = secure_join_in_process(left, right, split=(11, 0.25))
    merged = pd.merge(left, right, on='id')
    is_test = merged['id'].map(lambda i: is_test_id(i, 11, 0.25))
    assert 0 < res.n_test == is_test.sum() < len(merged)
    expected = merged.drop(columns=['id'])
    assert_same_rows(got.iloc[:res.n_test], expected[is_test.to_numpy()])
    assert_same_rows(got.iloc[res.n_test:], expected[~is_test.to_numpy()])
    train, test = res.table.split(n_test=res.n_test)
    assert (test.n_rows, train.n_rows) == (res.n_test, len(merged) - res.n_test)


def test_rows_come_out_in_a_fresh_random_order():
    left, right = random_tables(np.random.default_rng(1), 30, 30, 30, 1, 1)
    orders = {tuple(secure_join_in_process(left, right)[1]['a0']) for _ in range(3)}
    assert len(orders) == 3


id_text = st.text(st.characters(blacklist_categories=('Cs', 'Cc', 'Zs', 'Zl', 'Zp')),
                  min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.one_of(st.lists(id_text, min_size=1, max_size=12, unique=True),
                     st.lists(st.integers(-10**12, 10**12).map(str), min_size=1, max_size=12,
                              unique=True)),
       data=st.data())
def test_join_equals_merge_hypothesis(ids, data):
    # NFC-normalised ids must stay unique for the plaintext twin to be well defined
    from mpclab.data import normalize_id
    ids = list(dict.fromkeys(normalize_id(i) for i in ids if normalize_id(i)))
    if not ids:
        return
    left_ids = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    right_ids = data.draw(st.lists(st.sampled_from(ids), min_size=1, unique=True))
    d_l, d_r = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    rng = np.random.default_rng(len(ids))
    grid = lambda n, d: np.round(rng.uniform(-3e4, 3e4, (n, d)) / EPS) * EPS  # noqa: E731
    left = pd.DataFrame(grid(len(left_ids), d_l), columns=[f'l{j}' for j in range(d_l)])
    left.insert(0, 'id', left_ids)
    right = pd.DataFrame(grid(len(right_ids), d_r), columns=[f'r{j}' for j in range(d_r)])
    right.insert(0, 'id', right_ids)
    res, got = secure_join_in_process(left, right)
    assert_same_rows(got, plain_join(left, right))


def test_slot_layout_never_overflows_the_plaintext():
    p = JoinParameters()
    for d in range(1, 40):
        slot, capacity, half = slot_layout(d, p)
        assert slot == p.fmt.value_bits + p.stat_sec + 1
        assert capacity < (p.key_bits // 2 - 1 if half else p.key_bits - 1)


def test_wider_masks_and_keys_still_join():
    left, right = random_tables(np.random.default_rng(7), 8, 8, 5)
    res, got = secure_join_in_process(left, right, stat_sec=80, key_bits=3072)
    assert_same_rows(got, plain_join(left, right))


# -- real parties ------------------------------------------------------------------------------
def write_tables(tmp_path, left, right):
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    return str(lp), str(rp)


@pytest.mark.slow
@pytest.mark.parametrize('parties', [1, 3, 4, 5])
def test_protocol_program_equals_merge(tmp_path, parties):
    left, right = random_tables(np.random.default_rng(parties), 40, 30, 25)
    lp, rp = write_tables(tmp_path, left, right)
    out, js = tmp_path / 'joined.csv', tmp_path / 'summary.json'
    r = run_local(JOIN, ['--left', lp, '--right', rp, '--id', 'id', '--json', str(js),
                         '--reveal-to', '0', '--save-joined', str(out)], parties, timeout=240)
    assert r.returncode == 0, r.stderr
    assert 'reveals the joined records' in r.stderr
    assert_same_rows(pd.read_csv(out), plain_join(left, right))
    summary = json.loads(js.read_text())
    assert summary['rows_left'] == 40 and summary['rows_right'] == 30
    assert summary['intersection_size'] == 25
    assert summary['columns'] == ['a0', 'a1', 'b0', 'b1', 'b2']
    assert len(summary['bytes_sent']) == parties
    assert parties == 1 or all(b > 0 for b in summary['bytes_sent'])
    assert {'join:encrypt', 'join:match', 'join:decrypt', 'join:share'} <= set(summary['timings'])


@pytest.mark.slow
def test_separate_processes_each_with_only_its_own_file(tmp_path):
    left, right = random_tables(np.random.default_rng(3), 25, 25, 12)
    lp, rp = write_tables(tmp_path, left, right)
    out = tmp_path / 'joined.csv'
    common = ['--id', 'id', '--reveal-to', '1', '--save-joined', str(out)]
    results = run_separate(JOIN, [['--left', lp] + common, ['--right', rp] + common, common],
                           timeout=240)
    for code, _, err in results:
        assert code == 0, err
    assert_same_rows(pd.read_csv(out), plain_join(left, right))


@pytest.mark.slow
def test_five_separate_processes_extra_parties_only_compute(tmp_path):
    left, right = random_tables(np.random.default_rng(8), 20, 20, 9)
    lp, rp = write_tables(tmp_path, left, right)
    out = tmp_path / 'joined.csv'
    common = ['--id', 'id', '--reveal-to', '4', '--save-joined', str(out), '--join-helper', '3']
    results = run_separate(JOIN, [['--left', lp] + common, ['--right', rp] + common] + [common] * 3,
                           timeout=240)
    for code, _, err in results:
        assert code == 0, err
    assert_same_rows(pd.read_csv(out), plain_join(left, right))


@pytest.mark.slow
def test_join_over_tls_between_separate_processes(tmp_path):
    from mpclab import certs
    certs.generate(3, out=str(tmp_path / '.config'))
    left, right = random_tables(np.random.default_rng(9), 15, 15, 7)
    lp, rp = write_tables(tmp_path, left, right)
    out = tmp_path / 'joined.csv'
    common = ['--id', 'id', '--reveal-to', '0', '--save-joined', str(out)]
    results = run_separate(JOIN, [['--left', lp] + common, ['--right', rp] + common, common],
                           timeout=240, cwd=str(tmp_path), extra=['--ssl'])
    for code, log, err in results:
        assert code == 0, err
        assert 'connected via SSL' in log  # MPyC logs to standard output
    assert_same_rows(pd.read_csv(out), plain_join(left, right))


@pytest.mark.slow
def test_helper_masks_on_several_processes_correctly():
    # over 2000 ciphertexts per owner: the helper forks workers for the masking
    left, right = random_tables(np.random.default_rng(12), 2100, 2100, 2050, 1, 1)
    res, got = secure_join_in_process(left, right)
    assert_same_rows(got, plain_join(left, right))
