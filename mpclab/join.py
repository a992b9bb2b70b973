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
   every ciphertext a fresh random mask z of stat_sec more bits than the values (which also
   re-randomises it), keeps -z as its own share and returns the masked ciphertexts.
3. A and B decrypt: v + z is their share.  A, B and H then secret-share their additive
   shares into MPyC; the sums are a Shamir-shared joined table.

What each party learns (semi-honest, non-colluding parties):
- every party: the column names and row counts of both tables, the intersection size;
- H: the keyed hashes (so which pseudonyms of A match which of B, but not the identifiers),
  ciphertexts under keys it does not hold, and its own masks;
- A (B likewise): its own data, and its values in the joined rows plus masks of stat_sec
  extra bits, which statistically hide which of its rows matched and in which order;
- other parties: only the sizes.
"""

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

import numpy as np
from mpyc.runtime import mpc

from mpclab import paillier
from mpclab.fixedpoint import FixedPointFormat
from mpclab.session import ProtocolError
from mpclab.table import SecretTable

__all__ = ['JoinParameters', 'JoinResult', 'Roles', 'secure_inner_join', 'slot_layout', 'is_test_id']

HASH_BYTES = 32


@dataclass(frozen=True)
class JoinParameters:
    """Public parameters of the join, identical at every party."""

    fmt: FixedPointFormat = field(default_factory=FixedPointFormat)
    key_bits: int = 2048
    stat_sec: int = 40

    def __post_init__(self):
        if self.stat_sec < 20:
            raise ValueError('stat_sec below 20 bits gives no meaningful statistical hiding')


@dataclass(frozen=True)
class Roles:
    left: int = 0
    right: int = 1
    helper: int = 2

    @classmethod
    def for_parties(cls, n_parties, helper=2):
        if n_parties == 1:
            return cls(0, 0, 0)
        if n_parties < 3:
            raise ProtocolError(f'the join needs 3 or more parties (two owners and a helper), '
                                f'not {n_parties}; or 1 party to play every role')
        if not 2 <= helper < n_parties:
            raise ProtocolError(f'--join-helper {helper} must be between 2 and {n_parties - 1}')
        return cls(0, 1, helper)


@dataclass
class JoinResult:
    table: SecretTable
    rows_left: int
    rows_right: int
    columns_left: list
    columns_right: list
    n_test: int = 0   # with a split seed: the first n_test rows are the test rows

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
        raise ProtocolError(f'slots of {slot} bits do not fit a {params.key_bits}-bit key')
    per_half, per_full = half // slot, full // slot
    n_half = -(-n_values // per_half)
    n_full = -(-n_values // per_full)
    if n_half <= 1 or n_half < 2 * n_full:
        return slot, half, True
    return slot, full, False


# -- messages over MPyC's channels -------------------------------------------------------------
async def _send(obj, sender, receivers):
    """Send a picklable object from one party to some; every party must call this."""
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
    """Whether a (normalised) identifier falls in the test split for a public seed.

    Both owners compute the same bit for the same person, so the helper can put the test
    rows first without learning who they are; anyone can recompute the split in plaintext.
    """
    digest = hashlib.sha256(f'mpclab-split:{seed}:'.encode() + identifier.encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') < fraction * 2**64


# -- owner -------------------------------------------------------------------------------------
def _hash_ids(key, ids):
    return b''.join(hmac.new(key, i.encode('utf-8'), hashlib.sha256).digest() for i in ids)


def _owner_encrypt(table, key, params, split=None):
    """Hashes and ciphertexts of an owner's rows, in an order only the owner knows."""
    pk, sk = paillier.generate_keypair(params.key_bits)
    order = _random_permutation(table.n_rows)
    ids = [table.ids[i] for i in order]
    slot, capacity, _ = slot_layout(len(table.columns), params)
    packer = paillier.Packer(slot, capacity)
    offset = 1 << (params.fmt.value_bits - 1)  # values become non-negative
    plaintexts = []
    for i in order:
        plaintexts.extend(packer.pack([int(v) + offset for v in table.encoded[i]]))
    cts = sk.encrypt_many(plaintexts)  # the owner knows p and q: CRT encryption is faster
    message = {'public_key': pk.to_dict(), 'hashes': _hash_ids(key, ids),
               'ciphertexts': pk.ciphertexts_to_bytes(cts)}
    if split is not None:
        message['test'] = np.packbits([is_test_id(i, *split) for i in ids]).tobytes()
    return message, sk


def _owner_decrypt(sk, data, n_rows, n_values, params):
    """The owner's additive shares (value + mask) of its columns of the joined rows."""
    pk = sk.public_key
    slot, capacity, half = slot_layout(n_values, params)
    packer = paillier.Packer(slot, capacity)
    cts = pk.ciphertexts_from_bytes(data)
    plains = sk.decrypt_many(cts, max_bits=capacity if half else None)
    per_row = len(plains) // n_rows if n_rows else 0
    offset = 1 << (params.fmt.value_bits - 1)
    shares = [v - offset for r in range(n_rows)
              for v in packer.unpack(plains[r * per_row:(r + 1) * per_row], n_values)]
    return shares


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


def _helper_mask(message, rows, n_values, params):
    """Masked ciphertexts of the selected rows and the helper's shares (the negated masks)."""
    pk = paillier.PaillierPublicKey.from_dict(message['public_key'])
    slot, capacity, _ = slot_layout(n_values, params)
    packer = paillier.Packer(slot, capacity)
    cts = pk.ciphertexts_from_bytes(message['ciphertexts'])
    per_row = len(cts) // (len(message['hashes']) // HASH_BYTES)
    masks = _random_ints(len(rows) * n_values, params.fmt.value_bits + params.stat_sec)
    selected, packed = [], []
    for k, i in enumerate(rows):
        selected.extend(cts[i * per_row:(i + 1) * per_row])
        packed.extend(packer.pack(masks[k * n_values:(k + 1) * n_values]))
    return _mask_in_parallel(pk, selected, packed), [-z for z in masks]


def _mask_chunk(job):
    pk, cts, packed = job
    return pk.ciphertexts_to_bytes(pk.mask_many(pk.ciphertexts_from_bytes(cts), packed))


def _mask_in_parallel(pk, cts, packed, min_chunk=1000):
    """The helper's masking on every core: the owners wait idle meanwhile.

    Worker processes are forked, compute only, and draw their own re-randomisers from the OS.
    """
    workers = min(os.cpu_count() or 1, len(cts) // min_chunk)
    if workers < 2:
        return pk.ciphertexts_to_bytes(pk.mask_many(cts, packed))
    import multiprocessing
    bounds = np.linspace(0, len(cts), workers + 1).astype(int)
    jobs = [(pk, pk.ciphertexts_to_bytes(cts[a:b]), packed[a:b]) for a, b in zip(bounds, bounds[1:])]
    with multiprocessing.get_context('fork').Pool(workers) as pool:
        return b''.join(pool.map(_mask_chunk, jobs))


# -- into MPyC ---------------------------------------------------------------------------------
def _share_array(secfxp, values, shape, scale):
    """Own additive shares as a field array, scaled from input to secure fractional bits."""
    p = secfxp.field.order
    a = np.array([(v << scale) % p for v in values], dtype=object).reshape(shape)
    return secfxp.array(secfxp.field.array(a, check=False), integral=False)


def _input_shares(secfxp, share, sender, shape, scale):
    if mpc.pid == sender:
        x = _share_array(secfxp, share, shape, scale)
    else:
        x = secfxp.array(None, shape=shape, integral=False)
    return mpc.input(x, senders=sender)


async def secure_inner_join(left, right, params=None, session=None, roles=None, split=None,
                            check_columns=None):
    """Join two owners' tables into a secret-shared table; every party calls this.

    Parameters
    ----------
    left, right : PartyTable or None
        The owner's own table at party `roles.left` / `roles.right`, None elsewhere.
    params : JoinParameters
    session : Session, optional
        For phase timings and deadlines.
    roles : Roles, optional
        Default: owners 0 and 1, helper 2 (everything at party 0 with one party).
    split : (seed, fraction), optional
        Public split seed: rows of people with `is_test_id(id, seed, fraction)` come first.
    check_columns : callable, optional
        Called with both column lists before any data is sent; may raise ProtocolError.

    Returns
    -------
    JoinResult
        A SecretTable with the left table's columns then the right table's, rows in an
        order chosen at random by the helper, plus the public sizes.
    """
    params = params or JoinParameters()
    roles = roles or Roles.for_parties(len(mpc.parties))
    phase = session.phase if session else _no_phase
    A, B, H = roles.left, roles.right, roles.helper
    everyone = range(len(mpc.parties))
    pid = mpc.pid

    with phase('join:schema'):
        schema_left = await _send(left and (left.columns, left.n_rows), A, everyone)
        schema_right = await _send(right and (right.columns, right.n_rows), B, everyone)
    (cols_a, n_a), (cols_b, n_b) = schema_left, schema_right
    clash = sorted(set(cols_a) & set(cols_b))
    if clash:
        raise ProtocolError(f'both tables have a column named {clash[0]!r}; rename one before joining')
    if check_columns is not None:
        check_columns(cols_a, cols_b)

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
        if pid == A:
            msg_a, sk_a = _owner_encrypt(left, key, params, split)
        if pid == B:
            msg_b, sk_b = _owner_encrypt(right, key, params)
        to_helper_a = await _send(msg_a, A, [H])
        to_helper_b = await _send(msg_b, B, [H])

    with phase('join:match'):
        sizes = None
        if pid == H:
            pairs, n_test = _match(to_helper_a['hashes'], to_helper_b['hashes'],
                                   to_helper_a.get('test'))
            sizes = len(pairs), n_test
        m, n_test = await _send(sizes, H, everyone)
        back_a = back_b = share_h_a = share_h_b = None
        if pid == H:
            back_a, share_h_a = _helper_mask(to_helper_a, [i for i, _ in pairs], len(cols_a), params)
            back_b, share_h_b = _helper_mask(to_helper_b, [j for _, j in pairs], len(cols_b), params)
            del to_helper_a, to_helper_b
        back_a = await _send(back_a, H, [A])
        back_b = await _send(back_b, H, [B])

    with phase('join:decrypt'):
        share_a = share_b = None
        if pid == A:
            share_a = _owner_decrypt(sk_a, back_a, m, len(cols_a), params)
        if pid == B:
            share_b = _owner_decrypt(sk_b, back_b, m, len(cols_b), params)

    secfxp = params.fmt.secfxp()
    columns = cols_a + cols_b
    with phase('join:share'):
        if m == 0:
            values = secfxp.array(np.zeros((0, len(columns))), integral=False)
        else:
            scale = params.fmt.secure_frac_bits - params.fmt.frac_bits
            d_a, d_b = len(cols_a), len(cols_b)
            x_a = _input_shares(secfxp, share_a, A, (m, d_a), scale)
            x_b = _input_shares(secfxp, share_b, B, (m, d_b), scale)
            h_share = None
            if pid == H:
                h_share = [v for k in range(m) for v in
                           share_h_a[k * d_a:(k + 1) * d_a] + share_h_b[k * d_b:(k + 1) * d_b]]
            x_h = _input_shares(secfxp, h_share, H, (m, d_a + d_b), scale)
            values = np.hstack((x_a, x_b)) + x_h
    return JoinResult(SecretTable(values, columns), n_a, n_b, cols_a, cols_b, n_test)


class _no_phase:
    def __init__(self, name):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
