import hashlib
import os
import pathlib
import re
import socket
import socketserver
import statistics
import sys
import threading
import time

import pytest

from mpclab.launch import free_ports, run_parties
from mpclab.netsim import DelayRelay, TokenBucket, _LoopThread, start_relays

PROGRAMS = pathlib.Path(__file__).parent / 'programs'


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(1 << 16):
            self.request.sendall(data)


class _Sink(socketserver.BaseRequestHandler):
    """Reads to end of stream, then answers with the byte count and SHA-256."""

    def handle(self):
        h, n = hashlib.sha256(), 0
        while data := self.request.recv(1 << 16):
            h.update(data)
            n += len(data)
        self.request.sendall(f'{n} {h.hexdigest()}'.encode())


def _server(handler, port=0):
    srv = socketserver.ThreadingTCPServer(('127.0.0.1', port), handler, bind_and_activate=False)
    srv.daemon_threads = True
    srv.allow_reuse_address = True
    return srv


def _serve(srv):
    srv.server_bind()
    srv.server_activate()
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    return srv


@pytest.fixture
def loop_thread():
    lt = _LoopThread()
    yield lt
    lt.close()


@pytest.fixture
def relay_to(loop_thread):
    """relay_to(server, **kw): a started DelayRelay to server, stopped at the end."""
    relays = []

    def make(target_port, **kwargs):
        relay = loop_thread.run(DelayRelay(target_port, **kwargs).start())
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        loop_thread.run(relay.stop())


def _connect(port):
    s = socket.create_connection(('127.0.0.1', port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _recv_until_closed(s):
    chunks = []
    while data := s.recv(1 << 16):
        chunks.append(data)
    return b''.join(chunks)


def _round_trips(port, n=8):
    rtts = []
    with _connect(port) as s:
        for _ in range(n + 1):
            t = time.perf_counter()
            s.sendall(b'ping')
            got = b''
            while len(got) < 4:
                got += s.recv(16)
            rtts.append(time.perf_counter() - t)
    return rtts[1:]  # the first includes the relay's connection to the target


def test_token_bucket():
    bucket = TokenBucket(rate=1000, burst=100)
    assert bucket.delay(100, now=0.0) == 0  # a full bucket lets a burst through
    assert bucket.delay(50, now=0.0) == pytest.approx(0.05)
    assert bucket.delay(100, now=0.05) == pytest.approx(0.1)
    assert bucket.delay(100, now=10.0) == 0  # refilled, but never above burst
    assert bucket.delay(1, now=10.0) == pytest.approx(0.001)


@pytest.mark.parametrize('latency', [0.0, 0.003, 0.05])
def test_round_trip_adds_twice_the_latency(relay_to, latency):
    srv = _serve(_server(_Echo))
    try:
        relay = relay_to(srv.server_address[1], latency_s=latency)
        rtt = statistics.median(_round_trips(relay.port))
    finally:
        srv.shutdown()
    assert 2 * latency - 0.002 <= rtt <= 2 * latency + 0.05
    assert relay.bytes_up == relay.bytes_down == 4 * 9
    assert relay.connections == 1


def test_large_transfer_keeps_bytes_in_order(relay_to):
    data = os.urandom(5 << 20)
    srv = _serve(_server(_Echo))
    try:
        relay = relay_to(srv.server_address[1], latency_s=0.005)
        with _connect(relay.port) as s:
            sender = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
            sender.start()
            echoed = _recv_until_closed(s)  # the echo server closes after our end of stream
            sender.join()
    finally:
        srv.shutdown()
    assert echoed == data
    assert relay.bytes_up == relay.bytes_down == len(data)


def test_bandwidth_limit(relay_to):
    rate, size = 2e6, 1 << 20  # 2 MB/s, 1 MiB: about half a second
    data = os.urandom(size)
    srv = _serve(_server(_Sink))
    try:
        relay = relay_to(srv.server_address[1], latency_s=0.001, bandwidth=rate)
        with _connect(relay.port) as s:
            t = time.perf_counter()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # the half-close must travel through the relay
            reply = _recv_until_closed(s).decode()
            elapsed = time.perf_counter() - t
    finally:
        srv.shutdown()
    assert reply == f'{size} {hashlib.sha256(data).hexdigest()}'
    ideal = (size - relay.burst) / rate
    assert 0.9 * ideal <= elapsed <= 2 * ideal + 0.5


def test_relay_waits_for_target_that_starts_late(relay_to):
    # MPyC takes an accepted connection as established, so the relay must not drop a
    # client just because the party behind it is not listening yet.
    port = free_ports(1, host='127.0.0.1')[0]
    relay = relay_to(port, latency_s=0.001)
    srv = _server(_Echo, port)
    with _connect(relay.port) as s:
        s.sendall(b'early')
        time.sleep(0.3)
        _serve(srv)
        try:
            got = b''
            while len(got) < 5:
                got += s.recv(16)
        finally:
            srv.shutdown()
    assert got == b'early'


def test_argv_for_party_routes_each_link_through_its_relay():
    relays, argv_for = start_relays(4, latency_s=0.0)
    try:
        hosts = [[a.split(':') for a in argv_for(i)[1::2]] for i in range(4)]
        assert all(argv_for(i)[0::2] == ['-P'] * 4 for i in range(4))
        own = [int(hosts[i][i][1]) for i in range(4)]  # each party's real port
        assert len(relays) == 6 and len(set(own)) == 4
        for j in range(4):
            for i in range(4):
                port = int(hosts[j][i][1])
                if i > j:  # j connects to i: through the relay of link (j, i)
                    relay = relays.relay(j, i)
                    assert port == relay.port and relay.target == ('127.0.0.1', own[i])
                else:  # j never connects to i; the real port is given
                    assert port == own[i]
    finally:
        relays.stop()


def _run_rounds(rounds, latency=None):
    program = str(PROGRAMS / 'rounds.py')
    if latency is None:
        ports = free_ports(3)
        argv = lambda i: [a for p in ports for a in ('-P', f'127.0.0.1:{p}')]  # noqa: E731
        relays = []
    else:
        relays, argv = start_relays(3, latency_s=latency)
    try:
        results = run_parties([[sys.executable, program, *argv(i), '-I', str(i),
                                '--rounds', str(rounds)] for i in range(3)], timeout=120)
    finally:
        if relays:
            relays.stop()
    for r in results:
        assert r.returncode == 0, r.stdout
        assert 'sum = 6' in r.stdout
    times = [float(re.search(r'rounds time = ([\d.]+)', r.stdout)[1]) for r in results]
    return max(times), relays


def test_mpyc_parties_through_relays():
    rounds, latency = 10, 0.02
    fast, _ = _run_rounds(rounds)
    slow, relays = _run_rounds(rounds, latency)
    # Every opening waits for at least one message over a delayed link.
    assert slow >= rounds * latency
    assert slow > fast
    for relay in relays:
        assert relay.connections == 1 and relay.bytes_up > 0 and relay.bytes_down > 0


def test_cli_prints_party_arguments():
    import subprocess
    root = pathlib.Path(__file__).parents[1]
    for _ in range(3):   # the ports just after a free one may be taken by then: try others
        base = free_ports(1)[0]  # a port the OS would hand out now, well away from 11365
        proc = subprocess.Popen([sys.executable, '-m', 'mpclab.netsim', '--parties', '3',
                                 '--base-port', str(base), '--latency-ms', '1'],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = [proc.stdout.readline() for _ in range(5)]
        finally:
            proc.terminate()
            rest, _ = proc.communicate(timeout=30)
        if 'address already in use' not in (''.join(lines) + rest).lower():
            break
    assert lines[0].startswith('3 relays running')
    assert lines[1].split() == ['party', '0:', '-P', f'127.0.0.1:{base}',
                                '-P', f'127.0.0.1:{base + 3}', '-P', f'127.0.0.1:{base + 4}',
                                '-I', '0']
    assert f'-P 127.0.0.1:{base + 5} -I 1' in lines[2]
    assert lines[3].split()[2:8] == ['-P', f'127.0.0.1:{base}', '-P', f'127.0.0.1:{base + 1}',
                                     '-P', f'127.0.0.1:{base + 2}']
    assert proc.returncode == 0 and 'link 0->1: 0 connections' in rest


def test_mpyc_tls_through_relays(tmp_path):
    from mpclab.certs import generate
    generate(3, tmp_path / '.config')
    relays, argv = start_relays(3, latency_s=0.005)
    try:
        results = run_parties([[sys.executable, str(PROGRAMS / 'ssl_sum.py'), *argv(i), '-I',
                                str(i), '--ssl'] for i in range(3)], cwd=str(tmp_path), timeout=120)
    finally:
        relays.stop()
    for r in results:
        assert r.returncode == 0, r.stdout
        assert 'All 3 parties connected via SSL' in r.stdout and 'sum = 6' in r.stdout
    assert all(relay.connections == 1 for relay in relays)
