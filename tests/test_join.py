"""The secure inner join against pandas' inner merge, in one process and as real parties."""

import collections
import json
import math
import os

import gmpy2
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mpyc.runtime import mpc

from mpclab import join, paillier, security
from mpclab.data import load_party_table
from mpclab.join import (JoinError, JoinParameters, Roles, is_test_id, masked_counts,
                         secure_inner_join, slot_layout)
from partyrun import PROTOCOLS, ROOT, run_local, run_separate

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')
JOIN_PARTY = os.path.join(ROOT, 'tests', 'programs', 'join_party.py')
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


def secure_join_in_process(left, right, split=None, progress=None, **kw):
    async def go():
        await mpc.start()
        res = await secure_inner_join(load_party_table(left, 'id'), load_party_table(right, 'id'),
                                      JoinParameters(**kw), split=split, progress=progress)
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


def test_shares_go_into_mpyc_in_blocks_of_rows_and_add_up_to_the_same_table(monkeypatch):
    # 7 values a block: blocks of one row of 5 columns, more than INPUT_WINDOW of them in flight
    monkeypatch.setattr(join, 'INPUT_VALUES', 7)
    left, right = random_tables(np.random.default_rng(3), 23, 19, 17)
    res, got = secure_join_in_process(left, right)
    assert res.intersection_size == 17
    assert_same_rows(got, plain_join(left, right))


def test_helper_makes_its_masks_a_few_chunks_ahead_and_the_join_is_the_same(monkeypatch):
    # chunks of 2 ciphertexts, each made only when the one before it is returned
    monkeypatch.setattr(join, 'CHUNK_CIPHERTEXTS', 2)
    monkeypatch.setattr(join, 'FACTORS_AHEAD', 1)
    made = []
    real = join._HelperSide._make_ahead

    def counted(self, returned):
        real(self, returned)
        made.append((returned, self._made, len(self.chunks)))
    monkeypatch.setattr(join._HelperSide, '_make_ahead', counted)
    left, right = random_tables(np.random.default_rng(4), 23, 19, 17)
    res, got = secure_join_in_process(left, right)
    assert_same_rows(got, plain_join(left, right))
    assert all(n <= r + 1 for r, n, _ in made) and max(c for *_, c in made) > 3
    assert all(n == c for r, n, c in made if r + 1 >= c)   # every chunk made in the end


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


def test_default_split_sends_no_test_marks_and_seeded_split_says_so(monkeypatch):
    sent = []
    send = join._send

    async def spy(obj, sender, receivers):
        sent.append(obj)
        return await send(obj, sender, receivers)
    monkeypatch.setattr(join, '_send', spy)
    left, right = random_tables(np.random.default_rng(6), 12, 10, 6)
    res, _ = secure_join_in_process(left, right)
    to_helper = [o for o in sent if isinstance(o, dict) and 'hashes' in o]
    assert len(to_helper) == 2
    assert all(set(o) == {'public_key', 'hashes'} for o in to_helper)
    assert res.n_test == 0 and not res.seeded_split
    sent.clear()
    res, _ = secure_join_in_process(left, right, split=(3, 0.5))
    assert res.seeded_split and 'test' in [o for o in sent if isinstance(o, dict) and 'hashes' in o][0]


def test_ledger_counts_every_masked_value_and_ciphertext():
    left, right = random_tables(np.random.default_rng(2), 20, 15, 10, d_left=2, d_right=17)
    params = JoinParameters()
    security.ledger.reset()
    res, _ = secure_join_in_process(left, right)
    values, cts = masked_counts(10, (2, 17), params)
    # 2 values fit one half-size plaintext; rows of 17 values of 74 bits go 3 in 2 full ones
    # (one row whole and another's head, then the third whole and that head's tail), so 10
    # rows take 3 groups and a row on its own
    assert (values, cts) == (10 * 19, 10 + 3 * 2 + 1)
    assert (res.masked_values, res.masked_ciphertexts) == (values, cts)
    assert security.ledger.count('join') == values + cts
    assert security.ledger.min_bits('join') == params.stat_sec == res.mask_bits
    assert res.paillier_key_bits == 2048
    security.ledger.reset()
    res, _ = secure_join_in_process(left, right, stat_sec=60)
    assert security.ledger.min_bits('join') == 60
    wide = JoinParameters(stat_sec=60)
    assert security.ledger.count('join') == sum(masked_counts(10, (2, 17), wide))
    security.ledger.reset()


def _dlog(pk, y, bound, _tables={}):
    """x < bound with h**x = y mod n**2, by baby-step giant-step (the key's owner can do this
    in its own group at any size, by the number field sieve; a test key makes it quick)."""
    step = math.isqrt(bound) + 1
    if (pk.n, step) not in _tables:
        baby, x = {}, gmpy2.mpz(1)
        for j in range(step):
            baby.setdefault(x, j)
            x = x * pk.h % pk.n2
        _tables[pk.n, step] = baby, gmpy2.invert(x, pk.n2)
    baby, giant = _tables[pk.n, step]
    for i in range(step + 1):
        if y in baby:
            return i * step + baby[y]
        y = y * giant % pk.n2
    raise AssertionError('no discrete log below the bound')


def test_helper_rerandomises_with_an_exponent_stat_sec_longer_than_the_owners(monkeypatch):
    # Owners with 8-bit encryption exponents; the owner decrypts what comes back, divides out
    # the plaintext and takes the discrete log of what is left: r0 + r1.  The helper's r1
    # must be stat_sec bits longer than r0, so that r0 + r1 says nothing about r0.
    stat_sec, owner_bits = 20, 8
    generate = paillier.generate_keypair
    monkeypatch.setattr(paillier, 'generate_keypair',
                        lambda bits: generate(bits, insecure_ok=True, r_bits=owner_bits))
    returned = []
    decrypt = paillier.PaillierPrivateKey.decrypt_many

    def spy(sk, cs, *args, **kwargs):
        cs = list(cs)
        returned.extend((sk, c) for c in cs)
        return decrypt(sk, cs, *args, **kwargs)
    monkeypatch.setattr(paillier.PaillierPrivateKey, 'decrypt_many', spy)
    left, right = random_tables(np.random.default_rng(4), 8, 8, 6)
    res, got = secure_join_in_process(left, right, key_bits=256, stat_sec=stat_sec)
    assert_same_rows(got, plain_join(left, right))
    assert len(returned) == 12  # one ciphertext per joined row and owner
    exponents = []
    for sk, c in returned:
        pk = sk.public_key
        assert pk.exponent_bits == owner_bits
        m = decrypt(sk, [c])[0]
        h_r = c * (1 - m * pk.n) % pk.n2  # c / (1 + m n)
        exponents.append(_dlog(pk, h_r, 2**(owner_bits + stat_sec + 8)))
    assert max(exponents) >= 2**(owner_bits + stat_sec - 1)


def test_progress_reports_every_stage_in_order():
    left, right = random_tables(np.random.default_rng(3), 30, 25, 20)
    events = []
    secure_join_in_process(left, right, progress=lambda *e: events.append(e))
    assert list(dict.fromkeys(e[0] for e in events)) == list(join.STAGES)
    assert all(0 <= done <= total for _, done, total in events)
    # One party plays every role: encryption and decryption run once per owner, masking once
    # over both owners' joined rows, masking and decryption chunk by chunk in turn; each run
    # goes from 0 to its total.
    runs = {('encrypt', 30): 1, ('encrypt', 25): 1, ('mask', 40): 1, ('decrypt', 20): 2,
            ('share', 20): 1}
    assert collections.Counter((s, t) for s, d, t in events if d == 0) == runs
    assert collections.Counter((s, t) for s, d, t in events if d == t) == runs


class _Refused(Exception):
    pass


def test_public_failures_are_join_errors_in_library_words():
    with pytest.raises(JoinError, match=r'needs 3 or more parties.*not 2') as e:
        Roles.for_parties(2)
    assert e.value.reason == 'parties'
    with pytest.raises(JoinError, match=r'the helper must be party 2, not 5') as e:
        Roles.for_parties(3, 5)
    assert (e.value.reason, e.value.detail) == ('helper', {'helper': 5, 'n_parties': 3})
    with pytest.raises(JoinError, match=r'one of the parties 2\.\.4, not 1'):
        Roles.for_parties(5, 1)
    with pytest.raises(JoinError, match='different parties'):
        Roles((0, 1), 1).check(3)
    with pytest.raises(JoinError, match='outside'):
        Roles((0, 1), 3).check(3)
    with pytest.raises(JoinError, match=r'needs 4 or more parties \(3 owners and a helper\), not 3'):
        Roles.for_parties(3, owners=3)
    with pytest.raises(JoinError, match=r'the helper must be one of the parties 3\.\.4, not 2'):
        Roles.for_parties(5, 2, owners=3)
    assert Roles.for_parties(5, owners=3) == Roles((0, 1, 2), 3)
    with pytest.raises(JoinError, match='statistical') as e:
        JoinParameters(stat_sec=10)
    assert isinstance(e.value, ValueError)
    with pytest.raises(JoinError, match='do not fit half of a 2048-bit key') as e:
        slot_layout(1, JoinParameters(stat_sec=1000))
    assert e.value.reason == 'slots'
    for err in (e.value,):
        assert '--' not in str(err)


def test_column_clash_and_check_columns_errors():
    left, right = random_tables(np.random.default_rng(1), 5, 5, 3)
    with pytest.raises(JoinError, match="both tables have a column named 'a0'"):
        secure_join_in_process(left, right.rename(columns={'b0': 'a0'}))

    def refuse(cols_a, cols_b):
        raise _Refused(cols_a, cols_b)

    async def go():
        await mpc.start()
        try:
            await secure_inner_join(load_party_table(left, 'id'), load_party_table(right, 'id'),
                                    check_columns=refuse)
        finally:
            await mpc.shutdown()
    with pytest.raises(_Refused) as e:
        mpc.run(go())
    assert e.value.args == (['a0', 'a1'], ['b0', 'b1', 'b2'])


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
                           timeout=240, cwd=str(tmp_path), extra=['--ssl', '--verbose'])
    for code, log, err in results:
        assert code == 0, err
        assert 'connected via SSL' in err  # --verbose shows MPyC's log on standard error
    assert_same_rows(pd.read_csv(out), plain_join(left, right))


def party_report(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith('{')]
    assert lines, stdout
    return json.loads(lines[-1])


@pytest.mark.slow
def test_every_party_counts_the_same_and_the_loop_runs_between_chunks(tmp_path):
    left, right = random_tables(np.random.default_rng(10), 200, 180, 150)
    lp, rp = write_tables(tmp_path, left, right)
    args = ['--chunk', '8']
    results = run_separate(JOIN_PARTY, [['--left', lp] + args, ['--right', rp] + args, args],
                           timeout=240)
    reports = []
    for code, out, err in results:
        assert code == 0, err
        reports.append(party_report(out))
    values, cts = masked_counts(150, (2, 3), JoinParameters())
    for r in reports:
        assert not r['no_async']
        assert r['ledger'] == reports[0]['ledger']
        assert r['ledger']['masked_values'] == values + cts == 150 * 5 + 150 * 2
        assert r['ledger']['join_mask_bits'] == 40 and r['ledger']['paillier_key_bits'] == 2048
        assert r['result']['masked_values'] == values
    # each party reports its own work: owners encrypt and decrypt, the helper masks
    stages = [{e[0] for e in r['progress']} for r in reports]
    assert stages == [{'encrypt', 'decrypt', 'share'}] * 2 + [{'mask', 'share'}]
    for r, stage in ((reports[0], 'encrypt'), (reports[0], 'decrypt'), (reports[1], 'decrypt'),
                     (reports[2], 'mask')):
        events = [e for e in r['progress'] if e[0] == stage]
        assert len(events) > 10 and events[-1][1] == events[-1][2]
        # the event loop ran while the chunks were computed, not only between the stages
        assert events[-1][3] > events[1][3], (stage, events)


@pytest.mark.slow
@pytest.mark.parametrize('parties', [3, 4])
def test_separate_parties_join_with_the_helpers_masks_one_chunk_ahead(tmp_path, parties):
    # chunks of 2 ciphertexts, each chunk's masks made only once the one before it returned
    left, right = random_tables(np.random.default_rng(20 + parties), 23, 19, 17)
    lp, rp = write_tables(tmp_path, left, right)
    args = ['--chunk', '2', '--ahead', '1', '--open']
    results = run_separate(JOIN_PARTY, [['--left', lp] + args, ['--right', rp] + args]
                           + [args] * (parties - 2), timeout=240)
    reports = []
    for code, out, err in results:
        assert code == 0, err
        reports.append(party_report(out))
    expected = plain_join(left, right)
    for r in reports:
        assert_same_rows(pd.DataFrame(r['joined'], columns=expected.columns), expected)
    # only the helper (party 2) makes masks; 17 rows of 2 and 3 values: several chunks each
    assert [r['most_made_ahead'] for r in reports] == [None, None, 1] + [None] * (parties - 3)


@pytest.mark.slow
def test_helper_masks_on_several_processes_correctly():
    # over 2000 ciphertexts per owner: the helper forks workers for the masking
    left, right = random_tables(np.random.default_rng(12), 2100, 2100, 2050, 1, 1)
    res, got = secure_join_in_process(left, right)
    assert_same_rows(got, plain_join(left, right))


@pytest.mark.parametrize('d, value_bits, stat_sec, key_bits',
                         [(1, 33, 40, 2048), (15, 33, 40, 2048), (17, 33, 40, 2048),
                          (14, 48, 40, 2048), (40, 33, 40, 2048), (5, 24, 20, 256)])
def test_layout_puts_every_value_where_it_is_read_back(d, value_bits, stat_sec, key_bits):
    # The helper's product in plaintext: the sum of the pieces the layout sends into each
    # returned plaintext plus packed masks; every value must come back from its slot.
    from mpclab.joinwork import Layout
    lay = Layout.choose(d, value_bits, stat_sec, key_bits)
    rng = np.random.default_rng(d)
    for n in (1, 2, 5, 7, 12):
        rows = [[int(v) for v in rng.integers(0, 2**value_bits, d)] for _ in range(n)]
        positions = rng.permutation(n)
        k, v, t, q = lay.targets(positions, n)
        assert len(set(zip(t.tolist(), q.tolist()))) == len(t) and (q < lay.max_pieces).all()
        pts = [0] * lay.n_pts(n)
        for kk, vv, tt in zip(k, v, t):
            pts[tt] += lay.row_plaintexts(rows[kk])[vv]
        masked = [x + sum(1 << (s * lay.slot_bits) for s in range(lay.slots)) for x in pts]
        assert max(masked) < 2**lay.capacity_bits
        chunks = lay.chunks(n, 3)
        assert chunks[0][0] == chunks[0][2] == 0 and chunks[-1][1:4:2] == (n, lay.n_pts(n))
        for r0, r1, p0, _ in chunks:
            where = lay.value_map(r0, r1, n, p0)
            for r in range(r0, r1):
                got = [lay.unpack(masked[p0 + where[r - r0, c, 0]])[where[r - r0, c, 1]] - 1
                       for c in range(d)]
                assert got == rows[int(np.flatnonzero(positions == r)[0])]
