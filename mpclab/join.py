"""Secure inner join of two or more owners' tables via a helper party.

After van Egmond, Spini et al., "Privacy-preserving dataset combination and Lasso regression
for healthcare predictions", BMC Med. Inform. Decis. Mak. 21:266 (2021).

Roles: owner A (party 0) holds the left table, owner B (party 1) the right table, the helper
H (party 2 by default) holds nothing.  Further parties only compute.  With one party, that
party plays every role (for tests and notebooks).  With K > 2 owners, parties 0 .. K-1 each
hold a table and H is party K by default; every step below that A and B take, each of the K
owners takes, and the joined rows are the people present at every owner.

1. The owners agree on a key k unknown to H (each contributes 32 random bytes; k is the
   hash of all); each hashes its identifiers with HMAC-SHA-256 under k, shuffles its rows
   and sends the hashes and a fresh Paillier public key to H.
2. H matches the hashes present at every owner, orders the matched rows by a secret random
   permutation and tells everyone the intersection size.  While the owners encrypt, H
   already draws a fresh random mask z of stat_sec more bits than the values for every
   joined value and encrypts the packed masks under each owner's key with an exponent
   stat_sec bits longer than the owner's (see `mpclab.paillier`): it needs no ciphertext
   for that.
3. Each owner packs each row's fixed-point values into Paillier plaintexts
   (`mpclab.joinwork.Layout`), encrypts them under its own key and sends them to H.
4. H multiplies, for every returned plaintext, the owner's ciphertexts that belong in it with
   its encrypted masks, keeps -z as its own share and returns the result chunk by chunk;
   each owner decrypts a chunk while H assembles the next: v + z is its share.
5. The owners and H secret-share their additive shares into MPyC; the sums are a Shamir-shared
   joined table.

Where the bulk work runs (hashing, encryption, masks, decryption) is each party's own
`mpclab.parallel.Pool`: its own thread, its local processes, or a Dask cluster of its own.
Whatever runs there is this party's own secrets and data; nothing a peer sent is run there.

What each party learns (semi-honest, non-colluding parties):

- every party: the column names and row counts of every table, the intersection size;
- H: the keyed hashes (so which pseudonyms of A match which of B, but not the identifiers;
  with K > 2 owners, which pseudonyms match between every pair and subset of owners, so
  also how many people any subset of owners has in common),
  ciphertexts under keys it does not hold (hidden by decisional composite residuosity and
  the short-exponent assumption), and its own masks;
- A (every owner likewise): its own data, and, for the joined rows in H's secret order, its values plus
  masks of stat_sec extra bits in ciphertexts re-randomised with stat_sec extra bits.  Both
  hide statistically, even from A who holds the key: each masked value and each returned
  ciphertext is within 2**-stat_sec of independent of A's rows and of the order A sent them
  in, so A cannot tell which of its rows matched nor where each one went;
- other parties: only the sizes;
- anyone watching the network (without TLS): what H receives, and the ciphertexts H returns,
  hidden from them as from H.

The statistical hiding is per value, so it is counted: every party records, in its
`mpclab.security` ledger, the masked values and re-randomised ciphertexts of both owners
(kind 'join', stat_sec bits each), computed from the public sizes alone (`masked_counts`),
so that every party's ledger holds the same figures.

The split into training and test rows.  By default the test rows are a block of the
joined table's positions (`SecretTable.split`): since the rows stand in H's secret random
order, that is a uniformly random subset which no owner can link to its own rows, and which
reveals nothing beyond the sizes (everyone computes the test size from the public
intersection size).  The seeded split, ``split=(seed, fraction)``, is an opt-in for
experiments with a plaintext twin (`mpclab.twin.plaintext_split`): A marks every row whose
identifier satisfies `is_test_id` (a public function of the identifier and the seed), H puts
the matched marked rows first and sends their number, `n_test`, to every party.  That reveals

- to A: ``|T_A ∩ B|``, how many people of its own candidate set ``T_A`` (its rows that
  `is_test_id` marks) are in B's table; B likewise learns ``|T_B ∩ A|`` (with K owners,
  each owner how many of its candidates are at all the other owners).  With a small
  fraction, few candidates or repeated runs under other seeds this narrows down to
  single people: whether a given person is in the other owner's table;
- to H: the test bit of every one of A's rows (a public function of an identifier it does
  not know), so the marked fraction of A's table and of the intersection;
- to every party: `n_test`.
"""

import collections
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass, field

import numpy as np
from mpyc.runtime import mpc

from mpclab import joinwork, paillier, security
from mpclab.fixedpoint import FixedPointFormat
from mpclab.joinwork import Layout, is_test_id
from mpclab.parallel import Pool
from mpclab.table import SecretTable

__all__ = ['JoinError', 'JoinParameters', 'JoinResult', 'Roles', 'secure_inner_join', 'secure_join',
           'slot_layout', 'masked_counts', 'is_test_id', 'STAGES']

HASH_BYTES = 32

#: Stages of the bulk work, as reported to a `progress` callback (always in this order).
STAGES = ('encrypt', 'mask', 'decrypt', 'share')

# Ciphertexts per chunk of bulk work: 0.06 s (encrypt) to 1.4 s (full decryption) on one
# core at 2048 bits.  Chunks are whole blocks of rows, so that each one is passed on (masked
# chunk to its owner, decrypted) as soon as it is done.
CHUNK_CIPHERTEXTS = 512

# Below this many ciphertexts a stage runs on the party's own thread: starting processes
# would cost more than it saves.
MIN_PROCESS_CIPHERTEXTS = 1000

HASH_CHUNK = 20000   # identifiers per chunk of hashing

# Chunks of the helper's factors (masks under an owner's key) made ahead of their return, per
# owner: all of them for up to 131 072 returned plaintexts (as many rows of 15 values in
# [0, 1]), made while the owners encrypt; beyond that at most about 64 MB (2048-bit keys).
FACTORS_AHEAD = 256

INPUT_VALUES = 16384  # values per block of secret-sharing the additive shares into MPyC
INPUT_WINDOW = 4      # blocks of it in flight before the first is added up


class JoinError(ValueError):
    """The join cannot run; the reason is public and holds no data.

    Every party that sees the same public facts raises the same error.  `reason` names the
    case for a caller that words it in its own terms ('parties', 'helper', 'roles', 'table',
    'columns', 'slots', 'stat_sec', 'message'); `detail` holds the public numbers involved.
    """

    def __init__(self, message, reason, **detail):
        super().__init__(message)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class JoinParameters:
    """Public parameters of the join, identical at every party."""

    fmt: FixedPointFormat = field(default_factory=FixedPointFormat)
    key_bits: int = 2048
    stat_sec: int = 40

    def __post_init__(self):
        if self.stat_sec < 20:
            raise JoinError(f'a statistical security of {self.stat_sec} bits is below 20 bits and '
                            f'gives no meaningful statistical hiding', 'stat_sec',
                            stat_sec=self.stat_sec)


@dataclass(frozen=True)
class Roles:
    """Which parties hold the tables (`owners`, in table order) and which one helps."""

    owners: tuple = (0, 1)
    helper: int = 2

    @property
    def left(self):
        return self.owners[0]

    @property
    def right(self):
        return self.owners[1]

    @classmethod
    def for_parties(cls, n_parties, helper=None, owners=2):
        """Owners 0 .. owners-1 and the helper (default: party `owners`); with one party,
        party 0 plays every role."""
        if owners < 2:
            raise JoinError(f'a join needs 2 or more owners, not {owners}', 'owners',
                            owners=owners)
        if n_parties == 1:
            return cls((0,) * owners, 0)
        if n_parties < owners + 1:
            who = 'two owners' if owners == 2 else f'{owners} owners'
            raise JoinError(f'the join needs {owners + 1} or more parties ({who} and a helper), '
                            f'not {n_parties}; or 1 party to play every role', 'parties',
                            n_parties=n_parties)
        helper = owners if helper is None else helper
        if not owners <= helper < n_parties:
            which = (f'party {owners}' if n_parties == owners + 1
                     else f'one of the parties {owners}..{n_parties - 1}')
            raise JoinError(f'the helper must be {which}, not {helper}', 'helper',
                            helper=helper, n_parties=n_parties)
        return cls(tuple(range(owners)), helper)

    def check(self, n_parties):
        """Raise JoinError unless these roles fit `n_parties` parties."""
        roles = (*self.owners, self.helper)
        if len(self.owners) < 2:
            raise JoinError(f'roles {roles}: a join needs 2 or more owners', 'roles')
        if not all(0 <= r < n_parties for r in roles):
            raise JoinError(f'roles {roles} name a party outside 0..{n_parties - 1}', 'roles')
        if n_parties > 1 and len(set(roles)) < len(roles):
            raise JoinError(f'roles {roles}: the owners and the helper must be different '
                            f'parties', 'roles')


@dataclass
class JoinResult:
    """The joined table and what every party may know about it (all public).

    Attributes
    ----------
    table : SecretTable
        The first owner's columns, then the second's, and so on; rows in the helper's secret
        random order (with a seeded split: the `n_test` test rows first).
    owner_rows : list of int
        The size of every owner's table, in owner order.
    owner_columns : list of list of str
        Every owner's columns, in owner order.
    n_test : int
        With a seeded split, the number of test rows; 0 otherwise.
    paillier_key_bits : int
        Size of every owner's Paillier modulus.
    mask_bits : int
        Bits of statistical hiding of each masked value and each re-randomised ciphertext.
    masked_values, masked_ciphertexts : int
        How many of each the join hid statistically (as recorded in `mpclab.security`).
    seeded_split : bool
        Whether `n_test` came from a seeded split (and so tells each owner the overlap of
        its own candidate test set with the other tables; see the module docstring).
    own_ids : list of str or None
        At the owner named by `rows_to`: its identifiers of the joined rows, in order.
    """

    table: SecretTable
    owner_rows: list
    owner_columns: list
    n_test: int = 0
    paillier_key_bits: int = 0
    mask_bits: int = 0
    masked_values: int = 0
    masked_ciphertexts: int = 0
    seeded_split: bool = False
    own_ids: list | None = None

    @property
    def intersection_size(self):
        return self.table.n_rows

    # the two-owner names: the first two owners' sizes and columns
    @property
    def rows_left(self):
        return self.owner_rows[0]

    @property
    def rows_right(self):
        return self.owner_rows[1]

    @property
    def columns_left(self):
        return self.owner_columns[0]

    @property
    def columns_right(self):
        return self.owner_columns[1]


def layout(n_values, params):
    """How an owner's rows of `n_values` values are packed (`mpclab.joinwork.Layout`)."""
    slot = params.fmt.value_bits + params.stat_sec + 1
    half = params.key_bits // 2 - 2
    if slot > half:
        raise JoinError(f'slots of {slot} bits (values of {params.fmt.value_bits} bits, '
                        f'{params.stat_sec} mask bits and a carry bit) do not fit half of a '
                        f'{params.key_bits}-bit key ({half} bits): lower the statistical '
                        f'security or the integer bits, or use a larger key', 'slots',
                        slot_bits=slot, key_bits=params.key_bits)
    return Layout.choose(n_values, params.fmt.value_bits, params.stat_sec, params.key_bits)


def slot_layout(n_values, params):
    """Slot width, plaintext capacity and whether a half (mod p) decryption suffices.

    A slot holds value + offset + mask < 2**(value_bits + stat_sec + 1), so slots never carry.
    Decryption costs about the same per plaintext bit either way; which packing is cheapest
    is `layout`'s choice.
    """
    lay = layout(n_values, params)
    return lay.slot_bits, params.key_bits // 2 - 2 if lay.half else params.key_bits - 2, lay.half


def masked_counts(n_rows, widths, params):
    """What the join hides statistically for `n_rows` joined rows, from public sizes only.

    `widths` are the owners' numbers of columns.  Returns ``(values, ciphertexts)``: the
    values the helper masks (``n_rows * sum(widths)``) and the ciphertexts it re-randomises
    for the owners; each has ``stat_sec`` bits of hiding.  Every party computes the same
    figures.
    """
    cts = sum(layout(d, params).n_pts(n_rows) for d in widths)
    return n_rows * sum(widths), cts


def _record_masks(n_rows, widths, params):
    values, ciphertexts = masked_counts(n_rows, widths, params)
    security.record('join', values, params.stat_sec)
    security.record('join', ciphertexts, params.stat_sec)
    return values, ciphertexts


# -- messages over MPyC's channels -------------------------------------------------------------
async def _send(obj, sender, receivers):
    """Send plain data from one party to some; every party must call this."""
    pairs = [(sender, r) for r in receivers]
    out = await mpc.transfer(obj if mpc.pid == sender else None, sender_receivers=pairs)
    return out[0] if out else None


def _random_permutation(n):
    """Uniform permutation from OS randomness (ties among 64-bit keys are negligible)."""
    keys = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
    return np.argsort(keys, kind='stable')


def _random_ints(count, bits):
    """`count` independent uniform integers in [0, 2**bits), from os.urandom in bulk."""
    nbytes = (bits + 7) // 8
    excess = 8 * nbytes - bits
    buf = os.urandom(count * nbytes)
    return [int.from_bytes(buf[i:i + nbytes], 'little') >> excess
            for i in range(0, count * nbytes, nbytes)]




# -- bulk work, chunk by chunk -----------------------------------------------------------------
class _Progress:
    """``progress(stage, done, total)`` for one run of a stage (one owner's rows)."""

    def __init__(self, progress, stage, total):
        self.progress, self.stage, self.total, self.done = progress, stage, total, 0
        self.add(0)

    def add(self, size):
        self.done += size
        if self.progress is not None:
            self.progress(self.stage, self.done, self.total)


async def _stream(pool, submit, fn, jobs, tell):
    """fn(*args) for size, args in jobs, yielded in order, with at most `pool.window` in flight.

    Only the chunks in flight and the one yielded are in memory; `tell.add(size)` follows
    each one.  Close it (`contextlib.aclosing`) to cancel what is still running.
    """
    pending = collections.deque()
    try:
        for size, args in jobs:
            pending.append((size, submit(fn, *args)))
            while len(pending) >= pool.window or (pending and pending[0][1].done()):
                size0, future = pending.popleft()
                result = await pool.wait(future)
                tell.add(size0)
                yield result
        while pending:
            size0, future = pending.popleft()
            result = await pool.wait(future)
            tell.add(size0)
            yield result
    finally:
        for _, future in pending:
            future.cancel()


async def _map(pool, submit, fn, jobs, tell):
    """[fn(*args) for size, args in jobs], in order (as `_stream`)."""
    async with contextlib.aclosing(_stream(pool, submit, fn, jobs, tell)) as results:
        return [r async for r in results]


def _submitter(pool, n_ciphertexts):
    """Where a stage of `n_ciphertexts` runs: the pool's workers, or this party's own thread
    when the stage is too small to pay for starting local processes."""
    if pool.kind == 'processes' and n_ciphertexts < MIN_PROCESS_CIPHERTEXTS:
        return pool.run_local
    return pool.submit


def _blocks(n_rows, per_row):
    """(start, stop) of blocks of about CHUNK_CIPHERTEXTS ciphertexts of `per_row` each."""
    step = max(1, CHUNK_CIPHERTEXTS // max(per_row, 1))
    return [(a, min(a + step, n_rows)) for a in range(0, n_rows, step)]


def _alternating(counts):
    """(owner, i) for the i-th of counts[owner] pieces of every owner, the owners in turn."""
    return [(k, i) for i in range(max(counts, default=0)) for k, n in enumerate(counts) if i < n]


def _offset(params):
    return 1 << (params.fmt.value_bits - 1)  # values become non-negative


def _mask_bits(params):
    return params.fmt.value_bits + params.stat_sec


# -- owner -------------------------------------------------------------------------------------
def _new_key(bits):
    """A fresh Paillier key pair, as the plain dict that the owner's workers rebuild it from."""
    sk = paillier.generate_keypair(bits)[1]
    return {**sk.public_key.to_dict(), 'p': int(sk.p), 'q': int(sk.q)}


def _public(key):
    return {k: key[k] for k in ('n', 'h', 'r_bits')}


async def _owner_hash(table, key, key_bits, pool, split=None):
    """The owner's first message (public key, keyed hashes, packed test bits), its private key
    and the order it sends its rows in (sent row k is the table's row order[k])."""
    sk = await pool.wait(pool.run_local(_new_key, key_bits))
    order = _random_permutation(table.n_rows)
    ids = [table.ids[i] for i in order]
    submit = _submitter(pool, table.n_rows // 10)   # hashing is ~100 times cheaper
    jobs = ((b - a, (key, ids[a:b], split)) for a, b in
            ((a, min(a + HASH_CHUNK, len(ids))) for a in range(0, len(ids), HASH_CHUNK)))
    parts = await _map(pool, submit, joinwork.hash_ids, jobs, _Progress(None, '', 0))
    message = {'public_key': _public(sk), 'hashes': b''.join(h for h, _ in parts)}
    if split is not None:
        bits = np.frombuffer(b''.join(t for _, t in parts), dtype=np.uint8)
        message['test'] = np.packbits(bits).tobytes()
    return message, sk, order


def _owner_encrypt(table, sk, order, params, pool, progress):
    """The ciphertexts (bytes) of every variant of the owner's rows in the sent order, one
    block of `_blocks` at a time (an async generator: only the blocks in flight are held)."""
    lay = layout(len(table.columns), params)
    encoded = table.encoded[order]
    submit = _submitter(pool, table.n_rows * lay.variants)
    jobs = ((b - a, (sk, lay, _offset(params), encoded[a:b]))
            for a, b in _blocks(table.n_rows, lay.variants))
    return _stream(pool, submit, joinwork.encrypt_rows, jobs,
                   _Progress(progress, 'encrypt', table.n_rows))


# -- helper ------------------------------------------------------------------------------------
def _match(hashes, test_bits=None):
    """Row-index tuples (one index per owner) of the hashes every owner sent, in a secret
    random order, test rows (marked by the first owner) first."""
    def split(buf):
        return [buf[i:i + HASH_BYTES] for i in range(0, len(buf), HASH_BYTES)]
    where = [{h: j for j, h in enumerate(split(b))} for b in hashes[1:]]
    pairs = [(i, *(w[h] for w in where)) for i, h in enumerate(split(hashes[0]))
             if all(h in w for w in where)]
    pairs = [pairs[k] for k in _random_permutation(len(pairs))]
    if test_bits is None:
        return pairs, 0
    bits = np.unpackbits(np.frombuffer(test_bits, dtype=np.uint8))
    test = [p for p in pairs if bits[p[0]]]
    return test + [p for p in pairs if not bits[p[0]]], len(test)


def _check_first(message, n_rows, params, owner):
    """Check an owner's key and hashes against its public row count and the key size."""
    try:
        pk = paillier.PaillierPublicKey.from_dict(message['public_key'])
    except (KeyError, TypeError, ValueError):
        pk = None
    if pk is None or pk.bits != params.key_bits or len(message['hashes']) != n_rows * HASH_BYTES:
        raise JoinError(f'party {owner} sent a message that does not fit its {n_rows} rows and '
                        f'a {params.key_bits}-bit key', 'message')
    return pk


def _check_ciphertexts(data, pk, n_rows, lay, owner):
    if not isinstance(data, bytes) or len(data) != n_rows * lay.variants * pk.ciphertext_bytes:
        raise JoinError(f'party {owner} sent ciphertexts that do not fit a block of its '
                        f'{n_rows} rows', 'message')


class _HelperSide:
    """The helper's work for one owner: its factors (masks under the owner's key, computed
    while the owner still encrypts), then each returned chunk as the owner's ciphertexts
    arrive."""

    def __init__(self, key, lay, rows, m, params, pool):
        self.key, self.lay, self.rows, self.m = key, lay, np.asarray(rows, dtype=np.int64), m
        self.chunks = lay.chunks(m, CHUNK_CIPHERTEXTS)
        self._submit = _submitter(pool, lay.n_pts(m))
        self._work = (joinwork.randomizers, key, lay, params.stat_sec, _mask_bits(params))
        # The masks and re-randomisers need only the owner's public key: the first
        # FACTORS_AHEAD chunks' are made at once, ready or nearly when the ciphertexts arrive,
        # and each returned chunk starts the next one's.
        self.factors = [None] * len(self.chunks)
        self._made = 0
        self._make_ahead(0)
        self.pieces = None
        self.masks = []

    def _make_ahead(self, returned):
        """Start the factors of the chunks up to FACTORS_AHEAD beyond the first `returned`."""
        stop = min(len(self.chunks), returned + FACTORS_AHEAD)
        for c in range(self._made, stop):
            r0, r1, p0, p1 = self.chunks[c]
            self.factors[c] = self._submit(*self._work, r0, r1, self.m, p0, p1)
        self._made = max(self._made, stop)

    def expect(self, n_rows):
        """Prepare for the owner's `n_rows` sent rows: where each needed ciphertext goes."""
        w = paillier.PaillierPublicKey.from_dict(self.key).ciphertext_bytes
        positions = np.full(n_rows, -1, dtype=np.int64)
        positions[self.rows] = np.arange(self.m)
        k, v, t, q = self.lay.targets(positions, self.m)
        order = np.argsort(k, kind='stable')
        self.targets = k[order], v[order], t[order] * self.lay.max_pieces + q[order]
        self.pieces = np.zeros((self.lay.n_pts(self.m) * self.lay.max_pieces, w), dtype=np.uint8)

    def place(self, data, row_start, row_stop):
        """Put the ciphertexts of sent rows [row_start, row_stop) where the joined rows need
        them (the rest, of unmatched rows, are dropped at once)."""
        k, v, where = self.targets
        lo, hi = np.searchsorted(k, [row_start, row_stop])
        sent = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.pieces.shape[1])
        self.pieces[where[lo:hi]] = sent[(k[lo:hi] - row_start) * self.lay.variants + v[lo:hi]]

    async def returned(self, c, pool):
        """The c-th chunk of masked, re-randomised ciphertexts for the owner (bytes)."""
        self._make_ahead(c + 1)
        factors, masks = await pool.wait(self.factors[c])
        self.factors[c] = None
        self.masks.append(masks)
        mp = self.lay.max_pieces
        _, _, p0, p1 = self.chunks[c]
        pieces = self.pieces[p0 * mp:p1 * mp].tobytes()
        return await pool.wait(pool.run_local(joinwork.assemble, self.key, pieces, factors, mp))

    def release(self):
        """Drop the ciphertexts (every chunk has been returned) and the masks (the helper's
        shares have been made of them)."""
        self.pieces, self.masks = None, []

    def cancel(self):
        for f in self.factors:
            if f is not None:
                f.cancel()


# -- owner, decrypting -------------------------------------------------------------------------
class _OwnerSide:
    """An owner's decryption of the returned chunks, submitted as each arrives."""

    def __init__(self, sk, lay, m, params, secfxp, pool, progress):
        self.sk, self.lay, self.m, self.pool = sk, lay, m, pool
        self.chunks = lay.chunks(m, CHUNK_CIPHERTEXTS)
        self.scale = params.fmt.secure_frac_bits - params.fmt.frac_bits
        self.offset, self.prime = _offset(params), secfxp.field.order
        self.submit = _submitter(pool, lay.n_pts(m))
        self.width = paillier.PaillierPublicKey.from_dict(sk).ciphertext_bytes
        self.pending, self.shares = collections.deque(), []
        self.tell = _Progress(progress, 'decrypt', m)

    async def receive(self, c, data):
        r0, r1, p0, p1 = self.chunks[c]
        if not isinstance(data, bytes) or len(data) != (p1 - p0) * self.width:
            raise JoinError(f'the helper returned a chunk that does not fit its {r1 - r0} rows',
                            'message')
        self.pending.append((r1 - r0, self.submit(
            joinwork.decrypt_rows, self.sk, self.lay, self.offset, self.scale, self.prime, data,
            r0, r1, self.m, p0)))
        while len(self.pending) >= self.pool.window or (self.pending and self.pending[0][1].done()):
            await self._first()

    async def _first(self):
        size, future = self.pending.popleft()
        self.shares.extend(await self.pool.wait(future))
        self.tell.add(size)

    async def finish(self):
        """The owner's additive shares (a list of field ints), handed over: kept nowhere else."""
        while self.pending:
            await self._first()
        shares, self.shares = self.shares, []
        return shares

    def cancel(self):
        for _, f in self.pending:
            f.cancel()


# -- into MPyC ---------------------------------------------------------------------------------
def _object_array(values, shape):
    a = np.empty(len(values), dtype=object)
    a[:] = values
    return a.reshape(shape)


class _HelperShares:
    """The helper's shares (its negated masks as field ints) of joined rows [r0, r1), every
    owner's columns in owner order, made a block at a time from the masks (bytes)."""

    def __init__(self, helper_sides, widths, mask_bits, scale, prime):
        self.masks = [b''.join(s.masks) for s in helper_sides]
        self.widths, self.mask_bits, self.scale, self.prime = widths, mask_bits, scale, prime
        self.nbytes = joinwork.mask_bytes(mask_bits)

    def rows(self, r0, r1):
        a = np.empty((r1 - r0, sum(self.widths)), dtype=object)
        start = 0
        for masks, d in zip(self.masks, self.widths):
            part = masks[r0 * d * self.nbytes:r1 * d * self.nbytes]
            shares = joinwork.helper_shares(part, self.mask_bits, self.scale, self.prime)
            a[:, start:start + d] = _object_array(shares, (r1 - r0, d))
            start += d
        return a


async def _joined_values(secfxp, shares, helper_shares, senders, widths, m):
    """The joined table as one secure array: the sum of the owners' and the helper's additive
    shares, secret-shared into MPyC (every party calls this; `shares[k]` is owner k's list of
    field ints at that owner, `helper_shares` a `_HelperShares` at the helper, None elsewhere).

    Block by block of about INPUT_VALUES values: every sender shares one block of rows, every
    party adds that block's shares up and keeps only the sum, and a sender lets go of the
    block's additive shares.  So at every party the table exists once, as the sum, with a few
    blocks in flight, rather than as K + 2 arrays of the whole table (its owners' parts, the
    helper's part and the sum).  Opens nothing: mpc.input and local additions only.
    """
    d = sum(widths)
    owners, helper = senders[:-1], senders[-1]
    own = shares   # converted in place: the caller's list holds no other copy
    for k, w in enumerate(widths):
        if own[k] is not None:
            own[k] = _object_array(own[k], (m, w))
    out = np.empty((m, d), dtype=object)
    step = max(1, INPUT_VALUES // max(d, 1))
    in_flight = collections.deque()

    def share_in(values, sender, shape):
        if mpc.pid == sender:
            x = secfxp.array(secfxp.field.array(values, check=False), integral=False)
        else:
            x = secfxp.array(None, shape=shape, integral=False)
        return mpc.input(x, senders=sender)

    async def settle():
        r0, r1, x = in_flight.popleft()
        out[r0:r1] = (await mpc.gather(x)).value

    for r0 in range(0, m, step):
        r1 = min(m, r0 + step)
        parts = []
        for k, (owner, w) in enumerate(zip(owners, widths)):
            block = None
            if own[k] is not None:
                block = own[k][r0:r1].copy()
                own[k][r0:r1] = None     # the owner's additive shares go as they are shared
            parts.append(share_in(block, owner, (r1 - r0, w)))
        h = helper_shares.rows(r0, r1) if helper_shares is not None else None
        x = mpc.np_hstack(parts) + share_in(h, helper, (r1 - r0, d))
        in_flight.append((r0, r1, x))
        if len(in_flight) > INPUT_WINDOW:
            await settle()
    while in_flight:
        await settle()
    return secfxp.array(secfxp.field.array(out, check=False), integral=False)


async def secure_inner_join(left, right, params=None, session=None, roles=None, split=None,
                            check_columns=None, progress=None, rows_to=None, pool=None):
    """Join two owners' tables into a secret-shared table: ``secure_join([left, right], ...)``.

    `left`, `right`: the owner's own table at party ``roles.left`` / ``roles.right``, None
    elsewhere; everything else as in `secure_join`.

    What is opened
    --------------
    As for `secure_join`: nothing of the data.
    """
    return await secure_join([left, right], params, session, roles, split, check_columns,
                             progress, rows_to, pool)


def _table_name(k, n_owners):
    return ('left', 'right')[k] if n_owners == 2 else f'table {k}'


def _check_schemas(columns):
    """Raise JoinError (at every party alike) for an owner without columns or a shared name."""
    n_owners = len(columns)
    for k, cols in enumerate(columns):
        if not cols:
            raise JoinError(f'the {_table_name(k, n_owners)} table has no columns besides the '
                            f'identifier', 'columns')
    seen = {}
    for k, cols in enumerate(columns):
        for c in cols:
            if c in seen:
                tables = 'both tables' if n_owners == 2 else f'tables {seen[c]} and {k}'
                raise JoinError(f'{tables} have a column named {c!r}; rename one before '
                                f'joining', 'columns', column=c)
            seen[c] = k


async def secure_join(tables, params=None, session=None, roles=None, split=None,
                      check_columns=None, progress=None, rows_to=None, pool=None):
    """Join K >= 2 owners' tables into one secret-shared table; every party calls this.

    Parameters
    ----------
    tables : list of PartyTable or None
        One entry per owner, in owner order: the owner's own table at party
        ``roles.owners[k]``, None elsewhere (with one party: every table).
    params : JoinParameters
    session : Session, optional
        For phase timings and deadlines (anything with a ``phase(name)`` context manager).
    roles : Roles, optional
        Default: owners 0 .. K-1, helper K (everything at party 0 with one party).
    split : (seed, fraction), optional
        Seeded split: rows of people with `is_test_id(id, seed, fraction)` come first (the
        first owner marks them).  An opt-in that reveals to each owner how many of its own
        candidates the other tables hold (module docstring).  Default: no test rows marked,
        nothing revealed.
    check_columns : callable, optional
        Called with every owner's column list (``check_columns(*columns)``) before any data
        is sent; whatever it raises propagates unchanged, at every party.
    rows_to : int, optional
        An owner that learns which of its own rows are in the intersection, in the joined
        order (`JoinResult.own_ids`): for predictions that it alone receives.  Default: nobody.
    progress : callable, optional
        ``progress(stage, done, total)`` at the party doing the work, on the event-loop
        thread, from ``(stage, 0, total)`` to ``(stage, total, total)`` for each run of a
        stage: 'encrypt' (owners: own rows), 'mask' (helper: joined rows, once per owner, in
        one run), 'decrypt' (owners: joined rows), 'share' (every party: joined rows).
        Masking and decryption overlap, chunk by chunk, so their events interleave.
    pool : mpclab.parallel.Pool, optional
        Where this party's bulk work runs (its own thread, local processes or its own Dask
        cluster: see `mpclab.parallel` for what a cluster sees).  Default: a pool of
        `mpclab.parallel.local_workers()` local processes, closed at the end; a pool given
        is left open for the caller to close.

    Returns
    -------
    JoinResult
        A SecretTable with every owner's columns in owner order, rows in an order chosen at
        random by the helper, plus the public sizes and security figures.

    Raises
    ------
    JoinError
        For a public reason, at every party alike: a wrong number of parties or bad roles,
        a column name in two tables, a table without columns, slots that do not fit the key.

    What is opened
    --------------
    Nothing of the data: each party learns the sizes and column names, and each owner its
    own masked values (module docstring); the result stays secret-shared.
    """
    params = params or JoinParameters()
    n_parties = len(mpc.parties)
    n_owners = len(tables)
    roles = roles or Roles.for_parties(n_parties, owners=n_owners)
    roles.check(n_parties)
    if len(roles.owners) != n_owners:
        raise JoinError(f'{n_owners} tables for the {len(roles.owners)} owners {roles.owners}',
                        'roles')
    owners, H = roles.owners, roles.helper
    if rows_to is not None and rows_to not in owners:
        raise JoinError(f'party {rows_to} owns no table: only an owner can learn its rows', 'roles')
    phase = session.phase if session else _no_phase
    everyone = range(n_parties)
    pid = mpc.pid
    mine = [k for k, o in enumerate(owners) if o == pid]   # several only with one party
    for k in mine:
        if tables[k] is None:
            raise JoinError(f'party {owners[k]} holds the {_table_name(k, n_owners)} table but '
                            f'was given none', 'table')

    with phase('join:schema'):
        schemas = []
        for k, owner in enumerate(owners):
            own = (tables[k].columns, tables[k].n_rows) if pid == owner else None
            schemas.append(await _send(own, owner, everyone))
    columns_by_owner = [list(cols) for cols, _ in schemas]
    owner_rows = [n for _, n in schemas]
    _check_schemas(columns_by_owner)
    if check_columns is not None:
        check_columns(*columns_by_owner)
    widths = [len(cols) for cols in columns_by_owner]
    lays = [layout(d, params) for d in widths]
    secfxp = params.fmt.secfxp()

    own_pool = pool is None
    if own_pool:
        pool = Pool(inline=mpc.options.no_async)
    helper_sides, owner_sides = [], []
    try:
        with phase('join:key'):
            # Every owner contributes, so no owner alone fixes the hash key; H never sees it.
            contribution = secrets.token_bytes(32) if pid in owners else None
            parts = [await _send(contribution if pid == owner else None, owner, owners)
                     for owner in owners]
            key = hashlib.sha256(b''.join(parts)).digest() if pid in owners else None

        with phase('join:match'):
            # Keys and hashes first: the helper can match, and compute its masks under each
            # owner's key, while the owners encrypt.
            messages, keys, orders = [None] * n_owners, [None] * n_owners, [None] * n_owners
            for k in mine:
                messages[k], keys[k], orders[k] = await _owner_hash(
                    tables[k], key, params.key_bits, pool, split if k == 0 else None)
            to_helper = [await _send(messages[k] if pid == owner else None, owner, [H])
                         for k, owner in enumerate(owners)]
            sizes = None
            if pid == H:
                pks = [_check_first(to_helper[k], owner_rows[k], params, owner)
                       for k, owner in enumerate(owners)]
                pairs, n_test = _match([msg['hashes'] for msg in to_helper],
                                       to_helper[0].get('test'))
                sizes = len(pairs), n_test
            m, n_test = await _send(sizes, H, everyone)
            if pid == H:
                # pk.to_dict(): plain ints rebuilt here, never an object a peer sent, go to workers
                helper_sides = [_HelperSide(pks[k].to_dict(), lays[k], [p[k] for p in pairs], m,
                                            params, pool) for k in range(n_owners)]
            own_ids = None
            if rows_to is not None:
                # The owner that receives predictions learns which of its rows are in the
                # intersection, in the joined order: the rows it sent, as the helper matched them.
                side = owners.index(rows_to)
                sent = None
                if pid == H:
                    sent = np.array([p[side] for p in pairs], dtype=np.int64).tobytes()
                sent = await _send(sent, H, [rows_to])
                if pid == rows_to:
                    rows = orders[side][np.frombuffer(sent, dtype=np.int64)]
                    own_ids = [tables[side].ids[i] for i in rows]
            del to_helper, messages

        with phase('join:encrypt'):
            # Block by block, the owners' blocks alternating: an owner encrypts its next blocks
            # while one travels and the helper puts it in place; nobody holds all of an
            # owner's ciphertexts twice.
            if pid == H:
                for k in range(n_owners):
                    helper_sides[k].expect(owner_rows[k])
            blocks = [_blocks(owner_rows[k], lays[k].variants) for k in range(n_owners)]
            steps = _alternating([len(b) for b in blocks])
            async with contextlib.AsyncExitStack() as stack:
                sources = {k: await stack.enter_async_context(contextlib.aclosing(
                    _owner_encrypt(tables[k], keys[k], orders[k], params, pool, progress)))
                    for k in mine}
                for k, j in steps:
                    owner, (a, b) = owners[k], blocks[k][j]
                    data = await anext(sources[k]) if k in sources else None
                    data = await _send(data, owner, [H])
                    if pid == H:
                        _check_ciphertexts(data, pks[k], b - a, lays[k], owner)
                        helper_sides[k].place(data, a, b)
                    del data

        with phase('join:decrypt'):
            # The helper returns each chunk as soon as it is masked, and the owner decrypts it
            # while the helper goes on: the chunks of the owners alternate.
            # the helper's one run of 'mask' counts every owner's joined rows, as they alternate
            masking = _Progress(progress, 'mask', n_owners * m) if pid == H else None
            decrypting = [None] * n_owners
            for k in mine:
                decrypting[k] = _OwnerSide(keys[k], lays[k], m, params, secfxp, pool, progress)
                owner_sides.append(decrypting[k])
            n_chunks = [len(lay.chunks(m, CHUNK_CIPHERTEXTS)) for lay in lays]
            steps = _alternating(n_chunks)
            for k, c in steps:
                owner = owners[k]
                data = None
                if pid == H:
                    data = await helper_sides[k].returned(c, pool)
                    r0, r1, _, _ = helper_sides[k].chunks[c]
                    masking.add(r1 - r0)
                data = await _send(data, H, [owner])
                if pid == owner:
                    await decrypting[k].receive(c, data)
            shares = [await decrypting[k].finish() if k in mine else None
                      for k in range(n_owners)]
            masked_values, masked_ciphertexts = _record_masks(m, widths, params)

        columns = [c for cols in columns_by_owner for c in cols]
        with phase('join:share'):
            tell = _Progress(progress, 'share', m)
            if m == 0:
                values = secfxp.array(np.zeros((0, len(columns))), integral=False)
            else:
                helper_shares = None
                if pid == H:
                    scale = params.fmt.secure_frac_bits - params.fmt.frac_bits
                    helper_shares = _HelperShares(helper_sides, widths, _mask_bits(params),
                                                  scale, secfxp.field.order)
                for s in helper_sides:   # the ciphertexts and masks are no longer needed
                    s.release()
                values = await _joined_values(secfxp, shares, helper_shares, [*owners, H],
                                              widths, m)
                del shares, helper_shares
            tell.add(m)
    finally:
        for s in helper_sides + owner_sides:
            s.cancel()
        if own_pool:
            pool.close()
    return JoinResult(SecretTable(values, columns), owner_rows, columns_by_owner, n_test,
                      paillier_key_bits=params.key_bits, mask_bits=params.stat_sec,
                      masked_values=masked_values, masked_ciphertexts=masked_ciphertexts,
                      seeded_split=split is not None, own_ids=own_ids)


class _no_phase:
    def __init__(self, name):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
