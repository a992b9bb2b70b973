"""What a person sees of a run: results on stdout, diagnostics and progress on stderr, JSON.

Every party prints its own summary (what it learned) and may write its own ``--json``.
Progress bars (tqdm) appear on stderr when it is a terminal, or with ``--progress``.
"""

from __future__ import annotations

import json
import os
import sys

__all__ = ['Progress', 'print_summary', 'write_json']


class Progress:
    """Progress bars for the stages of a run: ``progress(stage, done, total)``."""

    def __init__(self, enabled: bool, pid: int = 0):
        self.enabled = enabled
        self.pid = pid
        self._bars: dict = {}

    @classmethod
    def for_run(cls, forced: bool, pid: int) -> 'Progress':
        return cls(forced or sys.stderr.isatty(), pid)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self._bars.get(stage)
        if bar is None:
            from tqdm import tqdm
            bar = self._bars[stage] = tqdm(total=total, desc=f'party {self.pid} {stage}',
                                           file=sys.stderr, leave=False, unit='',
                                           dynamic_ncols=True, mininterval=0.5)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del self._bars[stage]

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def print_model(summary: dict, pid: int, width: int = 24) -> None:
    if 'coef' not in summary:
        return
    print(f'model learned by party {pid}:')
    for name, value in [*summary['coef'].items(), ('intercept', summary['intercept'])]:
        print(f'  {name:>{width}} {value: .6f}')


def print_summary(lines: list[str], summary: dict, pid: int) -> None:
    """Print this party's view of the run on stdout."""
    for line in lines:
        print(line)
    security = summary.get('security') or {}
    bound = security.get('run_bound_log2')
    if bound is not None:
        print(f'statistical security: {security["join_mask_bits"] or "-"} bits per masked join '
              f'value, {security["mpc_mask_bits"] or "-"} per MPC opening; whole run within '
              f'2^{bound:.1f}')
    for leak in summary.get('leaks', ()):
        print(f'disclosed by choice: {leak}')
    print_model(summary, pid, width=max([8, *map(len, summary.get('coef', {}))]) + 2)
    sys.stdout.flush()


def write_json(path: str, summary: dict) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
