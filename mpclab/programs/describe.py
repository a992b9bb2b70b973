"""Secure inner join + descriptive statistics of the joined table, as one MPyC program.

One machine, three parties (party 0 reads only --left, party 1 only --right, party 2 helps)::

    mpclab describe -M3 --left data/insurer.csv --right data/hospital.csv --id patient_id \
        --histogram age bmi --bins 10 --json describe.json --plot describe.png

Per column of the joined table: count, mean, standard deviation (pandas' ddof=1), min and
max, and the correlation matrix, under the names of pandas' ``describe()`` and ``corr()``;
histograms of the --histogram columns with --bins bins of equal width between the column's
minimum and maximum, as ``numpy.histogram``.  Each party that passes --plot writes a PNG of
the correlation matrix and the histograms, drawn from the opened aggregates only.

What is opened, to every party: table sizes and the intersection size (the count); the
column sums and the sums of products of every two columns, which given the count are exactly
the means and the covariance matrix (so the standard deviations and correlations); per
column the minimum and maximum; per histogram cell its count if at least --min-count, and
otherwise only that it is suppressed: the cell is set to 0 in MPC before it is opened.  Masked
values: one per table entry, to convert it to shared bits (see `mpclab.stats`).

What that discloses: the minimum and maximum are values of people in the intersection, so the
owner of that column learns that someone with that value is in the intersection (who, if only
one of its people has it).  A suppressed cell holds 0 to --min-count - 1 people, and the
suppressed cells of a histogram together hold the count minus the shown cells: a single
suppressed cell's count follows.  An owner learns from a histogram of its own column how many
of its people in each shown bin are in the intersection.  An intersection of fewer than
--min-count people is not described at all.
"""

from __future__ import annotations

import math
import os

from mpyc.runtime import mpc

from mpclab import stats
from mpclab.programs.common import Job, join, join_summary, joined_columns
from mpclab.session import ProtocolError, PublicError

__all__ = ['run', 'lines', 'plot', 'histogram_check', 'disclosures']

#: describe() rows opened, in pandas' order
ROWS = ('count', 'mean', 'std', 'min', 'max')


def histogram_check(names):
    """A check, on the public column names before any data moves, that every --histogram
    column is in a table."""
    def check(*owner_columns):
        columns, nowhere = joined_columns(owner_columns)
        for name in names:
            if name not in columns:
                raise PublicError(f'--histogram {name!r} is in {nowhere} (columns: {columns})')
    return check


def check_format(fmt, n_rows: int) -> None:
    """Stop (every party alike) if the input format does not fit the statistics."""
    try:
        stats.check_format(fmt, n_rows, fmt.secfxp().field.modulus.bit_length(),
                           mpc.options.sec_param)
    except ValueError as exc:
        raise PublicError(f'{exc} (lower --int-bits or --frac-bits, or raise --fxp-bits)') from None


def check_plot_path(path: str) -> None:
    """This party can write its PNG (the message names no path: the others are told it too)."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ProtocolError('--plot: this party\'s PNG path is a directory')
    if not os.path.isdir(directory):
        raise ProtocolError('--plot: the directory of this party\'s PNG does not exist')
    if not os.access(directory, os.W_OK):
        raise ProtocolError('--plot: this party cannot write in the directory of its PNG')


def disclosures(options) -> list[str]:
    """What this run discloses beyond plain aggregates, in a sentence each."""
    d = options.describe
    out = ['min and max: each is the value of a person in the intersection; the owner of the '
           'column learns that someone with that value is in the intersection (who, if only one '
           'of its people has it)']
    if d.histogram:
        out.append(f'--histogram: a cell with fewer than --min-count {d.min_count} people is '
                   f'shown as suppressed, which says it holds 0 to {d.min_count - 1}; the '
                   f'suppressed cells of a histogram together hold the row count minus the '
                   f'shown cells (one suppressed cell: its count follows); the owner of a column '
                   f'learns how many of its own people in each shown bin are in the intersection')
    return out


async def run(job: Job) -> dict:
    options, session = job.options, job.session
    d = options.describe
    fmt = job.fmt   # the agreed input format
    if d.plot:
        check_plot_path(d.plot)
    check_format(fmt, 1)
    result = await join(job, histogram_check(d.histogram))
    n = result.intersection_size
    if n == 0:
        raise PublicError('the intersection is empty: nothing to describe')
    if n < d.min_count:
        raise PublicError(f'the intersection has {n} rows, fewer than --min-count {d.min_count}: '
                          f'its statistics would describe fewer people than the small-cell rule '
                          f'allows')
    check_format(fmt, n)
    table = result.table
    with session.phase('describe:moments'):
        sharing = await stats.Sharing.start()
        rows, corr = stats.summarise(await stats.moments(table, fmt, sharing), table.columns)
    with session.phase('describe:bits'):
        bits = await stats.to_bits(table, fmt, sharing,
                                   progress=lambda done, total: job.progress('bits', done, total))
    with session.phase('describe:extremes'):
        rows['min'], rows['max'] = await stats.extremes(bits)
    with session.phase('describe:histograms'):
        hist = await stats.histograms(bits, d.histogram, d.bins, d.min_count,
                                      rows['min'], rows['max'])
    for h in hist.values():
        h['suppressed'] = sum(c is None for c in h['counts'])
    summary = {**join_summary(result), 'describe': {r: rows[r] for r in ROWS}, 'corr': corr,
               'histograms': hist, 'bins': d.bins, 'min_count': d.min_count}
    if d.plot:
        with session.phase('describe:plot'):
            plot(summary, d.plot)
        summary['plot'] = d.plot
    job.leaks.extend(disclosures(options))
    return summary


# -- what a party sees ----------------------------------------------------------------------

def _number(v) -> str:
    return '-' if v is None else f'{v:.6g}'


def lines(summary: dict) -> list[str]:
    rows, columns = summary['describe'], summary['columns']
    width = max([6, *map(len, columns)])
    out = [f'joined {summary["intersection_size"]} rows; described {len(columns)} columns',
           f'  {"":>{width}} ' + ' '.join(f'{r:>12}' for r in ROWS)]
    for c in columns:
        out.append(f'  {c:>{width}} ' + ' '.join(f'{_number(rows[r][c]):>12}' for r in ROWS))
    if len(columns) <= 8:
        out.append('correlations:')
        for a in columns:
            out.append(f'  {a:>{width}} ' + ' '.join(f'{_number(summary["corr"][b][a]):>8}'
                                                    for b in columns))
    for c, h in summary['histograms'].items():
        cells = ' '.join('suppressed' if v is None else str(v) for v in h['counts'])
        out.append(f'histogram of {c} ({len(h["counts"])} bins from {_number(h["edges"][0])} to '
                   f'{_number(h["edges"][-1])}; cells under {summary["min_count"]} suppressed): '
                   f'{cells}')
    return out


def plot(summary: dict, path: str) -> None:
    """A PNG of the correlation matrix and the histograms, from the opened aggregates."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    columns, hist = summary['columns'], summary['histograms']
    n_plots = 1 + len(hist)
    ncols = min(n_plots, 3)
    nrows = math.ceil(n_plots / ncols)
    fig = Figure(figsize=(5.5 * ncols, 4.8 * nrows))
    FigureCanvasAgg(fig)
    corr = np.array([[np.nan if summary['corr'][b][a] is None else summary['corr'][b][a]
                      for b in columns] for a in columns], dtype=float)
    ax = fig.add_subplot(nrows, ncols, 1)
    image = ax.imshow(corr, vmin=-1, vmax=1, cmap='RdBu_r')
    ax.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(columns)), columns, fontsize=7)
    ax.set_title(f'correlations ({summary["intersection_size"]} joined rows)')
    fig.colorbar(image, ax=ax, fraction=0.046)
    for k, (c, h) in enumerate(hist.items(), start=2):
        ax = fig.add_subplot(nrows, ncols, k)
        edges = np.array(h['edges'])
        widths = np.diff(edges)
        shown = np.array([0 if v is None else v for v in h['counts']])
        ax.bar(edges[:-1], shown, width=widths, align='edge', edgecolor='white')
        hidden = [i for i, v in enumerate(h['counts']) if v is None]
        if hidden:
            # drawn at their upper bound, hatched: a suppressed cell holds fewer than min_count
            low = summary['min_count']
            ax.bar(edges[hidden], [low] * len(hidden), width=widths[hidden], align='edge',
                   color='none', edgecolor='grey', hatch='//', label=f'suppressed (< {low})')
            for i in hidden:
                ax.annotate(f'<{low}', (edges[i] + widths[i] / 2, low), ha='center', va='bottom',
                            fontsize=7, color='grey')
            ax.legend(fontsize=7)
        ax.set_title(f'{c}')
        ax.set_ylabel('people')
    fig.tight_layout()
    fig.savefig(path, format='png', dpi=110)
