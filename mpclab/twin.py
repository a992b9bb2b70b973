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

__all__ = ['plaintext_join', 'plaintext_split']


def _decoded(source, id_column, fmt, scale, exclude):
    t = load_party_table(source, id_column, fmt, scale=scale, exclude=exclude)
    df = pd.DataFrame(fmt.decode(t.encoded), columns=t.columns)
    df.insert(0, id_column, t.ids)
    return df


def plaintext_join(left, right, id_column, fmt=None, scale=None, exclude=()):
    """Inner join of the two owners' preprocessed tables (identifier column kept first)."""
    fmt = fmt or FixedPointFormat()
    a = _decoded(left, id_column, fmt, scale, exclude)
    b = _decoded(right, id_column, fmt, scale, exclude)
    return a.merge(b, on=id_column, how='inner')


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
