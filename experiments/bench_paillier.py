"""Time the Paillier operations the secure join is built from.

Writes ``results/paillier_ops.csv``: one row per (key size, operation, variant) with the
median and minimum time per operation over a few repeats of a batch, and the 1-minute load
average when it was taken (the machine has 2 cores; under load the minimum is the better guide).

The operation 'refresh' is the helper's work per ciphertext (add a packed mask, re-randomise)
at several re-randomiser lengths, measured side by side (round robin over the variants in
each repeat, so that load changes hit all alike): ``stat_sec=0`` is the exponent as long as
the owner's (hides the row order from outsiders only), ``stat_sec=40`` the default (hides it
statistically from the key's owner too), and ``s**n`` the textbook re-randomiser with a
uniform ``s`` (perfect, full-length exponentiation).

    python experiments/bench_paillier.py            # 2048 and 3072-bit keys, a few minutes
    python experiments/bench_paillier.py --quick    # small batches, a smoke test
    python experiments/bench_paillier.py --only refresh --bits 2048
"""

import argparse
import csv
import os
import secrets
import statistics
import sys
import time

import gmpy2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mpclab.paillier import (Packer, PaillierPrivateKey, PaillierPublicKey,  # noqa: E402
                             generate_keypair)

FIELDS = ['key_bits', 'operation', 'variant', 'ms_per_op', 'ms_min', 'batch', 'repeats', 'load_avg']


def timed(fn, batch, repeats):
    """Median and minimum milliseconds per operation of fn(), which performs `batch` operations."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) / batch * 1e3)
    return statistics.median(times), min(times)


def timed_side_by_side(fns, batch, repeats):
    """Like `timed` for several functions, run in turn within each repeat."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) / batch * 1e3)
    return [(statistics.median(ts), min(ts)) for ts in times]


def textbook_mask_many(pk, cs, ms):
    """c * (1+n)**m * s**n with uniform units s: the perfect re-randomiser, for comparison."""
    n, n2 = pk.n, pk.n2
    out = []
    for c, m in zip(cs, ms):
        s = gmpy2.mpz(secrets.randbelow(int(n) - 1) + 1)
        out.append(pk.add_plain(c, m) * gmpy2.powmod(s, n, n2) % n2)
    return out


def _row(bits, operation, variant, med, low, batch, reps):
    print(f'{bits:5d}  {operation:12s} {variant:44s} {med:10.4f} ms  (min {low:.4f})', flush=True)
    return {'key_bits': bits, 'operation': operation, 'variant': variant,
            'ms_per_op': round(med, 4), 'ms_min': round(low, 4), 'batch': batch,
            'repeats': reps, 'load_avg': round(os.getloadavg()[0], 2)}


def bench_refresh(bits, scale, repeats, keys=None):
    """The helper's mask + re-randomise per ciphertext: before, after, textbook; side by side."""
    pk, sk = keys or generate_keypair(bits)
    n_ops = 2000 // scale
    ms = [secrets.randbelow(1 << (pk.half_decrypt_bits - 1)) for _ in range(n_ops)]
    cs = sk.encrypt_many(ms)
    variants = [(f'stat_sec=0 (before: r1 of {pk.refresh_bits(0)} bits, as r0)',
                 lambda: pk.mask_many(cs, ms, 0), n_ops),
                (f'stat_sec=40 (after: r1 of {pk.refresh_bits(40)} bits)',
                 lambda: pk.mask_many(cs, ms, 40), n_ops),
                (f'stat_sec=80 (r1 of {pk.refresh_bits(80)} bits)',
                 lambda: pk.mask_many(cs, ms, 80), n_ops),
                ('textbook s**n, uniform s', lambda: textbook_mask_many(pk, cs[:n_ops // 10], ms),
                 n_ops // 10)]
    pk.precompute(80)
    assert sk.decrypt_many(pk.mask_many(cs[:3], ms[:3], 40)) == [2 * m for m in ms[:3]]
    assert sk.decrypt_many(textbook_mask_many(pk, cs[:3], ms[:3])) == [2 * m for m in ms[:3]]
    rows = []
    # a batch per variant of about the same duration: the textbook variant does a tenth
    results = timed_side_by_side([lambda f=f: f() for _, f, _ in variants], 1, repeats)
    for (variant, _, batch), (med, low) in zip(variants, results):
        rows.append(_row(bits, 'refresh', variant, med / batch, low / batch, batch, repeats))
    return rows


def bench_key(bits, scale, repeats):
    rows = []

    def record(operation, variant, fn, batch, reps=repeats):
        med, low = timed(fn, batch, reps)
        rows.append(_row(bits, operation, variant, med, low, batch, reps))

    keys = []
    record('keygen', '', lambda: keys.append(generate_keypair(bits)), 1, reps=max(3, repeats))
    pk, sk = keys[-1]
    d = pk.to_dict()
    record('table_build', 'public, window 8',
           lambda: PaillierPublicKey.from_dict(d).precompute(), 1)
    record('table_build', 'public, window 8, for re-randomising (stat_sec=40)',
           lambda: PaillierPublicKey.from_dict(d).precompute(40), 1)
    record('table_build', 'private CRT, window 8',
           lambda: PaillierPrivateKey(PaillierPublicKey.from_dict(d), sk.p, sk.q).precompute(), 1)
    pk.precompute()
    sk.precompute()

    nb = 1 << (pk.half_decrypt_bits - 1)
    n_enc = 2000 // scale
    ms = [secrets.randbelow(nb) for _ in range(n_enc)]
    n_single = 200 // scale
    record('encrypt', 'single encrypt()', lambda: [pk.encrypt(m) for m in ms[:n_single]], n_single)
    record('encrypt', 'encrypt_many (public key)', lambda: pk.encrypt_many(ms), n_enc)
    record('encrypt', 'encrypt_many (private key, CRT)', lambda: sk.encrypt_many(ms), n_enc)
    cs = pk.encrypt_many(ms)
    record('mask', 'mask_many (helper op, stat_sec=40)', lambda: pk.mask_many(cs, ms), n_enc)
    record('rerandomize', 'rerandomize_many (stat_sec=40)', lambda: pk.rerandomize_many(cs), n_enc)
    ks = [secrets.randbits(64) for _ in cs]
    record('add', 'c1*c2 mod n^2',
           lambda: [pk.add(a, b) for a, b in zip(cs, cs[1:])], n_enc - 1)
    record('add_plain', 'no randomness',
           lambda: [pk.add_plain(c, m) for c, m in zip(cs, ms)], n_enc)
    record('mul_plain', '64-bit scalar',
           lambda: [pk.mul_plain(c, k) for c, k in zip(cs, ks)], n_enc)

    for window in (6, 10):
        pkw = PaillierPublicKey.from_dict(d, window=window).precompute()
        record('table_build', f'public, window {window}',
               lambda: PaillierPublicKey.from_dict(d, window=window).precompute(), 1)
        pkw.precompute(40)
        record('mask', f'mask_many, window {window}', lambda: pkw.mask_many(cs, ms), n_enc)
    pk_djn = PaillierPublicKey(pk.n, pk.h, r_bits=bits // 2)
    pk_djn.precompute(40)
    record('mask', f'mask_many, r_bits={bits // 2} (DJN k/2)',
           lambda: pk_djn.mask_many(cs, ms), n_enc)
    xs = [secrets.randbelow(int(pk.n)) for _ in range(100 // scale)]
    record('encrypt', 'textbook x^n mod n^2 (reference)',
           lambda: [gmpy2.powmod(x, pk.n, pk.n2) for x in xs], len(xs))

    n_dec = 300 // scale
    cd = cs[:n_dec]
    record('decrypt', 'single decrypt(), full CRT',
           lambda: [sk.decrypt(c) for c in cd[:50]], min(50, n_dec))
    for workers in (1, 2):
        record('decrypt', f'decrypt_many full CRT, workers={workers}',
               lambda: sk.decrypt_many(cd, workers=workers), n_dec)
        record('decrypt', f'decrypt_many half (mod p), workers={workers}',
               lambda: sk.decrypt_many(cd, max_bits=pk.half_decrypt_bits, workers=workers), n_dec)

    n_bytes = 10000 // scale
    cb = (cs * (n_bytes // len(cs) + 1))[:n_bytes]
    data = pk.ciphertexts_to_bytes(cb)
    record('serialize', 'ciphertexts_to_bytes', lambda: pk.ciphertexts_to_bytes(cb), n_bytes)
    record('serialize', 'ciphertexts_from_bytes', lambda: pk.ciphertexts_from_bytes(data), n_bytes)

    rows += bench_refresh(bits, scale, repeats, (pk, sk))

    packer = Packer(64, pk.half_decrypt_bits)
    rowvals = [[secrets.randbits(63) for _ in range(15)] for _ in range(10000 // scale)]
    packed = [packer.pack(r) for r in rowvals]
    record('pack', f'15 values, 64-bit slots ({packer.slots}/plaintext)',
           lambda: [packer.pack(r) for r in rowvals], len(rowvals))
    record('unpack', f'15 values, 64-bit slots ({packer.slots}/plaintext)',
           lambda: [packer.unpack(p, 15) for p in packed], len(packed))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='small batches (smoke test)')
    parser.add_argument('--bits', type=int, nargs='+', default=[2048, 3072])
    parser.add_argument('--only', choices=['refresh'], help="only the helper's re-randomisation")
    parser.add_argument('--out', help='default results/paillier_ops.csv, with --only refresh '
                                      'results/paillier_ops_refresh.csv')
    args = parser.parse_args()
    args.out = args.out or os.path.join('results', 'paillier_ops_refresh.csv' if args.only
                                        else 'paillier_ops.csv')
    scale, repeats = (20, 1) if args.quick else (1, 5)
    rows = []
    for bits in args.bits:
        bench = bench_refresh if args.only else bench_key
        rows += bench(bits, scale, repeats)
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
