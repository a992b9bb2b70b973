"""Public range bounds for secure fixed-point computations, and the error when data cannot fit.

Every opening of a masked value in MPC assumes a range: a product of two ``SecFxp(l, f)``
values (or a sum of products) is truncated by opening it under a mask that hides it only if
its value is below ``2**(l - f - 1)`` in magnitude (2**31 for ``SecFxp(64, 32)``; see
`mpclab.fastmpc`), and MPyC's comparisons assume the same of their operands.  A value beyond
that is not only wrong: its opening leaks.  So the estimators establish every range *before*
the opening that relies on it, from public facts where they can:

* the number of rows n and of columns d;
* the agreed input format: every input satisfies ``|x| < 2**int_bits``, checked by its owner
  before sharing (`mpclab.fixedpoint.FixedPointFormat`);
* the secure type and the model's options (alpha, C, iterations).

Where the public bound of some intermediate value does not fit, the estimator refuses before
computing anything, with `FixedPointOverflowError` naming the cause and the remedy.  Where no
public bound exists (a coefficient's size, which depends on the data), it opens one secure bit
that establishes the bound, computed on values that are themselves provably in range, before
the first opening that needs it; each such bit is listed in the estimator's "What is opened".

`Plan` collects the public bounds of one computation and says which one does not fit.
"""

from __future__ import annotations

import math

from mpyc.runtime import mpc

from mpclab import security

__all__ = ['FixedPointOverflowError', 'Plan', 'limit', 'wide_bits', 'type_name', 'require',
           'inputs_too_large', 'MARGIN', 'REMEDY']

#: Relative slack on every public bound, for the rounding of fixed-point arithmetic.
MARGIN = 2**-8

#: What to do when the data do not fit (library messages name no command-line options).
REMEDY = 'scale the data to [0, 1], lower the integer bits or use a wider secure type'


class FixedPointOverflowError(ArithmeticError):
    """The data or the model do not fit the secure fixed-point type.

    Raised before anything out of range is opened: either before computing anything (a public
    bound does not fit) or when a secure range check, opened on purpose, fails.
    """


def limit(sectype) -> float:
    """Bound on |value| of every truncated product and compared value: 2**(l - f - 1)."""
    return 2.0**(sectype.bit_length - sectype.frac_length - 1)


def wide_bits(sectype) -> int:
    """Bit length l + f for MPyC's comparisons of values up to 2**(l - 1), beyond the type's
    range (96 for SecFxp(64, 32)); the field has room for these."""
    return sectype.bit_length + sectype.frac_length


def type_name(sectype) -> str:
    return f'SecFxp({sectype.bit_length}, {sectype.frac_length})'


def _log2(x: float) -> str:
    return f'2**{math.log2(x):.1f}' if x > 0 else '0'


class Plan:
    """The public bounds of one secure computation, each checked against the type's range.

    ``need(what, bound)`` notes that the value `what` may reach `bound` in magnitude (before
    the margin); `ok` tells whether all fit, `worst` names the first that does not.
    """

    def __init__(self, sectype, wide=False):
        self.sectype = sectype
        self.limit = limit(sectype)
        self.wide_limit = 2.0**(sectype.bit_length - 1)
        self.violations: list[tuple[str, float, float]] = []

    def need(self, what: str, bound: float, wide: bool = False) -> bool:
        cap = self.wide_limit if wide else self.limit
        fits = bound * (1 + MARGIN) < cap
        if not fits:
            self.violations.append((what, bound, cap))
        return fits

    @property
    def ok(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        what, bound, cap = self.violations[0]
        return f'{what} could reach {_log2(bound)}, beyond the {_log2(cap)} it holds'

    def refuse(self, cause: str, remedy: str) -> None:
        """Raise FixedPointOverflowError if some bound does not fit."""
        if self.violations:
            raise FixedPointOverflowError(f'{cause} overflow {type_name(self.sectype)} '
                                          f'({self.describe()}): {remedy}')


async def require(bit, message: str) -> None:
    """Open the secure bit (an intended opening) and raise FixedPointOverflowError if it is 0."""
    if not await mpc.output(security.intended(bit)):
        raise FixedPointOverflowError(message)


def inputs_too_large(sectype, n: int, bits: int) -> str:
    """The message of a failed `mpclab.fastmpc.all_within` check of n rows against 2**bits."""
    return (f'some inputs are too large for {type_name(sectype)} with {n} rows (every |x| up to '
            f'{1.5 * 2.0**(bits - 3):g} passes this check, none from 2**{bits}): {REMEDY}')
