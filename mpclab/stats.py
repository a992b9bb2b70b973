"""Descriptive statistics of a `SecretTable` in MPC: count, mean, std, min, max, correlations,
histograms with small cells suppressed.  Only aggregates are opened.

The table must hold input-format numbers, as the secure join leaves them: every value is a
multiple of ``2**-fmt.frac_bits`` with ``|x| < 2**fmt.int_bits`` (each owner checked its own
before sharing).  Every range below follows from that promise.

Moments (`moments`): the column sums and the matrix of sums of products of every two columns
are computed exactly, on the integers ``x * 2**frac_bits``, and opened.  Given the row count
they are the means and the covariance matrix, from which `summarise` computes, in public and
exactly, what pandas' ``describe()`` (std with ddof=1) and ``corr()`` show.

Order statistics (`to_bits`, `extremes`, `histograms`) need comparisons, which MPyC's own
protocol makes cost about 2 ms per element with three parties: a min and max of 100 000 x 30
by comparison trees would take hours.  Here the table is converted once into *bits* shared
among the parties, and every comparison is then a boolean circuit evaluated on 64 rows per
machine word.

* Conversion (one masked opening per table entry): with ``u = x * 2**frac_bits + 2**B``, an
  ``l = B + 1``-bit integer (``B = int_bits + frac_bits``), the parties open ``c = u + r``.  The
  mask ``r`` is a sum of pseudorandom components, each of ``l + k`` bits and known to a set of
  ``m - t`` parties (``m`` parties, threshold ``t``; ``k`` as large as the field allows, 80 to 90
  bits with MPyC's fields, at least its ``-K``); any ``t`` parties miss one component, so ``c``
  hides ``u`` up to statistical distance ``2**-k``.  Then
  ``u = c - r mod 2**l``, where every component's bits are already shared among its holders:
  a carry-save and ripple-carry subtraction in the boolean domain gives the bits of ``u``.
* Boolean sharing: replicated secret sharing over GF(2) with the same sets of holders.  XOR is
  local; an AND costs every party one message to ``m - t - 1`` others, of one bit per gate,
  masked by pseudorandom bits that the recipients do not hold.  Keys are drawn here, one per
  set of holders, and sent to its members over the parties' channels when the computation
  starts, as MPyC sends its own PRSS keys (encrypted with ``--ssl``).
* Minimum and maximum: one comparison per pair of rows sorts each pair; then two comparison
  trees, for the minima and for the maxima, all columns at once: about 1.5 n comparisons per
  column, of ``l`` bits (not the secure type's 64), each about 4 l ANDs in 1 + log2(l) + 1
  rounds.
* Histograms: the bin edges are public once min and max are opened (equal width, as numpy's
  ``histogram``), so every row is compared with every inner edge, the comparisons are counted
  by a boolean adder tree, and a cell below ``min_count`` becomes 0 *before* anything is opened.

Cost, measured with 3 local parties on 2 cores shared with other work (load about 5;
``python experiments/bench_describe.py``, results/describe.csv): 100 000 x 30 in 48 s, beside
661 s for the join: moments 13.6 s, conversion 27.5 s, min and max 5.3 s, two histograms of 10
bins 1.7 s; about 400 MB sent per party and some 600 rounds (the ripple-carry adders), which
a slow or distant link would feel.  The minimum and maximum of 2000 x 30 by trees of MPyC's
comparisons took 4.7 ms per comparison (3.3 ms at the raw inputs' 50 bits), some 21 000 s for
100 000 x 30; here 0.009 ms, conversion included (results/describe_comparisons.csv).

What is opened (to every party): the sums and sums of products (so the means and covariance
matrix), per column the minimum and maximum, and per histogram cell its count if at least
``min_count`` and otherwise 0, which stands for "suppressed" (a count shown is never below
``min_count``, which is at least 1).  Masked values opened: one per table entry (``k`` bits of
statistical hiding each, recorded in `mpclab.security`'s ledger); the boolean sharing's
messages are pseudorandomly masked.  What that discloses:

* the minimum and the maximum are values of people in the intersection: the owner of that
  column learns that someone with that value is in the intersection, and who if only one of
  its people has it;
* a suppressed cell holds 0 to ``min_count - 1`` people; the suppressed cells of a histogram
  together hold the row count minus the shown cells, so one suppressed cell alone is known;
* an owner, knowing its own people's values, learns from a histogram of its own column how
  many of its people in each shown bin are in the intersection.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import secrets
import struct
from asyncio import Future
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from mpyc import asyncoro
from mpyc.runtime import mpc
from threadpoolctl import threadpool_limits

from mpclab import _hooks, security

__all__ = ['Sharing', 'Moments', 'SecretBits', 'moments', 'summarise', 'to_bits', 'extremes', 'histograms',
           'histogram_edges', 'describe', 'bit_length', 'check_format']

ONES = np.uint64(2**64 - 1)
_M64 = 2**64 - 1
_CHUNK = 2**19           # table entries per conversion step (bounds memory)
_DOMAIN = b'mpclab.stats'
_HISTOGRAMS_AT_ONCE = 8   # columns per histogram step (bounds memory)


def bit_length(fmt) -> int:
    """Bits l of the unsigned integers u = x * 2**frac_bits + 2**B that are compared."""
    return fmt.int_bits + fmt.frac_bits + 1


def _check_table(table, fmt):
    """The table's secure type is the format's: the shares encode x * 2**secure_frac_bits."""
    sectype = table.sectype
    if (sectype.bit_length, sectype.frac_length) != (fmt.secure_bits, fmt.secure_frac_bits):
        raise ValueError(f'a table of SecFxp({sectype.bit_length}, {sectype.frac_length}) is not in '
                         f'the input format of SecFxp({fmt.secure_bits}, {fmt.secure_frac_bits})')
    check_format(fmt, table.n_rows, sectype.field.modulus.bit_length(), mpc.options.sec_param)


def check_format(fmt, n_rows: int, field_bits: int, sec_param: int) -> None:
    """Raise ValueError if the input format does not fit the comparisons or the field."""
    L = bit_length(fmt)
    spare_bits = _spare_bits(fmt)
    if n_rows < 1:
        raise ValueError('an empty table has no statistics')
    if L > 64:
        raise ValueError(f'inputs of {L - 1} bits (integer plus fractional) are too wide for the '
                         f'comparisons, which take at most 63')
    if L + sec_param > 128 or L + sec_param + spare_bits + 12 > field_bits:
        raise ValueError(f'masks of {L + sec_param} bits do not fit the {field_bits}-bit field')
    if (max(n_rows, 1) << 2 * (L - 1)).bit_length() + 1 > field_bits - 1:
        raise ValueError(f'sums of products of {n_rows} rows of {L - 1}-bit inputs do not fit '
                         f'the {field_bits}-bit field')


# -- messages --------------------------------------------------------------------------------

@asyncoro.mpc_coro
async def _exchange(outgoing, incoming):
    """Send bytes to some parties and receive bytes from others: {pid: bytes} both ways."""
    await mpc.returnType(Future)
    for pid, data in outgoing.items():
        mpc._send_message(pid, data)
    received = await mpc.gather([mpc._receive_message(pid) for pid in incoming])
    return dict(zip(incoming, received))


def _words(data, shape):
    """A peer's uint64 array of the expected shape from raw bytes (plain data, never pickle)."""
    count = math.prod(shape)
    if len(data) != 8 * count:
        raise ValueError(f'a peer sent {len(data)} bytes where {8 * count} were expected')
    return np.frombuffer(data, dtype='<u8').reshape(shape)


def _to_bytes(v, size):
    """A flat object array of non-negative ints below 2**(8 size), little-endian, concatenated."""
    return b''.join([int(x).to_bytes(size, 'little') for x in v])


def _from_words(w):
    """Object array of ints from their little-endian uint64 words (last axis)."""
    out = w[..., 0].astype(object)
    for k in range(1, w.shape[-1]):
        out = out + (w[..., k].astype(object) << (64 * k))
    return out


def _lagrange_at_zero(points):
    """Integer Lagrange coefficients at 0 for the consecutive points 1..k (the senders)."""
    out = []
    for j in points:
        lam = Fraction(1)
        for k in points:
            if k != j:
                lam *= Fraction(k + 1, k - j)
        assert lam.denominator == 1
        out.append(int(lam))
    return out


# -- bit-sliced layout: bit j of row i of a column is bit i % 64 of word i // 64 of plane j ---

def _rows(n: int) -> int:
    """Row positions N >= n: a power of two, so that halving always pairs all positions."""
    return 1 << max(n - 1, 0).bit_length()


def _pack(values, L, n_words):
    """Bit planes (l, columns, words) of an (n, columns) uint64 array of l-bit ints."""
    n, cols = values.shape
    out = np.zeros((L, cols, n_words), dtype=np.uint64)
    bits = np.zeros((cols, 64 * n_words), dtype=np.uint8)
    for j in range(L):
        bits[:, :n] = ((values >> np.uint64(j)) & np.uint64(1)).T
        out[j] = np.packbits(bits, axis=1, bitorder='little').view('<u8')
    return out


def _halves(x, N):
    """The first and second half of N positions (last axis), each as N/2 positions."""
    if N > 64:
        w = x.shape[-1] // 2
        return x[..., :w], x[..., w:]
    h = N // 2
    mask = np.uint64((1 << h) - 1)
    return x & mask, (x >> np.uint64(h)) & mask


def _position_mask(n, n_words):
    """Public words with the bits of positions < n set."""
    bits = np.zeros(64 * n_words, dtype=np.uint8)
    bits[:n] = 1
    return np.packbits(bits, bitorder='little').view('<u8')


def _unpack_first(x):
    """Bit 0 of word 0 of every plane (the result of a tree): 0/1 ints."""
    return (x[..., 0] & np.uint64(1)).astype(np.int64)


def _planes_to_ints(bits):
    """(l, ...) 0/1 planes, least significant first, as Python ints."""
    out = np.zeros(bits.shape[1:], dtype=object)
    for j in range(bits.shape[0]):
        out = out + (bits[j].astype(object) << j)
    return out


# -- the parties' shared randomness and the two sharings ------------------------------------

class Sharing:
    """Keys and protocols of one computation: Shamir shares in MPyC's field, replicated
    boolean shares, and the pseudorandomness that links them.

    Components are indexed by the sets S of m - t parties; this party holds those S it is in.
    A boolean value is the XOR of its components; its array has one row per held component.
    """

    def __init__(self, keys: dict):
        m, t, me = len(mpc.parties), mpc.threshold, mpc.pid
        self.m, self.t, self.me = m, t, me
        self.subsets = list(itertools.combinations(range(m), m - t))
        self.keys = keys
        self.mine = [S for S in self.subsets if me in S]
        self.index = {S: i for i, S in enumerate(self.mine)}
        self.counter = 0
        # Each party splits its AND terms so that one component carries them and goes to
        # that component's other holders; these sets of consecutive parties spread the load.
        self.carrier = {j: tuple(sorted((j + i) % m for i in range(m - t))) for j in range(m)}
        self.terms = self._assign_terms()
        self.first = self.subsets[0]   # the component that holds public constants

    @classmethod
    async def start(cls) -> 'Sharing':
        """Draw one key per set of holders (by its first member) and send it to the others."""
        m, t, me = len(mpc.parties), mpc.threshold, mpc.pid
        subsets = list(itertools.combinations(range(m), m - t))
        keys = {S: secrets.token_bytes(16) for S in subsets if S[0] == me}
        outgoing = {j: b''.join(keys[S] for S in subsets if S[0] == me and j in S)
                    for j in range(m) if j != me}
        outgoing = {j: data for j, data in outgoing.items() if data}
        incoming = sorted({S[0] for S in subsets if me in S and S[0] != me})
        received = await _exchange(outgoing, incoming)
        for j in incoming:
            theirs = [S for S in subsets if S[0] == j and me in S]
            data = received[j]
            if len(data) != 16 * len(theirs):
                raise ValueError(f'party {j} sent {len(data)} bytes of keys, not {16 * len(theirs)}')
            for i, S in enumerate(theirs):
                keys[S] = data[16 * i:16 * (i + 1)]
        return cls(keys)

    def _assign_terms(self):
        """The cross terms x_S & y_S' of an AND that this party computes: each pair of
        components goes to one common holder (one exists: 2(m - t) > m), the least loaded."""
        load = [0] * self.m
        mine = []
        for S, S2 in itertools.product(self.subsets, repeat=2):
            who = min(sorted(set(S) & set(S2)), key=lambda j: load[j])
            load[who] += 1
            if who == self.me:
                mine.append((self.index[S], self.index[S2]))
        return mine

    def nonce(self) -> int:
        self.counter += 1
        return self.counter

    def _stream(self, S, nonce, j, nbytes):
        seed = self.keys[S] + _DOMAIN + struct.pack('<QH', nonce, j)
        return hashlib.shake_128(seed).digest(nbytes)

    def prf(self, S, nonce, j, shape):
        """Pseudorandom uint64 words known to the holders of S."""
        return np.frombuffer(self._stream(S, nonce, j, 8 * math.prod(shape)),
                             dtype='<u8').reshape(shape)

    # -- boolean sharing --
    def zeros(self, shape):
        return np.zeros((len(self.mine),) + tuple(shape), dtype=np.uint64)

    def public(self, value):
        """The sharing of a public array (in the first component)."""
        out = self.zeros(np.shape(value))
        if self.first in self.index:
            out[self.index[self.first]] = value
        return out

    def known(self, S, value, shape):
        """The sharing of a value that the holders of S know (None elsewhere)."""
        out = self.zeros(shape)
        if S in self.index:
            out[self.index[S]] = value
        return out

    def xor_public(self, x, value):
        out = x.copy()
        if self.first in self.index:
            out[self.index[self.first]] ^= value
        return out

    def not_(self, x):
        return self.xor_public(x, ONES)

    async def and_(self, x, y):
        """Shares of x & y (arrays broadcast like numpy), one round."""
        shape = np.broadcast_shapes(x.shape[1:], y.shape[1:])
        z = np.zeros(shape, dtype=np.uint64)
        for a, b in self.terms:
            z ^= x[a] & y[b]
        nonce, me = self.nonce(), self.me
        carrier = self.carrier[me]
        part = {}
        for S in self.mine:
            if S != carrier:
                part[S] = self.prf(S, nonce, me, shape)
                z ^= part[S]
        part[carrier] = z
        outgoing = {j: z.tobytes() for j in carrier if j != me}
        incoming = [j for j in range(self.m) if j != me and me in self.carrier[j]]
        received = await _exchange(outgoing, incoming)
        out = self.zeros(shape)
        for S in self.mine:
            v = part[S].copy()
            for j in S:
                if j == me:
                    continue
                v ^= _words(received[j], shape) if self.carrier[j] == S else self.prf(S, nonce, j, shape)
            out[self.index[S]] = v
        return out

    async def reveal(self, x):
        """Open a boolean sharing to every party: only ever called on outputs.

        Each party sends the XOR of the components it is first holder of, masked by
        pseudorandom words that the first two holders of each component both add (and so
        cancel): what the others see is the value and nothing else.
        """
        shape = x.shape[1:]
        nonce = self.nonce()
        w = np.zeros(shape, dtype=np.uint64)
        for S in self.mine:
            if S[0] == self.me:
                w ^= x[self.index[S]]
            if self.me in S[:2] and len(S) > 1:
                w ^= self.prf(S, nonce, 0, shape)
        others = [j for j in range(self.m) if j != self.me]
        received = await _exchange({j: w.tobytes() for j in others}, others)
        for j in others:
            w = w ^ _words(received[j], shape)
        return w

    # -- Shamir sharing in MPyC's field --
    def coefficients(self, p):
        """f_S(me + 1) mod p for the held sets S: f_S is 1 at 0 and 0 at every other party."""
        x = self.me + 1
        out = {}
        for S in self.mine:
            c = 1
            for j in range(self.m):
                if j not in S:
                    c = c * (x - (j + 1)) * pow(-(j + 1), -1, p) % p
            out[S] = c
        return out

    def zero_shares(self, p, n):
        """Shares of n zeros by a pseudorandom polynomial of degree 2t (a fresh mask for
        opening a degree-2t sharing): sum over S of f_S(x) * sum_j c_Sj x^j."""
        x = self.me + 1
        nonce = self.nonce()
        size = (p.bit_length() + 64 + 7) // 8
        out = np.zeros(n, dtype=object)
        for S, f in self.coefficients(p).items():
            raw = self._stream(S, nonce, 0, size * n * self.t)
            y = np.zeros(n, dtype=object)
            for j in range(self.t):
                c = np.array([int.from_bytes(raw[size * (j * n + i):size * (j * n + i + 1)], 'little')
                              for i in range(n)], dtype=object) % p
                y = y + c * pow(x, j + 1, p)
            out = (out + f * y) % p
        return out

    async def open_field(self, p, shares, degree):
        """Open a flat object array of Shamir shares of the given degree to every party."""
        senders = list(range(degree + 1))
        nw = (p.bit_length() + 63) // 64
        outgoing = {}
        if self.me in senders:
            data = _to_bytes(shares, 8 * nw)
            outgoing = {j: data for j in range(self.m) if j != self.me}
        received = await _exchange(outgoing, [j for j in senders if j != self.me])
        total = 0
        for j, lam in zip(senders, _lagrange_at_zero(senders)):
            s = shares if j == self.me else _from_words(_words(received[j], (len(shares), nw)))
            total = total + s * lam
        return total % p


# -- boolean circuits (shares of bit planes, least significant plane first on axis 1) -------

async def _csa(e, a, b, c):
    """Carry-save addition: a + b + c = s + carry (carry already shifted up), mod 2**planes."""
    t = a ^ b
    prod = await e.and_(np.concatenate([a, c], axis=1), np.concatenate([b, t], axis=1))
    L = a.shape[1]
    majority = prod[:, :L] ^ prod[:, L:]
    carry = np.concatenate([np.zeros_like(majority[:, :1]), majority[:, :-1]], axis=1)
    return t ^ c, carry


async def _add(e, a, b, carry_out=False):
    """a + b by a ripple-carry adder (one AND per plane and round), mod 2**planes unless
    carry_out adds the top plane."""
    g = await e.and_(a, b)
    p = a ^ b
    planes = [p[:, 0]]
    carry = g[:, 0]
    for j in range(1, a.shape[1]):
        planes.append(p[:, j] ^ carry)
        carry = g[:, j] ^ (await e.and_(p[:, j][:, None], carry[:, None]))[:, 0]
    if carry_out:
        planes.append(carry)
    return np.stack(planes, axis=1)


async def _sum(e, operands):
    """The sum of several shared numbers, mod 2**planes."""
    operands = list(operands)
    while len(operands) > 2:
        s, c = await _csa(e, *operands[:3])
        operands = [s, c] + operands[3:]
    if len(operands) == 1:
        return operands[0]
    return await _add(e, *operands)


async def _prefix_less(e, g, eq):
    """From 'less here' and 'equal here' planes to one 'less' plane, most significant
    difference deciding, by a tree of 1 + ceil(log2 planes) rounds."""
    while g.shape[1] > 1:
        h = g.shape[1] // 2
        g_hi, g_lo, e_hi, e_lo = g[:, 1:2 * h:2], g[:, 0:2 * h:2], eq[:, 1:2 * h:2], eq[:, 0:2 * h:2]
        prod = await e.and_(np.concatenate([e_hi, e_hi], axis=1), np.concatenate([g_lo, e_lo], axis=1))
        g_new, e_new = g_hi ^ prod[:, :h], prod[:, h:]
        if g.shape[1] % 2:
            g_new = np.concatenate([g_new, g[:, -1:]], axis=1)
            e_new = np.concatenate([e_new, eq[:, -1:]], axis=1)
        g, eq = g_new, e_new
    return g[:, 0]


async def _less(e, a, b):
    """a < b for shared unsigned numbers."""
    g = await e.and_(e.not_(a), b)
    return await _prefix_less(e, g, e.not_(a ^ b))


async def _less_public(e, a, t):
    """a < t for shared a and public planes t (broadcast against a's planes)."""
    return await _prefix_less(e, e.not_(a) & t, e.not_(e.xor_public(a, t)))


async def _select(e, s, a, b):
    """a where s else b (s one plane, applied to every plane)."""
    return b ^ await e.and_(s[:, None], a ^ b)


async def _popcount(e, bits, N):
    """Number of set bits among N positions of every column: planes (ncomp, width, columns)."""
    x = bits[:, None]
    while N > 1:
        a, b = _halves(x, N)
        N //= 2
        x = await _add(e, a, b, carry_out=True)
    return x[..., 0] & np.uint64(1)


def _threshold_planes(values, L):
    """Public planes (l, len(values), 1) of ints: all ones where a bit is set."""
    values = [int(v) for v in values]
    return np.array([[[ONES if (v >> j) & 1 else np.uint64(0)] for v in values] for j in range(L)],
                    dtype=np.uint64)


# -- moments ---------------------------------------------------------------------------------

def _spare_bits(fmt) -> int:
    """Zero bits that end every shared encoding: the secure type has more fractional bits."""
    return fmt.secure_frac_bits - fmt.frac_bits


def _gram(x, p, block=2**20):
    """x.T @ x mod p for an (n, d) object array of ints below p, exactly, on BLAS.

    Every int is split into 16-bit limbs held in float64; a sum of limb products over at most
    2**20 rows stays below 2**52, so every float product of a block of rows is exact.
    """
    n, d = x.shape
    nl = -(-p.bit_length() // 16)
    P = np.zeros((d * nl, d * nl), dtype=object)
    with threadpool_limits(1):   # the parties share the cores
        for i in range(0, n, block):
            rows = x[i:i + block]
            limbs = np.frombuffer(_to_bytes(rows.reshape(-1), 2 * nl), dtype='<u2')
            L = limbs.astype(np.float64).reshape(len(rows), d * nl)
            P += (L.T @ L).astype(np.int64).astype(object)
    P = P.reshape(d, nl, d, nl)
    out = np.zeros((d, d), dtype=object)
    for a in range(nl):
        for b in range(nl):
            out = out + (P[:, a, :, b] << (16 * (a + b)))
    return out % p


def _signed(v, p):
    v = np.asarray(v, dtype=object)
    return np.where(v > p // 2, v - p, v)


@dataclass
class Moments:
    """Opened aggregates: row count n, column sums and sums of products of the integers
    x * 2**frac_bits."""

    n: int
    sums: list
    products: list
    frac_bits: int


async def moments(table, fmt, sharing=None) -> Moments:
    """Exact column sums and sums of products of a table of input-format numbers.

    What is opened: the sums (degree-t shares) and the sums of products (degree 2t, masked by
    a fresh pseudorandom sharing of zero), to every party.
    """
    n, d = table.shape
    field = table.sectype.field
    p = field.modulus
    _check_table(table, fmt)
    sharing = sharing or await Sharing.start()
    x = (await mpc.gather(table.values)).value
    # The shares encode x * 2**frac_bits shifted up by the spare bits; the products of those
    # are used as they are if the field holds them, else the shift is divided out first.
    shift = _spare_bits(fmt)
    if (n << 2 * (bit_length(fmt) - 1 + shift)).bit_length() + 1 >= p.bit_length():
        x = x * pow(1 << shift, -1, p) % p
        shift = 0
    sums = field.array(x.sum(axis=0) % p, check=False)
    products = (_gram(x, p).reshape(-1) + sharing.zero_shares(p, d * d)) % p
    products = field.array(products, check=False)
    sums = await mpc.output(security.intended(sums), raw=True)
    products = await mpc.output(security.intended(products), threshold=2 * mpc.threshold, raw=True)
    sums = [v >> shift for v in _signed(sums.value, p).tolist()]
    products = [v >> 2 * shift for v in _signed(products.value, p).tolist()]
    return Moments(n, sums, np.reshape(np.array(products, dtype=object), (d, d)).tolist(),
                   fmt.frac_bits)


def summarise(m: Moments, columns) -> tuple[dict, dict]:
    """pandas' ``describe()`` rows count, mean, std (ddof=1) and ``corr()``, exactly from the
    opened moments (None where pandas shows NaN)."""
    n, S, G = m.n, m.sums, m.products
    scale = 1 << m.frac_bits
    d = len(columns)
    # q[j][k] = n (n - 1) cov_jk scale**2, exactly
    q = [[n * G[j][k] - S[j] * S[k] for k in range(d)] for j in range(d)]
    rows = {'count': {}, 'mean': {}, 'std': {}}
    for j, c in enumerate(columns):
        rows['count'][c] = n
        rows['mean'][c] = float(Fraction(S[j], n * scale)) if n else None
        rows['std'][c] = math.sqrt(Fraction(q[j][j], n * (n - 1) * scale**2)) if n > 1 else None
    corr = {c: {} for c in columns}
    for j, a in enumerate(columns):
        for k, b in enumerate(columns):
            if n < 2 or q[j][j] <= 0 or q[k][k] <= 0:
                corr[b][a] = None
            elif j == k:
                corr[b][a] = 1.0
            else:
                r = q[j][k] / math.sqrt(float(q[j][j]) * float(q[k][k]))
                corr[b][a] = min(1.0, max(-1.0, r))
    return rows, corr


# -- conversion to bits ----------------------------------------------------------------------

@dataclass
class SecretBits:
    """A table's entries as shared bits: planes (components, l, columns, words) of the
    integers u = x * 2**frac_bits + 2**(l - 1), rows n..N-1 copies of row 0."""

    sharing: Sharing
    planes: np.ndarray
    n: int
    N: int
    columns: list
    L: int
    frac_bits: int

    def value(self, u: int) -> float:
        """The input value of an opened u."""
        return (int(u) - (1 << (self.L - 1))) / (1 << self.frac_bits)


async def _checked(field, shares, threshold, bound_bits, what):
    """The test hooks' range checks (none in a deployment): see `mpclab._hooks`."""
    for check in _hooks.opening_checks:
        await check(field, shares, threshold, bound_bits, what)


def _mask_bits(field_bits, L, shift, components):
    """Statistical hiding k of the conversion's openings: the widest masks of l + k bits, two
    words at most, whose sum with the value stays below the field's modulus; at least -K."""
    k = min(128 - L, field_bits - 3 - shift - L - (components - 1).bit_length())
    if k < mpc.options.sec_param:
        raise ValueError(f'masks of {L + mpc.options.sec_param} bits do not fit the '
                         f'{field_bits}-bit field')
    return k


async def _convert(e, field, v, L, shift, n_words):
    """Shared bit planes (ncomp, l, columns, n_words) of u = v / 2**shift + 2**(l - 1), for
    shares v (n, columns) of values that are multiples of 2**shift."""
    p = field.modulus
    k = _mask_bits(p.bit_length(), L, shift, len(e.subsets))
    n, cols = v.shape
    low = np.uint64((1 << L) - 1)
    top = np.uint64((1 << (L + k - 64)) - 1) if L + k > 64 else None
    nonce = e.nonce()
    r = 0
    rho = {}
    for S, f in e.coefficients(p).items():
        w = e.prf(S, nonce, 0, (n, cols, 2 if top is not None else 1)).copy()
        if top is not None:
            w[..., 1] &= top
        else:
            w[..., 0] &= np.uint64((1 << (L + k)) - 1)
        r = r + (_from_words(w) << shift) * f
        rho[S] = w[..., 0] & low
    # the mask goes on in the shifted encoding, so c = c_raw / 2**shift needs no division
    u = v + ((1 << (L - 1 + shift)) % p)
    if _hooks.opening_checks:
        await _checked(field, (u % p).reshape(-1), mpc.threshold, L + shift, 'stats.to_bits')
    c = await e.open_field(p, ((u + r) % p).reshape(-1), mpc.threshold)
    if e.m > 1:
        security.record('mpc', c.size, k)
    # u = c - sum_S rho_S = c + d + sum_S ~rho_S  (mod 2**l), one component per holder set
    c = ((c.reshape(n, cols) >> shift) + len(e.subsets)) & ((1 << L) - 1)
    shape = (L, cols, n_words)
    operands = [e.public(_pack(c.astype(np.uint64), L, n_words))]
    for S in e.subsets:
        value = _pack(~rho[S] & low, L, n_words) if S in rho else None
        operands.append(e.known(S, value, shape))
    return await _sum(e, operands)


def _fill_padding(x, n, N):
    """Positions n..N-1 become copies of position 0 (neutral for min and max)."""
    if n == N:
        return x
    pad = ~_position_mask(n, x.shape[-1])
    if N < 64:
        pad &= np.uint64((1 << N) - 1)
    first = np.where(x[..., :1] & np.uint64(1), ONES, np.uint64(0))
    return (x & ~pad) | (first & pad)


async def to_bits(table, fmt, sharing=None, progress=None) -> SecretBits:
    """Convert a table of input-format numbers into shared bits (see the module docstring).

    What is opened: one value per table entry, masked with k bits of statistical hiding.
    progress(done, total) is called after every step.
    """
    n, cols = table.shape
    field = table.sectype.field
    _check_table(table, fmt)
    e = sharing or await Sharing.start()
    L = bit_length(fmt)
    N = _rows(n)
    n_words = -(-N // 64)
    v = (await mpc.gather(table.values)).value
    planes = np.zeros((len(e.mine), L, cols, n_words), dtype=np.uint64)
    step = max(1, _CHUNK // max(n, 1))
    for j in range(0, cols, step):
        planes[:, :, j:j + step] = await _convert(e, field, v[:, j:j + step], L, _spare_bits(fmt),
                                                  n_words)
        if progress:
            progress(min(j + step, cols), cols)
    planes = _fill_padding(planes, n, N)
    return SecretBits(e, planes, n, N, list(table.columns), L, fmt.frac_bits)


# -- minimum and maximum ---------------------------------------------------------------------

async def extremes(bits: SecretBits) -> tuple[dict, dict]:
    """Per column the minimum and the maximum, {column: value} each.

    What is opened: the minima and maxima, to every party.
    """
    e, x, N = bits.sharing, bits.planes, bits.N
    cols = len(bits.columns)
    if N == 1:
        x = np.concatenate([x, e.not_(x)], axis=2)
    else:
        a, b = _halves(x, N)
        N //= 2
        lo = await _select(e, await _less(e, a, b), a, b)
        # maxima as minima of the complements: ~v reverses the order of l-bit numbers
        x = np.concatenate([lo, e.not_(a ^ b ^ lo)], axis=2)
    while N > 1:
        a, b = _halves(x, N)
        N //= 2
        x = await _select(e, await _less(e, a, b), a, b)
    found = x[..., :1] & np.uint64(1)
    opened = _planes_to_ints(_unpack_first(await e.reveal(found)))
    top = (1 << bits.L) - 1
    mins = {c: bits.value(opened[j]) for j, c in enumerate(bits.columns)}
    maxs = {c: bits.value(top - opened[cols + j]) for j, c in enumerate(bits.columns)}
    return mins, maxs


# -- histograms ------------------------------------------------------------------------------

def histogram_edges(low: float, high: float, bins: int) -> np.ndarray:
    """numpy's equal-width bin edges between low and high (half a unit around a single value)."""
    return np.histogram_bin_edges(np.empty(0), bins=bins, range=(low, high))


def _public_histogram(value, n, bins, min_count):
    counts = np.histogram(np.full(n, value), bins=histogram_edges(value, value, bins))[0]
    return [int(c) if c >= min_count else None for c in counts]


async def histograms(bits: SecretBits, columns, bins: int, min_count: int, low: dict, high: dict
                     ) -> dict:
    """Histograms of some columns, {column: {'edges': [...], 'counts': [...]}}, with bins of
    equal width between the opened minimum and maximum, as ``numpy.histogram``: a value v is
    in bin i if edges[i] <= v < edges[i + 1], the last bin closed.  A count below min_count is
    None ("suppressed").

    What is opened: per cell its count if at least min_count, else 0 (which stands for
    suppressed); a column whose minimum equals its maximum is known from those alone.
    """
    out, secret = {}, []
    for c in columns:
        edges = histogram_edges(low[c], high[c], bins)
        out[c] = {'edges': edges.tolist()}
        if low[c] == high[c]:
            out[c]['counts'] = _public_histogram(low[c], bits.n, bins, min_count)
        elif bins == 1 or min_count > bits.n:   # one cell of n, or every cell below min_count
            out[c]['counts'] = [bits.n if bits.n >= min_count else None] * bins
        else:
            secret.append(c)
    for i in range(0, len(secret), _HISTOGRAMS_AT_ONCE):
        group = secret[i:i + _HISTOGRAMS_AT_ONCE]
        counts = await _histogram_counts(bits, group, [out[c]['edges'] for c in group], min_count)
        for c, row in zip(group, counts):
            out[c]['counts'] = [int(v) if v else None for v in row]
    return out


async def _histogram_counts(bits, columns, edges, min_count):
    """Per column and bin the count if at least min_count, else 0: opened (H, bins) ints."""
    e = bits.sharing
    H, bins = len(columns), len(edges[0]) - 1
    # u < T exactly when the value is below the edge: T = ceil(edge * 2**frac_bits) + 2**(l-1)
    offset = 1 << (bits.L - 1)
    thresholds = [math.ceil(Fraction(edge) * (1 << bits.frac_bits)) + offset
                  for row in edges for edge in row[1:-1]]
    idx = [bits.columns.index(c) for c in columns]
    x = np.repeat(bits.planes[:, :, idx], bins - 1, axis=2)
    below = await _less_public(e, x, _threshold_planes(thresholds, bits.L))
    below &= _position_mask(bits.n, x.shape[-1])
    cum = await _popcount(e, below, bits.N)                   # (ncomp, width, H * (bins - 1))
    width = cum.shape[1]
    cum = cum.reshape(cum.shape[0], width, H, bins - 1)
    # cell i = C[i+1] - C[i], with C[0] = 0 and C[bins] = n, as C[i+1] + ~C[i] + 1
    total = e.public(_threshold_planes([bits.n] * H, width))  # (ncomp, width, H, 1)
    upper = np.concatenate([cum, total], axis=3)
    lower = np.concatenate([e.zeros((width, H, 1)), cum], axis=3)
    one = e.public(np.broadcast_to(_threshold_planes([1], width), (width, H, bins)))
    cells = await _sum(e, [upper, e.not_(lower), one])
    cells = cells.reshape(cells.shape[0], width, H * bins)
    # suppressed in MPC: a cell below min_count becomes 0 before anything is opened
    shown = e.not_(await _less_public(e, cells, _threshold_planes([min_count], width)[:, :, 0]))
    cells = await e.and_(shown[:, None], cells)
    opened = await e.reveal(cells) & np.uint64(1)
    return _planes_to_ints(opened).reshape(H, bins)


# -- everything ------------------------------------------------------------------------------

async def describe(table, fmt, histogram=(), bins=10, min_count=5) -> dict:
    """count, mean, std, min and max per column (pandas' ``describe()`` rows), ``corr()``, and
    histograms of the named columns, of a table of input-format numbers.

    What is opened: see the module docstring.
    """
    sharing = await Sharing.start()
    rows, corr = summarise(await moments(table, fmt, sharing), table.columns)
    bits = await to_bits(table, fmt, sharing)
    rows['min'], rows['max'] = await extremes(bits)
    hist = await histograms(bits, histogram, bins, min_count, rows['min'], rows['max'])
    return {'describe': rows, 'corr': corr, 'histograms': hist}
