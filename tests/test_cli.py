"""The front door: the `mpclab` command, study files and approval, what a person sees."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mpclab.twin import plaintext_join, plaintext_split
from partyrun import PROTOCOLS, ROOT, leak_patterns, run_separate

pytestmark = pytest.mark.slow
DATA = os.path.join(ROOT, 'data')
INSURER, HOSPITAL = os.path.join(DATA, 'insurer.csv'), os.path.join(DATA, 'hospital.csv')
LASSO = os.path.join(PROTOCOLS, 'lasso.py')
JOIN = os.path.join(PROTOCOLS, 'inner_join.py')


def mpclab(*args, cwd=ROOT, timeout=300):
    return subprocess.run([sys.executable, '-m', 'mpclab', *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def study_file(tmp_path, name='study.toml', alpha=0.001, extra=''):
    path = tmp_path / name
    path.write_text(f'program = "lasso"\nid = "patient_id"\ntarget = "charges"\nscale = "minmax"\n'
                    f'alpha = {alpha}\ntest_fraction = 0.1\njson = "{tmp_path}/out_{{party}}.json"\n'
                    + extra)
    return path


def test_the_command_and_the_protocol_program_give_the_same_model(tmp_path):
    # 400 of the insurer's people, split by a public seed and 8 iterations (the cost grows
    # with rows and iterations, the property does not): the two runs fit the same model
    insurer = pd.read_csv(INSURER).iloc[:400]
    hospital = pd.read_csv(HOSPITAL)
    hospital = hospital[hospital['patient_id'].isin(insurer['patient_id'])]
    left, right = tmp_path / 'insurer.csv', tmp_path / 'hospital.csv'
    insurer.to_csv(left, index=False)
    hospital.to_csv(right, index=False)
    study = study_file(tmp_path, extra='split = "seeded"\nseed = 4\nfixed_iterations = 8\n')
    r = mpclab('lasso', '-M3', '--study', study, '--left', left, '--right', right)
    assert r.returncode == 0, r.stderr
    by_command = json.loads((tmp_path / 'out_0.json').read_text())
    r = subprocess.run([sys.executable, LASSO, '-M3', '--left', left, '--right', right,
                        '--id', 'patient_id', '--target', 'charges', '--scale', 'minmax',
                        '--alpha', '0.001', '--test-fraction', '0.1', '--split', 'seeded',
                        '--seed', '4', '--fixed-iterations', '8',
                        '--json', str(tmp_path / 'p_{party}.json')],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    by_program = json.loads((tmp_path / 'p_0.json').read_text())
    assert by_command['fingerprint'] == by_program['fingerprint']
    assert by_command['coef'].keys() == by_program['coef'].keys()
    # the same rows: the models agree up to the secure fixed point's rounding (coefficients in
    # dollars per unit of each feature)
    a, b = np.array(list(by_command['coef'].values())), np.array(list(by_program['coef'].values()))
    assert np.abs(a - b).max() < 1e-3 * np.abs(b).max()
    train, _ = plaintext_split(plaintext_join(str(left), str(right), 'patient_id'), 'patient_id', 4, 0.1)
    assert by_command['train_rows'] == by_program['train_rows'] == len(train)
    assert by_command['intersection_size'] == len(hospital) > 300
    assert by_command['n_iter'] == by_program['n_iter'] == 8


def test_approve_prints_the_fingerprint_every_party_checks(tmp_path):
    study = study_file(tmp_path)
    r = mpclab('approve', study)
    assert r.returncode == 0, r.stderr
    fp = re.search(r'fingerprint ([0-9a-f]{64})', r.stdout)[1]
    assert 'alpha = 0.001' in r.stdout and 'min_rows = 20' in r.stdout
    assert 'null' not in r.stdout and '  # seed: not set' in r.stdout   # unset: a comment
    r = mpclab('approve', study, '--json')
    assert json.loads(r.stdout)['fingerprint'] == fp


def test_an_owner_that_approved_another_analysis_stops_everyone_before_any_data(tmp_path):
    approved, used = study_file(tmp_path, 'approved.toml'), study_file(tmp_path, 'used.toml', 0.01)
    fp = re.search(r'fingerprint ([0-9a-f]{64})', mpclab('approve', approved).stdout)[1]
    record = tmp_path / 'received'
    record.mkdir()
    env = {**os.environ, 'MPCLAB_TEST_RECORD_DIR': str(record)}
    common = ['--study', str(used)]
    results = run_separate(LASSO, [common + ['--left', INSURER, '--approved', fp],
                                   common + ['--right', HOSPITAL], common], env=env, timeout=120)
    for i, (code, out, err) in enumerate(results):
        assert code == 2, err
        assert f'party 0 approved the analysis {fp[:16]}' in err, err
        assert out == ''
    data = b''.join((record / n).read_bytes() for n in os.listdir(record))
    assert len(data) < 20_000   # just the agreement round
    patterns = {**leak_patterns(pd.read_csv(INSURER), 'patient_id'),
                **leak_patterns(pd.read_csv(HOSPITAL), 'patient_id')}
    assert not [k for k, p in patterns.items() if p in data]
    # given the approved study file rather than its fingerprint, the message names the option
    results = run_separate(LASSO, [common + ['--left', INSURER, '--approved', str(approved)],
                                   common + ['--right', HOSPITAL], common], timeout=120)
    for code, _, err in results:
        assert code == 2 and '--alpha is 0.01, approved 0.001' in err, err


def test_a_mismatch_is_reported_as_the_option_the_user_typed(tmp_path):
    base = ['--id', 'patient_id']
    results = run_separate(JOIN, [base + ['--left', INSURER], base + ['--right', HOSPITAL],
                                  base + ['--scale', 'minmax']], timeout=120)
    for code, _, err in results:
        assert code == 2 and 'options differ between parties: --scale is' in err, err


def test_a_dropped_column_that_no_table_has_is_an_error(tmp_path):
    r = mpclab('join', '-M3', '--left', INSURER, '--right', HOSPITAL, '--id', 'patient_id',
               '--drop-columns', 'bmi', 'smoker_maybe')
    assert r.returncode == 2
    assert "--drop-columns: no table has a column 'smoker_maybe'" in r.stderr


def test_data_never_crosses_a_network_unencrypted_by_default():
    r = mpclab('join', '-P', '192.0.2.1:11365', '-P', '192.0.2.2:11365', '-P', '192.0.2.3:11365',
               '-I', '0', '--left', INSURER, '--id', 'patient_id', timeout=60)
    assert r.returncode == 2
    assert 'refusing to connect to 192.0.2.2:11365, 192.0.2.3:11365 without encryption' in r.stderr
    assert '--ssl' in r.stderr and '--allow-plaintext-network' in r.stderr
    r = mpclab('join', '-P', '192.0.2.1:11365', '-P', '192.0.2.2:11365', '-P', '192.0.2.3:11365',
               '-I', '0', '--left', INSURER, '--id', 'patient_id', '--allow-plaintext-network',
               '--connect-timeout', '2', timeout=60)
    assert r.returncode == 3 and 'could not connect' in r.stderr, r.stderr


def test_help_is_the_programs_own_and_starts_nothing():
    r = mpclab('lasso', '-h', timeout=60)
    assert r.returncode == 0 and '--alpha' in r.stdout and '--study' in r.stdout
    assert 'MPyC' not in r.stderr
    r = mpclab(timeout=60)
    assert r.returncode == 2 and 'lasso' in r.stdout and 'approve' in r.stdout


@pytest.fixture(scope='module')
def join_run(tmp_path_factory):
    """One plain join of the demo tables with --json: its result and the parties' summaries."""
    out = tmp_path_factory.mktemp('join')
    r = mpclab('join', '-M3', '--left', INSURER, '--right', HOSPITAL, '--id', 'patient_id',
               '--json', out / 'join_{party}.json')
    return r, out


def test_results_go_to_stdout_and_mpyc_log_lines_only_with_verbose(join_run):
    r, _ = join_run
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('joined 1269 x 1269 rows: 1200 in common') and r.stderr == ''
    assert 'MPyC' not in r.stdout
    r = mpclab('join', '-M3', '--left', INSURER, '--right', HOSPITAL, '--id', 'patient_id',
               '--verbose')
    assert r.returncode == 0 and 'Start MPyC runtime' in r.stderr and 'MPyC' not in r.stdout


def test_identifiers_that_differ_only_in_case_are_warned_about_and_can_be_matched(tmp_path):
    left = pd.DataFrame({'id': [f'AB{i:03d}' for i in range(40)], 'x': np.arange(40.0)})
    right = pd.DataFrame({'id': [f'ab{i:03d}' for i in range(40)], 'y': np.arange(40.0)})
    lp, rp = tmp_path / 'l.csv', tmp_path / 'r.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    base = ['--id', 'id']
    results = run_separate(JOIN, [base + ['--left', str(lp)], base + ['--right', str(rp)], base])
    for code, out, err in results:
        assert code == 0, err
        assert 'the intersection is empty' in out
        assert 'warning: the intersection is empty' in err and '--id-normalize' in err
    base += ['--id-normalize', 'casefold']
    results = run_separate(JOIN, [base + ['--left', str(lp)], base + ['--right', str(rp)], base])
    for code, out, err in results:
        assert code == 0 and '40 in common' in out and err == '', err


def test_local_runs_show_the_other_partys_full_reason(tmp_path):
    bad = pd.read_csv(HOSPITAL)
    bad = bad.astype({'bmi': object})
    bad.loc[6, 'bmi'] = 'unknown'
    path = tmp_path / 'hospital-export.csv'
    bad.to_csv(path, index=False)
    r = mpclab('join', '-M3', '--left', INSURER, '--right', path, '--id', 'patient_id')
    assert r.returncode == 2
    assert (f"party 1 stopped before sending any data: {path}: column 'bmi': non-numeric value "
            f"at data row 7") in r.stderr


def test_every_party_writes_its_own_summary(join_run):
    r, out = join_run
    assert r.returncode == 0, r.stderr
    views = [json.loads((out / f'join_{i}.json').read_text()) for i in range(3)]
    assert [v['party'] for v in views] == [0, 1, 2]
    assert len({v['fingerprint'] for v in views}) == 1
    for v in views:
        assert v['intersection_size'] == 1200 and 'security' in v and 'timings' in v
