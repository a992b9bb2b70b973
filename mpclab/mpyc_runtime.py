"""MPyC's runtime, set up the way an mpclab program needs it.

MPyC reads the command line and sets itself up when ``mpyc.runtime`` is first imported, and
with ``-M m`` it starts the other local parties right then, with the same command line.  So
whatever mpclab changes about MPyC's defaults must be in ``sys.argv`` before that import
(`start`):

* ``-K``: MPyC's statistical security parameter, by default the smallest that leaves every
  masked opening 40 bits of hiding (``40 + ceil(log2 C(m, t))``: 42 for 3 parties), where
  MPyC's own default of 30 leaves 28;
* ``-B``: with ``-M`` and neither ``-B`` nor ``-P``, free ports, so that two local runs
  started together never meet (MPyC would use its fixed ports 11365, ...);
* MPyC's log lines go to stderr, and only with ``--verbose``.

After the import: the MPyC version is checked (mpclab uses some of its internals), messages
from peers are decoded as plain data only (`mpclab.wire`), and MPyC's own masked openings are
counted (`mpclab.security`).
"""

from __future__ import annotations

import importlib.metadata
import ipaddress
import logging
import os
import sys

from mpclab.options import security_parameter

__all__ = ['MPYC_VERSION', 'check_mpyc_version', 'start', 'party_count', 'plaintext_hosts',
           'check_tls_files', 'worker_limit']

MPYC_VERSION = '0.11'   # the version whose internals fastmpc, wire and session rely on


def check_mpyc_version() -> None:
    """Raise ImportError unless the installed MPyC is the version mpclab was written against."""
    try:
        found = importlib.metadata.version('mpyc')
    except importlib.metadata.PackageNotFoundError:
        raise ImportError('mpclab needs MPyC: pip install mpyc==' + MPYC_VERSION) from None
    if found != MPYC_VERSION:
        raise ImportError(f'mpclab relies on internals of MPyC {MPYC_VERSION}, but MPyC {found} is '
                          f'installed: pip install mpyc=={MPYC_VERSION}')


def configure_logging(verbose: bool) -> None:
    """Log to stderr, MPyC's info lines only if verbose; before MPyC's own logging set-up
    (at its first import), which would write to stdout."""
    logging.basicConfig(format='{asctime} {message}', style='{', stream=sys.stderr,
                        level=logging.INFO if verbose else logging.WARNING)
    if not verbose:
        # asyncio warns "socket.send() raised exception." when a peer that has stopped is
        # still written to; the party's own one-line reason says what happened
        logging.getLogger('asyncio').setLevel(logging.ERROR)


def _mpyc_parser():
    import mpyc
    return mpyc._get_arg_parser()


def party_count(mpyc_args: list[str]) -> tuple[int, int]:
    """(parties, threshold) that MPyC will run with for these arguments."""
    opts, _ = _mpyc_parser().parse_known_args(mpyc_args)
    if opts.parties:
        m = len(opts.parties)
    elif opts.config:
        import configparser
        config = configparser.ConfigParser()
        config.read(os.path.join('.config', opts.config))
        m = len(config.sections())
    else:
        m = opts.M or 1
    t = opts.threshold if opts.threshold is not None else (m - 1) // 2
    return m, t


def mpyc_defaults(mpyc_args: list[str]) -> list[str]:
    """The arguments that give MPyC mpclab's defaults where `mpyc_args` set none."""
    from mpclab.launch import free_base_port
    opts, _ = _mpyc_parser().parse_known_args(mpyc_args)
    extra = []
    if '-K' not in mpyc_args and not any(a.startswith(('--sec-param', '-K')) for a in mpyc_args):
        m, t = party_count(mpyc_args)
        extra += ['-K', str(security_parameter(m, t))]
    if (opts.M or 1) > 1 and opts.index is None and not opts.base_port and not opts.parties \
            and not opts.config:
        extra += ['-B', str(free_base_port(opts.M))]
    return extra


def unknown_arguments(mpyc_args: list[str]) -> list[str]:
    """The arguments neither mpclab's program nor MPyC understands."""
    _, rest = _mpyc_parser().parse_known_args(mpyc_args)
    return rest


def start(argv: list[str], mpyc_args: list[str], verbose: bool = False):
    """Import MPyC's runtime for a program run; returns ``mpc``.

    `argv` is the whole command line (MPyC gives it to the parties it starts with -M),
    `mpyc_args` the part of it that is MPyC's.
    """
    check_mpyc_version()
    configure_logging(verbose)
    global _workers
    opts, _ = _mpyc_parser().parse_known_args(mpyc_args)
    _workers = opts.workers or None
    sys.argv = [*argv, *mpyc_defaults(mpyc_args)]
    from mpyc.runtime import mpc
    from mpclab import security, wire
    wire.install()
    security.install_mpyc_counter(mpc)
    if not verbose:
        mpc.logging(False)
    return mpc


_workers: int | None = None


def worker_limit() -> int:
    """How many cores this party's bulk work may use: MPyC's -W if given, else all of them."""
    if _workers:
        return _workers
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1


def _is_loopback(host: str) -> bool:
    if host in ('localhost', ''):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False   # a name: it may resolve anywhere, so it counts as another host


def plaintext_hosts(mpc) -> list[str]:
    """Addresses of other parties that the run would reach without TLS over a network."""
    if mpc.options.ssl:
        return []
    return [f'{p.host}:{p.port}' for p in mpc.parties
            if p.pid != mpc.pid and not _is_loopback(p.host)]


def check_tls_files(pid: int) -> str | None:
    """Why this party's --ssl files are unusable, or None."""
    import ssl
    crt = os.path.join('.config', f'party_{pid}.crt')
    key = os.path.join('.config', f'party_{pid}.key')
    ca = os.path.join('.config', 'mpyc_ca.crt')
    for path in (crt, key, ca):
        if not os.path.exists(path):
            return (f'--ssl: no {path} in {os.getcwd()} (make certificates with '
                    f'`mpclab certs`, see the README)')
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(crt, keyfile=key)
        context.load_verify_locations(cafile=ca)
    except (ssl.SSLError, OSError) as exc:
        return f'--ssl: cannot use {crt} with {key} and {ca}: {exc}'
    return None
