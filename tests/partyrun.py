"""Running MPyC programs as real, separate party processes in tests, and reading what they sent.

A thin layer over `mpclab.launch` (the one way mpclab starts parties): output goes to files,
never to pipes, so a chatty or failing party never blocks the test.
"""

import hashlib
import os
import struct
import sys

from mpclab.launch import Parties, PartyResult, free_base_port, local_argvs, run_parties

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOLS = os.path.join(ROOT, 'protocols')

__all__ = ['ROOT', 'PROTOCOLS', 'run_local', 'run_separate', 'start_separate', 'free_base_port',
           'leak_patterns', 'leaks', 'write_tables', 'PartyResult']


def run_local(program, args, parties, timeout=300, cwd=None, env=None, mpyc_args=()):
    """`python program -M parties -B base args...`: party 0 starts the others (MPyC's way).

    Only party 0's output is seen (MPyC discards the others').  Returns a PartyResult.
    """
    argv = [sys.executable, program, '-M', str(parties)]
    if parties > 1:
        argv += ['-B', str(free_base_port(parties))]
    return run_parties([argv + list(mpyc_args) + list(args)], timeout=timeout,
                       cwd=cwd or ROOT, env=env)[0]


def start_separate(program, args_per_party, cwd=None, env=None, extra=()):
    """Start every party as its own process with a -P list and -I i, as on hosts: `Parties`."""
    return Parties(local_argvs(program, args_per_party, extra), cwd=cwd or ROOT, env=env)


def run_separate(program, args_per_party, timeout=300, **kw):
    """Run every party as its own process to the end; [(returncode, stdout, stderr)]."""
    with start_separate(program, args_per_party, **kw) as parties:
        return parties.wait(timeout)


def write_tables(tmp_path, left, right):
    """The two owners' tables as tmp_path/left.csv and right.csv: their paths, as strings."""
    lp, rp = tmp_path / 'left.csv', tmp_path / 'right.csv'
    left.to_csv(lp, index=False)
    right.to_csv(rp, index=False)
    return str(lp), str(rp)


def integer_needles(value, min_bytes=5):
    """Byte strings that a non-negative integer leaves in any byte-wise serialisation.

    The integer may sit at any bit position inside a larger one (a packed plaintext, a
    share, a pickled Python int): for each of the 8 bit alignments, the bytes that lie
    wholly inside the integer's bits, in little- and big-endian order.  Alignments that
    leave fewer than `min_bytes` such bytes are skipped (chance hits in random bytes).
    """
    out = {}
    width = value.bit_length()
    for shift in range(8):
        x = value << shift
        size = (width + shift + 7) // 8
        le = x.to_bytes(size, 'little')
        lo = 1 if shift else 0                      # the lowest byte shares bits with neighbours
        hi = (width + shift) // 8                   # bytes [lo, hi) are wholly inside
        if hi - lo < min_bytes:
            continue
        out[f'{value} << {shift} le'] = le[lo:hi]
        out[f'{value} << {shift} be'] = le[lo:hi][::-1]
    return out


def _masked_neighbours(value, shift):
    """The partial bytes around `integer_needles`' bytes for one alignment, little-endian:
    ((mask, bits) of the byte below, (mask, bits) of the byte above), None where absent."""
    width = value.bit_length()
    le = (value << shift).to_bytes((width + shift + 7) // 8, 'little')
    hi = (width + shift) // 8
    below = (0xFF & ~((1 << shift) - 1), le[0] & 0xFF & ~((1 << shift) - 1)) if shift else None
    top = (width + shift) % 8
    above = ((1 << top) - 1, le[hi] & ((1 << top) - 1)) if top else None
    return below, above


def confirmed_hits(data: bytes, name: str, needle: bytes) -> bool:
    """Whether a hit of an integer needle (named '{value} << {shift} le|be') is backed by the
    value's bits in the partial bytes on either side of it too, as a real leak's would be.

    The 5-byte needles alone meet random traffic of a few MB by chance once in about a
    hundred runs; the neighbours' bits (2 to 10 more) make that far rarer.  Other needles
    (text, floats, hashes) are long enough as they are.
    """
    parts = name.split(' ')
    start = data.find(needle)   # one search of the (megabytes of) traffic for most needles
    if start < 0 or len(parts) != 4 or parts[1] != '<<':
        return start >= 0
    value, shift, order = int(parts[0]), int(parts[2]), parts[3]
    below, above = _masked_neighbours(value, shift)
    if order == 'be':
        below, above = above, below   # in the stream: the high byte comes first
    while start >= 0:
        before = data[start - 1] if start > 0 else None
        end = start + len(needle)
        after = data[end] if end < len(data) else None
        ok = all(n is None or (b is not None and b & n[0] == n[1])
                 for n, b in ((below, before), (above, after)))
        if ok:
            return True
        start = data.find(needle, start + 1)
    return False


def leaks(data: bytes, patterns, confirm=True):
    """The names of `patterns` ({name: needle}) found in `data`, in the order given: with
    `confirm` those whose hit `confirmed_hits` accepts, else every needle that occurs at all.

    The same answer as searching the data once per needle, in one pass: the first bytes of
    every window of the data are looked up among the needles' first bytes (numpy), and only
    needles whose beginning occurs are searched for.  (Thousands of needles, megabytes of
    traffic: one search each took most of a leakage test's time.)
    """
    import numpy as np
    patterns = dict(patterns)
    k = min([4] + [len(p) for p in patterns.values()])
    if not patterns or k == 0 or len(data) < k:
        candidates = list(patterns)
    else:
        window = np.zeros(len(data) - k + 1, dtype=np.uint64)
        raw = np.frombuffer(data, dtype=np.uint8)
        for i in range(k):    # the k bytes from each position, little-endian
            window |= raw[i:len(raw) - k + 1 + i].astype(np.uint64) << np.uint64(8 * i)
        heads = {name: int.from_bytes(p[:k], 'little') for name, p in patterns.items()}
        wanted = np.unique(np.fromiter(heads.values(), dtype=np.uint64, count=len(heads)))
        at = np.minimum(np.searchsorted(wanted, window), len(wanted) - 1)
        present = set(np.unique(window[wanted[at] == window]).tolist())
        candidates = [name for name, h in heads.items() if h in present]
    if confirm:
        return [name for name in candidates if confirmed_hits(data, name, patterns[name])]
    return [name for name in candidates if patterns[name] in data]


def leak_patterns(df, id_column='id', skip=(), fmt=None, scale=None):
    """Byte patterns of a table's identifiers and values, as they could leak in a message.

    Identifiers as UTF-8 text and as unkeyed SHA-256; values as float64 (both byte orders) and
    decimal text, and as integers at every bit alignment (`integer_needles`): the input
    encoding round(x * 2**f) of `fmt`, the same plus the join's packing offset, and the
    encoding of MPyC's secure type (fmt.secure_frac_bits).  With `scale` 'minmax' the values
    are those the owner encodes after scaling.  Use distinctive values (with many
    significant bits) to avoid chance hits.
    """
    import numpy as np
    import pandas as pd
    from mpclab.fixedpoint import FixedPointFormat
    fmt = fmt or FixedPointFormat()
    offset = 1 << (fmt.value_bits - 1)
    out = {}
    for i in df[id_column]:
        out[f'id {i}'] = str(i).encode('utf-8')
        out[f'sha256({i})'] = hashlib.sha256(str(i).encode('utf-8')).digest()
    values = df.drop(columns=[id_column, *skip], errors='ignore').apply(pd.to_numeric, errors='coerce')
    values = values.to_numpy(dtype=float)
    if scale == 'minmax':
        lo, hi = values.min(axis=0), values.max(axis=0)
        values = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    for v in values.ravel():
        if v != v or abs(v) == float('inf') or v == 0:
            continue
        out[f'float {v} le'] = struct.pack('<d', v)
        out[f'float {v} be'] = struct.pack('>d', v)
        text = repr(float(v)).encode()
        if len(text) >= 6:   # shorter ones occur by chance (e.g. in a version number)
            out[f'text {v}'] = text
        e = int(round(v * 2**fmt.frac_bits))
        for x in {abs(e), e + offset, abs(int(round(v * 2**fmt.secure_frac_bits)))}:
            out.update(integer_needles(x))
    return out
