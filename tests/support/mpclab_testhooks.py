"""Fault injection, traffic recording and range checks of opened values, for tests only.

* ``MPCLAB_TEST_FAULT='party:phase:crash|hang'``: party `party` crashes (exit 9) or hangs
  (stays connected, silent) when it enters phase `phase`.
* ``MPCLAB_TEST_RECORD_DIR=DIR``: every party appends every byte it receives from party j
  to ``DIR/party{i}_from{j}.bin``.
* ``MPCLAB_TEST_CHECK_OPENINGS=1``: before every opening of masked values in
  `mpclab.fastmpc`, the parties also open the *unmasked* values and stop with an error if
  any lies outside the range the opening assumes.  This discloses everything: tests only.
  Violations are also appended to ``$MPCLAB_TEST_CHECK_OPENINGS_LOG`` if that is set.
* ``MPCLAB_TEST_DUMP_CV=PATH``: `SecureLogisticRegressionCV.fit` first opens its training
  rows, in their secret order, to every party, and party 0 saves them to PATH (.npz): so a
  test learns the folds (contiguous blocks of that order) and can cross-validate the same
  rows in plaintext.  This discloses the training table: tests only.
* ``MPCLAB_TEST_SIZES='module.NAME=value;...'``: integer constants (rows per block of
  comparisons, per Hessian piece, ...) set when the first phase starts, so that a small table
  runs through the paths that only large ones take by default.

`install_from_environment` is called by ``sitecustomize`` in party processes; the in-process
tests call `install_opening_check` themselves.
"""

import os
import sys
import time

__all__ = ['install_from_environment', 'install_fault', 'install_recorder',
           'install_opening_check', 'install_cv_dump', 'install_sizes', 'OpeningOutOfRange']


class OpeningOutOfRange(AssertionError):
    """A value was about to be opened under a mask whose range assumption it breaks."""


def install_fault(spec):
    from mpclab import _hooks
    party, rest = spec.split(':', 1)
    where, kind = rest.rsplit(':', 1)

    def inject(phase):
        from mpyc.runtime import mpc
        if int(party) != mpc.pid or where != phase:
            return
        if kind == 'crash':
            os._exit(9)
        from mpclab import session
        session.silence_this_party()   # no keep-alives, no watchdog: a hung party
        while True:
            time.sleep(60)
    _hooks.phase_started.append(inject)


def install_recorder(directory):
    from mpyc import asyncoro
    received = asyncoro.MessageExchanger.data_received

    def data_received(self, data):
        rt = self.runtime
        peer = self.peer_pid
        with open(os.path.join(directory, f'party{rt.pid}_from{peer}.bin'), 'ab') as f:
            f.write(data)
        return received(self, data)
    asyncoro.MessageExchanger.data_received = data_received


def install_opening_check(log=None):
    from mpclab import _hooks

    async def check(field, shares, threshold, bound_bits, what):
        import numpy as np
        from mpclab import fastmpc
        values = await fastmpc._open(field, np.asarray(shares, dtype=object).reshape(-1), threshold)
        p = field.modulus
        worst = 0
        for v in values:
            v = int(v)
            v = v - p if v > p // 2 else v
            worst = max(worst, abs(v))
        if worst >= 1 << bound_bits:
            message = (f'{what}: an opened value has |x| = 2**{worst.bit_length() - 1}.. but the '
                       f'mask assumes |x| < 2**{bound_bits}')
            if log:
                with open(log, 'a') as f:
                    f.write(message + '\n')
            raise OpeningOutOfRange(message)
    _hooks.opening_checks.append(check)


def install_sizes(spec):
    """Set integer module constants, 'module.NAME=value;...', when the first phase starts
    (every module is loaded then), so that a party runs with small blocks or chunks.  A name
    the module does not have is an error, so a misspelt one cannot leave a test meaningless."""
    import importlib
    from mpclab import _hooks
    settings = []
    for item in spec.split(';'):
        path, value = item.split('=')
        module, name = path.rsplit('.', 1)
        settings.append((module, name, int(value)))
    done = []

    def apply(phase):
        if done:
            return
        for module, name, value in settings:
            m = importlib.import_module(module)
            if not isinstance(getattr(m, name, None), int):
                raise AttributeError(f'MPCLAB_TEST_SIZES: {module} has no integer {name}')
            setattr(m, name, value)
        done.append(phase)
    _hooks.phase_started.append(apply)


def install_cv_dump(path):
    from mpclab import _hooks

    def patch(phase):
        # At the first phase mpclab's modules are loaded; the class is patched once.
        from mpclab.models import logistic
        cls = logistic.SecureLogisticRegressionCV
        if getattr(cls.fit, 'dumps_rows', False):
            return
        fit = cls.fit

        async def fit_and_dump(self, X, y, **kwargs):
            import numpy as np
            from mpyc.runtime import mpc
            from mpclab.blocks import RowBlocks

            def whole(a):
                return a.array() if isinstance(a, RowBlocks) else a
            Xo, yo = await mpc.output(whole(X)), await mpc.output(whole(y))
            if mpc.pid == 0:
                np.savez(path, X=np.asarray(Xo, dtype=float), y=np.asarray(yo, dtype=float))
            return await fit(self, X, y, **kwargs)
        fit_and_dump.dumps_rows = True
        cls.fit = fit_and_dump
    _hooks.phase_started.append(patch)


def install_from_environment():
    fault = os.environ.get('MPCLAB_TEST_FAULT')
    if fault:
        install_fault(fault)
    record = os.environ.get('MPCLAB_TEST_RECORD_DIR')
    if record:
        install_recorder(record)
    if os.environ.get('MPCLAB_TEST_CHECK_OPENINGS'):
        install_opening_check(os.environ.get('MPCLAB_TEST_CHECK_OPENINGS_LOG'))
    dump = os.environ.get('MPCLAB_TEST_DUMP_CV')
    if dump:
        install_cv_dump(dump)
    sizes = os.environ.get('MPCLAB_TEST_SIZES')
    if sizes:
        install_sizes(sizes)


if __name__ == '__main__':
    sys.exit('a module of test hooks: not a program')
