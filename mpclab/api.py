"""mpclab from Python: run a study from a notebook or a pipeline, get a result object back.

    import mpclab
    result = mpclab.run('lasso', left=insurer_df, right=hospital_df, id='patient_id',
                        target='charges', scale='minmax', alpha=0.001)
    result.metrics, result.model, result.security, result.timings

`run` starts every party of the study as a real, separate process on this machine, exactly
as ``mpclab lasso -M3`` would run them, and returns every party's own view.  `run_party`
runs one party of a study whose other parties run elsewhere (``addresses``: one host:port per
party, as MPyC's ``-P``).  Options are the programs' options as keyword arguments (``id``,
``target``, ``alpha``, ``reg_c``, ``model_to``, ...; see ``mpclab PROGRAM -h``), or a study
file (``study='study.toml'``).  A DataFrame given for ``left`` or ``right`` is written to a
private temporary file (mode 0600, deleted afterwards), read by its owner only; with more
owners, ``owners=K, data=[df_0, ..., df_K-1]`` gives owner k (party k) its table::

    result = mpclab.run('join', parties=4, owners=3, data=[clinic, lab, insurer], id='pid')

This process never imports MPyC: a notebook keeps its own MPyC runtime, if any, untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

from mpclab.launch import addresses as local_addresses, program_command, run_parties
from mpclab.options import flag, from_values, option_specs

__all__ = ['Result', 'RunError', 'run', 'run_party']


class RunError(RuntimeError):
    """A party of the run failed; `results` holds every party's exit code and messages."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


@dataclass
class Result:
    """What a run gave: every party's own summary (what it learned), party 0's first.

    `summary` is the view of `party` (the party this process ran, or party 0 for `run`).
    """

    program: str
    summaries: list[dict]
    party: int = 0
    stdout: list[str] = field(default_factory=list, repr=False)

    @property
    def summary(self) -> dict:
        return self.summaries[0] if len(self.summaries) == 1 else self.summaries[self.party]

    @property
    def metrics(self) -> dict | None:
        return self.summary.get('metrics')

    @property
    def timings(self) -> dict:
        return self.summary.get('timings', {})

    @property
    def bytes_sent(self) -> list[int]:
        return self.summary.get('bytes_sent', [])

    @property
    def security(self) -> dict:
        return self.summary.get('security', {})

    @property
    def leaks(self) -> list[str]:
        return self.summary.get('leaks', [])

    @property
    def model(self) -> dict | None:
        """The model as this party learned it ({'coef': {name: value}, 'intercept': b}), or None."""
        s = self.summary
        if 'coef' not in s:
            return None
        return {'coef': dict(s['coef']), 'intercept': s['intercept']}

    def __repr__(self) -> str:
        s = self.summary
        parts = [f'{self.program}', f'party {s.get("party", self.party)} of {s.get("parties")}']
        if 'intersection_size' in s:
            parts.append(f'{s["intersection_size"]} joined rows')
        if self.metrics:
            shown = {k: round(v, 4) for k, v in self.metrics.items() if isinstance(v, float)}
            parts.append(f'metrics {shown}')
        if self.model:
            parts.append('model learned')
        return f'<mpclab.Result {", ".join(parts)}>'


def _argv(program: str, values: dict[str, Any]) -> list[str]:
    """Command-line arguments for option values (validated by `mpclab.options` first)."""
    specs = option_specs(program)
    out = []
    for name, value in values.items():
        kind = specs[name][1].metadata['kind']
        if value is None or (kind == 'flag' and not value):
            continue
        if kind == 'flag':
            out.append(flag(name))
        elif kind in ('strs', 'ints'):
            items = [value] if isinstance(value, (str, int)) else list(value)
            out += [flag(name), *map(str, items)]
        else:
            out += [flag(name), str(value)]
    return out


def _write_private(table, path: str) -> str:
    """Write a DataFrame to a new file only this user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8', newline='') as f:
        table.to_csv(f, index=False)
    return path


def _prepare(program: str, study: str | None, options: dict, tmp: str) -> list[str]:
    """Arguments for every party: DataFrames written to files, values checked."""
    values = dict(options)
    for side in ('left', 'right'):
        table = values.get(side)
        if table is not None and hasattr(table, 'to_csv'):
            values[side] = _write_private(table, os.path.join(tmp, f'{side}.csv'))
    tables = values.get('data')
    if isinstance(tables, (list, tuple)):   # one table per owner: owner k reads data_k.csv
        for k, table in enumerate(tables):
            path = os.path.join(tmp, f'data_{k}.csv')
            if hasattr(table, 'to_csv'):
                _write_private(table, path)
            else:
                shutil.copyfile(table, path)
        values['data'] = os.path.join(tmp, 'data_{party}.csv')
    if study is None:
        from_values(program, values)   # a bad value fails here, before any process starts
    argv = _argv(program, values)
    if study is not None:
        argv = ['--study', str(study), *argv]
    return argv


def _collect(program: str, results, paths: list[str], party: int) -> Result:
    failed = [(i, r) for i, r in enumerate(results) if r.returncode != 0]
    if failed:
        i, r = failed[0]
        lines = [line for line in (r.stderr or '').splitlines() if line.strip()]
        reason = lines[-1] if lines else f'exit code {r.returncode}'
        raise RunError(f'{program}: {reason}', results)
    summaries = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            summaries.append(json.load(f))
    return Result(program, summaries, party, [r.stdout for r in results])


def run(program: str, *, parties: int = 3, study: str | None = None,
        mpyc_args: Sequence[str] = (), timeout: float = 3600, **options) -> Result:
    """Run every party of `program` on this machine, each as its own process.

    Parameters
    ----------
    program : {'join', 'lasso', 'ridge', 'elasticnet', 'logistic', 'describe', 'predict'}
    parties : int
        Number of parties (default 3: two owners and the helper; 1 plays every role).
    study : path, optional
        A study file with the agreed options (keyword arguments add to it).
    mpyc_args : sequence of str
        Extra MPyC options for every party (e.g. ``['-K', '44']``).
    timeout : float
        Seconds after which parties still running are stopped.
    **options
        The program's options by name; ``left`` and ``right`` may be DataFrames, and
        ``data`` a list of one DataFrame (or CSV path) per owner.

    Returns
    -------
    Result
        Every party's own summary (``summaries``), party 0's as ``summary``.

    Raises
    ------
    mpclab.options.OptionError
        A bad option value (before anything runs).
    RunError
        A party failed; its one-line reason is the message.
    """
    with tempfile.TemporaryDirectory(prefix='mpclab-run-') as tmp:
        argv = _prepare(program, study, options, tmp)
        js = os.path.join(tmp, 'summary_{party}.json')
        command = program_command(program)
        where = local_addresses(parties) if parties > 1 else []
        argvs = [[*command, *where, *(['-I', str(i)] if parties > 1 else []), *mpyc_args, *argv,
                  '--json', js] for i in range(parties)]
        results = run_parties(argvs, timeout)
        return _collect(program, results, [js.format(party=i) for i in range(parties)], 0)


def run_party(program: str, *, party: int, addresses: Sequence[str], study: str | None = None,
              mpyc_args: Sequence[str] = (), timeout: float = 3600, cwd: str | None = None,
              **options) -> Result:
    """Run this organisation's party of a study whose other parties run elsewhere.

    `addresses` holds one ``host:port`` per party, in party order, the same at every party.
    Use ``mpyc_args=['--ssl']`` across hosts (run from the directory holding ``.config/``,
    or give `cwd`).  Returns this party's own view.
    """
    with tempfile.TemporaryDirectory(prefix='mpclab-party-') as tmp:
        argv = _prepare(program, study, options, tmp)
        js = os.path.join(tmp, 'summary.json')
        where = [a for address in addresses for a in ('-P', address)]
        command = [*program_command(program), *where, '-I', str(party), *mpyc_args, *argv,
                   '--json', js]
        results = run_parties([command], timeout, cwd=cwd)
        return _collect(program, results, [js], party)
