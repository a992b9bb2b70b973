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
           'leak_patterns', 'PartyResult']


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


def leak_patterns(df, id_column='id', skip=()):
    """Byte patterns of a table's identifiers and values, as they could leak in a message.

    Identifiers as UTF-8 text and as unkeyed SHA-256; values as float64, decimal text, and as
    fixed-point integers (default format, with and without the join's packing offset) in both
    byte orders.  Use distinctive values (large, with fractional parts) to avoid chance hits.
    """
    from mpclab.fixedpoint import FixedPointFormat
    fmt = FixedPointFormat()
    offset = 1 << (fmt.value_bits - 1)
    out = {}
    for i in df[id_column]:
        out[f'id {i}'] = str(i).encode('utf-8')
        out[f'sha256({i})'] = hashlib.sha256(str(i).encode('utf-8')).digest()
    import pandas as pd
    values = df.drop(columns=[id_column, *skip], errors='ignore').apply(pd.to_numeric, errors='coerce')
    for v in values.to_numpy(dtype=float).ravel():
        if v != v or abs(v) == float('inf'):
            continue
        e = int(round(v * 2**fmt.frac_bits))
        out[f'float {v}'] = struct.pack('<d', v)
        out[f'text {v}'] = repr(float(v)).encode()
        for x in (e, e + offset):
            out[f'int {x} le'] = x.to_bytes(8, 'little', signed=True)
            out[f'int {x} be'] = x.to_bytes(8, 'big', signed=True)
    return out
