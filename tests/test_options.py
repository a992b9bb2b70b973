"""Options are declared once, validated once, and read the same from a command line, a study
file or Python keyword arguments."""

import dataclasses

import pytest

from mpclab import options as O
from mpclab.options import OptionError
from mpclab.study import approve, read_study

BASE = ['--id', 'patient_id', '--target', 'charges']


def parse(program, argv):
    opts, rest = O.from_command_line(program, argv)
    return opts, rest


def test_command_line_values_reach_their_typed_group_and_mpyc_keeps_its_own():
    opts, rest = parse('lasso', [*BASE, '--alpha', '0.01', '--drop-columns', 'a', 'b',
                                 '-M3', '--frac-bits', '20', '--model-to', '1', '-I', '0'])
    assert opts.model.alpha == 0.01 and opts.data.drop_columns == ('a', 'b')
    assert opts.security.frac_bits == 20 and opts.output.model_to == (1,)
    assert rest == ['-M3', '-I', '0']
    assert opts.input_format().frac_bits == 20   # one short path to where it is used


def test_the_same_options_from_python_give_the_same_analysis():
    cli, _ = parse('lasso', [*BASE, '--alpha', '0.01', '--scale', 'minmax'])
    py = O.from_values('lasso', {'id': 'patient_id', 'target': 'charges', 'alpha': 0.01,
                                 'scale': 'minmax'})
    assert cli.agreed() == py.agreed() and cli.fingerprint() == py.fingerprint()


def test_defaults_are_part_of_the_agreed_options():
    opts = O.from_values('lasso', {'id': 'i', 'target': 't', 'scale': 'minmax'})
    assert opts.security.int_bits == 'auto'   # agreed at run time from the owners' data
    assert opts.input_format(1).int_bits == 1
    same = O.from_values('lasso', {'id': 'i', 'target': 't', 'scale': 'minmax', 'alpha': 0.001,
                                   'int_bits': 'auto'})
    assert opts.fingerprint() == same.fingerprint()
    fixed = O.from_values('lasso', {'id': 'i', 'target': 't', 'scale': 'minmax', 'int_bits': 1})
    assert fixed.fingerprint() != opts.fingerprint() and fixed.input_format().int_bits == 1


def test_party_options_stay_out_of_the_analysis():
    a = O.from_values('lasso', {'id': 'i', 'target': 't', 'left': 'x.csv', 'json': 'o.json',
                                'timeout': 5, 'sep': ';'})
    b = O.from_values('lasso', {'id': 'i', 'target': 't'})
    assert a.fingerprint() == b.fingerprint()
    assert not {'left', 'json', 'timeout', 'sep', 'approved'} & set(a.agreed())


def test_paths_take_the_party_number():
    opts = O.from_values('join', {'id': 'i', 'json': 'out/{party}.json', 'left': 'l_{party}.csv'})
    mine = opts.for_party(2)
    assert mine.run.json == 'out/2.json' and mine.data.left == 'l_2.csv'
    assert opts.run.json == 'out/{party}.json'


def test_with_one_command_line_for_all_parties_a_file_without_party_is_written_by_party_0():
    opts = O.from_values('lasso', {'id': 'i', 'target': 't', 'json': 'o.json', 'left': 'l.csv',
                                   'model_out': 'm.json'})
    zero, one = opts.for_party(0, shared_command_line=True), opts.for_party(1, shared_command_line=True)
    assert (zero.run.json, zero.output.model_out) == ('o.json', 'm.json')
    assert (one.run.json, one.output.model_out) == (None, None)
    assert one.data.left == 'l.csv'                  # inputs are not "written by each party"
    assert opts.for_party(1).run.json == 'o.json'   # -P/-I: each party its own command line
    secret = O.from_values('lasso', {'id': 'i', 'target': 't', 'secret_model': True,
                                     'model_out': 'm.json'})
    with pytest.raises(OptionError, match=r'--model-out m.json: with -M every party keeps its own '
                                          r'shares.*\{party\}'):
        secret.for_party(0, shared_command_line=True)
    assert secret.for_party(1).output.model_out == 'm.json'


@pytest.mark.parametrize('values, message', [
    ({'alpha': -1}, '--alpha: must be non-negative'),
    ({'test_fraction': 1.0}, '--test-fraction: 1 must lie in [0, 1)'),
    ({'seed': 3}, '--seed: a seed only makes sense with --split seeded'),
    ({'split': 'seeded'}, '--split: seeded needs --seed S'),
    ({'frac_bits': 40}, '--frac-bits: 40 must lie in [0, 32]'),
    ({'int_bits': 40}, '--int-bits: 40 leaves no room in SecFxp(64, 32)'),
    ({'stat_sec': 10}, '--stat-sec: 10 bits give no meaningful'),
    ({'nope': 1}, 'lasso has no option --nope'),
])
def test_bad_values_are_refused_naming_the_flag(values, message):
    with pytest.raises(O.OptionError) as info:
        O.from_values('lasso', {'id': 'i', 'target': 't', **values})
    assert message in str(info.value)


def test_a_missing_required_option_is_named():
    with pytest.raises(O.OptionError, match='lasso needs --target'):
        O.from_values('lasso', {'id': 'i'})


def test_no_program_option_is_a_prefix_of_an_mpyc_option():
    """MPyC parses the whole command line and accepts abbreviations of its own options."""
    import mpyc
    mpyc_long = [s for a in mpyc._get_arg_parser()._actions for s in a.option_strings
                 if s.startswith('--')]
    for program in O.PROGRAMS:
        for name in O.option_specs(program):
            flag = O.flag(name)
            assert not any(m.startswith(flag) for m in mpyc_long), (flag, program)


def test_study_files_read_like_the_command_line(tmp_path):
    study = tmp_path / 's.toml'
    study.write_text('program = "lasso"\nid = "patient_id"\ntarget = "charges"\nalpha = 0.01\n'
                     'drop_columns = ["a"]\njson = "out_{party}.json"\nparties = 3\n')
    opts, _ = parse('lasso', ['--study', str(study), '--left', 'mine.csv'])
    assert opts.model.alpha == 0.01 and opts.data.drop_columns == ('a',)
    assert opts.data.left == 'mine.csv' and opts.parties == 3
    cli, _ = parse('lasso', [*BASE, '--alpha', '0.01', '--drop-columns', 'a'])
    assert opts.agreed() == {**cli.agreed(), 'parties': 3}
    fp, agreed = approve(str(study))
    assert fp == opts.fingerprint() and agreed == opts.agreed()


def test_a_study_and_a_command_line_that_disagree_are_an_error(tmp_path):
    study = tmp_path / 's.toml'
    study.write_text('program = "lasso"\nid = "patient_id"\ntarget = "charges"\nalpha = 0.01\n')
    with pytest.raises(O.OptionError, match='--alpha is 0.1 on the command line but 0.01 in'):
        parse('lasso', ['--study', str(study), '--alpha', '0.1'])
    parse('lasso', ['--study', str(study), '--alpha', '0.01'])   # the same value is fine


@pytest.mark.parametrize('text, message', [
    ('program = "lasso"\nid = "x"\ntarget = "y"\nalhpa = 1\n', "lasso has no option 'alhpa'"),
    ('program = "join"\nid = "x"\n', "is a study for 'join', not for 'lasso'"),
    ('id = "x"\n[model]\nalpha = 1\n', '[model] tables are not used'),
    ('program = "lasso"\nid = \n', 'not a valid TOML file'),
])
def test_bad_study_files_are_named(tmp_path, text, message):
    study = tmp_path / 'bad.toml'
    study.write_text(text)
    with pytest.raises(O.OptionError) as info:
        read_study(str(study), 'lasso')
    assert message in str(info.value)


def _unchecked(group, name, value):
    copy = dataclasses.replace(group)
    object.__setattr__(copy, name, value)
    return copy


def test_the_fingerprint_covers_program_version_and_every_agreed_option(monkeypatch):
    opts = O.from_values('lasso', {'id': 'i', 'target': 't'})
    fp = opts.fingerprint()
    for name in opts.agreed():
        attr, f = O.option_specs('lasso')[name]
        group = opts.groups[attr]
        value = getattr(group, name)
        other = {bool: (lambda v: not v), int: (lambda v: v + 2),
                 float: (lambda v: v * 2 + 0.5)}.get(type(value))
        if other is None:
            continue
        # (replace() skips no check; the values only need to differ)
        changed = dataclasses.replace(opts, groups={**opts.groups, attr: _unchecked(
            group, name, other(value))})
        assert changed.fingerprint() != fp, name
    assert O.fingerprint('logistic', opts.agreed()) != fp
    monkeypatch.setattr(O, '__version__', '9.9.9')
    assert O.fingerprint('lasso', opts.agreed()) != fp
