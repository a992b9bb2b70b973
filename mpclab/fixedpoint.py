"""Fixed-point formats: how real numbers become the integers that get encrypted and shared.

Two formats meet here.  Input values are encoded exactly as integers ``round(x * 2**frac_bits)``
with ``|x| < 2**int_bits``; these are what the join encrypts and masks, so the fewer bits they
take the cheaper the join (Paillier cost grows with plaintext bits).  Secure computation then
runs in MPyC's ``SecFxp(secure_bits, secure_bits // 2)``, which has more fractional bits so that
products and sums keep their precision.  Going from the first to the second multiplies by a
public power of two, which costs nothing in MPC.
"""

from dataclasses import dataclass, asdict

import numpy as np

__all__ = ['FixedPointFormat', 'FixedPointRangeError']


class FixedPointRangeError(ValueError):
    """A value does not fit the agreed fixed-point input range."""


@dataclass(frozen=True)
class FixedPointFormat:
    """Agreed fixed-point parameters, identical at every party.

    Parameters
    ----------
    frac_bits : int
        Fractional bits of the input encoding; inputs are rounded to multiples of ``2**-frac_bits``.
    int_bits : int
        Inputs must satisfy ``|x| < 2**int_bits``.
    secure_bits : int
        Bit length ``l`` of the secure type ``SecFxp(l, l // 2)`` used for computing.
    """

    frac_bits: int = 16
    int_bits: int = 16
    secure_bits: int = 64

    def __post_init__(self):
        if not 0 <= self.frac_bits <= self.secure_frac_bits:
            raise ValueError(f'frac_bits={self.frac_bits} must lie in [0, {self.secure_frac_bits}] '
                             f'(the fractional bits of SecFxp({self.secure_bits}))')
        if self.int_bits < 0:
            raise ValueError('int_bits must be non-negative')
        if self.int_bits + self.secure_frac_bits + 1 > self.secure_bits:
            raise ValueError(f'int_bits={self.int_bits} leaves no room in SecFxp({self.secure_bits}, '
                             f'{self.secure_frac_bits}); lower int_bits or raise secure_bits')

    @property
    def secure_frac_bits(self):
        return self.secure_bits // 2

    @property
    def value_bits(self):
        """Bits of an encoded input, sign included.

        Encodings lie in [-2**(value_bits-1), 2**(value_bits-1)).
        """
        return self.int_bits + self.frac_bits + 1

    @property
    def bound(self):
        """Exclusive bound on the magnitude of an input value."""
        return 2.0**self.int_bits

    def secfxp(self):  # -> an MPyC SecFxp type
        """The MPyC secure fixed-point type used for computing."""
        from mpyc.runtime import mpc
        return mpc.SecFxp(self.secure_bits, self.secure_frac_bits)

    def encode(self, values, what: str = 'values') -> np.ndarray:
        """Encode a float array as exact Python ints ``round(x * 2**frac_bits)`` (object array).

        Raises FixedPointRangeError naming `what` if any value is not finite or out of range.
        """
        x = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(x)):
            raise FixedPointRangeError(f'{what}: not a finite number')
        # Checked after rounding: a value just below the bound may round up to it.
        scaled = np.rint(np.ldexp(x, self.frac_bits))
        outside = np.flatnonzero(np.abs(scaled).reshape(-1) >= np.ldexp(1.0, self.int_bits + self.frac_bits))
        if len(outside):
            i = int(outside[0])
            where = f' at data row {i + 1}' if x.ndim == 1 else ''
            raise FixedPointRangeError(f'{what}: |value| = {abs(x.reshape(-1)[i]):g}{where} is outside '
                                       f'the fixed-point range (|x| < 2**{self.int_bits} = '
                                       f'{self.bound:g}); scale the data or allow more integer bits')
        return scaled.astype(np.int64).astype(object) if self.value_bits <= 63 else \
            np.vectorize(int, otypes=[object])(scaled)

    def decode(self, ints) -> np.ndarray:
        """Inverse of `encode` (to floats)."""
        return np.ldexp(np.asarray(ints, dtype=float), -self.frac_bits)

    def to_dict(self) -> dict:
        return asdict(self)
