"""Statistical security of one party's run: every value hidden by a statistical mask, counted.

Shamir shares and Paillier ciphertexts hide perfectly or computationally; what weakens with
use is *statistical* hiding.  A value ``x`` with ``|x| < 2**b`` sent or opened as ``x + r``,
with ``r`` uniform on ``[0, 2**(b + s))``, is within statistical distance ``2**-s`` of
``r`` alone: ``s`` bits of hiding *per value*.  A run makes many such openings, and the union
bound over all of them, ``sum(count_i * 2**-s_i)``, is what bounds the run as a whole.

Three kinds of masked value occur in mpclab:

* ``join``: the helper's masks on the owners' values in the secure join (``stat_sec`` bits);
* ``mpc``: the openings inside mpclab's own protocols (`mpclab.fastmpc`, `mpclab.stats`):
  ``k - ceil(log2 C(m, t))`` bits with MPyC's ``-K k``, ``m`` parties and threshold ``t``,
  because the mask is a sum of ``C(m, t)`` pseudorandom components;
* ``mpyc``: the openings inside MPyC's own protocols (comparisons, truncation), which
  mask the same way.

The code that makes such an opening records it here (`record`); `report` gives the figures
a summary shows.  The ledger is per process, as MPyC's runtime is.

What is opened on purpose (a model, a metric, a convergence bit) is an output, not a
masked value: `intended` marks such an opening so that it is not counted as one.
"""

from __future__ import annotations

import math
from collections import defaultdict

__all__ = ['Ledger', 'ledger', 'record', 'mask_bits', 'intended', 'install_mpyc_counter']

KINDS = ('join', 'mpc', 'mpyc')


class Ledger:
    """Counts of statistically masked values by kind and by bits of hiding."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = defaultdict(int)

    def record(self, kind: str, count: int, bits: int) -> None:
        """Note that `count` values were sent or opened with `bits` of statistical hiding each."""
        if kind not in KINDS:
            raise ValueError(f'unknown kind {kind!r}; one of {KINDS}')
        if count:
            self._counts[kind, int(bits)] += int(count)

    def reset(self) -> None:
        self._counts.clear()

    def count(self, *kinds: str) -> int:
        kinds = kinds or KINDS
        return sum(c for (k, _), c in self._counts.items() if k in kinds)

    def min_bits(self, *kinds: str) -> int | None:
        """The fewest bits of hiding of any recorded value of these kinds (None: none recorded)."""
        kinds = kinds or KINDS
        bits = [b for (k, b), c in self._counts.items() if k in kinds and c]
        return min(bits) if bits else None

    def run_bound_log2(self) -> float | None:
        """log2 of the union bound sum(count * 2**-bits) over the run (None: nothing masked)."""
        if not self._counts:
            return None
        # log-sum-exp in base 2, exact enough for any count
        terms = [math.log2(c) - b for (_, b), c in self._counts.items() if c]
        top = max(terms)
        return top + math.log2(sum(2.0**(t - top) for t in terms))

    def report(self, paillier_key_bits: int | None = None) -> dict:
        """The `security` object of a summary."""
        bound = self.run_bound_log2()
        mpc_bits = self.min_bits('mpc', 'mpyc')
        return {
            'paillier_key_bits': paillier_key_bits,
            'join_mask_bits': self.min_bits('join'),
            'mpc_mask_bits': mpc_bits,
            'masked_values': self.count('join'),
            'openings': self.count('mpc', 'mpyc'),
            'openings_by_kind': {k: self.count(k) for k in ('mpc', 'mpyc')},
            'run_bound_log2': None if bound is None else round(bound, 2),
        }


ledger = Ledger()


def record(kind: str, count: int, bits: int) -> None:
    """Record `count` masked values of `kind` with `bits` of hiding in this party's ledger."""
    ledger.record(kind, count, bits)


def mask_bits(sec_param: int, n_parties: int, threshold: int) -> int:
    """Bits of hiding per opening of a mask summed from C(m, t) PRSS components of k bits."""
    d = math.comb(n_parties, threshold)
    return sec_param - (d - 1).bit_length()


# -- MPyC's own openings ---------------------------------------------------------------------
_intended: set[int] = set()


def intended(x):
    """Mark the secure value(s) x, about to be opened with ``mpc.output``, as an output.

    Returns x, so that ``await mpc.output(intended(x))`` reads naturally.
    """
    _intended.add(id(x))
    return x


def _size(x) -> int:
    if isinstance(x, (list, tuple)):
        return sum(_size(a) for a in x)
    size = getattr(x, 'size', None)
    return int(size) if isinstance(size, int) else 1


_installed = False


def install_mpyc_counter(mpc) -> None:
    """Count the values MPyC's own protocols open (every ``mpc.output`` not marked `intended`).

    MPyC masks those the same way as `mpclab.fastmpc` does; random bits (opened squares)
    are counted too, which only makes the reported bound more conservative.
    """
    global _installed
    if _installed:
        return
    _installed = True
    output = mpc.output

    def counted_output(x, *args, **kwargs):
        if id(x) in _intended:
            _intended.discard(id(x))
        elif len(mpc.parties) > 1:
            bits = mask_bits(mpc.options.sec_param, len(mpc.parties), mpc.threshold)
            ledger.record('mpyc', _size(x), bits)
        return output(x, *args, **kwargs)

    mpc.output = counted_output
