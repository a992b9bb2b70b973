"""Joins of more than two owners against pandas' chained inner merge, and models on them."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mpyc.runtime import mpc
from sklearn.linear_model import Lasso

from mpclab.data import load_party_table
from mpclab.join import JoinParameters, Roles, secure_join
from mpclab.twin import plaintext_join_tables
from partyrun import PROTOCOLS, run_local

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')
LASSO = os.path.join(PROTOCOLS, 'lasso.py')
PREDICT = os.path.join(PROTOCOLS, 'predict.py')
EPS = 2.0**-16


def owner_tables(rng, sizes, n_common, widths=None, target=False):
    """One table per owner: `n_common` people at every owner, the rest at some or only one.

    Columns of owner k are named ``o{k}c{j}``; with `target`, the last owner also holds
    ``y``, a sparse function of every owner's columns.
    """
    widths = widths or [2] * len(sizes)
    people = [f'P{i:05d}' for i in rng.permutation(20 * sum(sizes))]
    common, pool = people[:n_common], people[n_common:]
    tables = []
    for k, (n, d) in enumerate(zip(sizes, widths)):
        # besides the common people, each owner draws others from a shared pool, so that
        # subsets of owners overlap without every owner holding them
        extra = list(rng.choice(pool[:3 * max(sizes)], n - n_common, replace=False))
        ids = list(common) + extra
        df = pd.DataFrame(rng.uniform(0, 1, (n, d)).round(4), columns=[f'o{k}c{j}' for j in range(d)])
        df.insert(0, 'id', ids)
        tables.append(df.sample(frac=1, random_state=int(rng.integers(1 << 31))))
    if target:
        merged = chained_merge(tables)
        w = np.resize([1.5, 0.0, -2.0, 0.8], merged.shape[1] - 1)
        signal = dict(zip(merged['id'], merged.drop(columns='id').to_numpy() @ w))
        last = tables[-1]
        last['y'] = [signal.get(i, 0.5) + rng.normal(0, 0.05) for i in last['id']]
    return tables


def chained_merge(tables, key='id'):
    """The plaintext twin: pandas' inner merge of every table in turn."""
    out = tables[0].astype({key: str})
    for t in tables[1:]:
        out = out.merge(t.astype({key: str}), on=key, how='inner')
    return out


def canonical(df):
    a = np.round(np.asarray(df, dtype=float) / EPS).astype(np.int64)
    return a[np.lexsort(a.T[::-1])] if len(a) else a


def assert_same_rows(got, expected):
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_array_equal(canonical(got), canonical(expected))


def write_owner_tables(tmp_path, tables):
    for k, t in enumerate(tables):
        t.to_csv(tmp_path / f'owner_{k}.csv', index=False)
    return str(tmp_path / 'owner_{party}.csv')


def join_in_one_process(paths):
    """Party 0 plays every role: each owner's steps, the helper's, over all the tables."""
    async def go():
        await mpc.start()
        tables = [load_party_table(p, 'id') for p in paths]
        res = await secure_join(tables, JoinParameters())
        df = await res.table.reveal()
        await mpc.shutdown()
        return res, df
    return mpc.run(go())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_owners=st.integers(3, 4), seed=st.integers(0, 2**16), n_common=st.integers(0, 6))
def test_joins_of_three_and_four_owners_equal_the_chained_merge(tmp_path, n_owners, seed, n_common):
    rng = np.random.default_rng(seed)
    sizes = [int(n_common + rng.integers(0, 5)) or 1 for _ in range(n_owners)]
    tables = owner_tables(rng, sizes, n_common, widths=[1 + k % 3 for k in range(n_owners)])
    paths = []
    for k, t in enumerate(tables):
        path = tmp_path / f'{seed}_{n_owners}_{k}.csv'
        t.to_csv(path, index=False)
        paths.append(str(path))
    res, got = join_in_one_process(paths)
    expected = chained_merge(tables).drop(columns='id')
    assert_same_rows(got, expected)
    assert res.owner_rows == sizes
    assert res.owner_columns == [list(t.columns[1:]) for t in tables]
    assert res.intersection_size == len(expected)


def test_a_seeded_split_of_three_owners_puts_the_first_owners_marked_people_first(tmp_path):
    from mpclab.join import is_test_id
    tables = owner_tables(np.random.default_rng(4), [40, 35, 38], 30)
    paths = []
    for k, t in enumerate(tables):
        t.to_csv(tmp_path / f'o{k}.csv', index=False)
        paths.append(str(tmp_path / f'o{k}.csv'))

    async def go():
        await mpc.start()
        res = await secure_join([load_party_table(p, 'id') for p in paths], split=(9, 0.3))
        df = await res.table.reveal()
        await mpc.shutdown()
        return res, df
    res, got = mpc.run(go())
    merged = chained_merge(tables)
    marked = merged['id'].map(lambda i: is_test_id(i, 9, 0.3)).to_numpy()
    assert res.n_test == marked.sum() > 0 and res.seeded_split
    assert_same_rows(got.iloc[:res.n_test], merged[marked].drop(columns='id'))
    assert_same_rows(got.iloc[res.n_test:], merged[~marked].drop(columns='id'))


def test_roles_of_k_owners():
    assert Roles.for_parties(4, owners=3) == Roles((0, 1, 2), 3)
    assert Roles.for_parties(6, 5, owners=3).helper == 5
    assert Roles.for_parties(1, owners=3) == Roles((0, 0, 0), 0)


@pytest.mark.slow
@pytest.mark.parametrize('n_owners,parties,helper', [(3, 4, None), (3, 5, 4), (4, 5, None)])
def test_join_program_of_k_owners_equals_the_chained_merge(tmp_path, n_owners, parties, helper):
    rng = np.random.default_rng(10 * n_owners + parties)
    tables = owner_tables(rng, [30, 25, 28, 22][:n_owners], 15)
    data = write_owner_tables(tmp_path, tables)
    out, js = tmp_path / 'joined.csv', tmp_path / 'summary.json'
    args = ['--owners', str(n_owners), '--data', data, '--id', 'id', '--json', str(js),
            '--reveal-to', '0', '--save-joined', str(out)]
    if helper is not None:
        args += ['--join-helper', str(helper)]
    r = run_local(JOIN, args, parties, timeout=240)
    assert r.returncode == 0, r.stderr
    expected = chained_merge(tables).drop(columns='id')
    assert_same_rows(pd.read_csv(out), expected)
    summary = json.loads(js.read_text())
    assert summary['owner_rows'] == [len(t) for t in tables]
    assert summary['intersection_size'] == len(expected) >= 15
    assert summary['helper'] == (n_owners if helper is None else helper)
    assert ' x '.join(str(len(t)) for t in tables) in r.stdout


@pytest.mark.slow
def test_lasso_on_three_owners_matches_sklearn_on_the_chained_merge(tmp_path):
    """Min-max scaled by each of three owners, the model back in the owners' units."""
    rng = np.random.default_rng(5)
    tables = owner_tables(rng, [150, 140, 160], 120, widths=[2, 2, 1], target=True)
    for k, t in enumerate(tables):   # other units at each owner
        t[t.columns[1]] = t[t.columns[1]] * 10 ** k - k
    data = write_owner_tables(tmp_path, tables)
    js, model = tmp_path / 'out.json', tmp_path / 'model.json'
    alpha = 0.002
    r = run_local(LASSO, ['--owners', '3', '--data', data, '--id', 'id', '--target', 'y',
                          '--scale', 'minmax', '--alpha', str(alpha), '--tol', '1e-6',
                          '--test-fraction', '0', '--json', str(js), '--model-out', str(model)],
                  4, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(js.read_text())
    assert out['model']['units'] == 'original'
    paths = [str(tmp_path / f'owner_{k}.csv') for k in range(3)]
    scaled = plaintext_join_tables(paths, 'id', scale='minmax')
    X, y = scaled.drop(columns=['id', 'y']), scaled['y']
    sk = Lasso(alpha=alpha, tol=1e-6, max_iter=100_000).fit(X, y)
    # the same model: sklearn's on the scaled table, and the secure one in original units
    raw = chained_merge(tables).set_index('id').loc[scaled['id']]
    coef = np.array([out['coef'][f] for f in X.columns])
    lo, hi = tables[-1]['y'].min(), tables[-1]['y'].max()
    np.testing.assert_allclose(raw[list(X.columns)].to_numpy() @ coef + out['intercept'],
                               lo + (hi - lo) * sk.predict(X), atol=2e-3 * (hi - lo))
    # a zero of the scaled model can come back a few units in the last place of the secure
    # type (2**-32) after the conversion's truncations
    assert np.all((np.abs(coef) < 1e-6) == (sk.coef_ == 0)), (coef, sk.coef_)
    saved = json.loads(model.read_text())
    assert saved['columns']['owners'] == [list(t.columns[1:]) for t in tables]

    # the model applied to new people of the same three owners, predictions to owner 2 only
    new = owner_tables(np.random.default_rng(6), [40, 45, 42], 30, widths=[2, 2, 1])
    new_data = str(tmp_path / 'new_{party}.csv')
    for k, t in enumerate(new):
        t.to_csv(new_data.format(party=k), index=False)
    saved_to = tmp_path / 'predictions.csv'
    r = run_local(PREDICT, ['--owners', '3', '--data', new_data, '--id', 'id', '--model',
                            str(model), '--predictions-to', '2', '--save-predictions',
                            str(saved_to)], 4, timeout=300)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(saved_to).set_index('id').sort_index()
    merged = chained_merge(new).set_index('id').sort_index()
    assert list(got.index) == list(merged.index)
    expected = merged[list(X.columns)].to_numpy() @ coef + out['intercept']
    np.testing.assert_allclose(got['predicted_y'], expected, atol=2e-3 * (hi - lo))
    # a model of three owners is not applied to two
    r = run_local(PREDICT, ['--left', new_data.format(party=0), '--right',
                            new_data.format(party=1), '--id', 'id', '--model', str(model)], 3,
                  timeout=120)
    assert r.returncode != 0 and 'trained on the tables of 3 owners, not 2' in r.stderr


def test_options_of_k_owners_fail_before_anything_runs(tmp_path):
    from mpclab.options import OptionError, from_values
    with pytest.raises(OptionError, match='--left: is the two-owner spelling: with --owners 3'):
        from_values('join', {'id': 'id', 'owners': 3, 'left': 'a.csv'})
    with pytest.raises(OptionError, match='either --data .* or --left/--right'):
        from_values('join', {'id': 'id', 'data': 'a.csv', 'right': 'b.csv'})
    with pytest.raises(OptionError, match='--owners: 1: a join needs 2 or more owners'):
        from_values('join', {'id': 'id', 'owners': 1})
    opts = from_values('join', {'id': 'id', 'owners': 3, 'data': 'o_{party}.csv'})
    with pytest.raises(OptionError, match='--join-helper: 2 must be between 3 and 4'):
        from_values('join', {'id': 'id', 'owners': 3, 'join_helper': 2}).check_parties(5)
    with pytest.raises(OptionError, match='with one party'):
        opts.check_parties(1)
    assert opts.for_party(2, shared_command_line=True).data.data == 'o_2.csv'
    assert opts.agreed()['owners'] == 3 and 'data' not in opts.agreed()


@pytest.mark.slow
def test_too_few_parties_or_a_missing_table_stop_every_party(tmp_path):
    tables = owner_tables(np.random.default_rng(1), [10, 10, 10], 5)
    data = write_owner_tables(tmp_path, tables)
    r = run_local(JOIN, ['--owners', '3', '--data', data, '--id', 'id'], 3, timeout=60)
    assert r.returncode != 0
    assert 'the join needs 4 or more parties (3 owners and a helper), not 3' in r.stderr
    os.remove(tmp_path / 'owner_2.csv')
    r = run_local(JOIN, ['--owners', '3', '--data', data, '--id', 'id'], 4, timeout=60)
    assert r.returncode != 0
    assert 'owner_2.csv' in r.stderr


@pytest.mark.slow
def test_with_three_owners_no_party_receives_another_owners_identifiers_or_values(tmp_path):
    from partyrun import leak_patterns, leaks, run_separate
    from test_leakage import FMT, WIDE, owner_table, received
    rng = np.random.default_rng(2025)
    common = [f'SHARED-SECRET-{i:04d}-ID' for i in range(16)]
    tables = [owner_table(rng, prefix, n, common) for prefix, n in (('A', 20), ('B', 22), ('C', 18))]
    for k, t in enumerate(tables):
        t.to_csv(tmp_path / f'owner_{k}.csv', index=False)
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    args = ['--owners', '3', '--id', 'id', *WIDE]
    own = [['--data', str(tmp_path / f'owner_{k}.csv')] for k in range(3)] + [[]]
    results = run_separate(JOIN, [mine + args for mine in own], env=env, timeout=300)
    for code, _, err in results:
        assert code == 0, err
    secrets_of = {k: leak_patterns(t, fmt=FMT) for k, t in enumerate(tables)}
    seen = {pid: received(record, pid) for pid in range(4)}
    assert all(len(b) > 10_000 for b in seen.values())   # the recording did capture the run
    for pid in range(4):
        for owner in set(range(3)) - {pid}:
            leaked = leaks(seen[pid], secrets_of[owner])
            assert not leaked, f'party {pid} received {leaked[:5]} of owner {owner}'
    # the detector works: public column names, sent as text like everything else, are found
    assert b'C_public_column_2' in seen[0] and b'A_public_column_0' in seen[2]


@pytest.mark.slow
def test_python_api_describes_the_join_of_one_dataframe_per_owner():
    import mpclab
    from test_describe import assert_like_pandas
    tables = owner_tables(np.random.default_rng(8), [40, 36, 44], 30)
    result = mpclab.run('describe', parties=4, owners=3, data=tables, id='id')
    assert result.summary['owner_rows'] == [40, 36, 44]
    assert_like_pandas(result.summary, chained_merge(tables).drop(columns='id'), tol=1e-4)
