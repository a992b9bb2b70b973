"""Running an mpclab protocol as an MPyC program: shared options, agreement, deadlines, clean failure.

MPyC waits forever when a peer dies or hangs, and retries a connection forever.  A Session
adds what a deployment needs: a deadline per phase (a watchdog thread, so it fires even
while the event loop is busy), an immediate stop when a peer's connection drops, and one
round at the start in which every party reports whether its own input passed the checks and
which public options it runs with, so that bad input or mismatched options stop every party
with a clear message before any data is sent.
"""

import argparse
import json
import os
import sys
import threading
import time
from contextlib import contextmanager

from mpyc import asyncoro
from mpyc.runtime import mpc

__all__ = ['ProtocolError', 'Session', 'add_common_arguments', 'add_model_arguments',
           'fixed_point_format', 'main',
           'EXIT_INPUT', 'EXIT_TIMEOUT', 'EXIT_PEER_LOST']

EXIT_INPUT = 2       # bad input or options, detected before any data was sent
EXIT_TIMEOUT = 3     # a phase passed its deadline
EXIT_PEER_LOST = 4   # a peer closed its connection mid-protocol

DEFAULT_TIMEOUT = 600.0


class ProtocolError(RuntimeError):
    """A clean, one-line failure of the protocol (shown without a traceback)."""

    def __init__(self, message, exit_code=EXIT_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


def _die(message, code):
    # os._exit: MPyC's event loop and connections would otherwise keep the process waiting.
    sys.stdout.flush()
    sys.stderr.write(message + '\n')
    sys.stderr.flush()
    os._exit(code)


class Session:
    """One party's view of a protocol run: phases, deadlines, timings and bytes sent.

    Parameters
    ----------
    name : str
        Protocol name, part of what the parties agree on.
    public_options : dict
        Options that must be equal at every party (never file names or data).
    timeout : float
        Deadline in seconds for every phase.
    """

    _current = None

    def __init__(self, name, public_options=None, timeout=DEFAULT_TIMEOUT):
        self.name = name
        self.public_options = dict(public_options or {})
        self.timeout = timeout
        self.timings = {}
        self.phase_name = None
        self._deadline = None
        self._stopping = False
        self._last_heard = {}
        self._watchdog = None
        self._lost = None

    @property
    def pid(self):
        return mpc.pid

    @property
    def n_parties(self):
        return len(mpc.parties)

    # -- deadlines ---------------------------------------------------------------------------
    def _watch(self):
        while not self._stopping:
            time.sleep(0.2)
            deadline = self._deadline
            if deadline is not None and time.monotonic() > deadline and not self._stopping:
                if self._lost:
                    _die(f'mpclab party {self.pid}: {self._lost}; stopping', EXIT_PEER_LOST)
                _die(f'mpclab party {self.pid}: phase {self.phase_name!r} timed out after '
                     f'{self.timeout:g} s {self._waiting_for()}', EXIT_TIMEOUT)

    def _waiting_for(self):
        now = time.monotonic()
        peers = [p.pid for p in mpc.parties if p.pid != self.pid]
        if self.phase_name == 'connect':
            absent = [p.pid for p in mpc.parties if p.pid != self.pid and
                      not isinstance(getattr(p, 'protocol', None), asyncoro.MessageExchanger)]
            return f'waiting to connect to party {_names(absent or peers)}'
        silent = max(peers, key=lambda i: now - self._last_heard.get(i, 0.0))
        last = self._last_heard.get(silent)
        heard = f'last heard {now - last:.1f} s ago' if last else 'nothing heard in this run'
        return f'waiting for party {silent} ({heard})'

    def _peer_lost(self, peer_pid, exc):
        if self._stopping or self.phase_name == 'shutdown' or Session._current is not self:
            return  # connections close one by one during a normal shutdown
        why = f': {exc}' if exc else ''
        if self.phase_name == 'agree':
            # A party that failed its checks leaves as soon as the agreement round is done;
            # give this party a moment to read why from that round before calling it lost.
            self._lost = f'lost the connection to party {peer_pid} during phase \'agree\'{why}'
            self._deadline = min(self._deadline or float('inf'), time.monotonic() + 3.0)
            return
        _die(f'mpclab party {self.pid}: lost the connection to party {peer_pid} during phase '
             f'{self.phase_name!r}{why}; stopping', EXIT_PEER_LOST)

    @contextmanager
    def phase(self, name):
        """Time a phase and give it the session's deadline."""
        _inject_fault(name)
        previous = self.phase_name
        self.phase_name = name
        self._deadline = time.monotonic() + self.timeout
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self.phase_name = previous
            self._deadline = time.monotonic() + self.timeout if previous else None

    async def wait(self, name, awaitable):
        """Await one result under the deadline of a phase named `name`."""
        with self.phase(name):
            return await awaitable

    # -- start and stop ----------------------------------------------------------------------
    async def start(self, input_error=None):
        """Connect, then agree on options and on everybody's input being fine.

        `input_error` is this party's `InputError` (or None); its public reason is shared,
        its detailed message stays here.  Raises ProtocolError at every party if any party
        failed or if options differ.
        """
        Session._current = self
        _install_hooks()
        if self.n_parties > 1:
            self._watchdog = threading.Thread(target=self._watch, daemon=True)
            self._watchdog.start()
        with self.phase('connect'):
            await mpc.start()
        status = None if input_error is None else getattr(input_error, 'public', str(input_error))
        mine = {'protocol': self.name, 'options': self.public_options, 'status': status}
        with self.phase('agree'):
            everyone = await mpc.transfer(mine)
        if input_error is not None:
            raise ProtocolError(str(input_error))
        for i, theirs in enumerate(everyone):
            if theirs['status'] is not None:
                raise ProtocolError(f'party {i} stopped before sending any data: {theirs["status"]}')
        for i, theirs in enumerate(everyone):
            if theirs['protocol'] != self.name:
                raise ProtocolError(f'party {i} runs protocol {theirs["protocol"]!r}, '
                                    f'this party runs {self.name!r}')
            diff = _first_difference(self.public_options, theirs['options'])
            if diff:
                key, here, there = diff
                what = 'the number of parties' if key == 'n_parties' else '--' + key.replace('_', '-')
                raise ProtocolError(f'options differ between parties: {what} is {here!r} at party '
                                    f'{self.pid} but {there!r} at party {i}')
        if self._lost:  # everyone agreed, yet a peer has gone: it crashed
            _die(f'mpclab party {self.pid}: {self._lost}; stopping', EXIT_PEER_LOST)

    async def stop(self):
        with self.phase('shutdown'):
            await mpc.shutdown()
        self._stopping = True
        self._deadline = None
        Session._current = None

    def abort(self):
        """Stop watching (used when leaving through an error)."""
        self._stopping = True
        self._deadline = None
        Session._current = None

    def bytes_sent(self):
        """Bytes this party has sent to each party so far, as MPyC counts them."""
        out = []
        for p in mpc.parties:
            proto = getattr(p, 'protocol', None)
            out.append(getattr(proto, 'nbytes_sent', 0) if p.pid != self.pid else 0)
        return out

    async def all_bytes_sent(self):
        """Total bytes sent by every party (one small extra round)."""
        mine = sum(self.bytes_sent())
        with self.phase('report'):
            return await mpc.transfer(mine)


def _inject_fault(phase):
    """Fault injection for the robustness tests: MPCLAB_FAULT='party:phase:crash|hang'."""
    fault = os.getenv('MPCLAB_FAULT')
    if not fault:
        return
    party, rest = fault.split(':', 1)
    where, kind = rest.rsplit(':', 1)
    if int(party) == mpc.pid and where == phase:
        if kind == 'crash':
            os._exit(9)
        if Session._current is not None:
            Session._current._stopping = True  # silence this party's own watchdog
        while True:  # hang: stay connected but silent
            time.sleep(60)


def _names(pids):
    return ', '.join(map(str, pids))


def _first_difference(a, b):
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key, a.get(key), b.get(key)
    return None


_hooks_installed = False


def _install_hooks():
    """Let MPyC's connection callbacks tell the current session about peers."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    exchanger = asyncoro.MessageExchanger
    lost, received = exchanger.connection_lost, exchanger.data_received

    def connection_lost(self, exc):
        session = Session._current
        if session is not None:
            session._peer_lost(self.peer_pid, exc)
        return lost(self, exc)

    record = os.getenv('MPCLAB_RECORD_DIR')  # tests read what each party received

    def data_received(self, data):
        session = Session._current
        if session is not None and self.peer_pid is not None:
            session._last_heard[self.peer_pid] = time.monotonic()
        if record:
            path = os.path.join(record, f'party{mpc.pid}_from{self.peer_pid}.bin')
            with open(path, 'ab') as f:
                f.write(data)
        return received(self, data)

    exchanger.connection_lost = connection_lost
    exchanger.data_received = data_received


# -- command line ----------------------------------------------------------------------------
def add_common_arguments(parser, join=True):
    """Options every protocol shares.  All are long, lower-case and no prefix of MPyC's options."""
    if join:
        g = parser.add_argument_group('data (each party passes only its own)')
        g.add_argument('--left', metavar='CSV', help="party 0's table (read by party 0 only)")
        g.add_argument('--right', metavar='CSV', help="party 1's table (read by party 1 only)")
        g.add_argument('--id', required=True, metavar='COLUMN', help='identifier column, in both tables')
        g.add_argument('--scale', choices=['none', 'minmax'], default='none',
                       help='min-max scale every column to [0, 1], locally by each owner')
        g.add_argument('--drop-columns', nargs='+', default=[], metavar='COLUMN',
                       help='columns an owner leaves out (each owner drops those it has)')
    g = parser.add_argument_group('security and precision (must be equal at every party)')
    g.add_argument('--frac-bits', type=int, default=16, metavar='F',
                   help='fractional bits of the input encoding (default 16)')
    g.add_argument('--int-bits', type=int, metavar='I',
                   help='inputs must satisfy |x| < 2**I (default 16; 1 with --scale minmax, whose '
                        'values lie in [0, 1]: smaller inputs make the join cheaper)')
    g.add_argument('--fxp-bits', type=int, default=64, metavar='L',
                   help='bit length of the secure fixed-point type SecFxp(L, L/2) (default 64)')
    if join:
        g.add_argument('--key-bits', type=int, default=2048, choices=[2048, 3072, 4096],
                       help='Paillier modulus size (default 2048)')
        g.add_argument('--stat-sec', type=int, default=40, metavar='S',
                       help='statistical security of the masks, in bits (default 40)')
        g.add_argument('--join-helper', type=int, default=2, metavar='I',
                       help='index of the helper party (default 2)')
    g = parser.add_argument_group('running')
    g.add_argument('--timeout', type=float, default=DEFAULT_TIMEOUT, metavar='SECONDS',
                   help=f'deadline per phase; a silent or dead peer stops every party (default {DEFAULT_TIMEOUT:g})')
    g.add_argument('--json', metavar='PATH', help='party 0 writes a JSON summary here')
    return parser


def add_model_arguments(parser):
    """Options of the programs that train a model on the joined table."""
    g = parser.add_argument_group('model (must be equal at every party)')
    g.add_argument('--target', required=True, metavar='COLUMN', help='column to predict (either owner may hold it)')
    g.add_argument('--test-fraction', type=float, default=0.1, metavar='F',
                   help='fraction of joined rows kept secret for testing; 0 trains and reports on all (default 0.1)')
    g.add_argument('--seed', type=int, metavar='S',
                   help='public seed: the test rows are the people with hash(S, id) below the fraction, '
                        'so a plaintext twin can use the same split; default: a random block of the '
                        "helper's secret order")
    g.add_argument('--model-to', type=int, nargs='*', metavar='I',
                   help='parties that learn the model (default all; none: keep it secret)')
    return parser


def fixed_point_format(args):
    from mpclab.fixedpoint import FixedPointFormat
    try:
        return FixedPointFormat(frac_bits=args.frac_bits, int_bits=args.int_bits,
                                secure_bits=args.fxp_bits)
    except ValueError as exc:
        raise ProtocolError(f'fixed-point options: {exc}') from None


def main(coroutine_function, parser):
    """Entry point of a protocol program: parse, run, and turn failures into exit codes."""
    args = parser.parse_args()
    if getattr(args, 'int_bits', 0) is None:
        args.int_bits = 1 if getattr(args, 'scale', None) == 'minmax' else 16
    try:
        result = mpc.run(coroutine_function(args))
    except ProtocolError as exc:
        session = Session._current
        if session is not None:
            session.abort()
        _die(f'mpclab party {mpc.pid}: {exc}', exc.exit_code)
    except KeyboardInterrupt:
        _die(f'mpclab party {mpc.pid}: interrupted', 130)
    return result


def write_json(path, summary):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2, sort_keys=False)
        f.write('\n')


def argument_parser(description):
    return argparse.ArgumentParser(description=description,
                                   epilog="MPyC's own options (-M, -P, -I, --ssl, ...): "
                                          'python -m mpyc -H')
