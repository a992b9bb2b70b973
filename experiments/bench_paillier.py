"""Time the Paillier operations the secure join is built from.

Writes ``results/paillier_ops.csv``: one row per (key size, operation, variant) with the
median and minimum time per operation over a few repeats of a batch, and the 1-minute load
average when it was taken (the machine has 2 cores; under load the minimum is the better guide).

    python experiments/bench_paillier.py            # 2048 and 3072-bit keys, a few minutes
    python experiments/bench_paillier.py --quick    # small batches, a smoke test
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


def bench_key(bits, scale, repeats):
    rows = []

    def record(operation, variant, fn, batch, reps=repeats):
        med, low = timed(fn, batch, reps)
        rows.append({'key_bits': bits, 'operation': operation, 'variant': variant,
                     'ms_per_op': round(med, 4), 'ms_min': round(low, 4), 'batch': batch,
                     'repeats': reps, 'load_avg': round(os.getloadavg()[0], 2)})
        print(f'{bits:5d}  {operation:12s} {variant:40s} {med:10.4f} ms  (min {low:.4f})',
              flush=True)

    keys = []
    record('keygen', '', lambda: keys.append(generate_keypair(bits)), 1, reps=max(3, repeats))
    pk, sk = keys[-1]
    d = pk.to_dict()
    record('table_build', 'public, window 8',
           lambda: PaillierPublicKey.from_dict(d).precompute(), 1)
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
    record('mask', 'mask_many (helper op)', lambda: pk.mask_many(cs, ms), n_enc)
    record('rerandomize', 'rerandomize_many', lambda: pk.rerandomize_many(cs), n_enc)
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
        record('mask', f'mask_many, window {window}', lambda: pkw.mask_many(cs, ms), n_enc)
    pk_djn = PaillierPublicKey(pk.n, pk.h, r_bits=bits // 2)
    pk_djn.precompute()
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
    parser.add_argument('--out', default=os.path.join('results', 'paillier_ops.csv'))
    args = parser.parse_args()
    scale, repeats = (20, 1) if args.quick else (1, 5)
    rows = []
    for bits in args.bits:
        rows += bench_key(bits, scale, repeats)
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
