"""Secure inner join of two owners' tables via a helper party.

After van Egmond, Spini et al., "Privacy-preserving dataset combination and Lasso regression
for healthcare predictions", BMC Med. Inform. Decis. Mak. 21:266 (2021).

Roles: owner A (party 0) holds the left table, owner B (party 1) the right table, the helper
H (party 2 by default) holds nothing.  Further parties only compute.  With one party, that
party plays every role (for tests and notebooks).

1. A and B agree on a key k unknown to H; each hashes its identifiers with HMAC-SHA-256
   under k, shuffles its rows, packs each row's fixed-point values into Paillier plaintexts
   and encrypts them under its own key.  Both send hashes and ciphertexts to H.
2. H matches the hashes, orders the matched pairs by a secret random permutation, adds to
   every value a fresh random mask z of stat_sec more bits than the values, re-randomises
   every ciphertext with an exponent stat_sec bits longer than the owner's (see
   `mpclab.paillier`), keeps -z as its own share and returns the masked ciphertexts.
3. A and B decrypt: v + z is their share.  A, B and H then secret-share their additive
   shares into MPyC; the sums are a Shamir-shared joined table.

What each party learns (semi-honest, non-colluding parties):

- every party: the column names and row counts of both tables, the intersection size;
- H: the keyed hashes (so which pseudonyms of A match which of B, but not the identifiers),
  ciphertexts under keys it does not hold (hidden by decisional composite residuosity and
  the short-exponent assumption), and its own masks;
- A (B likewise): its own data, and, for the joined rows in H's secret order, its values plus
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
  `is_test_id` marks) are in B's table; B likewise learns ``|T_B ∩ A|``.  With a small
  fraction, few candidates or repeated runs under other seeds this narrows down to
  single people: whether a given person is in the other owner's table;
- to H: the test bit of every one of A's rows (a public function of an identifier it does
  not know), so the marked fraction of A's table and of the intersection;
- to every party: `n_test`.
"""

import asyncio
import collections
import functools
import hashlib
import hmac
import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from mpyc.runtime import mpc

from mpclab import paillier, security
from mpclab.fixedpoint import FixedPointFormat
from mpclab.table import SecretTable

__all__ = ['JoinError', 'JoinParameters', 'JoinResult', 'Roles', 'secure_inner_join',
           'slot_layout', 'masked_counts', 'is_test_id', 'STAGES']

HASH_BYTES = 32

#: Stages of the bulk work, as reported to a `progress` callback (always in this order).
STAGES = ('encrypt', 'mask', 'decrypt', 'share')

# Ciphertexts per chunk of bulk work: 0.06 s (encrypt) to 1.4 s (full decryption) on one
# core at 2048 bits.  Chunks are whole blocks of rows, so that a later pipelined join can
# pass each one on as soon as it is done.
CHUNK_CIPHERTEXTS = 512

MIN_WORKER_CIPHERTEXTS = 1000   # the helper forks a worker per this many ciphertexts (to all cores)


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
    """Which party holds the left table, the right table, and helps."""

    left: int = 0
    right: int = 1
    helper: int = 2

    @classmethod
    def for_parties(cls, n_parties, helper=2):
        """The owners 0 and 1 and the given helper; with one party, party 0 plays every role."""
        if n_parties == 1:
            return cls(0, 0, 0)
        if n_parties < 3:
            raise JoinError(f'the join needs 3 or more parties (two owners and a helper), '
                            f'not {n_parties}; or 1 party to play every role', 'parties',
                            n_parties=n_parties)
        if not 2 <= helper < n_parties:
            which = 'party 2' if n_parties == 3 else f'one of the parties 2..{n_parties - 1}'
            raise JoinError(f'the helper must be {which}, not {helper}', 'helper',
                            helper=helper, n_parties=n_parties)
        return cls(0, 1, helper)

    def check(self, n_parties):
        """Raise JoinError unless these roles fit `n_parties` parties."""
        roles = (self.left, self.right, self.helper)
        if not all(0 <= r < n_parties for r in roles):
            raise JoinError(f'roles {roles} name a party outside 0..{n_parties - 1}', 'roles')
        if n_parties > 1 and len(set(roles)) < 3:
            raise JoinError(f'roles {roles}: the two owners and the helper must be three '
                            f'different parties', 'roles')


@dataclass
class JoinResult:
    """The joined table and what every party may know about it (all public).

    Attributes
    ----------
    table : SecretTable
        Left columns, then right columns; rows in the helper's secret random order (with a
        seeded split: the `n_test` test rows first).
    rows_left, rows_right : int
        Sizes of the two tables.
    columns_left, columns_right : list of str
    n_test : int
        With a seeded split, the number of test rows; 0 otherwise.
    paillier_key_bits : int
        Size of both owners' Paillier moduli.
    mask_bits : int
        Bits of statistical hiding of each masked value and each re-randomised ciphertext.
    masked_values, masked_ciphertexts : int
        How many of each the join hid statistically (as recorded in `mpclab.security`).
    seeded_split : bool
        Whether `n_test` came from a seeded split (and so tells each owner the overlap of
        its own candidate test set with the other table; see the module docstring).
    own_ids : list of str or None
        At the owner named by `rows_to`: its identifiers of the joined rows, in order.
    """

    table: SecretTable
    rows_left: int
    rows_right: int
    columns_left: list
    columns_right: list
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


def slot_layout(n_values, params):
    """Slot width, plaintext capacity and whether a half (mod p) decryption suffices.

    A slot holds value + offset + mask < 2**(value_bits + stat_sec + 1), so slots never carry.
    Decryption costs about the same per plaintext bit either way; full-width plaintexts need
    fewer ciphertexts, hence fewer operations for the helper, unless a row fits a half.
    """
    slot = params.fmt.value_bits + params.stat_sec + 1
    half, full = params.key_bits // 2 - 2, params.key_bits - 2
    if slot > half:
        raise JoinError(f'slots of {slot} bits (values of {params.fmt.value_bits} bits, '
                        f'{params.stat_sec} mask bits and a carry bit) do not fit half of a '
                        f'{params.key_bits}-bit key ({half} bits): lower the statistical '
                        f'security or the integer bits, or use a larger key', 'slots',
                        slot_bits=slot, key_bits=params.key_bits)
    per_half, per_full = half // slot, full // slot
    n_half = -(-n_values // per_half)
    n_full = -(-n_values // per_full)
    if n_half <= 1 or n_half < 2 * n_full:
        return slot, half, True
    return slot, full, False


def _packer(n_values, params):
    slot, capacity, _ = slot_layout(n_values, params)
    return paillier.Packer(slot, capacity)


def masked_counts(n_rows, n_left, n_right, params):
    """What the join hides statistically for `n_rows` joined rows, from public sizes only.

    Returns ``(values, ciphertexts)``: the values the helper masks (``n_rows * (n_left +
    n_right)``) and the ciphertexts it re-randomises for the owners; each has ``stat_sec``
    bits of hiding.  Every party computes the same figures.
    """
    per_row = sum(_packer(d, params).n_plaintexts(d) for d in (n_left, n_right))
    return n_rows * (n_left + n_right), n_rows * per_row


def _record_masks(n_rows, n_left, n_right, params):
    values, ciphertexts = masked_counts(n_rows, n_left, n_right, params)
    security.record('join', values, params.stat_sec)
    security.record('join', ciphertexts, params.stat_sec)
    return values, ciphertexts


# -- bulk work off the event loop --------------------------------------------------------------
class _Work:
    """Where a party's bulk crypto runs: chunk by chunk, off MPyC's event loop, with progress.

    The event loop must keep serving the peers (their messages, keep-alives) while a party
    computes for minutes, so chunks run on a worker thread: gmpy2's exponentiations release
    the GIL, and elsewhere the interpreter hands the GIL back to the loop every few
    milliseconds.  The helper's masking may use forked processes instead (every core).
    Without an event loop (MPyC's one-party mode without -M) there is nobody to serve and
    thread chunks run inline.
    """

    def __init__(self, progress=None):
        self.progress = progress
        self.inline = mpc.options.no_async
        self.threads = None if self.inline else ThreadPoolExecutor(1, 'mpclab-join')

    def tell(self, stage, done, total):
        if self.progress is not None:
            self.progress(stage, done, total)

    def _submit(self, executor, fn, args):
        executor = executor or self.threads
        if executor is None:
            future = Future()
            future.set_result(fn(*args))
            return future
        return executor.submit(fn, *args)

    async def _wait(self, future):
        if self.inline:
            return future.result()
        return await asyncio.wrap_future(future)

    async def run(self, fn, *args):
        """fn(*args) off the loop."""
        return await self._wait(self._submit(None, fn, args))

    async def map(self, fn, jobs, stage, total, executor=None, window=2, done=0):
        """[fn(*args) for size, args in jobs], in order, each off the loop.

        At most `window` chunks are in flight, so only those are held twice in memory;
        ``progress(stage, done, total)`` follows each chunk, `done` summing the sizes.
        """
        pending, out = collections.deque(), []

        async def first():
            nonlocal done
            size, future = pending.popleft()
            out.append(await self._wait(future))
            done += size
            self.tell(stage, done, total)
        self.tell(stage, done, total)
        try:
            for size, args in jobs:
                pending.append((size, self._submit(executor, fn, args)))
                while len(pending) >= window or (pending and pending[0][1].done()):
                    await first()
            while pending:
                await first()
        finally:
            for _, future in pending:
                future.cancel()
        return out

    def close(self):
        if self.threads is not None:
            self.threads.shutdown(wait=False, cancel_futures=True)


def _blocks(n_rows, per_row):
    """(start, stop) of blocks of about CHUNK_CIPHERTEXTS ciphertexts of `per_row` each."""
    step = max(1, CHUNK_CIPHERTEXTS // max(per_row, 1))
    return [(a, min(a + step, n_rows)) for a in range(0, n_rows, step)]


def _process_pool(n_ciphertexts):
    """Forked workers for the helper's masking (None: too few ciphertexts to be worth it)."""
    workers = min(os.cpu_count() or 1, n_ciphertexts // MIN_WORKER_CIPHERTEXTS)
    if workers < 2:
        return None, 2
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('fork')), 2 * workers


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


def is_test_id(identifier, seed, fraction):
    """Whether a (normalised) identifier falls in the seeded test split.

    Both owners compute the same bit for the same person, so the helper can put the test
    rows first without learning who they are; anyone can recompute the split in plaintext.
    Being public, the bit tells each owner which of its own people are test candidates,
    hence through the number of test rows how many of them the other table holds (module
    docstring).
    """
    digest = hashlib.sha256(f'mpclab-split:{seed}:'.encode() + identifier.encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') < fraction * 2**64


# -- owner -------------------------------------------------------------------------------------
def _new_key(bits):
    sk = paillier.generate_keypair(bits)[1]
    return sk.precompute()


def _hash_ids(key, ids, split):
    """Keyed hashes of the identifiers, and with a seeded split their packed test bits."""
    hashes = b''.join(hmac.new(key, i.encode('utf-8'), hashlib.sha256).digest() for i in ids)
    if split is None:
        return hashes, None
    return hashes, np.packbits([is_test_id(i, *split) for i in ids]).tobytes()


def _encrypt_rows(sk, packer, offset, rows):
    """Ciphertexts, as bytes, of a block of an owner's rows of encoded values."""
    plaintexts = [x for row in rows for x in packer.pack([int(v) + offset for v in row])]
    return sk.public_key.ciphertexts_to_bytes(sk.encrypt_many(plaintexts))


async def _owner_encrypt(table, key, params, work, split=None):
    """Hashes and ciphertexts of an owner's rows, in an order only the owner knows.

    Returns the message for the helper, the private key and that order (sent row k is the
    table's row order[k]).
    """
    sk = await work.run(_new_key, params.key_bits)
    order = _random_permutation(table.n_rows)
    hashes, test = await work.run(_hash_ids, key, [table.ids[i] for i in order], split)
    packer = _packer(len(table.columns), params)
    offset = 1 << (params.fmt.value_bits - 1)  # values become non-negative
    encoded = table.encoded[order]
    jobs = ((b - a, (sk, packer, offset, encoded[a:b]))
            for a, b in _blocks(table.n_rows, packer.n_plaintexts(len(table.columns))))
    cts = await work.map(_encrypt_rows, jobs, 'encrypt', table.n_rows)
    message = {'public_key': sk.public_key.to_dict(), 'hashes': hashes,
               'ciphertexts': b''.join(cts)}
    if test is not None:
        message['test'] = test
    return message, sk, order


def _decrypt_rows(sk, packer, offset, n_values, half, data):
    """The owner's additive shares (value + mask) in a block of returned rows."""
    cts = sk.public_key.ciphertexts_from_bytes(data)
    plains = sk.decrypt_many(cts, max_bits=packer.capacity_bits if half else None)
    per_row = packer.n_plaintexts(n_values)
    return [v - offset for r in range(0, len(plains), per_row)
            for v in packer.unpack(plains[r:r + per_row], n_values)]


async def _owner_decrypt(sk, data, n_rows, n_values, params, work):
    """The owner's additive shares of its columns of the joined rows (row by row)."""
    _, _, half = slot_layout(n_values, params)
    packer = _packer(n_values, params)
    per_row = packer.n_plaintexts(n_values)
    width = per_row * sk.public_key.ciphertext_bytes
    if len(data) != n_rows * width:
        raise JoinError(f'the helper returned {len(data)} bytes for {n_rows} rows of '
                        f'{width} bytes', 'message')
    offset = 1 << (params.fmt.value_bits - 1)
    view = memoryview(data)
    jobs = ((b - a, (sk, packer, offset, n_values, half, view[a * width:b * width]))
            for a, b in _blocks(n_rows, per_row))
    parts = await work.map(_decrypt_rows, jobs, 'decrypt', n_rows)
    return [v for part in parts for v in part]


# -- helper ------------------------------------------------------------------------------------
def _match(hashes_left, hashes_right, test_bits=None):
    """Index pairs of equal hashes in a secret random order, test rows (if marked) first."""
    def split(buf):
        return [buf[i:i + HASH_BYTES] for i in range(0, len(buf), HASH_BYTES)]
    where = {h: j for j, h in enumerate(split(hashes_right))}
    pairs = [(i, where[h]) for i, h in enumerate(split(hashes_left)) if h in where]
    pairs = [pairs[k] for k in _random_permutation(len(pairs))]
    if test_bits is None:
        return pairs, 0
    bits = np.unpackbits(np.frombuffer(test_bits, dtype=np.uint8))
    test = [p for p in pairs if bits[p[0]]]
    return test + [p for p in pairs if not bits[p[0]]], len(test)


@functools.lru_cache(maxsize=2)
def _masking_key(n, h, r_bits, stat_sec):
    """An owner's public key with its table built, once per worker process (or thread)."""
    return paillier.PaillierPublicKey(n, h, r_bits=r_bits).precompute(stat_sec)


def _mask_rows(key, stat_sec, data, masks):
    """Masked, re-randomised ciphertexts (bytes) of a block of selected rows.

    Runs in a worker: plain data in and out; the re-randomisers come from the OS there.
    """
    pk = _masking_key(key['n'], key['h'], key['r_bits'], stat_sec)
    return pk.ciphertexts_to_bytes(pk.mask_many(pk.ciphertexts_from_bytes(data), masks, stat_sec))


def _check_message(message, n_rows, n_values, params, owner):
    """Check that an owner's message has the sizes its public row count and key imply."""
    pk = paillier.PaillierPublicKey.from_dict(message['public_key'])
    width = _packer(n_values, params).n_plaintexts(n_values) * pk.ciphertext_bytes
    if (pk.bits != params.key_bits or len(message['hashes']) != n_rows * HASH_BYTES or
            len(message['ciphertexts']) != n_rows * width):
        raise JoinError(f'party {owner} sent a message that does not fit its {n_rows} rows and '
                        f'a {params.key_bits}-bit key', 'message')


async def _helper_mask(message, rows, n_values, params, work, pool, done, total):
    """Masked ciphertexts of the selected rows and the helper's shares (the negated masks).

    `pool` is (executor or None, chunks in flight); `done` and `total` count progress.
    """
    key = message['public_key']
    pk = paillier.PaillierPublicKey.from_dict(key)
    packer = _packer(n_values, params)
    width = packer.n_plaintexts(n_values) * pk.ciphertext_bytes
    data = memoryview(message['ciphertexts'])
    bits = params.fmt.value_bits + params.stat_sec
    shares = []

    def jobs():
        for a, b in _blocks(len(rows), packer.n_plaintexts(n_values)):
            masks = _random_ints((b - a) * n_values, bits)
            shares.extend(-z for z in masks)
            packed = [x for k in range(b - a)
                      for x in packer.pack(masks[k * n_values:(k + 1) * n_values])]
            cts = b''.join([data[i * width:(i + 1) * width] for i in rows[a:b]])
            yield b - a, (key, params.stat_sec, cts, packed)
    executor, window = pool
    parts = await work.map(_mask_rows, jobs(), 'mask', total, executor, window, done)
    return b''.join(parts), shares


# -- into MPyC ---------------------------------------------------------------------------------
def _field_ints(values, shape, p, scale):
    """Additive shares scaled from input to secure fractional bits, as field ints (object array)."""
    a = np.empty(len(values), dtype=object)
    a[:] = values
    return ((a << scale) % p).reshape(shape)


def _helper_rows(share_a, share_b, m, d_a, d_b):
    """The helper's shares, row by row: A's columns then B's."""
    a = np.empty((m, d_a + d_b), dtype=object)
    a[:, :d_a] = np.array(share_a, dtype=object).reshape(m, d_a)
    a[:, d_a:] = np.array(share_b, dtype=object).reshape(m, d_b)
    return a.reshape(-1)


async def _input_shares(secfxp, share, sender, shape, scale, work):
    if mpc.pid == sender:
        a = await work.run(_field_ints, share, shape, secfxp.field.order, scale)
        x = secfxp.array(secfxp.field.array(a, check=False), integral=False)
    else:
        x = secfxp.array(None, shape=shape, integral=False)
    return mpc.input(x, senders=sender)


async def secure_inner_join(left, right, params=None, session=None, roles=None, split=None,
                            check_columns=None, progress=None, rows_to=None):
    """Join two owners' tables into a secret-shared table; every party calls this.

    Parameters
    ----------
    left, right : PartyTable or None
        The owner's own table at party `roles.left` / `roles.right`, None elsewhere.
    params : JoinParameters
    session : Session, optional
        For phase timings and deadlines (anything with a ``phase(name)`` context manager).
    roles : Roles, optional
        Default: owners 0 and 1, helper 2 (everything at party 0 with one party).
    split : (seed, fraction), optional
        Seeded split: rows of people with `is_test_id(id, seed, fraction)` come first.
        An opt-in that reveals to each owner how many of its own candidates the other table
        holds (module docstring).  Default: no test rows marked, nothing revealed.
    check_columns : callable, optional
        Called with both column lists before any data is sent; whatever it raises
        propagates unchanged, at every party.
    rows_to : int, optional
        An owner (roles.left or roles.right) that learns which of its own rows are in the
        intersection, in the joined order (`JoinResult.own_ids`): for predictions that it
        alone receives.  Default: nobody.
    progress : callable, optional
        ``progress(stage, done, total)`` at the party doing the work, on the event-loop
        thread, from ``(stage, 0, total)`` to ``(stage, total, total)``: 'encrypt' (owners:
        own rows), 'mask' (helper: joined rows, twice, once per owner), 'decrypt' (owners:
        joined rows), 'share' (every party: joined rows).

    Returns
    -------
    JoinResult
        A SecretTable with the left table's columns then the right table's, rows in an
        order chosen at random by the helper, plus the public sizes and security figures.

    Raises
    ------
    JoinError
        For a public reason, at every party alike: a wrong number of parties or bad roles,
        a column name in both tables, a table without columns, slots that do not fit the key.

    What is opened
    --------------
    Nothing of the data: each party learns the sizes and column names, and each owner its
    own masked values (module docstring); the result stays secret-shared.
    """
    params = params or JoinParameters()
    n_parties = len(mpc.parties)
    roles = roles or Roles.for_parties(n_parties)
    roles.check(n_parties)
    if rows_to is not None and rows_to not in (roles.left, roles.right):
        raise JoinError(f'party {rows_to} owns no table: only an owner can learn its rows', 'roles')
    phase = session.phase if session else _no_phase
    A, B, H = roles.left, roles.right, roles.helper
    everyone = range(n_parties)
    pid = mpc.pid
    for side, owner, table in (('left', A, left), ('right', B, right)):
        if pid == owner and table is None:
            raise JoinError(f'party {owner} holds the {side} table but was given none', 'table')

    with phase('join:schema'):
        schema_left = await _send(left and (left.columns, left.n_rows), A, everyone)
        schema_right = await _send(right and (right.columns, right.n_rows), B, everyone)
    (cols_a, n_a), (cols_b, n_b) = schema_left, schema_right
    cols_a, cols_b = list(cols_a), list(cols_b)
    for side, cols in (('left', cols_a), ('right', cols_b)):
        if not cols:
            raise JoinError(f'the {side} table has no columns besides the identifier', 'columns')
    clash = sorted(set(cols_a) & set(cols_b))
    if clash:
        raise JoinError(f'both tables have a column named {clash[0]!r}; rename one before '
                        f'joining', 'columns', column=clash[0])
    if check_columns is not None:
        check_columns(cols_a, cols_b)
    d_a, d_b = len(cols_a), len(cols_b)

    work = _Work(progress)
    try:
        with phase('join:key'):
            # Both owners contribute, so neither alone fixes the hash key; H never sees it.
            mine = secrets.token_bytes(32) if pid in (A, B) else None
            key_a = await _send(mine if pid == A else None, A, [B])
            key_b = await _send(mine if pid == B else None, B, [A])
            key = None
            if pid == A:
                key = hashlib.sha256(mine + key_b).digest()
            elif pid == B:
                key = hashlib.sha256(key_a + mine).digest()

        with phase('join:encrypt'):
            msg_a = sk_a = msg_b = sk_b = None
            order = None
            if pid == A:
                msg_a, sk_a, order = await _owner_encrypt(left, key, params, work, split)
            if pid == B:
                msg_b, sk_b, order = await _owner_encrypt(right, key, params, work)
            to_helper_a = await _send(msg_a, A, [H])
            to_helper_b = await _send(msg_b, B, [H])
            del msg_a, msg_b

        with phase('join:match'):
            sizes = None
            if pid == H:
                _check_message(to_helper_a, n_a, d_a, params, A)
                _check_message(to_helper_b, n_b, d_b, params, B)
                pairs, n_test = _match(to_helper_a['hashes'], to_helper_b['hashes'],
                                       to_helper_a.get('test'))
                sizes = len(pairs), n_test
            m, n_test = await _send(sizes, H, everyone)
            back_a = back_b = share_h_a = share_h_b = None
            if pid == H:
                _, n_cts = masked_counts(m, d_a, d_b, params)
                pool = _process_pool(n_cts)
                try:
                    back_a, share_h_a = await _helper_mask(to_helper_a, [i for i, _ in pairs],
                                                           d_a, params, work, pool, 0, 2 * m)
                    back_b, share_h_b = await _helper_mask(to_helper_b, [j for _, j in pairs],
                                                           d_b, params, work, pool, m, 2 * m)
                finally:
                    if pool[0] is not None:
                        pool[0].shutdown(cancel_futures=True)
                    _masking_key.cache_clear()
                del to_helper_a, to_helper_b
            own_ids = None
            if rows_to is not None:
                # The owner that receives predictions learns which of its rows are in the
                # intersection, in the joined order: the rows it sent, as the helper matched them.
                sent = None
                if pid == H:
                    side = 0 if rows_to == A else 1
                    sent = np.array([p[side] for p in pairs], dtype=np.int64).tobytes()
                sent = await _send(sent, H, [rows_to])
                if pid == rows_to:
                    mine = left if pid == A else right
                    rows = order[np.frombuffer(sent, dtype=np.int64)]
                    own_ids = [mine.ids[i] for i in rows]
            back_a = await _send(back_a, H, [A])
            back_b = await _send(back_b, H, [B])
            masked_values, masked_ciphertexts = _record_masks(m, d_a, d_b, params)

        with phase('join:decrypt'):
            share_a = share_b = None
            if pid == A:
                share_a = await _owner_decrypt(sk_a, back_a, m, d_a, params, work)
            if pid == B:
                share_b = await _owner_decrypt(sk_b, back_b, m, d_b, params, work)
            del back_a, back_b

        secfxp = params.fmt.secfxp()
        columns = cols_a + cols_b
        with phase('join:share'):
            work.tell('share', 0, m)
            if m == 0:
                values = secfxp.array(np.zeros((0, len(columns))), integral=False)
            else:
                scale = params.fmt.secure_frac_bits - params.fmt.frac_bits
                x_a = await _input_shares(secfxp, share_a, A, (m, d_a), scale, work)
                x_b = await _input_shares(secfxp, share_b, B, (m, d_b), scale, work)
                h_share = None
                if pid == H:
                    h_share = await work.run(_helper_rows, share_h_a, share_h_b, m, d_a, d_b)
                x_h = await _input_shares(secfxp, h_share, H, (m, d_a + d_b), scale, work)
                values = np.hstack((x_a, x_b)) + x_h
            work.tell('share', m, m)
    finally:
        work.close()
    return JoinResult(SecretTable(values, columns), n_a, n_b, cols_a, cols_b, n_test,
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
