"""A secret matrix held as row blocks, so that a million-row table never has to be one array.

The joined table of a large join is shared into MPyC one chunk of rows at a time, and is kept
that way: an operation over the rows (a Gram matrix, ``X @ w``, ``Xᵀ r``, a metric) goes block
by block and adds up, so that neither the table nor a temporary copy of it (``X − means``,
limbs for BLAS) ever exists as one Python object array.  A small table is a single block.

`RowBlocks` only arranges MPyC secure arrays; it opens nothing and sends nothing.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from mpyc.runtime import mpc

__all__ = ['BLOCK_ROWS', 'COMPARISON_ROWS', 'RowBlocks', 'as_blocks', 'one_at_a_time']

#: rows per block of a large table (a 65536 × 31 block of 140-bit shares is about 90 MB)
BLOCK_ROWS = 1 << 16

#: rows per block of secure comparisons run `one_at_a_time`: while it runs, a row's 32-bit
#: comparison holds about 15 kB (its secret random bits and intermediates as Python ints), so
#: 65 536 rows took 0.97-1.0 GiB per party and 4096 rows 62-71 MiB, no slower
#: (experiments/bench_block_memory.py, results/block_memory.csv)
COMPARISON_ROWS = 1 << 12


class RowBlocks:
    """A secret matrix (n, d), or vector (n,), as MPyC secure arrays of consecutive rows.

    Parameters
    ----------
    blocks : sequence of secure arrays
        Same type, same number of columns (or all 1-D); at least one block (which may have
        zero rows).
    """

    def __init__(self, blocks: Sequence):
        blocks = list(blocks)
        if not blocks:
            raise ValueError('RowBlocks needs at least one block')
        first = blocks[0]
        for b in blocks[1:]:
            if type(b) is not type(first) or b.shape[1:] != first.shape[1:]:
                raise ValueError(f'blocks of shapes {first.shape} and {b.shape} do not stack')
        self.blocks = blocks

    @classmethod
    def from_array(cls, a, block_rows: int = BLOCK_ROWS) -> 'RowBlocks':
        """Blocks of at most `block_rows` rows of a secure array (views, no copies of shares)."""
        n = a.shape[0]
        if n <= block_rows:
            return cls([a])
        return cls([a[i:i + block_rows] for i in range(0, n, block_rows)])

    # -- shape -------------------------------------------------------------------------------
    @property
    def sectype(self):
        return type(self.blocks[0])

    @property
    def shape(self) -> tuple:
        return (self.n_rows, *self.blocks[0].shape[1:])

    @property
    def ndim(self) -> int:
        return self.blocks[0].ndim

    @property
    def n_rows(self) -> int:
        return sum(b.shape[0] for b in self.blocks)

    def __len__(self) -> int:
        return self.n_rows

    def __iter__(self) -> Iterator:
        return iter(self.blocks)

    def __repr__(self) -> str:
        return f'RowBlocks({len(self.blocks)} blocks, shape {self.shape})'

    # -- selecting ---------------------------------------------------------------------------
    def columns(self, index) -> 'RowBlocks':
        """The columns `index` (an int gives the vector of that column) of every block."""
        if self.ndim != 2:
            raise ValueError('columns() of a vector')
        return RowBlocks([b[:, index] for b in self.blocks])

    def rows(self, start: int, stop: int) -> 'RowBlocks':
        """Rows start..stop-1, as blocks (the blocks at either end sliced, the rest as they are)."""
        n = self.n_rows
        start, stop = max(0, start), min(n, stop)
        out, offset = [], 0
        for b in self.blocks:
            k = b.shape[0]
            lo, hi = max(start - offset, 0), min(stop - offset, k)
            if lo < hi:
                out.append(b if (lo, hi) == (0, k) else b[lo:hi])
            offset += k
        if not out:
            out = [self.blocks[0][:0]]
        return RowBlocks(out)

    def array(self):
        """The whole matrix as one secure array (for small tables: this copies the shares)."""
        if len(self.blocks) == 1:
            return self.blocks[0]
        stack = mpc.np_vstack if self.ndim == 2 else mpc.np_concatenate
        return stack(self.blocks)


def as_blocks(a, block_rows: int = BLOCK_ROWS) -> RowBlocks:
    """a as RowBlocks: a RowBlocks as it is, a secure array as views of `block_rows` rows."""
    return a if isinstance(a, RowBlocks) else RowBlocks.from_array(a, block_rows)


async def one_at_a_time(fn, a, block_rows: int = BLOCK_ROWS) -> RowBlocks:
    """RowBlocks of ``fn(block)`` over blocks of at most `block_rows` rows of `a` (a secure
    array, or `RowBlocks`, whose larger blocks are cut), each block's result complete (its
    shares at hand) before `fn` is called on the next.

    MPyC starts every operation at once and runs them as their messages arrive, so a loop over
    a million rows' comparisons would hold all their random bits and intermediates together;
    here their working memory is one block's.  Opens nothing (it awaits shares, not values).
    """
    out = []
    for block in as_blocks(a, block_rows):
        for start in range(0, block.shape[0], block_rows) or [0]:   # [0]: a block of no rows
            r = fn(block[start:start + block_rows])
            await mpc.gather(r)
            out.append(r)
    return RowBlocks(out)

