"""One party's run of an mpclab program: from its command line to its exit code.

The order matters, and each step's failures end the run clearly:

1. the program's options are parsed and validated (before MPyC is imported, which also reads
   the command line; ``-h`` prints the program's own help);
2. MPyC's runtime is set up (`mpclab.mpyc_runtime`); without ``--ssl`` a run that would send
   data unencrypted to another host is refused; with ``--ssl`` this party's certificate files
   are checked;
3. this party loads and checks its own table;
4. the session connects and agrees (`mpclab.session`): a bad option, bad input or an
   unapproved analysis at any party stops every party here, before any data moves;
5. the program runs (`mpclab.programs`), and every party prints and may save its own summary.
"""

from __future__ import annotations

import sys
import traceback

from mpclab import __version__
from mpclab.options import OptionError, from_command_line, command_line_parser

__all__ = ['main']

EXIT_USAGE = 2


class _OptionFailure(Exception):
    """Carries an OptionError through the agreement round (its message names no data)."""

    def __init__(self, error: OptionError):
        super().__init__(str(error))
        self.public = f'invalid options ({error})'


def _die(message: str, code: int) -> None:
    from mpclab.session import _die as die
    die(message, code)


def main(program: str, argv: list[str] | None = None, respawn: list[str] | None = None,
         prog: str | None = None) -> int:
    """Run one party of `program` with the arguments `argv` (default ``sys.argv[1:]``).

    `respawn` is what precedes `argv` in the command line that MPyC gives the parties it
    starts with -M (default ``[sys.argv[0]]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    respawn = list(respawn or sys.argv[:1])
    parser = command_line_parser(program, prog)
    option_error = None
    try:
        options, mpyc_args = from_command_line(program, argv, prog)
    except OptionError as exc:
        options, option_error = None, exc
        _, mpyc_args = parser.parse_known_args(argv)
    from mpclab import mpyc_runtime
    run = options.run if options else None
    verbose = bool(run and run.verbose)
    mpyc_runtime.configure_logging(verbose)
    unknown = mpyc_runtime.unknown_arguments(mpyc_args)
    if unknown:
        parser.error(f'unrecognized arguments: {" ".join(unknown)}')
    mpc = mpyc_runtime.start([*respawn, *argv], mpyc_args, verbose)
    pid, n = mpc.pid, len(mpc.parties)
    where = f'mpclab party {pid}'

    if options is not None:
        try:
            options = options.for_party(pid, shared_command_line=bool(mpc.options.M) and n > 1)
            options.check_parties(n)
        except OptionError as exc:
            option_error = exc
    hosts = mpyc_runtime.plaintext_hosts(mpc)
    if hosts and not (run and run.allow_plaintext_network):
        _die(f'{where}: refusing to connect to {", ".join(hosts)} without encryption: every '
             f'share and masked value would cross the network in the clear; use --ssl (see '
             f'`mpclab certs`), or --allow-plaintext-network if the network itself is trusted',
             EXIT_USAGE)
    if mpc.options.ssl:
        problem = mpyc_runtime.check_tls_files(pid)
        if problem:
            _die(f'{where}: {problem}', EXIT_USAGE)

    from mpclab.programs import common, module
    from mpclab.session import EXIT_INPUT, ProtocolError, Session
    from mpclab.data import InputError
    from mpclab.join import Roles
    usable = options is not None and option_error is None
    helper = options.security.join_helper if usable else None
    n_owners = options.data.owners if usable else 2
    try:
        roles = Roles.for_parties(n, helper, owners=n_owners)
    except (ProtocolError, ValueError) as exc:   # two parties: nobody to agree with
        _die(f'{where}: {exc}', EXIT_INPUT)
    error = _OptionFailure(option_error) if option_error else None
    agreed = options.agreed() if options else {}
    approved, approved_options = _approval(run)
    session = Session(program, agreed, fingerprint=options.fingerprint() if options else None,
                      approved=approved, approved_options=approved_options,
                      timeout=run.timeout if run else 120.0,
                      connect_timeout=run.connect_timeout if run else 60.0,
                      relay_details=bool(mpc.options.M), version=__version__, verbose=verbose)
    from mpclab.report import Progress
    job = common.Job(options, session, roles,
                     progress=Progress.for_run(bool(run and run.progress), pid))
    program_module = module(program)
    prepare = getattr(program_module, 'prepare', common.prepare)
    if error is None:
        try:
            prepare(job)   # this party's own input, checked before anything is sent
        except InputError as exc:
            error = exc

    async def party():
        from mpclab import wire
        from mpclab.session import PublicError
        try:
            facts = await session.start(error, public=common.public_facts(job))
            job.context['facts'] = facts
            common.check_drop_columns(options, facts)
            common.agree_format(job, facts)
            summary = await program_module.run(job)
            return await _finish(job, program, summary)
        except PublicError as exc:
            session._finish()
            _die(f'{where}: {exc}', exc.exit_code)
        except ProtocolError as exc:
            await session.fail(str(exc), exc.exit_code)
        except wire.WireError as exc:
            await session.fail(f'refused a message from a peer: {exc}', EXIT_INPUT)
        except Exception as exc:  # noqa: BLE001 -- a bug: stop everyone, say what it was
            if verbose:
                traceback.print_exc()
            await session.fail(f'internal error: {type(exc).__name__}: {exc} '
                               f'(--verbose shows where)', 1)

    try:
        summary = mpc.run(party())
    except KeyboardInterrupt:
        _die(f'{where}: interrupted', 130)
    except Exception as exc:  # noqa: BLE001 -- MPyC stopped its loop on an error
        if session.pending_failure:
            _die(f'{where}: {session.pending_failure[0]}', session.pending_failure[1])
        if verbose:
            traceback.print_exc()
        _die(f'{where}: internal error: {type(exc).__name__}: {exc}', 1)
    job.progress.close()
    from mpclab.report import print_summary, write_json
    if options.run.json:
        write_json(options.run.json, summary)
    print_summary(program_module.lines(summary), summary, pid)
    return 0


def _approval(run) -> tuple[str | None, dict | None]:
    """The approved fingerprint, and the approved options when --approved names a study file."""
    if run is None or not run.approved:
        return None, None
    if not run.approved.endswith('.toml'):
        return run.approved, None
    from mpclab.study import approve
    try:
        return approve(run.approved)
    except OptionError as exc:
        _die(f'mpclab: --approved {run.approved}: {exc}', EXIT_USAGE)


async def _finish(job, program: str, summary: dict) -> dict:
    """Bytes sent, the security figures, timings; then shut down."""
    from mpyc.runtime import mpc
    from mpclab import security
    session, options = job.session, job.options
    summary['bytes_sent'] = await session.all_bytes_sent()
    await session.stop()
    key_bits = options.security.key_bits if 'security' in options else None
    report = security.ledger.report(paillier_key_bits=key_bits)
    report['statistical_security_parameter'] = mpc.options.sec_param
    head = {'program': program, 'mpclab': __version__, 'party': mpc.pid,
            'parties': len(mpc.parties), 'fingerprint': options.fingerprint()}
    summary = {**head, **summary, 'security': report, 'leaks': list(job.leaks),
               'timings': {k: round(v, 4) for k, v in session.timings.items()}}
    return summary
