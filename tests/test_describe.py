"""Descriptive statistics in MPC (mpclab.stats, the describe program) against pandas and numpy.

In one process (one party, hypothesis on random tables): the public summary of the opened
moments is pandas' ``describe()`` and ``corr()``; min, max and histograms are numpy's.  With
real separate parties (3, 4 and 5: 3, 4 and 10 sets of share holders): the same, every party
alike, and a log of every opening shows that nothing but the aggregates is opened, and that a
suppressed cell is opened as 0, never as its count.  The program end to end on the plaintext
twin at 1, 3 and 4 parties, with the traffic recorder: no party receives an identifier or a
value of another owner.  Bad input stops every party with one line before any data moves.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from mpyc.runtime import mpc

from mpclab import stats
from mpclab.fixedpoint import FixedPointFormat
from mpclab.session import EXIT_INPUT
from mpclab.table import SecretTable
from mpclab.twin import plaintext_join
from partyrun import PROTOCOLS, ROOT, leak_patterns, leaks, run_local, run_separate, write_tables as write

DESCRIBE = os.path.join(PROTOCOLS, 'describe.py')
PARTY = os.path.join(ROOT, 'tests', 'programs', 'describe_party.py')
ROWS = ['count', 'mean', 'std', 'min', 'max']


def pandas_view(df):
    return df.describe().loc[ROWS], df.corr()


def assert_like_pandas(out, df, tol=1e-9):
    want, want_corr = pandas_view(df)
    got = pd.DataFrame.from_dict(out['describe'], orient='index').loc[ROWS, df.columns].astype(float)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=tol, atol=tol)
    corr = pd.DataFrame(out['corr']).loc[df.columns, df.columns].astype(float).to_numpy()
    assert np.array_equal(np.isnan(corr), np.isnan(want_corr.to_numpy()))
    np.testing.assert_allclose(np.nan_to_num(corr), np.nan_to_num(want_corr.to_numpy()), atol=tol)


def expected_histogram(x, bins, min_count):
    counts = np.histogram(x, bins=bins)[0]
    return [int(c) if c >= min_count else None for c in counts]


# -- the public summary ----------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                  elements=st.integers(-2**20, 2**20)),
       st.sampled_from([0, 4, 16]))
def test_the_summary_of_exact_moments_is_pandas_describe_and_corr(ints, frac_bits):
    n, d = ints.shape
    ints[:, 0] = ints[0, 0]   # a constant column: pandas shows NaN correlations
    X = ints.astype(object)
    m = stats.Moments(n, X.sum(axis=0).tolist(), (X.T @ X).tolist(), frac_bits)
    columns = [f'c{j}' for j in range(d)]
    rows, corr = stats.summarise(m, columns)
    rows['min'] = rows['max'] = {c: 0.0 for c in columns}   # not from the moments
    df = pd.DataFrame(np.ldexp(ints.astype(float), -frac_bits), columns=columns)
    want, want_corr = pandas_view(df)
    got = pd.DataFrame.from_dict(rows, orient='index').loc[ROWS[:3]].astype(float)
    np.testing.assert_allclose(got.to_numpy(), want.loc[ROWS[:3]].to_numpy(), rtol=1e-9, atol=1e-12,
                               equal_nan=True)
    got_corr = pd.DataFrame(corr).loc[columns, columns].astype(float).to_numpy()
    assert np.array_equal(np.isnan(got_corr), np.isnan(want_corr.to_numpy()))
    np.testing.assert_allclose(np.nan_to_num(got_corr), np.nan_to_num(want_corr.to_numpy()),
                               atol=1e-9)


def test_histogram_edges_are_numpys_also_for_a_single_value():
    for low, high in ((0.0, 1.0), (-3.5, 2.25), (7.0, 7.0)):
        x = np.array([low, high])
        np.testing.assert_array_equal(stats.histogram_edges(low, high, 7), np.histogram(x, bins=7)[1])


def test_a_format_too_wide_for_the_comparisons_or_the_field_is_refused():
    with pytest.raises(ValueError, match='too wide'):
        stats.check_format(FixedPointFormat(32, 40, 128), 10, 200, 30)
    with pytest.raises(ValueError, match='sums of products'):
        stats.check_format(FixedPointFormat(16, 30, 64), 10**12, 128, 30)
    with pytest.raises(ValueError, match='empty'):
        stats.check_format(FixedPointFormat(), 0, 128, 30)
    stats.check_format(FixedPointFormat(), 10**6, 128, 30)


def test_a_table_in_another_secure_type_than_the_format_is_refused():
    table = SecretTable(mpc.SecFxp(64, 32).array(np.zeros((3, 2)), integral=False), ['a', 'b'])
    with pytest.raises(ValueError, match='not in the input format'):
        mpc.run(stats.to_bits(table, FixedPointFormat(frac_bits=16, int_bits=2, secure_bits=96)))


# -- one party, in this process --------------------------------------------------------------

FMT = FixedPointFormat(frac_bits=8, int_bits=6, secure_bits=64)


def tables():
    def build(draw):
        n = draw(st.integers(1, 140))
        d = draw(st.integers(1, 4))
        ints = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-2**14 + 1, 2**14 - 1)))
        few = draw(hnp.arrays(np.int64, (n,), elements=st.integers(-3, 3)))
        ints[:, d - 1] = few   # many ties
        return np.ldexp(ints.astype(float), -FMT.frac_bits)
    return st.composite(lambda draw: build(draw))()


def describe_one_party(X, histogram, bins, min_count):
    values = FMT.secfxp().array(X, integral=False)
    table = SecretTable(values, [f'c{j}' for j in range(X.shape[1])])
    return mpc.run(stats.describe(table, FMT, histogram, bins, min_count))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.integers(1, 9), st.integers(1, 6))
def test_one_party_statistics_are_pandas_and_numpy_on_random_tables(X, bins, min_count):
    columns = [f'c{j}' for j in range(X.shape[1])]
    out = describe_one_party(X, columns, bins, min_count)
    df = pd.DataFrame(X, columns=columns)
    assert_like_pandas(out, df)
    for c in columns:
        assert out['histograms'][c]['counts'] == expected_histogram(df[c], bins, min_count)
        np.testing.assert_array_equal(out['histograms'][c]['edges'], np.histogram(df[c], bins=bins)[1])


# -- separate parties, the library alone -----------------------------------------------------

def run_party_program(tmp_path, parties, *args):
    r = run_local(PARTY, ['--save-dir', str(tmp_path), *map(str, args)], parties, timeout=600)
    views = []
    for i in range(parties):
        path = tmp_path / f'party{i}.json'
        assert path.exists(), f'party {i} wrote nothing: {r.stderr[-3000:]}'
        views.append(json.loads(path.read_text()))
    return r, views


@pytest.mark.slow
@pytest.mark.parametrize('parties, seed', [(3, 1), (4, 2), (5, 3)])
def test_statistics_at_several_party_counts_are_pandas_and_open_only_the_aggregates(
        tmp_path, parties, seed):
    r, views = run_party_program(tmp_path, parties, '--seed', seed, '--rows', 150, '--cols', 5)
    assert r.returncode == 0, r.stderr
    X = np.array(views[0]['table'])
    columns = [f'c{j}' for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    for view in views:
        assert view['parties'] == parties
        assert_like_pandas(view, df)
        for c in ('c0', 'c3'):
            assert view['histograms'][c]['counts'] == expected_histogram(df[c], 10, 5)
        assert view['describe'] == views[0]['describe']
    counts = np.histogram(df['c3'], bins=10)[0]
    assert counts[0] == 1 and counts[-1] == 4       # small, distinctive cells at both ends
    # Every opening, at every party: two of MPyC (the sums and the sums of products), two of
    # stats (the minima and maxima, the histogram cells), and nothing else.
    for view in views:
        opened = view['opened']
        assert [o['by'] for o in opened] == ['mpyc', 'mpyc', 'stats', 'stats']
        assert [o['size'] for o in opened[:2]] == [5, 25]
        cells = np.array(opened[3]['ints']).reshape(2, 10)
        for h, c in enumerate(('c0', 'c3')):
            true = np.histogram(df[c], bins=10)[0]
            # a suppressed cell is opened as 0, never as its count
            np.testing.assert_array_equal(cells[h], np.where(true >= 5, true, 0))
        assert view['ledger']['openings_by_kind'] == {'mpc': X.size, 'mpyc': 0}
        assert view['ledger']['mpc_mask_bits'] >= 40


@pytest.mark.slow
def test_an_input_beyond_the_format_is_caught_before_its_masked_opening(tmp_path):
    r = run_local(PARTY, ['--save-dir', str(tmp_path), '--overflow'], 3, timeout=300)
    assert r.returncode != 0
    assert 'stats.to_bits' in r.stderr and 'the mask assumes' in r.stderr, r.stderr[-2000:]


# -- the program, end to end -----------------------------------------------------------------

def owner_tables(seed, n=130, overlap=0.85):
    """Two owners' tables on partly the same people; the hospital's bmi has thin tails."""
    rng = np.random.default_rng(seed)
    ids = [f'PERSON-{i:05d}' for i in rng.permutation(10 * n)]
    common = int(overlap * n)
    left_ids, right_ids = ids[:n], ids[:common] + ids[n:2 * n - common]
    left = pd.DataFrame({'id': left_ids, 'age': rng.integers(18, 80, n),
                         'charges': np.round(np.minimum(rng.lognormal(9, 0.8, n), 60000), 2),
                         'smoker': rng.integers(0, 2, n)})
    bmi = np.round(rng.normal(28, 3, n), 2)
    bmi[:2] = [12.5, 51.0]
    right = pd.DataFrame({'id': right_ids, 'bmi': bmi, 'steps': np.round(rng.uniform(0, 20, n), 3),
                          'site': 3.0})
    return left, right


def check_against_twin(out, lp, rp, histogram, bins, min_count, scale=None, fmt=None):
    fmt = fmt or FixedPointFormat(int_bits=1 if scale == 'minmax' else 16)
    twin = plaintext_join(lp, rp, 'id', fmt=fmt, scale=scale).drop(columns='id')
    assert out['intersection_size'] == len(twin)
    assert_like_pandas(out, twin, tol=1e-4)
    for c in histogram:
        assert out['histograms'][c]['counts'] == expected_histogram(twin[c], bins, min_count)
    return twin


@pytest.mark.slow
@pytest.mark.parametrize('parties', [1, 3])
def test_the_program_matches_pandas_on_the_plaintext_twin(tmp_path, parties):
    left, right = owner_tables(parties)
    lp, rp = write(tmp_path, left, right)
    js = tmp_path / 'out_{party}.json'
    args = ['--left', lp, '--right', rp, '--id', 'id', '--histogram', 'bmi', 'age', '--bins', '8',
            '--json', str(js)]
    r = run_local(DESCRIBE, args, parties, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / 'out_0.json').read_text())
    twin = check_against_twin(out, lp, rp, ['bmi', 'age'], 8, 5)
    assert None in out['histograms']['bmi']['counts']       # the thin tails are suppressed
    assert out['histograms']['bmi']['suppressed'] >= 2
    assert out['corr']['site']['age'] is None and np.isnan(twin.corr().loc['age', 'site'])
    assert 'histogram of bmi' in r.stdout and 'suppressed' in r.stdout
    assert any('min and max' in leak for leak in out['leaks'])


@pytest.mark.slow
def test_the_python_api_describes_dataframes(tmp_path):
    from mpclab import api
    left, right = owner_tables(8)
    result = api.run('describe', parties=3, left=left, right=right, id='id', histogram=['age'],
                     bins=5, timeout=600)
    lp, rp = write(tmp_path, left, right)
    check_against_twin(result.summary, lp, rp, ['age'], 5, 5)
    assert [s['party'] for s in result.summaries] == [0, 1, 2]


# wide encodings (48 fractional bits): every value leaves 5 or more distinctive whole bytes at
# every bit alignment, so that the recorder's search cannot miss it nor hit it by chance
WIDE = ['--fxp-bits', '96', '--frac-bits', '48', '--int-bits', '2']
WIDE_FMT = FixedPointFormat(frac_bits=48, int_bits=2, secure_bits=96)


def wide_tables(seed, n=60, common=48):
    """Values with many significant bits in [0.5, 3.5], as the wide format holds them."""
    rng = np.random.default_rng(seed)
    ids = [f'SECRET-{i:06d}-ID' for i in rng.permutation(10**6)[:2 * n - common]]
    left = pd.DataFrame(rng.uniform(0.5, 3.5, (n, 2)), columns=['L_a', 'L_b'])
    left.insert(0, 'id', ids[:n])
    right = pd.DataFrame(rng.uniform(0.5, 3.5, (n, 2)), columns=['R_a', 'R_b'])
    right.insert(0, 'id', ids[:common] + ids[n:])
    return left, right


@pytest.mark.slow
def test_four_separate_parties_describe_and_receive_no_owners_identifiers_or_values(tmp_path):
    left, right = wide_tables(4)
    lp, rp = write(tmp_path, left, right)
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    common = ['--id', 'id', *WIDE, '--histogram', 'R_a', 'L_b', '--bins', '6',
              '--min-count', '3', '--json', str(tmp_path / 'out_{party}.json')]
    plot = tmp_path / 'party1.png'
    per_party = [['--left', lp] + common, ['--right', rp, '--plot', str(plot)] + common,
                 common, common]
    results = run_separate(DESCRIBE, per_party, env=env, timeout=600)
    for code, _, err in results:
        assert code == 0, err
    views = [json.loads((tmp_path / f'out_{i}.json').read_text()) for i in range(4)]
    for view in views:
        check_against_twin(view, lp, rp, ['R_a', 'L_b'], 6, 3, fmt=WIDE_FMT)
        assert view['parties'] == 4
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'plot' in views[1] and 'plot' not in views[0]
    # what each party received: no identifier or value of another owner
    received = {}
    for name in os.listdir(record):
        pid = int(name.split('_')[0][len('party'):])
        received[pid] = received.get(pid, b'') + (record / name).read_bytes()
    secrets = {0: leak_patterns(left, fmt=WIDE_FMT), 1: leak_patterns(right, fmt=WIDE_FMT)}
    for pid, owners in ((2, (0, 1)), (3, (0, 1)), (0, (1,)), (1, (0,))):
        for owner in owners:
            leaked = leaks(received[pid], secrets[owner], confirm=False)
            assert not leaked, f'party {pid} received {leaked[:5]}'


# -- bad input -------------------------------------------------------------------------------

def run_bad(tmp_path, per_party):
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    results = run_separate(DESCRIBE, per_party, env=env, timeout=120)
    total = sum(f.stat().st_size for f in record.iterdir())
    return results, total


def one_line(pid, result):
    code, _, err = result
    assert code == EXIT_INPUT, f'party {pid} exited with {code}: {err}'
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert lines[0].startswith(f'mpclab party {pid}: ')
    return lines[0]


def three_parties(lp, rp, extra, extra_at=None):
    common = ['--id', 'id', '--timeout', '60', *extra]
    per_party = [['--left', lp] + common, ['--right', rp] + common, list(common)]
    for pid, more in (extra_at or {}).items():
        per_party[pid] += more
    return per_party


@pytest.mark.slow
def test_a_histogram_column_no_table_has_stops_every_party_before_any_data(tmp_path):
    left, right = owner_tables(5)
    lp, rp = write(tmp_path, left, right)
    results, received = run_bad(tmp_path, three_parties(lp, rp, ['--histogram', 'bmi', 'nope']))
    for pid, result in enumerate(results):
        assert "--histogram 'nope' is in neither table" in one_line(pid, result)
    assert received < 20_000   # the agreement round and the column names, no data


@pytest.mark.slow
def test_a_plot_that_cannot_be_written_stops_every_party_before_any_data(tmp_path):
    left, right = owner_tables(6)
    lp, rp = write(tmp_path, left, right)
    where = str(tmp_path / 'no' / 'such' / 'dir' / 'x.png')
    results, received = run_bad(tmp_path, three_parties(lp, rp, [], {1: ['--plot', where]}))
    lines = [one_line(pid, result) for pid, result in enumerate(results)]
    assert "--plot: the directory of this party's PNG does not exist" in lines[1]
    assert all('party 1 stopped: --plot' in lines[i] for i in (0, 2)), lines
    assert not any(where in line for line in lines)
    assert received < 20_000


@pytest.mark.slow
def test_an_intersection_smaller_than_min_count_is_not_described(tmp_path):
    left, right = owner_tables(7, n=40, overlap=0.1)   # 4 people in common
    lp, rp = write(tmp_path, left, right)
    results, _ = run_bad(tmp_path, three_parties(lp, rp, ['--min-count', '5']))
    for pid, result in enumerate(results):
        assert 'the intersection has 4 rows, fewer than --min-count 5' in one_line(pid, result)
