"""Secure inner join of two owners' tables via a helper party, as an MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab join -M3 --left data/insurer.csv --right data/hospital.csv --id patient_id \
        --json join.json

Three hosts: every party runs the same command with the same -P list, its own -I and only its
own file (the helper passes no file); see the README.

What is opened: the column names and row counts of both tables and the intersection size, to
every party; with --reveal-to I --save-joined CSV the joined table to party I (testing and
debugging only: it discloses the joined records).
"""

from __future__ import annotations


from mpclab import security
from mpclab.programs.common import Job, join, join_summary, sizes_line, warn


def reveal_leaks(options) -> list[str]:
    if options.reveal.reveal_to is None:
        return []
    return [f'--reveal-to {options.reveal.reveal_to}: party {options.reveal.reveal_to} learns '
            f'every joined record']


async def run(job: Job) -> dict:
    options = job.options
    result = await join(job)
    reveal = options.reveal
    if reveal.reveal_to is not None:
        with job.session.phase('reveal'):
            values = security.intended(result.table.values)
            df = await result.table.reveal(receivers=[reveal.reveal_to])
        del values
        if df is not None:
            warn(f'writing the opened joined table to {reveal.save_joined}: this reveals the '
                 f'joined records')
            df.to_csv(reveal.save_joined, index=False)
    summary = join_summary(result)
    summary['helper'] = job.roles.helper
    job.leaks.extend(reveal_leaks(options))
    return summary


def lines(summary: dict) -> list[str]:
    """What a party prints of its summary."""
    return [f'{sizes_line(summary)}, {len(summary["columns"])} columns']
