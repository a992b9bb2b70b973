"""The secure join's bulk work, as plain functions on plain data that any worker can run.

`mpclab.join` cuts hashing, encryption, masking, decryption and share encoding into chunks
and hands them to `mpclab.parallel` (threads, local processes or a party's Dask cluster).
So everything here takes and returns only bytes, ints, numpy arrays and dicts of ints, and
this module never imports MPyC: a worker process must not (MPyC reads the command line on
import).  Keys travel as dicts and are rebuilt, with their tables, once per worker.

Which worker sees what.  A party's workers are its own: an owner's workers hold its private
key and its values, the helper's its masks.  Nothing here is ever sent to another party.

The packing (`Layout`).  A row of ``d`` values goes into slots of ``value + stat_sec + 1``
bits (a value, the helper's mask of ``stat_sec`` more bits and a carry bit).  Decryption
costs about the same per plaintext bit, so every bit a returned plaintext holds beyond its
values is paid for and wasted.  When a row fits half a plaintext (below p) the owner
decrypts modulo p only.  When it needs more than half but less than a whole one (15 default
values: 1110 of 2046 bits, 54 %), rows are combined *by the helper*, which can add
ciphertexts but cannot shift them cheaply: so each owner sends every row in a few shifted
variants (the whole row at slot 0, its head at slot d, its tail at a few further slots), and
the helper multiplies the variants its layout needs into each returned plaintext.  A group of
``2j + 1`` rows fills ``j + 1`` plaintexts: plaintext i < j holds row 2i whole and the head
of row 2i+1; plaintext j holds row 2j whole and the tails of rows 1, 3, ..., 2j-1.  ``j`` is
chosen by the measured costs (`ENCRYPT_COST`, `MASK_COST`): 15 default values give j = 2,
5 rows in 3 plaintexts, 93 % of the decryption used.  The price is on the way in: an owner
encrypts and sends ``2 + j`` ciphertexts per row instead of one (15 default values: 4, so four
times the bytes to the helper), cheap next to the decryptions saved.  The layout is a public
function of the row count, so the owner learns nothing from it about where its rows went.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import os
from dataclasses import dataclass

import numpy as np
from gmpy2 import mpz

from mpclab import paillier

__all__ = ['Layout', 'hash_ids', 'is_test_id', 'encrypt_rows', 'randomizers', 'assemble',
           'decrypt_rows', 'helper_shares', 'ENCRYPT_COST', 'MASK_COST']

# Costs relative to one full (CRT) decryption at 2048 bits, measured with
# experiments/bench_paillier.py on this project's machine: an owner's encryption (CRT, short
# exponent) 0.04, the helper's mask-and-re-randomise 0.055, a half decryption 0.5.
ENCRYPT_COST = 0.04
MASK_COST = 0.055
MAX_TAILS = 6


# -- keys, rebuilt once per worker --------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _private_key(n, h, r_bits, p, q):
    pk = paillier.PaillierPublicKey(n, h, r_bits=r_bits)
    return paillier.PaillierPrivateKey(pk, p, q).precompute()


@functools.lru_cache(maxsize=4)
def _public_key(n, h, r_bits, stat_bits):
    return paillier.PaillierPublicKey(n, h, r_bits=r_bits).precompute(stat_bits)


def private_key(d):
    return _private_key(d['n'], d['h'], d['r_bits'], d['p'], d['q'])


def public_key(d, stat_bits=0):
    return _public_key(d['n'], d['h'], d['r_bits'], stat_bits)


# -- the packing ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """How one owner's rows of `values` values are packed, sent and returned (public).

    Attributes
    ----------
    values : int
        Values per row.
    slot_bits : int
        Bits per slot: a value, its mask and a carry bit.
    slots : int
        Slots per plaintext.
    half : bool
        Whether every plaintext is below p, so that the owner decrypts modulo p only.
    tails : int
        0: each row has plaintexts of its own.  j > 0: groups of 2j+1 rows in j+1 plaintexts
        (module docstring).
    """

    values: int
    slot_bits: int
    slots: int
    half: bool
    tails: int = 0

    @classmethod
    def choose(cls, values, value_bits, stat_sec, key_bits):
        """The cheapest layout by the measured costs (a public function of public sizes)."""
        slot = value_bits + stat_sec + 1
        h, k = (key_bits // 2 - 2) // slot, (key_bits - 2) // slot
        if values <= h:
            return cls(values, slot, h, True)
        n_half, n_full = -(-values // h), -(-values // k)
        options = [(n_half * (ENCRYPT_COST + MASK_COST + 0.5), cls(values, slot, h, True)),
                   (n_full * (ENCRYPT_COST + MASK_COST + 1), cls(values, slot, k, False))]
        tail = 2 * values - k
        if values <= k and tail > 0:
            for j in range(1, min(MAX_TAILS, (k - values) // tail) + 1):
                cost = (2 + j) * ENCRYPT_COST + (j + 1) / (2 * j + 1) * (MASK_COST + 1)
                options.append((cost, cls(values, slot, k, False, j)))
        return min(options, key=lambda o: o[0])[1]

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def per_row(self):
        """Plaintexts of a row on its own (tails == 0)."""
        return -(-self.values // self.slots)

    @property
    def variants(self):
        """Ciphertexts an owner sends per row."""
        return 2 + self.tails if self.tails else self.per_row

    @property
    def group_rows(self):
        return 2 * self.tails + 1 if self.tails else 1

    @property
    def group_pts(self):
        return self.tails + 1 if self.tails else self.per_row

    @property
    def max_pieces(self):
        """Most sent ciphertexts the helper multiplies into one returned plaintext."""
        return max(2, self.tails + 1) if self.tails else 1

    @property
    def capacity_bits(self):
        return self.slots * self.slot_bits

    def n_pts(self, m):
        """Returned plaintexts for m joined rows."""
        g, rest = divmod(m, self.group_rows)
        return g * self.group_pts + rest * (1 if self.tails else self.per_row)

    def chunks(self, m, target):
        """(row_start, row_stop, pt_start, pt_stop) of the returned data, about `target`
        plaintexts each, in whole groups (the rows left over after the last group: one more)."""
        G, P = self.group_rows, self.group_pts
        full = m // G
        step = max(1, target // P)
        out = [(g * G, min(g + step, full) * G, g * P, min(g + step, full) * P)
               for g in range(0, full, step)]
        if m > full * G:
            out.append((full * G, m, full * P, self.n_pts(m)))
        return out

    # -- where things go ---------------------------------------------------------------------
    @property
    def _head(self):
        return self.slots - self.values  # values of a row's head, next to a whole row

    def _group_map(self):
        """For a full group: (pt, slot) of each (row, column), shape (G, d, 2)."""
        d, G = self.values, self.group_rows
        out = np.zeros((G, d, 2), dtype=np.int64)
        if not self.tails:
            c = np.arange(d)
            out[0, :, 0], out[0, :, 1] = c // self.slots, c % self.slots
            return out
        j, head, tail = self.tails, self._head, d - self._head
        for r in range(G):
            for c in range(d):
                if r % 2 == 0:
                    out[r, c] = (r // 2, c)
                elif c < head:
                    out[r, c] = (r // 2, d + c)
                else:
                    out[r, c] = (j, d + (r // 2) * tail + c - head)
        return out

    def row_pieces(self, r):
        """[(pt in group, variant)] of the ciphertexts of row r of a full group."""
        if not self.tails:
            return [(v, v) for v in range(self.per_row)]
        j = self.tails
        if r % 2 == 0:
            return [(r // 2, 0)]
        return [(r // 2, 1), (j, 2 + r // 2)]

    def _piece_number(self, r, q):
        """Which factor of its returned plaintext the q-th ciphertext of row r of a group is:
        a whole row comes first, then a head, or the tails in the order of their rows."""
        if not self.tails or r % 2 == 0:
            return 0
        return 1 if q == 0 else 1 + r // 2

    def targets(self, positions, m):
        """Where the helper puts each needed ciphertext of rows at joined `positions`.

        Returns arrays (k, variant, pt, piece): the k-th row given sends its `variant` into
        returned plaintext `pt` as its `piece`-th factor.  Unmatched rows (position < 0) are
        left out.
        """
        positions = np.asarray(positions, dtype=np.int64)
        G, P = self.group_rows, self.group_pts
        full = (m // G) * G
        ks, vs, ts, qs = [], [], [], []
        rows = np.flatnonzero(positions >= 0)
        pos = positions[rows]
        grouped = pos < full
        g, r = pos // G, pos % G
        for rr in range(G):
            sel = grouped & (r == rr)
            for q, (pt, v) in enumerate(self.row_pieces(rr)):
                ks.append(rows[sel])
                vs.append(np.full(sel.sum(), v))
                ts.append(g[sel] * P + pt)
                qs.append(np.full(sel.sum(), self._piece_number(rr, q)))
        rest = ~grouped
        if rest.any():
            if self.tails:
                ks.append(rows[rest])
                vs.append(np.zeros(rest.sum(), dtype=np.int64))
                ts.append((m // G) * P + pos[rest] - full)
                qs.append(np.zeros(rest.sum(), dtype=np.int64))
            # without tails, G == 1 and every row is in a full group
        cat = [np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64)
               for a in (ks, vs, ts, qs)]
        return tuple(cat)

    def value_map(self, row_start, row_stop, m, pt_start):
        """(pt - pt_start, slot) of every value of rows [row_start, row_stop), shape (n, d, 2)."""
        G, P = self.group_rows, self.group_pts
        full = (m // G) * G
        n = row_stop - row_start
        out = np.zeros((n, self.values, 2), dtype=np.int64)
        pos = np.arange(row_start, row_stop)
        grouped = pos < full
        if grouped.any():
            gm = self._group_map()
            p = pos[grouped]
            out[grouped] = gm[p % G]
            out[grouped, :, 0] += ((p // G) * P - pt_start)[:, None]
        if (~grouped).any():  # rows after the last group: one plaintext each (tails only)
            p = pos[~grouped]
            out[~grouped, :, 0] = ((m // G) * P + p - full - pt_start)[:, None]
            out[~grouped, :, 1] = np.arange(self.values)
        return out

    # -- packing ------------------------------------------------------------------------------
    def _pack(self, values, first_slot=0):
        s, acc = self.slot_bits, 0
        for v in reversed(values):
            acc = (acc << s) | v
        return acc << (first_slot * s)

    def row_plaintexts(self, row):
        """The `variants` plaintexts of one row of non-negative slot values."""
        if not self.tails:
            k = self.slots
            return [self._pack(row[i:i + k]) for i in range(0, self.values, k)]
        d, head = self.values, self._head
        tail = d - head
        out = [self._pack(row), self._pack(row[:head], d)]
        out += [self._pack(row[head:], d + i * tail) for i in range(self.tails)]
        return out

    def unpack(self, x):
        """The `slots` slot values of a plaintext."""
        s, mask, out = self.slot_bits, (1 << self.slot_bits) - 1, []
        x = int(x)
        for _ in range(self.slots):
            out.append(x & mask)
            x >>= s
        return out


# -- owners ---------------------------------------------------------------------------------------
def is_test_id(identifier, seed, fraction):
    """Whether a (normalised) identifier falls in the seeded test split (see `mpclab.join`)."""
    digest = hashlib.sha256(f'mpclab-split:{seed}:'.encode() + identifier.encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') < fraction * 2**64


def hash_ids(key, ids, split=None):
    """HMAC-SHA-256 of identifiers under the owners' key, and their seeded test bits (0/1 bytes)."""
    hashes = b''.join(hmac.new(key, i.encode('utf-8'), hashlib.sha256).digest() for i in ids)
    if split is None:
        return hashes, None
    return hashes, bytes(bool(is_test_id(i, *split)) for i in ids)


def encrypt_rows(key, layout, offset, rows):
    """Ciphertexts (bytes) of every variant of a block of an owner's encoded rows."""
    sk = private_key(key)
    plaintexts = [x for row in rows for x in layout.row_plaintexts([int(v) + offset for v in row])]
    return sk.public_key.ciphertexts_to_bytes(sk.encrypt_many(plaintexts))


def decrypt_rows(key, layout, offset, scale, prime, data, row_start, row_stop, m, pt_start):
    """The owner's additive shares of rows [row_start, row_stop) as field ints, row-major.

    `data` holds the returned plaintexts from `pt_start` on; a share is value + mask, scaled by
    ``2**scale`` into the secure type's fractional bits, modulo the field's `prime`.
    """
    sk = private_key(key)
    cts = sk.public_key.ciphertexts_from_bytes(data)
    plains = sk.decrypt_many(cts, max_bits=layout.capacity_bits if layout.half else None)
    slots = np.array([layout.unpack(x) for x in plains], dtype=object)
    where = layout.value_map(row_start, row_stop, m, pt_start)
    values = slots[where[..., 0], where[..., 1]]
    return [((v - offset) << scale) % prime for v in values.reshape(-1)]


# -- helper ---------------------------------------------------------------------------------------
def refresh_bits(layout, stat_sec):
    """Statistical bits asked of the helper's re-randomiser: stat_sec, plus log2 of the sent
    ciphertexts whose exponents add up in one returned plaintext."""
    return stat_sec + math.ceil(math.log2(layout.max_pieces))


def randomizers(key, layout, stat_sec, mask_bits, row_start, row_stop, m, pt_start, pt_stop):
    """Fresh masks for rows [row_start, row_stop) and the helper's factor of each returned
    plaintext in [pt_start, pt_stop): Enc(packed masks) with a long re-randomising exponent.

    Runs in a worker: the masks and exponents come from the OS there.  Returns (factors as
    bytes, masks as `mask_bytes(mask_bits)`-byte little-endian ints, row-major).
    """
    bits = refresh_bits(layout, stat_sec)
    pk = public_key(key, bits)
    n = (row_stop - row_start) * layout.values
    nbytes = mask_bytes(mask_bits)
    raw = os.urandom(n * nbytes)
    excess = 8 * nbytes - mask_bits
    masks = np.empty(n, dtype=object)
    masks[:] = [int.from_bytes(raw[i:i + nbytes], 'little') >> excess
                for i in range(0, n * nbytes, nbytes)]
    where = layout.value_map(row_start, row_stop, m, pt_start).reshape(-1, 2)
    packed = [0] * (pt_stop - pt_start)
    s = layout.slot_bits
    for z, (t, slot) in zip(masks, where.tolist()):
        packed[t] |= z << (slot * s)
    factors = pk.mask_many([mpz(1)] * len(packed), packed, bits)
    stored = b''.join(int(z).to_bytes(nbytes, 'little') for z in masks)
    return pk.ciphertexts_to_bytes(factors), stored


def mask_bytes(mask_bits):
    return (mask_bits + 7) // 8


def assemble(key, pieces, factors, max_pieces):
    """Returned ciphertexts: each the product of its sent pieces (zero bytes: no piece) and
    the helper's factor.  `pieces` holds `max_pieces` ciphertexts per returned plaintext."""
    n2 = mpz(key['n'])**2
    w = (n2.bit_length() + 7) // 8
    out = []
    from_bytes = mpz.from_bytes if hasattr(mpz, 'from_bytes') else (
        lambda b, order: mpz(int.from_bytes(b, order)))
    view, fview = memoryview(pieces), memoryview(factors)
    for t in range(len(factors) // w):
        acc = from_bytes(fview[t * w:(t + 1) * w], 'big')
        for q in range(max_pieces):
            i = (t * max_pieces + q) * w
            c = from_bytes(view[i:i + w], 'big')
            if c:
                if c >= n2:
                    raise ValueError('a ciphertext out of range')
                acc = acc * c % n2
        out.append(acc)
    return b''.join(int(c).to_bytes(w, 'big') for c in out)


def helper_shares(masks, mask_bits, scale, prime):
    """The helper's additive shares, -mask scaled into the secure type, as field ints."""
    nbytes = mask_bytes(mask_bits)
    return [((-int.from_bytes(masks[i:i + nbytes], 'little')) << scale) % prime
            for i in range(0, len(masks), nbytes)]
