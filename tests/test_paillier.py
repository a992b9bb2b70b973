import json
import pickle
import random
import secrets

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mpclab import paillier
from mpclab.paillier import (Packer, PaillierPrivateKey, PaillierPublicKey, _fixed_base_pow,
                             _fixed_base_table, generate_keypair, security_bits)


@pytest.fixture(scope='module')
def keys():
    return generate_keypair(512, insecure_ok=True)


@pytest.fixture(scope='module')
def keys1024():
    return generate_keypair(1024, insecure_ok=True)


def _plaintexts(pk, count, seed=0):
    rng = np.random.default_rng(seed)  # test data only
    ms = [int.from_bytes(rng.bytes(pk.bits // 8), 'big') % int(pk.n) for _ in range(count)]
    return ms + [0, 1, int(pk.n) - 1]


@pytest.mark.parametrize('bits', [256, 512, 1024])
def test_key_sizes(bits):
    pk, sk = generate_keypair(bits, insecure_ok=True)
    assert pk.bits == bits == pk.n.bit_length()
    assert sk.p.bit_length() == sk.q.bit_length() == bits // 2
    assert sk.p != sk.q and sk.p * sk.q == pk.n
    assert gmpy2.is_prime(sk.p, 50) and gmpy2.is_prime(sk.q, 50)


def test_small_keys_rejected():
    with pytest.raises(ValueError, match='insecure'):
        generate_keypair(1024)
    with pytest.raises(ValueError):
        generate_keypair(1025, insecure_ok=True)


def test_default_exponent_length():
    assert security_bits(2048) == 112 and security_bits(3072) == 128
    pk = generate_keypair(256, insecure_ok=True)[0]
    assert pk.r_bits == 2 * 80 and pk.exponent_bits == 160


def test_h_is_an_nth_residue(keys):
    # h**r must encrypt 0: h**lambda == 1 mod n**2 exactly for n-th residues.
    pk, sk = keys
    lam = gmpy2.lcm(sk.p - 1, sk.q - 1)
    assert gmpy2.powmod(pk.h, lam, pk.n2) == 1
    assert pk.h != 1 and gmpy2.powmod(1 + pk.n, lam, pk.n2) != 1  # the check can fail


@pytest.mark.parametrize('window,r_bits', [(8, None), (5, 37), (1, 9)])
def test_fixed_base_table(keys, window, r_bits):
    pk = keys[0]
    r_bits = r_bits or pk.r_bits
    windows = -(-r_bits // window)
    rows = _fixed_base_table(pk.h, pk.n2, windows, window)
    for _ in range(20):
        r = secrets.randbits(windows * window)
        digits = [(r >> (window * j)) & ((1 << window) - 1) for j in range(windows)]
        assert _fixed_base_pow(rows, digits, pk.n2) == gmpy2.powmod(pk.h, r, pk.n2)
        assert _fixed_base_pow(rows, digits, pk.n2, mpz_three := gmpy2.mpz(3)) == \
            mpz_three * gmpy2.powmod(pk.h, r, pk.n2) % pk.n2


def test_round_trip(keys):
    pk, sk = keys
    ms = _plaintexts(pk, 50)
    cs = pk.encrypt_many(ms)
    assert all(0 < c < pk.n2 for c in cs)
    assert sk.decrypt_many(cs) == ms
    assert [sk.decrypt(pk.encrypt(m)) for m in ms[:5]] == ms[:5]
    assert sk.decrypt_many(cs, workers=2) == ms


@pytest.mark.parametrize('window,r_bits', [(5, 37), (8, 30), (11, 64)])
def test_round_trip_other_windows(keys, window, r_bits):
    pk0, sk0 = keys
    pk = PaillierPublicKey(pk0.n, pk0.h, r_bits=r_bits, window=window)
    sk = PaillierPrivateKey(pk, sk0.p, sk0.q)
    assert pk.exponent_bits >= r_bits and pk.exponent_bits % window == 0
    ms = _plaintexts(pk, 20)
    assert sk.decrypt_many(pk.encrypt_many(ms)) == ms
    assert sk.decrypt_many(sk.encrypt_many(ms)) == ms
    assert sk.decrypt_many(pk.mask_many(pk.encrypt_many(ms), ms)) == [2 * m % pk.n for m in ms]


def test_private_key_encryption(keys):
    pk, sk = keys
    ms = _plaintexts(pk, 30, seed=1)
    cs = sk.encrypt_many(ms)
    assert sk.decrypt_many(cs) == ms
    assert len(set(cs)) == len(cs)
    # Interoperates with public-key operations.
    assert sk.decrypt(pk.add(cs[0], pk.encrypt(5))) == (ms[0] + 5) % pk.n
    assert sk.decrypt(sk.encrypt(-3), signed=True) == -3


def test_homomorphic_operations(keys):
    pk, sk = keys
    rng = np.random.default_rng(2)
    n = int(pk.n)
    for a, b, k in rng.integers(-2**40, 2**40, size=(20, 3)).tolist():
        ca, cb = pk.encrypt(a), pk.encrypt(b)
        assert sk.decrypt(pk.add(ca, cb)) == (a + b) % n
        assert sk.decrypt(pk.add(ca, cb), signed=True) == a + b
        assert sk.decrypt(pk.add_plain(ca, b), signed=True) == a + b
        assert sk.decrypt(pk.mul_plain(ca, k), signed=True) == a * k
    big = n - 12345
    assert sk.decrypt(pk.mul_plain(pk.encrypt(7), big)) == 7 * big % n
    assert sk.decrypt(pk.mul_plain(pk.encrypt(7), 0)) == 0


def test_negative_plaintexts(keys):
    pk, sk = keys
    assert sk.decrypt(pk.encrypt(-5)) == pk.n - 5
    assert sk.decrypt(pk.add(pk.encrypt(5), pk.encrypt(-3))) == 2
    assert sk.decrypt(pk.add(pk.encrypt(-5), pk.encrypt(3)), signed=True) == -2
    assert sk.decrypt(pk.add_plain(pk.encrypt(10), -10)) == 0


def test_rerandomize(keys):
    pk, sk = keys
    c = pk.encrypt(42)
    c2 = pk.rerandomize(c)
    assert c2 != c and sk.decrypt(c2) == 42
    cs = pk.rerandomize_many([c] * 10)
    assert len(set(cs)) == 10 and sk.decrypt_many(cs) == [42] * 10


def test_refresh_exponent_is_stat_sec_longer_than_any_encryption_exponent(keys):
    pk = keys[0]
    assert pk.refresh_bits(0) == pk.exponent_bits
    for stat_sec in (1, 8, 40, 41, 80):
        assert pk.refresh_bits(stat_sec) >= pk.exponent_bits + stat_sec
        assert pk.refresh_bits(stat_sec) % pk.window == 0
    with pytest.raises(ValueError):
        pk.refresh_bits(-1)


@pytest.fixture(scope='module')
def owner_logs():
    """A key with 8-bit encryption exponents, and the discrete logs to base h below 2**17.

    The key's owner can take discrete logs in its own group (it knows p and q); a table does it
    here, for exponents small enough to list.
    """
    while True:
        pk0 = generate_keypair(128, insecure_ok=True)[0]
        pk = PaillierPublicKey(pk0.n, pk0.h, r_bits=8)
        logs, x = {}, gmpy2.mpz(1)
        for k in range(2**17):
            if x in logs:
                break  # h of small order: try another key
            logs[x] = k
            x = x * pk.h % pk.n2
        else:
            return pk, logs


def test_owner_sees_the_refreshing_exponent_at_full_length(owner_logs):
    pk, logs = owner_logs
    cs = pk.encrypt_many([0] * 300)          # of plaintext 0, a ciphertext is h**r0 itself
    r0 = [logs[c] for c in cs]
    for stat_sec in (0, 8):
        bits = pk.refresh_bits(stat_sec)
        r1 = [logs[c] - r for c, r in zip(pk.rerandomize_many(cs, stat_sec), r0)]
        assert 0 <= min(r1) and max(r1) < 2**bits
        assert max(r1) >= 2**(bits - 1)
    # the longer table leaves encryption exponents as they were
    assert max(logs[c] for c in pk.encrypt_many([0] * 300)) < 2**pk.exponent_bits == 2**8


def test_owner_cannot_tell_which_ciphertext_was_rerandomised(owner_logs):
    # The owner sends two ciphertexts and gets one back re-randomised.  Its best guess from
    # R = r0 + r1 and the two exponents it used: the one that leaves R - r0 in range.
    pk, logs = owner_logs

    def success(stat_sec, trials=1000):
        bound = 2**pk.refresh_bits(stat_sec)
        score = 0.0
        for _ in range(trials):
            pair = pk.encrypt_many([0, 0])
            coin = secrets.randbits(1)
            r = logs[pk.rerandomize(pair[coin], stat_sec)]
            fits = [0 <= r - logs[c] < bound for c in pair]
            score += 0.5 if fits[0] == fits[1] else float(fits[coin])
        return score / trials
    assert success(0) > 0.6    # equal lengths: right about 2/3 of the time
    assert success(8) < 0.56   # 8 bits longer: 1/2 + about 2**-9


def test_mask_many(keys):
    pk, sk = keys
    xs = _plaintexts(pk, 40, seed=3)
    ms = _plaintexts(pk, 40, seed=4)
    cs = pk.encrypt_many(xs)
    masked = pk.mask_many(cs, ms)
    assert sk.decrypt_many(masked) == [(x + m) % pk.n for x, m in zip(xs, ms)]
    # Fresh randomness: differs from the deterministic c * (1+n)**m.
    assert all(c2 != pk.add_plain(c, m) for c, c2, m in zip(cs, masked, ms))
    assert set(masked).isdisjoint(pk.mask_many(cs, ms))
    assert sk.decrypt_many(pk.mask_many(cs, [-x for x in xs])) == [0] * len(xs)
    with pytest.raises(ValueError):
        pk.mask_many(cs, ms[:-1])


def test_half_decryption_equals_full(keys1024):
    pk, sk = keys1024
    hb = pk.half_decrypt_bits
    assert hb == 1024 // 2 - 2
    rng = np.random.default_rng(5)
    ms = [int.from_bytes(rng.bytes(64), 'big') >> (512 - hb) for _ in range(30)] + [0, 2**hb - 1]
    cs = pk.encrypt_many(ms)
    half = sk.decrypt_many(cs, max_bits=hb)
    assert half == sk.decrypt_many(cs) == ms
    assert sk.decrypt_many(cs, max_bits=hb, workers=2) == ms
    # Claiming too many bits falls back to the full path, which stays correct for big plaintexts.
    big = [int(pk.n) - 1, 2**(hb + 10) + 3]
    assert sk.decrypt_many(pk.encrypt_many(big), max_bits=hb + 20) == big
    assert sk.decrypt(pk.encrypt(int(sk.p) + 5), max_bits=hb + 2) == sk.p + 5
    # The half path really is mod p only: a plaintext above p comes out reduced mod p.
    assert sk.decrypt(pk.encrypt(int(sk.p) + 5), max_bits=hb) == 5


def test_2048_bit_round_trip():
    pk, sk = generate_keypair(2048)
    assert pk.bits == 2048 and pk.r_bits == 224 and pk.ciphertext_bytes == 512
    ms = [0, 1, 2**1000 + 17, int(pk.n) - 1]
    cs = pk.encrypt_many(ms)
    assert sk.decrypt_many(cs) == ms
    assert sk.decrypt(sk.encrypt(2**1000 + 17), max_bits=pk.half_decrypt_bits) == 2**1000 + 17
    assert sk.decrypt(pk.mask_many(cs[:1], [-1])[0], signed=True) == -1


def test_same_plaintext_encrypts_differently(keys):
    pk, _ = keys
    assert pk.encrypt(7) != pk.encrypt(7)
    assert len(set(pk.encrypt_many([7] * 50))) == 50


def test_randomness_not_from_random_module(keys, monkeypatch):
    pk, sk = keys
    # Reseeding `random` must not reproduce ciphertexts or keys ...
    random.seed(1)
    c1, k1 = pk.encrypt(7), generate_keypair(256, insecure_ok=True)[0].n
    random.seed(1)
    c2, k2 = pk.encrypt(7), generate_keypair(256, insecure_ok=True)[0].n
    assert c1 != c2 and k1 != k2

    # ... and nothing may call it at all.
    def forbidden(*args, **kwargs):
        raise AssertionError('random module used for cryptographic randomness')

    for name in ('random', 'getrandbits', 'randrange', 'randint', 'choice', 'randbytes'):
        monkeypatch.setattr(random, name, forbidden)
        monkeypatch.setattr(random.Random, name, forbidden)
    pk2, sk2 = generate_keypair(256, insecure_ok=True)
    assert sk2.decrypt_many(pk2.mask_many(pk2.encrypt_many([1, 2]), [3, 4])) == [4, 6]
    assert sk2.decrypt(sk2.encrypt(9)) == 9


@pytest.mark.parametrize('native', [True, False])
def test_bytes_round_trip(keys, native, monkeypatch):
    monkeypatch.setattr(paillier, '_NATIVE_BYTES', native)  # gmpy2 < 2.2 has no mpz.from_bytes
    pk, sk = keys
    cs = pk.encrypt_many(range(30)) + [gmpy2.mpz(1), int(pk.n2) - 1]
    data = pk.ciphertexts_to_bytes(cs)
    assert isinstance(data, bytes) and len(data) == len(cs) * pk.ciphertext_bytes
    back = pk.ciphertexts_from_bytes(data)
    assert back == cs
    assert sk.decrypt_many(back[:30]) == list(range(30))
    assert pk.ciphertexts_from_bytes(b'') == []
    assert pk.ciphertexts_from_bytes(memoryview(data)) == cs
    with pytest.raises(ValueError):
        pk.ciphertexts_from_bytes(data[:-1])
    with pytest.raises(ValueError, match='range'):
        pk.ciphertexts_from_bytes(b'\xff' * pk.ciphertext_bytes)


def test_key_serialisation(keys):
    pk, sk = keys
    d = json.loads(json.dumps(pk.to_dict()))
    pk2 = PaillierPublicKey.from_dict(d)
    assert pk2 == pk and pk2.r_bits == pk.r_bits
    sk2 = PaillierPrivateKey.from_dict(json.loads(json.dumps(sk.to_dict())))
    assert sk2.decrypt(pk2.encrypt(123)) == 123
    pk.precompute()
    blob = pickle.dumps(pk)
    assert len(blob) < 10 * pk.ciphertext_bytes  # the table does not travel
    pk3 = pickle.loads(blob)
    assert pk3 == pk and sk.decrypt(pk3.encrypt(5)) == 5
    sk3 = pickle.loads(pickle.dumps(sk))
    assert sk3.decrypt(pk.encrypt(6)) == 6
    assert str(int(sk.p)) not in repr(sk)
    with pytest.raises(ValueError):
        PaillierPrivateKey(pk, sk.p, sk.p)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 70).flatmap(lambda s: st.tuples(
    st.just(s), st.integers(s, 600),
    st.lists(st.integers(0, 2**s - 1), max_size=40))))
def test_packing_round_trip(args):
    slot_bits, capacity_bits, values = args
    packer = Packer(slot_bits, capacity_bits)
    assert packer.slots == capacity_bits // slot_bits
    pts = packer.pack(values)
    assert len(pts) == packer.n_plaintexts(len(values))
    assert all(0 <= x < 2**capacity_bits for x in pts)
    assert packer.unpack(pts, len(values)) == values


def test_packing_at_slot_maximum():
    packer = Packer(16, 100)
    assert packer.slots == 6
    values = [2**16 - 1] * 13
    pts = packer.pack(values)
    assert len(pts) == 3 and pts[0] == 2**96 - 1
    assert packer.unpack(pts, 13) == values
    for bad in ([2**16], [-1]):
        with pytest.raises(ValueError):
            packer.pack(bad)
    with pytest.raises(ValueError):
        packer.unpack(pts, 19)
    with pytest.raises(ValueError):
        Packer(10, 9)


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 64).flatmap(lambda s: st.tuples(
    st.just(s),
    st.lists(st.tuples(st.integers(0, 2**s - 1), st.integers(0, 2**s - 1)),
             min_size=1, max_size=30))))
def test_packed_mask_added_homomorphically(keys1024, args):
    pk, sk = keys1024
    slot_bits, pairs = args
    # The caller's guarantee: value + mask < 2**slot_bits in every slot.
    values = [v for v, m in pairs]
    masks = [min(m, 2**slot_bits - 1 - v) for v, m in pairs]
    packer = Packer(slot_bits, pk.half_decrypt_bits)
    cs = pk.encrypt_many(packer.pack(values))
    masked = pk.mask_many(cs, packer.pack(masks))
    expected = [v + m for v, m in zip(values, masks)]
    pts = sk.decrypt_many(masked, max_bits=packer.capacity_bits)
    assert packer.unpack(pts, len(values)) == expected
    assert packer.unpack(sk.decrypt_many(masked), len(values)) == expected
