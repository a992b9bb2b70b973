"""Where a party's bulk work runs (`mpclab.parallel.Pool`): one thread, local processes, its own
Dask cluster; and the join through each, against pandas' inner merge."""

import os

import numpy as np
import pandas as pd
import pytest
from mpyc.runtime import mpc

from mpclab import joinwork, mpyc_runtime
from mpclab.data import load_party_table
from mpclab.join import JoinParameters, secure_inner_join
from mpclab.parallel import Pool
from partyrun import PROTOCOLS, ROOT, run_local, run_separate
from test_join import assert_same_rows, plain_join, random_tables, write_tables

JOIN = os.path.join(PROTOCOLS, 'inner_join.py')


def _fail(message):
    raise ValueError(message)


def _collect(pool, fn, *args):
    return pool.submit(fn, *args).result(timeout=120)


def test_pool_honours_the_worker_limit_and_runs_on_one_thread_with_w1(monkeypatch):
    monkeypatch.setattr(mpyc_runtime, '_workers', 1)
    with Pool() as pool:
        assert (pool.kind, pool.workers, pool.window) == ('thread', 1, 2)
        assert _collect(pool, joinwork.mask_bytes, 73) == 10
        with pytest.raises(ValueError, match='boom'):
            _collect(pool, _fail, 'boom')
    monkeypatch.setattr(mpyc_runtime, '_workers', 3)
    with Pool() as pool:
        assert (pool.kind, pool.workers) == ('processes', 3)   # no process started yet
    monkeypatch.setattr(mpyc_runtime, '_workers', None)
    assert Pool().workers == len(os.sched_getaffinity(0))
    with Pool(inline=True) as pool:
        assert pool.kind == 'inline' and pool.submit(joinwork.mask_bytes, 8).done()


def test_join_on_one_thread_equals_merge():
    left, right = random_tables(np.random.default_rng(21), 30, 20, 12, d_left=15, d_right=3)
    with Pool(workers=1) as pool:
        got = _join(left, right, pool)
    assert_same_rows(got, plain_join(left, right))


def _join(left, right, pool, **kw):
    async def go():
        await mpc.start()
        res = await secure_inner_join(load_party_table(left, 'id'), load_party_table(right, 'id'),
                                      JoinParameters(**kw), pool=pool)
        df = await res.table.reveal()
        await mpc.shutdown()
        return df
    return mpc.run(go())


@pytest.mark.slow
def test_local_processes_run_the_work_and_pass_errors_back():
    with Pool(workers=2) as pool:
        assert pool.kind == 'processes'
        keys = [joinwork.hash_ids(b'k' * 32, ['a', 'b'])[0]]
        assert _collect(pool, joinwork.hash_ids, b'k' * 32, ['a', 'b'])[0] == keys[0]
        with pytest.raises(ValueError, match='boom'):
            _collect(pool, _fail, 'boom')


@pytest.fixture(scope='module')
def dask_cluster():
    """A local Dask cluster of 2 single-threaded worker processes, as a party's own."""
    distributed = pytest.importorskip('distributed')
    # the workers must import this checkout's mpclab, as the parties do
    path = os.environ.get('PYTHONPATH', '')
    os.environ['PYTHONPATH'] = os.pathsep.join([ROOT] + [p for p in path.split(os.pathsep) if p])
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=':0', worker_dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()
        os.environ['PYTHONPATH'] = path


@pytest.mark.slow
def test_join_on_a_dask_cluster_equals_merge(dask_cluster):
    left, right = random_tables(np.random.default_rng(22), 40, 30, 25, d_left=15, d_right=2)
    with Pool(dask=dask_cluster.scheduler_address, inline=True) as pool:
        assert (pool.kind, pool.workers) == ('dask', 2)
        got = _join(left, right, pool)
    assert_same_rows(got, plain_join(left, right))


@pytest.mark.slow
def test_parties_with_their_own_cluster_w1_and_default_equal_merge(tmp_path, dask_cluster):
    # Owner A and the helper each send their work to "their own" cluster (one cluster here,
    # for the test's time); owner B uses its local cores.
    left, right = random_tables(np.random.default_rng(23), 60, 50, 40, d_left=3, d_right=15)
    lp, rp = write_tables(tmp_path, left, right)
    out = tmp_path / 'joined.csv'
    common = ['--id', 'id', '--reveal-to', '0', '--save-joined', str(out)]
    dask = ['--dask', dask_cluster.scheduler_address]
    results = run_separate(JOIN, [['--left', lp] + common + dask, ['--right', rp] + common,
                                  common + dask], timeout=240)
    for code, _, err in results:
        assert code == 0, err
    assert_same_rows(pd.read_csv(out), plain_join(left, right))
    ran = set(dask_cluster.scheduler.task_prefixes)
    assert {'hash_ids', 'encrypt_rows', 'decrypt_rows', 'randomizers'} <= ran, ran
    out.unlink()
    r = run_local(JOIN, ['--left', lp, '--right', rp] + common, 3, timeout=240,
                  mpyc_args=['-W', '1'])
    assert r.returncode == 0, r.stderr
    assert_same_rows(pd.read_csv(out), plain_join(left, right))


_PARTY_THAT_DIES = '''
import os, sys, time
from mpclab.parallel import Pool
pool = Pool(workers=2)
futures = [pool.submit(time.sleep, 120) for _ in range(2)]   # a long chunk on each worker
while pool._executor is None or len(pool._executor._processes) < 2:
    time.sleep(0.05)
time.sleep(1)                                                 # both are in their chunk
print(' '.join(map(str, pool._executor._processes)), flush=True)
os._exit(1)                                                   # as a failing party leaves
'''


def _running(pid):
    """Whether process pid exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='reads /proc')
def test_a_partys_workers_stop_when_the_party_leaves_mid_chunk():
    import subprocess
    import sys
    import time
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    party = subprocess.Popen([sys.executable, '-c', _PARTY_THAT_DIES], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers = [int(p) for p in party.stdout.readline().split()]   # not to EOF: they hold it
    assert party.wait(timeout=120) == 1 and len(workers) == 2, party.stderr.read()
    deadline = time.monotonic() + 30      # far below the 120 s each chunk would take
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in workers if _running(p)]
    for p in left:
        os.kill(p, 9)
    assert not left, 'workers still running after their party left'
