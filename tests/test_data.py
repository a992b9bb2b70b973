import numpy as np
import pandas as pd
import pytest

from mpclab.data import InputError, load_party_table, normalize_id
from mpclab.fixedpoint import FixedPointFormat


def write(tmp_path, text, name='t.csv'):
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return path


def test_reads_and_encodes_exactly(tmp_path):
    path = write(tmp_path, 'id,a,b\n007,1.5,-2\n7,0.25,3\n')
    t = load_party_table(path, 'id')
    assert t.ids == ['007', '7']  # identifiers are text, not numbers
    assert t.columns == ['a', 'b']
    assert t.encoded.tolist() == [[3 << 15, -2 << 16], [1 << 14, 3 << 16]]


@pytest.mark.parametrize('text, column, reason', [
    ('pid,a\n1,2\n', 'id', 'identifier column'),
    ('id,a\n1,2\n1,3\n', 'id', 'duplicate identifier'),
    ('id,a\n1,2\n,3\n', 'id', 'missing or empty identifier'),
    ('id,a\n1,2\n  ,3\n', 'id', 'missing or empty identifier'),
    ('id,a\n1,2\n2,\n', 'a', 'missing (NaN)'),
    ('id,a\n1,2\n2,nan\n', 'a', 'missing (NaN)'),
    ('id,a\n1,2\n2,inf\n', 'a', 'infinite'),
    ('id,a\n1,2\n2,yes\n', 'a', 'non-numeric'),
    ('id,a\n1,2\n2,70000\n', 'a', 'outside the fixed-point range'),
    ('id\n1\n2\n', 'id', 'no feature columns'),
    ('id,a\n', 'id', 'no data rows'),
])
def test_bad_input_names_file_and_column(tmp_path, text, column, reason):
    path = write(tmp_path, text, 'owner.csv')
    with pytest.raises(InputError) as info:
        load_party_table(path, 'id')
    message = str(info.value)
    assert 'owner.csv' in message and reason in message
    if column != 'id' or 'identifier' in reason:
        assert repr(column) in message or reason in ('no data rows', 'no feature columns')
    assert '\n' not in message
    assert info.value.public and 'owner.csv' not in info.value.public


def test_unreadable_and_missing_file(tmp_path):
    with pytest.raises(InputError, match='file not found'):
        load_party_table(tmp_path / 'absent.csv', 'id')
    bad = tmp_path / 'bin.csv'
    bad.write_bytes(b'id,a\n\xff\xfe\x00,1\n')
    with pytest.raises(InputError, match='bin.csv'):
        load_party_table(bad, 'id')


def test_unicode_ids_are_normalised():
    composed, decomposed = 'Jos\u00e9', 'Jose\u0301'
    assert normalize_id(composed) == normalize_id(decomposed)
    df = pd.DataFrame({'id': [decomposed, ' x '], 'v': [1.0, 2.0]})
    assert load_party_table(df, 'id').ids == [composed, 'x']


def test_minmax_scaling_is_local_and_bounded(tmp_path):
    df = pd.DataFrame({'id': ['a', 'b', 'c'], 'big': [1e6, 2e6, 3e6], 'const': [5.0] * 3})
    t = load_party_table(df, 'id', scale='minmax')
    fmt = FixedPointFormat()
    assert np.allclose(fmt.decode(t.encoded), [[0, 0], [0.5, 0], [1, 0]])
    assert t.scaling['big'] == (1e6, 3e6)
    with pytest.raises(InputError, match='outside'):
        load_party_table(df, 'id')


def test_range_follows_format():
    df = pd.DataFrame({'id': ['a'], 'v': [1000.0]})
    with pytest.raises(InputError):
        load_party_table(df, 'id', FixedPointFormat(int_bits=8))
    t = load_party_table(df, 'id', FixedPointFormat(int_bits=10, frac_bits=4))
    assert t.encoded[0, 0] == 16000


# -- real exports: separators, encodings, decimal commas, duplicate names, identifier formats --
def test_semicolon_and_tab_files_are_read_and_the_separator_reported(tmp_path):
    path = write(tmp_path, 'id;a;b\n1;1.5;2\n2;0.25;3\n')
    t = load_party_table(path, 'id')
    assert t.separator == ';' and t.columns == ['a', 'b'] and t.n_rows == 2
    t = load_party_table(write(tmp_path, 'id\ta\n1\t2\n', 'tab.csv'), 'id')
    assert t.separator == '\t' and t.columns == ['a']


def test_decimal_commas_are_read_with_the_decimal_option_and_hinted_without(tmp_path):
    path = write(tmp_path, 'id;a\n1;1,5\n2;0,25\n')
    t = load_party_table(path, 'id', decimal=',')
    assert t.encoded[:, 0].tolist() == [3 << 15, 1 << 14]
    with pytest.raises(InputError, match=r"column 'a': non-numeric value at data row 1 \(a decimal comma"):
        load_party_table(path, 'id')


def test_latin1_files_need_their_encoding_and_say_so(tmp_path):
    path = tmp_path / 'latin.csv'
    path.write_bytes('id,caf\xe9\n1,2\n'.encode('latin-1'))
    with pytest.raises(InputError, match=r'latin.csv: not utf-8 text .*line 1.*encoding'):
        load_party_table(path, 'id')
    assert load_party_table(path, 'id', encoding='latin-1').columns == ['caf\xe9']


def test_a_utf8_byte_order_mark_does_not_hide_the_identifier_column(tmp_path):
    path = tmp_path / 'bom.csv'
    path.write_bytes('\ufeffid,a\n1,2\n'.encode('utf-8'))
    assert load_party_table(path, 'id').ids == ['1']


def test_duplicate_column_names_in_one_file_are_an_error(tmp_path):
    path = write(tmp_path, 'id,bmi,age,bmi\n1,20,30,21\n')
    with pytest.raises(InputError, match=r"duplicate column names \['bmi'\]"):
        load_party_table(path, 'id')


def test_row_numbers_are_the_files_data_rows_even_after_blank_lines(tmp_path):
    path = write(tmp_path, 'id,a\n1,2\n\n3,x\n')
    with pytest.raises(InputError, match='data row 2'):   # the blank line is data row 2
        load_party_table(path, 'id')
    path = write(tmp_path, 'id,a\n1,2\n2,3\n\n', 'trailing.csv')   # a blank line at the end
    assert load_party_table(path, 'id').n_rows == 2


@pytest.mark.parametrize('how, a, b', [('casefold', 'AB-12', 'ab-12'), ('strip-zeros', '007', '7'),
                                       ('strip-zeros', '000', '0')])
def test_agreed_identifier_normalisation(how, a, b):
    assert normalize_id(a, how) == normalize_id(b, how)
    assert normalize_id(a) != normalize_id(b)


def test_identifiers_equal_after_normalisation_are_duplicates(tmp_path):
    path = write(tmp_path, 'id,a\nAB,1\nab,2\n')
    assert load_party_table(path, 'id').n_rows == 2
    with pytest.raises(InputError, match='data rows 1 and 2 .the same after casefold'):
        load_party_table(path, 'id', id_normalize='casefold')


def test_a_bad_label_is_reported_at_its_own_row_before_scaling(tmp_path):
    # min-max scaling would turn the labels 0, 1, 2 into 0, 0.5, 1 and blame row 2
    path = write(tmp_path, 'id,y,x\n1,0,5\n2,1,6\n3,2,7\n')
    with pytest.raises(InputError, match=r"column 'y': label 2 at data row 3 is not 0 or 1"):
        load_party_table(path, 'id', scale='minmax', binary_columns=['y'])


def test_labels_of_one_class_are_refused_by_their_owner(tmp_path):
    path = write(tmp_path, 'id,y,x\n1,1,5\n2,1,6\n')
    with pytest.raises(InputError, match="column 'y' holds only 1s"):
        load_party_table(path, 'id', binary_columns=['y'])


def test_the_owner_notes_which_requested_drops_it_had(tmp_path):
    path = write(tmp_path, 'id,a,b\n1,2,3\n')
    t = load_party_table(path, 'id', exclude=['b', 'other_owners_column'])
    assert t.columns == ['a'] and t.dropped == ['b']
