"""Starting the parties of a run as processes on this machine: the one way mpclab does it.

Used by the Python API, the tests, the experiments and `mpclab.netsim`.  Every party is its
own process, started as on separate hosts (``-P host:port`` once per party, ``-I i``), with
its standard output and error written to files, so that no party ever blocks on a full pipe
and a failing party's message is never lost.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple, Sequence

__all__ = ['free_ports', 'free_base_port', 'addresses', 'program_command', 'PartyResult',
           'Parties', 'run_parties', 'run_local']

HOST = '127.0.0.1'


def _bindable(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(n: int, host: str = HOST) -> list[int]:
    """n distinct TCP ports that are free now (the OS picks them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            socks.append(s)   # keep all open so the OS hands out n different ports
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_base_port(n: int, host: str = HOST) -> int:
    """A base port b with b, b+1, ..., b+n-1 free now (MPyC's -B numbers ports this way)."""
    rng = random.Random()   # port numbers, not cryptography
    for _ in range(500):
        base = rng.randrange(20000, 60000 - n)
        if all(_bindable(base + i, host) for i in range(n)):
            return base
    raise RuntimeError(f'no {n} consecutive free ports found')


def addresses(n: int, ports: Sequence[int] | None = None, host: str = HOST) -> list[str]:
    """MPyC's -P arguments for n local parties (free ports unless given)."""
    ports = ports or free_ports(n, host)
    return [a for port in ports for a in ('-P', f'{host}:{port}')]


def program_command(program: str) -> list[str]:
    """The command that runs a program: an mpclab program by name, or a Python file."""
    if program.endswith('.py'):
        return [sys.executable, program]
    return [sys.executable, '-m', 'mpclab', program]


class PartyResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


class Parties:
    """Processes of the parties of one run, output in files of `directory`.

    Parameters
    ----------
    argvs : list of argv lists
        One full command per party, in party order.
    directory : str, optional
        Where ``party{i}.out`` / ``party{i}.err`` go (default: a temporary directory).
    cwd : str or list of str, optional
        Working directory, per party if a list (MPyC's --ssl reads ``.config/`` there).
    env : dict, optional
        Environment of every party.
    """

    def __init__(self, argvs: Sequence[Sequence[str]], directory: str | None = None,
                 cwd: str | Sequence[str] | None = None, env: dict | None = None):
        self._tmp = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix='mpclab-parties-')
            directory = self._tmp.name
        self.directory = directory
        self.processes: list[subprocess.Popen] = []
        self._files = []
        cwds = list(cwd) if isinstance(cwd, (list, tuple)) else [cwd] * len(argvs)
        for i, (argv, cwd) in enumerate(zip(argvs, cwds)):
            out = open(os.path.join(directory, f'party{i}.out'), 'w+', encoding='utf-8')
            err = open(os.path.join(directory, f'party{i}.err'), 'w+', encoding='utf-8')
            self._files.append((out, err))
            self.processes.append(subprocess.Popen(list(argv), stdout=out, stderr=err,
                                                   stdin=subprocess.DEVNULL,
                                                   cwd=None if cwd is None else str(cwd), env=env))
        self.killed: set[int] = set()

    def wait(self, timeout: float = 600) -> list[PartyResult]:
        """Wait for every party; after `timeout` seconds kill the ones still running."""
        deadline = time.monotonic() + timeout
        for i, p in enumerate(self.processes):
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.killed.add(i)
        return self.results()

    def kill(self) -> None:
        for i, p in enumerate(self.processes):
            if p.poll() is None:
                p.kill()
                p.wait()
                self.killed.add(i)

    def results(self) -> list[PartyResult]:
        out = []
        for i, (p, (o, e)) in enumerate(zip(self.processes, self._files)):
            o.seek(0)
            e.seek(0)
            err = e.read() + ('\n[killed: did not finish in time]' if i in self.killed else '')
            out.append(PartyResult(p.returncode, o.read(), err))
        return out

    def close(self) -> None:
        self.kill()
        for o, e in self._files:
            o.close()
            e.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> 'Parties':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_parties(argvs: Sequence[Sequence[str]], timeout: float = 600, **kwargs) -> list[PartyResult]:
    """Run one command per party to the end; see `Parties`."""
    with Parties(argvs, **kwargs) as parties:
        return parties.wait(timeout)


def local_argvs(program: str, args_per_party: Sequence[Sequence[str]],
                mpyc_args: Sequence[str] = ()) -> list[list[str]]:
    """One command per party for a run on this machine, every party its own process."""
    n = len(args_per_party)
    where = addresses(n)
    command = program_command(program)
    return [[*command, *where, '-I', str(i), *mpyc_args, *args]
            for i, args in enumerate(args_per_party)]


def run_local(program: str, args_per_party: Sequence[Sequence[str]], timeout: float = 600,
              mpyc_args: Sequence[str] = (), **kwargs) -> list[PartyResult]:
    """Run `program` with one process per party on this machine (-P list, -I i)."""
    return run_parties(local_argvs(program, args_per_party, mpyc_args), timeout, **kwargs)
