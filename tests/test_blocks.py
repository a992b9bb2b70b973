"""RowBlocks: a secret matrix as row blocks, selected without copying shares."""

import json
import os

import numpy as np
import pytest
from mpyc.runtime import mpc

from mpclab.blocks import RowBlocks, one_at_a_time
from partyrun import ROOT, run_local

PROGRAM = os.path.join(ROOT, 'tests', 'programs', 'blocks_party.py')

secfxp = mpc.SecFxp(64, 32)


def opened(a):
    return np.asarray(mpc.run(mpc.output(a)), dtype=float)


def test_blocks_hold_the_rows_in_order_and_select_like_slices():
    x = np.arange(30.0).reshape(10, 3)
    blocks = RowBlocks.from_array(secfxp.array(x, integral=False), block_rows=4)
    assert [b.shape[0] for b in blocks] == [4, 4, 2] and blocks.shape == (10, 3)
    assert np.array_equal(opened(blocks.array()), x)
    for start, stop in [(0, 10), (3, 9), (4, 8), (9, 10), (5, 5)]:
        part = blocks.rows(start, stop)
        assert part.shape == (stop - start, 3)
        assert np.array_equal(opened(part.array()).reshape(-1, 3), x[start:stop])
    column = blocks.columns(1)
    assert column.ndim == 1 and np.array_equal(opened(column.array()), x[:, 1])
    assert np.array_equal(opened(blocks.columns([2, 0]).array()), x[:, [2, 0]])


def test_blocks_must_stack():
    a = secfxp.array(np.zeros((2, 3)), integral=False)
    b = secfxp.array(np.zeros((2, 2)), integral=False)
    with pytest.raises(ValueError):
        RowBlocks([a, b])
    with pytest.raises(ValueError):
        RowBlocks([])


def test_one_at_a_time_cuts_larger_blocks_to_the_rows_asked_for():
    x = np.arange(30.0).reshape(10, 3)
    for a in (secfxp.array(x, integral=False),
              RowBlocks.from_array(secfxp.array(x, integral=False), block_rows=7)):
        seen = []

        def double(block):
            seen.append(block.shape[0])
            return block * 2
        out = mpc.run(one_at_a_time(double, a, block_rows=3))
        assert np.array_equal(opened(out.array()), 2 * x)
        assert seen == ([3, 3, 3, 1] if isinstance(a, mpc.SecureArray) else [3, 3, 1, 3])
    empty = mpc.run(one_at_a_time(lambda b: b * 2, secfxp.array(np.zeros((0, 3)), integral=False), 3))
    assert empty.shape == (0, 3)


def test_one_at_a_time_finishes_each_block_before_the_next_starts_among_three_parties():
    r = run_local(PROGRAM, [], 3, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report['one_at_a_time']['seen'] == [[], [True], [True, True]]
    # the plain loop starts every block while the earlier ones still wait for messages
    assert report['plain']['seen'] == [[], [False], [False, False]]
    for run in report.values():
        assert run['signs'] == np.sign(np.linspace(-2, 2, 11)).tolist()
