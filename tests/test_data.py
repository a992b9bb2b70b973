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
