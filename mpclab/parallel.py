"""Where one party's bulk work runs: a thread, local worker processes, or its own Dask cluster.

The secure join hands its chunks of crypto (`mpclab.joinwork`) to a `Pool` and awaits them on
MPyC's event loop, which meanwhile keeps serving the peers.  Three places to run them:

* one thread (``workers=1``, MPyC's ``-W 1``): as before, no processes;
* local processes (the default): up to `mpclab.mpyc_runtime.worker_limit` of them, MPyC's
  ``-W`` if given, else every core.  They start from a fork server that has imported only
  what the work needs (never MPyC, which reads the command line on import), so a worker's
  memory is its chunk's, not a copy of the party's tables;
* a ``dask.distributed`` cluster of the party's own (``dask='tcp://host:8786'``, or a
  ``distributed.Client``): for a party whose one machine is not enough.

What a cluster sees.  The work sent there is this party's own: an owner's workers receive its
private Paillier key and its encoded values, the helper's its masks.  So a party must point
only at a cluster it controls, on its own hosts, like its own process (ideally with TLS
between scheduler and workers, a ``tls://`` address).  No other party's process ever talks
to it, and nothing received from another party is ever run there: MPyC's messages stay with
the party's own process, and the only things sent to workers are plain data this party
holds.  (Dask pickles what it sends; that stays between a party and its own cluster.)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor, ThreadPoolExecutor

__all__ = ['Pool', 'local_workers']

# What the fork server imports once, so that each worker starts in milliseconds.
_PRELOAD = ['mpclab.joinwork', 'mpclab.parallel']

#: seconds between a worker's checks that its party is still there
PARTY_CHECK_EVERY = 0.25


def local_workers() -> int:
    """Cores this party may use: MPyC's -W if given, else every core it may run on."""
    try:
        from mpclab.mpyc_runtime import worker_limit
        return worker_limit()
    except ImportError:   # pragma: no cover
        return os.cpu_count() or 1


class Pool:
    """Run plain functions on plain data off MPyC's event loop; `submit` returns a Future.

    Parameters
    ----------
    workers : int, optional
        Local workers; default `local_workers()`.  1 runs everything on one thread.
    dask : str or distributed.Client, optional
        This party's own Dask scheduler address (or a client): run there instead.
    inline : bool
        Run each call at once in the caller (MPyC without an event loop: nobody to serve).
    """

    def __init__(self, workers: int | None = None, dask=None, inline: bool = False):
        self.workers = max(1, workers or local_workers())
        self.inline = inline
        self._client = self._own_client = None
        self._executor = self._starter = None
        if dask is not None:
            self._client, self._own_client = _dask_client(dask)
            self.workers = max(1, sum(self._client.nthreads().values()))
            self.kind = 'dask'
        elif inline:
            self.kind = 'inline'
        elif self.workers == 1:
            self._executor = ThreadPoolExecutor(1, 'mpclab-work')
            self.kind = 'thread'
        else:
            self.kind = 'processes'   # started on first use

    def __repr__(self):
        return f'Pool({self.kind}, workers={self.workers})'

    @property
    def window(self) -> int:
        """Chunks worth keeping in flight: enough to keep every worker busy."""
        return 2 * self.workers

    def _processes(self):
        if self._executor is None:
            ctx = multiprocessing.get_context('forkserver')
            ctx.set_forkserver_preload(_PRELOAD)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx,
                                                 initializer=_end_with_the_party,
                                                 initargs=(os.getpid(),))
        return self._executor

    def _submit_off_loop(self, fn, *args) -> Future:
        """Submit to the processes from a thread of their own: starting the fork server and
        the workers waits for their imports (seconds on a loaded machine), which must not stall
        the event loop, and with it the keep-alives that tell the peers this party is alive."""
        outer = Future()

        def start_and_submit():
            if outer.cancelled():
                return
            try:
                inner = self._processes().submit(fn, *args)
            except BaseException as exc:
                outer.set_exception(exc)
                return
            inner.add_done_callback(lambda f: _settle(outer, f))
        if self._starter is None:
            self._starter = ThreadPoolExecutor(1, 'mpclab-start')
        self._starter.submit(start_and_submit)
        return outer

    def submit(self, fn, *args) -> Future:
        """fn(*args) somewhere off the event loop (or at once, inline)."""
        if self.kind == 'inline':
            future = Future()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:   # delivered when awaited, as from a worker
                future.set_exception(exc)
            return future
        if self.kind == 'dask':
            return _from_dask(self._client.submit(fn, *args, pure=False))
        if self.kind == 'processes':
            return self._submit_off_loop(fn, *args)
        return self._executor.submit(fn, *args)

    def run_local(self, fn, *args) -> Future:
        """fn(*args) on a thread of this process (for work on data too big to ship)."""
        if self.kind in ('inline', 'thread'):   # -W 1: one thread in all
            return self.submit(fn, *args)
        if not hasattr(self, '_thread'):
            self._thread = ThreadPoolExecutor(1, 'mpclab-local')
        return self._thread.submit(fn, *args)

    async def wait(self, future: Future):
        """The result of a submitted call, awaited without blocking the event loop."""
        if self.inline or future.done():
            return future.result()
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self._starter is not None:   # whatever it still submits goes before the shutdown
            self._starter.shutdown(wait=True, cancel_futures=True)
        for ex in (self._executor, getattr(self, '_thread', None)):
            if ex is not None:
                ex.shutdown(wait=False, cancel_futures=True)
        if self._own_client is not None:
            self._own_client.close()
        self._executor = self._client = self._own_client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _end_with_the_party(party: int) -> None:
    """Worker initializer: exit as soon as the party process `party` (a pid) is gone.

    A party that fails leaves at once (``os._exit``, see `mpclab.session`), and a party can
    be killed; its workers would otherwise finish their chunk, an owner's holding its private
    key, for as long as a chunk takes.  (Their fork server is no help: it stays up while any
    worker does.)
    """
    born = _started(party)

    def watch():
        while _started(party) == born:
            time.sleep(PARTY_CHECK_EVERY)
        os._exit(1)
    threading.Thread(target=watch, name='mpclab-party-watch', daemon=True).start()


def _started(pid: int):
    """When process pid started (None once it has ended): with the pid, it names one process,
    so a pid used again later does not count.  An exited process not yet reaped has ended.
    Without /proc (not Linux): whether the pid exists at all."""
    if not os.path.isdir('/proc/self'):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return 'alive'
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            state, *fields = f.read().rsplit(b')', 1)[1].split()
    except FileNotFoundError:
        return None
    return None if state in (b'Z', b'X') else fields[18]   # field 22 of proc(5): starttime


def _dask_client(dask):
    """(client, client to close when done) for an address or an existing client."""
    try:
        import distributed
    except ImportError:
        raise RuntimeError('a Dask cluster was given, but dask.distributed is not installed: '
                           'pip install "dask[distributed]"') from None
    if isinstance(dask, distributed.Client):
        return dask, None
    client = distributed.Client(dask, set_as_default=False, timeout=60)
    return client, client


def _settle(outer: Future, inner: Future) -> None:
    """Give `outer` the outcome of `inner`."""
    try:
        if inner.cancelled():
            outer.cancel()
        elif inner.exception() is not None:
            outer.set_exception(inner.exception())
        else:
            outer.set_result(inner.result())
    except InvalidStateError:   # cancelled meanwhile: nobody waits for it
        pass


def _from_dask(dask_future) -> Future:
    future = Future()

    def done(f):
        try:
            future.set_result(f.result())
        except BaseException as exc:
            future.set_exception(exc)
    dask_future.add_done_callback(done)
    return future
