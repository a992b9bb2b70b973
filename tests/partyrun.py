"""Running MPyC programs as real, separate party processes in tests, and reading what they sent."""

import hashlib
import os
import random
import socket
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOCOLS = os.path.join(ROOT, 'protocols')


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_ports(n):
    """n consecutive free loopback ports (MPyC's -B takes a base port)."""
    rng = random.Random()  # test plumbing only, not cryptography
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        if all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError('no free ports')


def run_local(program, args, parties, timeout=300, cwd=None, env=None):
    """`python program -M parties -B base args...`: party 0 spawns the others."""
    argv = [sys.executable, program, '-M', str(parties)]
    if parties > 1:
        argv += ['-B', str(free_ports(parties))]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=env)


def start_separate(program, args_per_party, cwd=None, env=None, extra=()):
    """Start every party as its own process with -P host:port lists and -I i, as on hosts."""
    n = len(args_per_party)
    base = free_ports(n)
    addresses = [a for i in range(n) for a in ('-P', f'127.0.0.1:{base + i}')]
    procs = []
    for i, args in enumerate(args_per_party):
        argv = [sys.executable, program, *addresses, '-I', str(i), *extra, *args]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, cwd=cwd or ROOT, env=env))
    return procs


def wait_all(procs, timeout=300):
    """Wait for every process; kill stragglers.  Returns [(returncode, stdout, stderr)]."""
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            o, e = p.communicate()
            e += '\n[killed by test: timeout]'
        out.append((p.returncode, o, e))
    return out


def run_separate(program, args_per_party, timeout=300, **kw):
    return wait_all(start_separate(program, args_per_party, **kw), timeout)


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
