"""Delaying TCP relays that make local MPyC runs see LAN or WAN links.

Linux ``netem`` is not available on these machines, so links are simulated in user space:
a :class:`DelayRelay` listens on a loopback port, connects to a target port and forwards
bytes both ways, delivering every chunk a fixed one-way latency after it was read, in
order, optionally at a limited bandwidth (token bucket).

MPyC party ``i`` listens on its own port and every party ``j < i`` connects to it, so one
relay per pair ``j < i`` puts every link behind a delay: party ``j`` is told that party
``i`` lives at the relay's port, while party ``i`` listens on its real port.  Each party
therefore gets its own ``-P`` list; :func:`start_relays` builds them::

    relays, argv_for = start_relays(3, base_port=0, latency_s=0.020)
    # party i runs: python prog.py *argv_for(i) -I i
    relays.stop()

From a shell, ``python -m mpclab.netsim --parties 3 --base-port 11365 --latency-ms 3``
runs the relays until interrupted and prints each party's arguments.

What is simulated: one-way latency and bandwidth per direction of every link, for the
bytes sent (TLS handshakes included).  What is not: the TCP handshake itself (the relay
accepts at once), packet loss, jitter, and the slow start of real TCP.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import signal
import threading

from mpclab.launch import free_ports

CHUNK = 1 << 16  # bytes read at a time, and the default burst of the token bucket
# The event loop wakes up to about 1 ms late (epoll rounds its timeout up to whole ms, and
# the kernel adds its own wake-up latency), so a relay sleeps until this long before a
# chunk is due and then polls the loop until it is: sub-ms accuracy for a bit of CPU.
SPIN = 0.0015
HOST = '127.0.0.1'


class TokenBucket:
    """Rate limiter: rate bytes/s on average, bursts of at most burst bytes.

    ``delay(n, now)`` takes n <= burst bytes from the bucket and returns how long to wait
    before they may leave.  Time is passed in, so the bucket is plain arithmetic.
    """

    def __init__(self, rate: float, burst: int = CHUNK):
        if rate <= 0 or burst <= 0:
            raise ValueError('rate and burst must be positive')

        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = None

    def delay(self, n: int, now: float) -> float:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + self.rate * (now - self._last))
        self._last = now
        if self._tokens >= n:
            self._tokens -= n
            return 0.0

        wait = (n - self._tokens) / self.rate
        self._tokens = 0
        self._last = now + wait
        return wait


class _DelayLine:
    """FIFO of (due time, chunk) holding at most about max_bytes, for backpressure."""

    def __init__(self, max_bytes):
        self._items = collections.deque()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._changed = asyncio.Condition()

    async def put(self, due, data):
        async with self._changed:
            await self._changed.wait_for(lambda: self._bytes < self._max_bytes)
            self._items.append((due, data))
            self._bytes += len(data) if data else 0
            self._changed.notify_all()

    async def get(self):
        async with self._changed:
            await self._changed.wait_for(lambda: self._items)
            due, data = self._items.popleft()
            self._bytes -= len(data) if data else 0
            self._changed.notify_all()
            return due, data


class DelayRelay:
    """TCP relay from (listen_host, listen_port) to (target_host, target_port).

    Parameters
    ----------
    target_port : int
        Port to forward to.
    latency_s : float, default 0
        One-way delay added to every chunk, in seconds (both directions).
    bandwidth : float, optional
        Bytes per second per direction; None for no limit.
    burst : int, default 65536
        Token bucket size in bytes, when bandwidth is set.
    target_host, listen_host : str, default '127.0.0.1'
    listen_port : int, default 0
        0 lets the OS pick; the port in use is ``port`` after ``start()``.
    connect_timeout : float, default 60
        How long to keep retrying the target after a client has connected.  The client's
        connection is already accepted then (MPyC considers itself connected), so the
        relay waits for a target that is not listening yet instead of failing.
    max_buffer : int, default 16 MiB
        Bytes in flight per direction before the relay stops reading from the sender.
    spin : float, default 0.0015
        Seconds before a chunk is due during which the relay polls instead of sleeping,
        as the event loop's timers are only accurate to about 1 ms; 0 saves that CPU
        at the price of delays up to about 1 ms too long.

    Attributes
    ----------
    port : int
        Listening port (after ``start``).
    bytes_up, bytes_down : int
        Bytes delivered to the target and back to the clients, over all connections.
    connections : int
        Client connections accepted so far.

    ``start``/``stop`` are coroutines, to run on an event loop; :func:`start_relays`
    runs relays on a background thread.
    """

    def __init__(self, target_port, latency_s=0.0, bandwidth=None, *, burst=CHUNK,
                 target_host=HOST, listen_host=HOST, listen_port=0, connect_timeout=60.0,
                 max_buffer=1 << 24, spin=SPIN):
        if latency_s < 0:
            raise ValueError('latency_s must be nonnegative')

        self.target = (target_host, target_port)
        self.listen = (listen_host, listen_port)
        self.latency_s = latency_s
        self.bandwidth = bandwidth
        self.burst = burst
        self.connect_timeout = connect_timeout
        self.max_buffer = max_buffer
        self.spin = spin
        self.port = None
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self._server = None
        self._handlers = set()

    def __repr__(self):
        return (f'DelayRelay({self.listen[0]}:{self.port} -> {self.target[0]}:{self.target[1]},'
                f' latency {self.latency_s * 1000:g} ms)')

    async def start(self):
        """Start listening; returns self, with ``port`` set."""
        self._server = await asyncio.start_server(self._handle, *self.listen)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        """Stop listening and drop all connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            # Since Python 3.12 this also waits for the connections, hence last.
            await self._server.wait_closed()

    async def _connect(self):
        loop = asyncio.get_running_loop()
        deadline = None if self.connect_timeout is None else loop.time() + self.connect_timeout
        while True:
            try:
                return await asyncio.open_connection(*self.target)
            except OSError:
                if deadline is not None and loop.time() > deadline:
                    raise
            await asyncio.sleep(0.05)

    async def _handle(self, client_reader, client_writer):
        task = asyncio.current_task()
        self._handlers.add(task)
        self.connections += 1
        writers = [client_writer]
        try:
            target_reader, target_writer = await self._connect()
            writers.append(target_writer)
            directions = [asyncio.create_task(self._forward(client_reader, target_writer, 'up')),
                          asyncio.create_task(self._forward(target_reader, client_writer, 'down'))]
            try:
                # A direction ends cleanly at end of stream; an error ends the connection.
                await asyncio.wait(directions, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for t in directions:
                    t.cancel()
                await asyncio.gather(*directions, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for w in writers:
                w.close()
            for w in writers:
                with contextlib.suppress(OSError, asyncio.CancelledError):
                    await w.wait_closed()
            self._handlers.discard(task)

    async def _forward(self, reader, writer, direction):
        line = _DelayLine(self.max_buffer)
        feeder = asyncio.create_task(self._feed(reader, line))
        try:
            await self._deliver(line, writer, direction)
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)

    async def _feed(self, reader, line):
        loop = asyncio.get_running_loop()
        bucket = self.bandwidth and TokenBucket(self.bandwidth, self.burst)
        size = min(CHUNK, self.burst) if bucket else CHUNK
        try:
            while data := await reader.read(size):
                if bucket:
                    # Wait here, not at delivery: the sender then feels the slow link.
                    wait = bucket.delay(len(data), loop.time())
                    if wait:
                        await asyncio.sleep(wait)
                await line.put(loop.time() + self.latency_s, data)
        except OSError:
            pass  # a reset ends the stream like a close, one latency later
        await line.put(loop.time() + self.latency_s, None)

    async def _deliver(self, line, writer, direction):
        loop = asyncio.get_running_loop()
        while True:
            due, data = await line.get()
            wait = due - loop.time()
            if wait > self.spin:
                await asyncio.sleep(wait - self.spin)
            while loop.time() < due:
                await asyncio.sleep(0)
            if data is None:
                if writer.can_write_eof():
                    writer.write_eof()  # half-close, as the sender did
                return

            writer.write(data)
            await writer.drain()
            if direction == 'up':
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)


class _LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name='mpclab-netsim')
        self._thread.start()

    def run(self, coro, timeout=None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Relays(list):
    """The relays of :func:`start_relays`, indexed like ``pairs``; ``stop()`` ends them."""

    def __init__(self, relays, pairs, runner=None):
        super().__init__(relays)
        self.pairs = pairs  # (j, i): the relay of connector j to listener i
        self._runner = runner

    def relay(self, j: int, i: int) -> 'DelayRelay':
        return self[self.pairs.index((min(i, j), max(i, j)))]

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.run(_stop_all(self))
            self._runner.close()
            self._runner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def plan(n_parties: int, base_port: int = 0):
    """Return (party ports, relay ports, pairs) for n parties.

    With base_port, party i listens on base_port + i and the relays take the next ports,
    pair by pair in the order of ``pairs``; with base_port 0 the OS picks the party
    ports and the relay ports are 0 (chosen when the relays start).
    """
    pairs = list(itertools.combinations(range(n_parties), 2))
    if base_port:
        party_ports = [base_port + i for i in range(n_parties)]
        relay_ports = [base_port + n_parties + k for k in range(len(pairs))]
    else:
        party_ports = free_ports(n_parties)
        relay_ports = [0] * len(pairs)
    return party_ports, relay_ports, pairs


def party_argv(i: int, party_ports, relays, host: str = HOST) -> list[str]:
    """MPyC ``-P`` arguments of party i: relays for the parties it connects to."""
    argv = []
    for k, port in enumerate(party_ports):
        if k > i:
            port = relays.relay(i, k).port
        argv += ['-P', f'{host}:{port}']
    return argv


async def _stop_all(relays):
    await asyncio.gather(*(r.stop() for r in relays))


async def _start_all(party_ports, relay_ports, pairs, latency_s, bandwidth, **kwargs):
    relays = [DelayRelay(party_ports[i], latency_s, bandwidth, listen_port=port, **kwargs)
              for (j, i), port in zip(pairs, relay_ports)]
    await asyncio.gather(*(r.start() for r in relays))
    return relays


def start_relays(n_parties: int, base_port: int = 0, latency_s: float = 0.0,
                 bandwidth: float | None = None, **kwargs):
    """Start one relay per pair of parties on a background thread.

    Parameters
    ----------
    n_parties : int
    base_port : int, default 0
        Party i listens on base_port + i, relays on the ports after those; 0 picks free
        ports (use 0 in tests).
    latency_s : float
        One-way latency of every link.
    bandwidth : float, optional
        Bytes per second per direction of every link.
    **kwargs
        Passed to :class:`DelayRelay`.

    Returns
    -------
    relays : Relays
        List of the relays with ``stop()``; also a context manager.
    argv_for_party : callable
        ``argv_for_party(i)`` is the list of ``-P host:port`` arguments for party i.
    """
    party_ports, relay_ports, pairs = plan(n_parties, base_port)
    runner = _LoopThread()
    try:
        relays = runner.run(_start_all(party_ports, relay_ports, pairs, latency_s, bandwidth,
                                       **kwargs))
    except BaseException:
        runner.close()
        raise

    relays = Relays(relays, pairs, runner)
    return relays, lambda i: party_argv(i, party_ports, relays)


async def serve(parties: int = 3, base_port: int = 11365, latency_ms: float = 3.0,
                bandwidth_mbps: float | None = None) -> None:
    """Run relays between `parties` local parties until SIGINT/SIGTERM, printing their -P options."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bandwidth = bandwidth_mbps and bandwidth_mbps * 1e6 / 8
    party_ports, relay_ports, pairs = plan(parties, base_port)
    relays = Relays(await _start_all(party_ports, relay_ports, pairs, latency_ms / 1000,
                                     bandwidth), pairs)
    link = f'{latency_ms:g} ms one way'
    if bandwidth:
        link += f', {bandwidth_mbps:g} Mbit/s'
    print(f'{len(relays)} relays running ({link}); party arguments:')
    for i in range(parties):
        print(f'  party {i}:', ' '.join(party_argv(i, party_ports, relays) + ['-I', str(i)]))
    print('Stop with Ctrl-C.', flush=True)

    await stop.wait()
    await _stop_all(relays)
    for (j, i), r in zip(pairs, relays):
        print(f'link {j}->{i}: {r.connections} connections, {r.bytes_up} bytes up,'
              f' {r.bytes_down} bytes down')


def add_arguments(parser) -> None:
    """Add the options of ``mpclab netsim`` to an argparse parser."""
    parser.add_argument('--parties', type=int, default=3, help='number of parties (default 3)')
    parser.add_argument('--base-port', type=int, default=11365,
                        help='party i listens on BASE_PORT+i, relays on the ports after'
                             ' (default 11365, as MPyC)')
    parser.add_argument('--latency-ms', type=float, default=3.0,
                        help='one-way latency per link in ms (default 3)')
    parser.add_argument('--bandwidth-mbps', type=float,
                        help='bandwidth per link and direction in Mbit/s (default unlimited)')


def main(args) -> int:
    """Run ``mpclab netsim`` with parsed options; returns an exit code."""
    asyncio.run(serve(args.parties, args.base_port, args.latency_ms, args.bandwidth_mbps))
    return 0


if __name__ == '__main__':
    import sys

    from mpclab.cli import main as cli
    sys.exit(cli(['netsim', *sys.argv[1:]]))
