"""A party's local share arithmetic on numpy limbs and BLAS, spread over its cores.

Shares are Python ints below p (about 140 bits at ``-K 42``) in numpy object arrays, and every
operation on those holds Python's lock (the GIL): a second thread gains nothing.  The bulk
local work of `mpclab.fastmpc` is therefore recast as numpy on fixed-width limbs, exact in
float64, which releases the GIL and runs on BLAS, and is split into chunks of rows that run on
a pool of `workers()` threads:

* `int_matmul_t`: the exact products ``AᵀB`` of share matrices (`fastmpc.matmul_t`);
* `prss_masks`: this party's shares of the PRSS masks of every truncation in fastmpc, from
  the PRF's bytes to the integer combination ``Σ_S f_S(i)·R_S`` as one BLAS product.

What stays under the GIL: turning Python ints into bytes and back (``int.to_bytes``,
``int.from_bytes``, about 0.2 µs per share) and the elementwise big-integer products and
reductions modulo p in fastmpc.  Nothing here communicates or opens anything: these are
local functions of a party's own shares and keys.

The number of threads is MPyC's ``-W`` if given, else every core of the machine
(`mpclab.mpyc_runtime.worker_limit`); give ``-W 1`` when several parties share the cores.
Every result is independent of the number of threads (the chunks only split the work).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from hashlib import shake_128

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ['workers', 'chunk_map', 'to_bytes', 'bit_limbs', 'limbs_to_ints', 'int_matmul_t',
           'limb_layout', 'prss_masks']

#: rows per chunk of work below which a second thread is not worth starting
MIN_CHUNK = 4096

#: elements per chunk of `prss_masks`: its limbs take about 0.75 KB an element
#: (results/mask_memory.csv), so a chunk's working memory is about 50 MB per thread however
#: many masks a truncation needs (2M for a whole block of logistic regression's W·X)
MASK_CHUNK = 1 << 16


def workers() -> int:
    """Threads this party's local arithmetic may use: MPyC's ``-W``, else all cores."""
    from mpyc.runtime import mpc
    w = getattr(mpc.options, 'workers', 0) or 0
    if w > 0:
        return w
    from mpclab.mpyc_runtime import worker_limit
    return worker_limit()


_pools: dict[int, ThreadPoolExecutor] = {}
_blas: list[ThreadpoolController] = []


def _one_blas_thread():
    """A context in which BLAS runs single-threaded (finding the libraries once: ~10 ms)."""
    if not _blas:
        _blas.append(ThreadpoolController())
    return _blas[0].limit(limits=1, user_api='blas')


def _pool(k: int) -> ThreadPoolExecutor:
    if k not in _pools:
        _pools[k] = ThreadPoolExecutor(max_workers=k, thread_name_prefix='mpclab-arith')
    return _pools[k]


def chunk_map(fn, n: int, max_chunk: int | None = None, min_chunk: int = MIN_CHUNK) -> list:
    """[fn(lo, hi) for consecutive chunks covering range(n)], on up to `workers()` threads.

    Chunks hold at most `max_chunk` rows; with one worker (or little work) it all runs here.
    BLAS runs single-threaded inside: the threads are the parallelism (OpenBLAS's own
    spinning threads slow a loaded machine down by orders of magnitude).
    """
    k = workers()
    size = -(-n // k) if k > 1 else n
    size = max(size, min_chunk)
    if max_chunk:
        size = min(size, max_chunk)
    size = max(size, 1)
    bounds = [(lo, min(lo + size, n)) for lo in range(0, n, size)] or [(0, 0)]
    with _one_blas_thread():
        if k == 1 or len(bounds) == 1:
            return [fn(lo, hi) for lo, hi in bounds]
        return list(_pool(min(k, len(bounds))).map(lambda b: fn(*b), bounds))


# --- Python ints <-> limbs -------------------------------------------------------------------

def to_bytes(v, nb: int) -> np.ndarray:
    """Non-negative ints below 2**(8*nb) (any object array) as uint8 rows (v.size, nb)."""
    raw = b''.join([x.to_bytes(nb, 'little') for x in v.flat])
    return np.frombuffer(raw, np.uint8).reshape(-1, nb)


def _words(u8: np.ndarray) -> np.ndarray:
    """uint8 rows (n, nb) as little-endian uint64 words, transposed: (words, n), with one spare
    zero word at the end (so that a limb may always read the next word)."""
    n, nb = u8.shape
    nw = -(-nb // 8) + 1
    pad = np.zeros((n, 8 * nw), np.uint8)
    pad[:, :nb] = u8
    return np.ascontiguousarray(pad.view('<u8').T)


def bit_limbs(u8: np.ndarray, start: int, nbits: int, w: int, words=None) -> np.ndarray:
    """Bits [start, start + nbits) of each row's little-endian number in u8 (n, nb), as
    ceil(nbits / w) limbs of w <= 32 bits, lowest first: float64 (n, q), exact."""
    if words is None:
        words = _words(u8)
    n = words.shape[1]
    q = -(-nbits // w)
    out = np.empty((q, n), np.float64)
    for j in range(q):
        o = start + w * j
        width = min(w, nbits - w * j)
        k, s = divmod(o, 64)
        limb = words[k] >> np.uint64(s)
        if s + width > 64:
            limb |= words[k + 1] << np.uint64(64 - s)
        limb &= np.uint64((1 << width) - 1)
        out[j] = limb
    return out.T


def limbs_to_ints(v: np.ndarray, w: int = 16) -> np.ndarray:
    """Exact non-negative integer limbs (n, q) of w bits each place (entries below 2**52,
    any float or int dtype) as Python ints Σ_j v[:, j]·2**(w·j): object array (n,)."""
    n, q = v.shape
    spare = (52 // w) + 2
    x = np.zeros((q + spare, n), np.int64)
    x[:q] = v.T
    mask = np.int64((1 << w) - 1)
    for j in range(q + spare - 1):
        x[j + 1] += x[j] >> w
        x[j] &= mask
    if w == 16:
        raw = np.ascontiguousarray(x.T.astype('<u2')).tobytes()
        size = 2 * (q + spare)
    else:                                   # pack w-bit limbs through Python ints (rare)
        out = np.zeros(n, dtype=object)
        for j in range(q + spare):
            out += x[j].astype(object) << (w * j)
        return out
    fb = int.from_bytes
    out = np.empty(n, dtype=object)
    out[:] = [fb(raw[i:i + size], 'little') for i in range(0, n * size, size)]
    return out


# --- Exact AᵀB on BLAS -----------------------------------------------------------------------
#
# Shares are ints below p, 128 bits at MPyC's default -K 30 and 140-146 bits at the -K that
# gives 40 bits of hiding.  Each is split into Q = 8 unsigned limbs of w = ceil(bits / 8)
# bits (16 to 22), held exactly in float64.  A product of two limbs is below 2**(2w), so a
# sum of them over 2**(53 - 2w) rows is below 2**53 and every float64 product of a block of
# rows is exact: blocks of 2**21 rows at 128 bits, 2**17 rows at 144 bits.

_Q = 8             # limbs per share
_W_MAX = 22        # widest limb: blocks of 2**9 rows; beyond, more limbs


def limb_layout(bits: int) -> tuple[int, int, int]:
    """(limbs, limb width, rows per exact block) for ints below 2**bits."""
    q = max(_Q, -(-bits // _W_MAX))
    w = max(16, -(-bits // q))
    return q, w, 1 << (53 - 2 * w)


def _share_limbs(v, q: int, w: int) -> np.ndarray:
    """Ints in [0, 2**(q*w)) (object array (n, m)) as q limbs of w bits: float64 (n, q*m)."""
    n, m = v.shape
    u8 = to_bytes(v, (q * w + 7) // 8)
    return bit_limbs(u8, 0, q * w, w).reshape(n, m * q)


def int_matmul_t(A, B, bits: int | None = None, block: int | None = None):
    """Exact AᵀB for object arrays A (n, a), B (n, b) of ints in [0, 2**bits), on BLAS.

    bits defaults to the bit length of the largest entry; block (rows per float64 product,
    default the largest exact one) may be given smaller.  Rows are split over `workers()`
    threads.  Returns an object array (a, b) of exact ints.
    """
    n, a = A.shape
    b = B.shape[1]
    if bits is None:
        bits = max(int(max(A.flat, default=0)).bit_length(),
                   int(max(B.flat, default=0)).bit_length(), 1)
    q, w, rows = limb_layout(bits)
    block = min(block or rows, rows)

    def part(lo, hi):
        LA = _share_limbs(A[lo:hi], q, w)
        LB = LA if B is A else _share_limbs(B[lo:hi], q, w)
        return LA.T @ LB
    P = np.zeros((q * a, q * b), dtype=object)
    for M in chunk_map(part, n, block):
        P += M.astype(np.int64).astype(object)
    P = P.reshape(a, q, b, q)
    out = np.zeros((a, b), dtype=object)
    for i in range(q):
        for j in range(q):
            out += P[:, i, :, j] << (w * (i + j))
    return out


# --- PRSS masks ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _toeplitz(c: int, q_in: int, w: int) -> np.ndarray:
    """Matrix T (q_in, q_in + q_c - 1) with x_limbs @ T = limbs of x·c (unnormalised)."""
    cl = []
    while c:
        cl.append(c & ((1 << w) - 1))
        c >>= w
    cl = cl or [0]
    T = np.zeros((q_in, q_in + len(cl) - 1))
    for a in range(q_in):
        T[a, a:a + len(cl)] = cl
    return T


def _combine(parts, n: int, w: int) -> np.ndarray:
    """Σ x_k·c_k for limb arrays x_k (n, q_k) and ints c_k, exactly: object array (n,)."""
    parts = [(x, c) for x, c in parts if x.shape[1]]
    if not parts:
        return np.zeros(n, dtype=object)
    T = _stacked(tuple((c, x.shape[1]) for x, c in parts), w)
    return limbs_to_ints(np.hstack([x for x, _ in parts]) @ T, w)


@functools.lru_cache(maxsize=64)
def _stacked(terms, w):
    Ts = [_toeplitz(c, q, w) for c, q in terms]
    width = max(T.shape[1] for T in Ts)
    return np.vstack([np.pad(T, ((0, 0), (0, width - T.shape[1]))) for T in Ts])


#: below this many elements the masks are computed with Python ints (less set-up)
SMALL = 64


def _plain_masks(streams, n, size, bits, f, t, b_r, b_z, coef, p):
    """The same as prss_masks for few elements, with Python ints element by element."""
    r, r_hi = [0] * n, [0] * n
    for u8, fS in streams:
        raw = u8.tobytes()
        for e in range(n):
            x = int.from_bytes(raw[e * size:(e + 1) * size], 'little')
            R = x & ((1 << bits) - 1)
            y = R
            x >>= 8 * b_r
            for j in range(t):
                y += (x & ((1 << 8 * b_z) - 1)) * coef[j]
                x >>= 8 * b_z
            r[e] += y * fS
            r_hi[e] += (R >> f) * fS
    return np.array(r, dtype=object), np.array(r_hi, dtype=object)


def prss_masks(p: int, n: int, bits: int, f: int, t: int, i1: int, components, uci: bytes):
    """This party's shares (r, r_hi) of a PRSS truncation mask, with a zero sharing if t > 0.

    `components` lists (key, f_S(i)) for the PRSS keys of this party.  Each key's PRF stream
    ``shake_128(key + uci)`` gives per element ``b_r = ceil(bits/8)`` bytes for the component
    ``R_S`` (its low `bits` bits) and then t coefficients of ``ceil((p.bit_length()+64)/8)``
    bytes each.  Returns object arrays of (unreduced) ints, congruent modulo p to

        r    = Σ_S f_S(i)·(R_S + Σ_j c_S,j·i1**(t-j))     (degree t, plus degree-2t zero),
        r_hi = Σ_S f_S(i)·(R_S >> f).

    The sum of products is one BLAS product per chunk of rows, on limbs of 16 bits.
    """
    w = 16
    b_r = (bits + 7) // 8
    b_z = (p.bit_length() + 64 + 7) // 8
    size = b_r + t * b_z
    streams = [(np.frombuffer(shake_128(key + uci).digest(n * size), np.uint8).reshape(n, size),
                fS % p) for key, fS in components]
    coef = [pow(i1, t - j, p) for j in range(t)]
    if n < SMALL:
        return _plain_masks(streams, n, size, bits, f, t, b_r, b_z, coef, p)

    def part(lo, hi):
        low, high = [], []
        for u8, fS in streams:
            words = _words(u8[lo:hi])
            R = bit_limbs(None, 0, bits, w, words)
            low.append((R, fS))
            high.append((bit_limbs(None, f, max(bits - f, 0), w, words), fS))
            for j in range(t):
                c = bit_limbs(None, 8 * (b_r + j * b_z), 8 * b_z, w, words)
                low.append((c, fS * coef[j] % p))
        return _combine(low, hi - lo, w), _combine(high, hi - lo, w)
    parts = chunk_map(part, n, MASK_CHUNK)
    r = np.concatenate([a for a, _ in parts]) if n else np.zeros(0, dtype=object)
    r_hi = np.concatenate([b for _, b in parts]) if n else np.zeros(0, dtype=object)
    return r, r_hi


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
