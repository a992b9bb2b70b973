"""Where test code may hook into a party's run; empty, and so inert, in a deployment.

Nothing in mpclab fills these lists or reads the environment to do so.  The test suite does,
from outside the package (``tests/support/sitecustomize.py``, on ``PYTHONPATH`` only in the
party processes that tests start), to inject faults, record traffic and check the range of
every opened value.
"""

from __future__ import annotations

from typing import Awaitable, Callable

__all__ = ['phase_started', 'opening_checks', 'run_phase_hooks']

#: Called with the name of every phase a session enters, before the phase starts.
phase_started: list[Callable[[str], None]] = []

#: Awaited by `mpclab.fastmpc` and `mpclab.stats` before every opening of masked values, at
#: every party, as
#: ``check(field, shares, threshold, bound_bits, what)``: ``shares`` are this party's shares
#: (degree ``threshold``) of the values about to be masked and opened, which must satisfy
#: ``|x| < 2**bound_bits``.  A check may itself interact (every party runs the same checks).
opening_checks: list[Callable[..., Awaitable[None]]] = []


def run_phase_hooks(name: str) -> None:
    for hook in phase_started:
        hook(name)
