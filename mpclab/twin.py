"""The plaintext twin of a secure run: the same tables, encodings and split, in the clear.

For tests, experiments and demos only, where one person holds both files: it applies exactly
the preprocessing each owner applies locally (checks, scaling, fixed-point rounding), joins
with pandas and reproduces a seeded test split, so a secure result can be compared with
scikit-learn on identical numbers.
"""

import pandas as pd

from mpclab.data import load_party_table
from mpclab.fixedpoint import FixedPointFormat
from mpclab.join import is_test_id

__all__ = ['plaintext_join', 'plaintext_join_tables', 'plaintext_split']


def _decoded(source, id_column, fmt, scale, exclude):
    t = load_party_table(source, id_column, fmt, scale=scale, exclude=exclude)
    df = pd.DataFrame(fmt.decode(t.encoded), columns=t.columns)
    df.insert(0, id_column, t.ids)
    return df


def plaintext_join(left, right, id_column, fmt=None, scale=None, exclude=()):
    """Inner join of the two owners' preprocessed tables (identifier column kept first)."""
    return plaintext_join_tables([left, right], id_column, fmt, scale, exclude)


def plaintext_join_tables(sources, id_column, fmt=None, scale=None, exclude=()):
    """Chained inner join of every owner's preprocessed table, in owner order."""
    fmt = fmt or FixedPointFormat()
    joined = _decoded(sources[0], id_column, fmt, scale, exclude)
    for source in sources[1:]:
        joined = joined.merge(_decoded(source, id_column, fmt, scale, exclude), on=id_column,
                              how='inner')
    return joined


def plaintext_split(joined, id_column, seed, fraction):
    """(train, test) as the seeded secure split makes them (identifier column dropped).

    Only the seeded split can be followed in plaintext, which is why it exists; in a secure
    run it tells each owner how many of its own test candidates the other table holds
    (`mpclab.join`).  The default split, a block of the helper's secret order, cannot be
    followed, and reveals nothing.
    """
    test = joined[id_column].map(lambda i: is_test_id(i, seed, fraction)).to_numpy()
    data = joined.drop(columns=[id_column])
    return data[~test], data[test]
