"""One party's session of an mpclab program: connect, agree, keep alive, fail clearly, stop.

MPyC waits forever when a peer dies, hangs or never comes, and retries a connection forever.
A `Session` adds what a deployment needs:

* a deadline for connecting, with the cause in the message (nobody listening, a port in use,
  a TLS handshake refused and why);
* one *agreement round* before any data moves, in which every party tells whether its own
  input passed its checks, and with which program, version and agreed options it runs, and
  which analysis it approved: bad input, different options or an unapproved analysis stop
  every party together, with the reason;
* keep-alive messages from this party's event loop, and a watchdog thread that stops this
  party once a peer has been *silent* for ``timeout`` seconds: a dead or hung peer stops
  everyone, while a long, healthy phase completes;
* when this party fails, it sends its reason to every peer before it exits, so that every
  party reports the first failure's reason rather than a lost connection;
* phase timings and bytes sent.

Control frames ride on MPyC's own framing with program counters that MPyC never uses, so an
MPyC peer simply buffers them.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import sys
import threading
import time
from contextlib import contextmanager

from mpyc import asyncoro
from mpyc.runtime import mpc

from mpclab import _hooks, wire
from mpclab.options import describe_difference

__all__ = ['ProtocolError', 'PublicError', 'Session', 'EXIT_INPUT', 'EXIT_TIMEOUT', 'EXIT_PEER_LOST',
           'EXIT_RANGE', 'silence_this_party']

EXIT_INPUT = 2       # bad input, options or set-up, found before any data was sent
EXIT_TIMEOUT = 3     # a peer fell silent, or did not connect in time
EXIT_PEER_LOST = 4   # a peer's connection dropped without a reason
EXIT_RANGE = 5       # the data do not fit the secure fixed-point range

KEEPALIVE_EVERY = 1.0          # seconds between keep-alives while nothing else is sent
LOST_GRACE = 2.0               # seconds to wait for a departing peer's reason
# Program counters MPyC never produces (its counters are hashes of call positions).
_KEEPALIVE_PC = -2**63
_ABORT_PC = -2**63 + 1


class ProtocolError(RuntimeError):
    """A clean, one-line failure of the run (shown without a traceback), with its exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


class PublicError(ProtocolError):
    """A failure every party finds by itself, from what all of them know (the agreement
    round, the public sizes and column names): nobody needs telling."""


def _die(message: str, code: int) -> None:
    # os._exit: MPyC's event loop and connections would otherwise keep the process waiting.
    sys.stdout.flush()
    sys.stderr.write(message + '\n')
    sys.stderr.flush()
    os._exit(code)


def _peers():
    return [p for p in mpc.parties if p.pid != mpc.pid]


def _connected(party) -> bool:
    return isinstance(getattr(party, 'protocol', None), asyncoro.MessageExchanger)


class Session:
    """One party's run of a program: phases, deadlines, agreement, timings and bytes sent.

    Parameters
    ----------
    name : str
        Program name, part of what the parties agree on.
    agreed : dict
        Options that must be equal at every party, by option name, in declaration order.
    fingerprint : str, optional
        The analysis fingerprint of `agreed` (see `mpclab.study`).
    approved : str, optional
        The fingerprint this party approved; the run stops unless it is the run's.
    approved_options : dict, optional
        The agreed options of the approved analysis, if known: names the first difference.
    timeout : float
        Longest silence of a peer, in seconds, before this party stops.
    connect_timeout : float
        Deadline for every party to be connected.
    relay_details : bool
        Share this party's full failure messages (file, column, row) with the others: for
        runs on one machine (-M), never across organisations.
    """

    current: 'Session | None' = None

    def __init__(self, name: str, agreed: dict, *, fingerprint: str | None = None,
                 approved: str | None = None, approved_options: dict | None = None,
                 timeout: float = 120.0, connect_timeout: float = 60.0,
                 relay_details: bool = False, version: str = '', verbose: bool = False):
        self.name = name
        self.agreed = dict(agreed)
        self.fingerprint = fingerprint
        self.approved = approved
        self.approved_options = approved_options
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.relay_details = relay_details
        self.version = version
        self.verbose = verbose
        self.timings: dict[str, float] = {}
        self.phase_name = 'start'
        self._last_phase = 'start'
        self._last_heard: dict[int, float] = {}
        self._answered: set[int] = set()
        self._lost: dict[int, tuple[float, str]] = {}
        self._connect_errors: dict[int, str] = {}
        self._server_errors: list[str] = []
        self._connected_at = None
        self._connect_deadline = None
        self._stopping = False
        self._silenced = False
        self._watchdog = None
        self._keepalive = None
        self._failing = False
        self.pending_failure = None   # (message, code) of a failure about to be reported

    @property
    def pid(self) -> int:
        return mpc.pid

    @property
    def n_parties(self) -> int:
        return len(mpc.parties)

    # -- phases ------------------------------------------------------------------------------
    @contextmanager
    def phase(self, name: str):
        """Time a phase; its name appears in any failure message of this party."""
        _hooks.run_phase_hooks(name)
        previous = self.phase_name
        self.phase_name = self._last_phase = name
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
            self.phase_name = previous

    def _where(self) -> str:
        name = self.phase_name if self.phase_name != 'start' else self._last_phase
        return f'during phase {name!r}' if name != 'start' else 'before the first phase'

    # -- the watchdog and keep-alives ---------------------------------------------------------
    def _watch(self) -> None:
        """Thread: stop this party when a peer is silent too long or gone without a reason."""
        while not self._stopping and not self._silenced:
            time.sleep(0.2)
            if self._stopping or self._silenced:
                return
            now = time.monotonic()
            if self._connect_deadline is not None and now > self._connect_deadline:
                self._die_from_thread(self._connect_failure(), EXIT_TIMEOUT)
            for pid, (at, message) in list(self._lost.items()):
                if now > at + LOST_GRACE:
                    self._die_from_thread(message, EXIT_PEER_LOST)
            if self._connected_at is None:
                continue
            for pid, heard in list(self._last_heard.items()):
                if now - heard > self.timeout:
                    self._die_from_thread(
                        f'party {pid} has been silent for {now - heard:.0f} s {self._where()} '
                        f'(--timeout {self.timeout:g}); stopping', EXIT_TIMEOUT)

    def _die_from_thread(self, message: str, code: int) -> None:
        self._stopping = self._failing = True
        loop = mpc._loop
        try:
            loop.call_soon_threadsafe(self._send_abort, code, message)
            time.sleep(0.3)   # a moment for the loop, if it runs, to send the reason
        except RuntimeError:
            pass
        _die(f'mpclab party {self.pid}: {message}', code)

    async def _keep_alive(self) -> None:
        frame = struct.pack('<qI', _KEEPALIVE_PC, 0)
        while not self._stopping:
            await asyncio.sleep(KEEPALIVE_EVERY)
            if self._silenced or self._stopping:
                return
            for peer in _peers():
                if _connected(peer):
                    peer.protocol.transport.write(frame)

    def _heard(self, pid: int) -> None:
        """Called for every chunk received from party pid."""
        self._last_heard[pid] = time.monotonic()
        if self._connected_at is not None:
            self._answered.add(pid)

    def _abort_from(self, pid: int, payload: bytes) -> None:
        """Party pid sent why it stops: stop with its reason (and its exit code)."""
        try:
            code, message = wire.loads(payload)
            code, message = int(code), str(message)
        except (wire.WireError, TypeError, ValueError):
            code, message = EXIT_PEER_LOST, 'it sent an unreadable reason'
        if not self._failing:
            self._stopping = True
            _die(f'mpclab party {self.pid}: party {pid} stopped: {message}', code)

    def _peer_lost(self, pid: int, exc) -> None:
        if self._stopping or self.phase_name == 'shutdown':
            return   # connections close one by one during a normal shutdown
        why = f' ({exc})' if exc else ''
        message = f'lost the connection to party {pid} {self._where()}{why}; stopping'
        if self._connected_at is None and mpc.options.ssl:
            message = (f'party {pid} closed the connection while setting up TLS: it may have '
                       f'refused this party\'s certificate (.config/party_{self.pid}.crt from '
                       f'another CA?){why}')
        # The peer may have sent its reason just before leaving, or this party may be about
        # to fail with the agreement round's reason: give either a moment to arrive.
        self._lost.setdefault(pid, (time.monotonic(), message))

    # -- connecting --------------------------------------------------------------------------
    def _install_loop_handlers(self) -> None:
        """Keep why connections fail, and stop at once on an exception inside MPyC's coroutines."""
        loop = mpc._loop
        create = loop.create_connection
        hosts = {(p.host, p.port): p.pid for p in mpc.parties}
        session = self

        async def create_connection(factory, host=None, port=None, **kwargs):
            try:
                return await create(factory, host, port, **kwargs)
            except ssl.SSLError as exc:
                # Not worth retrying, as MPyC would, forever: stop now, saying why.
                pid = hosts.get((host, port))
                reason = _tls_reason(exc)
                session._fail_soon(f'the TLS handshake with party {pid} at {host}:{port} failed: '
                                   f'{reason} (are both certificates from the same CA, '
                                   f'.config/mpyc_ca.crt?)', EXIT_INPUT)
                raise
            except OSError as exc:
                session._connect_errors[hosts.get((host, port))] = \
                    f'{host}:{port}: {exc.strerror or exc}'
                raise
        try:
            loop.create_connection = create_connection
        except AttributeError:   # a loop whose methods cannot be replaced: no details
            pass
        _watch_tls_handshakes()

        def handler(loop, context):
            exc = context.get('exception')
            if isinstance(exc, ssl.SSLError):
                peer = context.get('transport') and context['transport'].get_extra_info('peername')
                self._server_errors.append(f'a TLS handshake from {peer[0] if peer else "?"} '
                                           f'failed: {_tls_reason(exc)}')
                return
            if isinstance(exc, wire.WireError):
                self._fail_soon(f'refused a message from a peer: {exc}', EXIT_INPUT)
                return
            if isinstance(exc, ProtocolError):
                self._fail_soon(str(exc), exc.exit_code)
                return
            if exc is not None and not isinstance(exc, OSError):
                # An exception inside one of MPyC's coroutines: whoever awaits its result
                # would wait forever.  Stop now, and say what it was.
                import traceback
                if self.verbose:
                    traceback.print_exception(exc, file=sys.stderr)
                self._fail_soon(f'internal error: {type(exc).__name__}: {exc}', 1)
                return
            asyncoro.exception_handler(loop, context)
        loop.set_exception_handler(handler)

    def _connect_failure(self) -> str:
        extra = f'; {self._server_errors[-1]}' if self._server_errors else ''
        absent = [p for p in _peers() if not _connected(p)]
        if not absent:   # connected, but someone never answered the agreement round
            silent = [p.pid for p in _peers() if p.pid not in self._answered]
            return (f'party {", ".join(map(str, silent)) or "?"} did not answer within '
                    f'{self.connect_timeout:g} s of starting (is it a party of this run, '
                    f'running mpclab?){extra}')
        parts = []
        for p in absent:
            if p.pid > self.pid:   # this party connects to it
                why = self._connect_errors.get(p.pid, 'no answer')
                parts.append(f'party {p.pid} ({why})')
            else:
                parts.append(f'party {p.pid} (never connected here)')
        return (f'could not connect to {", ".join(parts)} within {self.connect_timeout:g} s'
                f'{extra}')

    async def _connect(self) -> None:
        self._install_loop_handlers()
        self._connect_deadline = time.monotonic() + self.connect_timeout
        with self.phase('connect'):
            try:
                await mpc.start()
            except OSError as exc:
                me = mpc.parties[self.pid]
                raise ProtocolError(f'cannot listen on port {me.port}: {exc.strerror or exc} '
                                    f'(another run on this machine? choose other ports with -P '
                                    f'or -B)') from None
        now = time.monotonic()
        self._connected_at = now
        for p in _peers():
            self._last_heard.setdefault(p.pid, now)

    # -- start and stop ----------------------------------------------------------------------
    async def start(self, input_error=None, public: dict | None = None) -> list[dict]:
        """Connect, then agree on options, approvals and everybody's input being fine.

        `input_error` is this party's failure found before connecting (an exception with an
        optional ``public`` attribute: the data-free reason the others may be told), or None.
        `public` is extra data-free information every party learns (e.g. column names).
        Returns every party's `public`.  Raises ProtocolError at every party if any party
        failed, if options differ, or if an approved analysis is not the run's.
        """
        Session.current = self
        _install_hooks()
        if self.n_parties > 1:
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name='mpclab-watchdog')
            self._watchdog.start()
        await self._connect()
        if self.n_parties > 1:
            self._keepalive = asyncio.ensure_future(self._keep_alive())
        status = None
        if input_error is not None:
            detail = str(input_error)
            status = {'public': getattr(input_error, 'public', detail),
                      'detail': detail if self.relay_details else None}
        mine = {'program': self.name, 'version': self.version, 'options': self.agreed,
                'fingerprint': self.fingerprint, 'approved': self.approved,
                'approved_options': self.approved_options, 'status': status,
                'public': public or {}}
        with self.phase('agree'):
            everyone = await mpc.transfer(mine)
        self._connect_deadline = None   # every party answered: it is a party of this run
        if input_error is not None:
            raise PublicError(str(input_error), getattr(input_error, 'exit_code', EXIT_INPUT))
        self._check_agreement(everyone)
        self._lost_check()
        return [theirs['public'] for theirs in everyone]

    def _check_agreement(self, everyone: list[dict]) -> None:
        for i, theirs in enumerate(everyone):
            status = theirs['status']
            if status is not None:
                reason = status['detail'] or status['public']
                raise PublicError(f'party {i} stopped before sending any data: {reason}')
        for i, theirs in enumerate(everyone):
            if theirs['program'] != self.name:
                raise PublicError(f'party {i} runs program {theirs["program"]!r}, '
                                    f'this party runs {self.name!r}')
            if theirs['version'] != self.version:
                raise PublicError(f'party {i} runs mpclab {theirs["version"]}, this party '
                                    f'runs {self.version}')
            diff = _first_difference(self.agreed, theirs['options'])
            if diff:
                key, here, there = diff
                raise PublicError(f'options differ between parties: {describe_difference(key)} '
                                    f'is {_show(here)} at party {self.pid} but {_show(there)} at '
                                    f'party {i}')
        for i, theirs in enumerate(everyone):
            approved = theirs['approved']
            if approved is None or _same_fingerprint(approved, self.fingerprint):
                continue
            message = (f'party {i} approved the analysis {approved[:16]}…, but this run is '
                       f'{self.fingerprint[:16]}…')
            diff = theirs['approved_options'] and _first_difference(theirs['approved_options'],
                                                                    self.agreed)
            if diff:
                key, was, now = diff
                message += f': {describe_difference(key)} is {_show(now)}, approved {_show(was)}'
            else:
                message += ' (run `mpclab approve` on both study files to compare)'
            raise PublicError(message)

    def _lost_check(self) -> None:
        if self._lost:   # everyone agreed, yet a peer has gone: it crashed
            pid, (_, message) = next(iter(self._lost.items()))
            raise ProtocolError(message, EXIT_PEER_LOST)

    async def stop(self) -> None:
        with self.phase('shutdown'):
            await mpc.shutdown()
        self._finish()

    def _finish(self) -> None:
        self._stopping = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        Session.current = None

    async def fail(self, message: str, code: int) -> None:
        """Tell every peer why this party stops, give the messages a moment, and exit."""
        if self._failing:
            return
        self._failing = True
        self._stopping = True
        self._send_abort(code, message)
        for _ in range(50):   # up to 0.5 s for the reason to leave
            if all(not _connected(p) or p.protocol.transport.get_write_buffer_size() == 0
                   for p in _peers()):
                break
            await asyncio.sleep(0.01)
        _die(f'mpclab party {self.pid}: {message}', code)

    def _fail_soon(self, message: str, code: int) -> None:
        if not self._failing:
            self.pending_failure = (message, code)
            asyncio.ensure_future(self.fail(message, code))

    def _send_abort(self, code: int, message: str) -> None:
        payload = wire.dumps((code, message))
        frame = struct.pack(f'<qI{len(payload)}s', _ABORT_PC, len(payload), payload)
        for peer in _peers():
            if _connected(peer):
                try:
                    peer.protocol.transport.write(frame)
                except Exception:  # noqa: BLE001 -- a closing transport: nothing more to tell
                    pass

    # -- bytes -------------------------------------------------------------------------------
    def bytes_sent(self) -> list[int]:
        """Bytes this party has sent to each party so far, as MPyC counts them."""
        return [getattr(getattr(p, 'protocol', None), 'nbytes_sent', 0) if p.pid != self.pid else 0
                for p in mpc.parties]

    async def all_bytes_sent(self) -> list[int]:
        """Total bytes sent by every party (one small extra round)."""
        with self.phase('report'):
            return await mpc.transfer(sum(self.bytes_sent()))


def silence_this_party() -> None:
    """Stop this party's keep-alives and watchdog (fault injection: a hung party)."""
    session = Session.current
    if session is not None:
        session._silenced = True


def _watch_tls_handshakes() -> None:
    """Note every failed TLS handshake (asyncio reports those only in debug mode)."""
    from asyncio import sslproto
    protocol = sslproto.SSLProtocol
    if getattr(protocol, '_mpclab_watched', False):
        return
    complete = protocol._on_handshake_complete

    def _on_handshake_complete(self, handshake_exc):
        session = Session.current
        if handshake_exc is not None and session is not None:
            transport = getattr(self, '_transport', None)
            peer = transport.get_extra_info('peername') if transport is not None else None
            reason = (_tls_reason(handshake_exc) if isinstance(handshake_exc, ssl.SSLError)
                      else str(handshake_exc))
            session._server_errors.append(f'a TLS handshake with {peer[0] if peer else "?"} '
                                          f'failed: {reason}')
        return complete(self, handshake_exc)
    protocol._on_handshake_complete = _on_handshake_complete
    protocol._mpclab_watched = True


def _tls_reason(exc: ssl.SSLError) -> str:
    verify = getattr(exc, 'verify_message', None)
    if verify:
        return f'certificate verify failed: {verify}'
    return (exc.reason or str(exc)).replace('_', ' ').lower()


def _show(value) -> str:
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def _same_fingerprint(approved: str, actual: str | None) -> bool:
    return actual is not None and approved.strip().lower() == actual.lower()


def _first_difference(a: dict, b: dict):
    for key in [*a, *(k for k in b if k not in a)]:
        if a.get(key) != b.get(key):
            return key, a.get(key), b.get(key)
    return None


class _ControlSink:
    """Stands in MPyC's receive buffer for a control program counter, so that MPyC hands
    every keep-alive and abort frame to the session instead of buffering it."""

    __slots__ = ('exchanger', 'pc')

    def __init__(self, exchanger, pc):
        self.exchanger, self.pc = exchanger, pc

    def set_result(self, payload):
        self.exchanger.buffers[self.pc] = self   # MPyC popped it: stand in again
        session = Session.current
        if session is not None and self.pc == _ABORT_PC and self.exchanger.peer_pid is not None:
            session._abort_from(self.exchanger.peer_pid, payload)


_hooks_installed = False


def _install_hooks() -> None:
    """Let MPyC's connections tell the current session about its peers."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    exchanger = asyncoro.MessageExchanger
    init, lost, received = exchanger.__init__, exchanger.connection_lost, exchanger.data_received

    def __init__(self, rt, peer_pid=None):
        init(self, rt, peer_pid)
        for pc in (_KEEPALIVE_PC, _ABORT_PC):
            self.buffers[pc] = _ControlSink(self, pc)

    def connection_lost(self, exc):
        session = Session.current
        if session is not None and self.peer_pid is not None and session.phase_name != 'shutdown':
            # Unexpected: this party stops shortly.  MPyC's own handling would raise exc in
            # the event loop, or let a party that lost every peer carry on alone.
            if not session._failing:
                session._peer_lost(self.peer_pid, exc)
            return None
        return lost(self, exc)

    def data_received(self, data):
        result = received(self, data)
        session = Session.current
        if session is not None and self.peer_pid is not None:
            session._heard(self.peer_pid)
        return result

    exchanger.__init__ = __init__
    exchanger.connection_lost = connection_lost
    exchanger.data_received = data_received
