"""SecretTable: a Shamir-shared table with public column names."""

import math

import numpy as np
from mpyc.runtime import mpc

__all__ = ['SecretTable']


class SecretTable:
    """A table whose values are secret-shared among all MPyC parties.

    Column names and the number of rows are public; the values and which real-world
    record a row belongs to are not.  After the secure join the rows stand in an order
    chosen at random by the helper party, which knows only pseudonyms.

    Parameters
    ----------
    values : secure fixed-point array of shape (n_rows, n_cols)
    columns : sequence of str
    """

    def __init__(self, values, columns):
        columns = list(columns)
        if values.shape != (values.shape[0], len(columns)):
            raise ValueError(f'values of shape {values.shape} do not match {len(columns)} columns')
        if len(set(columns)) != len(columns):
            raise ValueError(f'duplicate column names in {columns}')
        self.values = values
        self.columns = columns

    @property
    def sectype(self):
        return self.values.sectype

    @property
    def n_rows(self):
        return self.values.shape[0]

    @property
    def shape(self):
        return self.values.shape

    def __len__(self):
        return self.n_rows

    def __repr__(self):
        return f'SecretTable({self.n_rows} rows, columns={self.columns})'

    def index(self, name):
        try:
            return self.columns.index(name)
        except ValueError:
            raise KeyError(f'no column {name!r}; columns are {self.columns}') from None

    def __getitem__(self, key):
        """Column by name (a 1-D secure array) or a list of names (a SecretTable)."""
        if isinstance(key, str):
            return self.values[:, self.index(key)]
        idx = [self.index(k) for k in key]
        columns = [self.columns[i] for i in idx]
        if idx and idx == list(range(idx[0], idx[-1] + 1)):
            # a run of columns is a view of the shares (a million-row table is not copied)
            return SecretTable(self.values[:, idx[0]:idx[-1] + 1], columns)
        return SecretTable(self.values[:, idx], columns)

    def drop(self, names):
        names = [names] if isinstance(names, str) else list(names)
        for name in names:
            self.index(name)
        return self[[c for c in self.columns if c not in names]]

    def Xy(self, target):
        """Feature matrix (all other columns) and target vector, plus the feature names."""
        features = [c for c in self.columns if c != target]
        return self[features].values, self[target], features

    def split(self, test_fraction=None, n_test=None):
        """Split into (train, test): the first rows are the test rows.

        With `test_fraction` (the default way): the rows stand in the helper's secret random
        order, so a block of positions is a uniformly random subset of the joined records
        that no data owner can link to its own records.  Its size follows from the public
        row count, so this split reveals nothing beyond the sizes to anyone.

        With `n_test`, from a join with a seeded split (``secure_inner_join(...,
        split=(seed, fraction))``), which already put the marked people first: an opt-in
        for experiments with a plaintext twin.  That `n_test` has told each owner how many
        of its own candidate test people the other table holds (see `mpclab.join`).

        With no test rows the test table is the training table.
        """
        if n_test is None:
            if not 0 <= test_fraction < 1:
                raise ValueError('test_fraction must lie in [0, 1)')
            if test_fraction == 0:
                return self, self
            n_test = math.floor(self.n_rows * test_fraction + 0.5)
        elif n_test == 0:
            return self, self
        if n_test == 0 or n_test >= self.n_rows:
            raise ValueError(f'a test split of {n_test} of {self.n_rows} rows leaves '
                             f'an empty train or test set')
        test = SecretTable(self.values[:n_test], self.columns)
        train = SecretTable(self.values[n_test:], self.columns)
        return train, test

    async def reveal(self, receivers=None):
        """Open the table to `receivers` (default all); returns a DataFrame there, else None.

        This discloses the joined records: for testing and debugging only.
        """
        import pandas as pd
        x = await mpc.output(self.values, receivers=receivers)
        if x is None:
            return None
        return pd.DataFrame(np.asarray(x, dtype=float).reshape(self.shape), columns=self.columns)
