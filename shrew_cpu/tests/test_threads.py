"""The backend's worker threads (``threads.py``) and the kernel-cache fallback (``_cache.py``)."""

from __future__ import annotations

import os
import tempfile
import threading

import numpy as np
import pytest

import shrew_cpu
from shrew_core import dtypes as D
from shrew_core.layout import Layout
from shrew_cpu import _config, threads
from shrew_cpu.threads import parallel_for, ranges


@pytest.fixture
def three_threads():
    before = threads.get_num_threads()
    shrew_cpu.set_num_threads(3)
    yield
    shrew_cpu.set_num_threads(before)


def test_ranges_cover_exactly():
    for n, parts in ((10, 3), (3, 8), (0, 2), (7, 1), (1000, 7)):
        rs = ranges(n, parts)
        assert [i for lo, hi in rs for i in range(lo, hi)] == list(range(n))
        assert len(rs) == max(1, min(parts, n))
        sizes = [hi - lo for lo, hi in rs]
        assert max(sizes) - min(sizes) <= 1, sizes


def test_ranges_with_a_head_start_cover_exactly_and_lead_with_the_longer_one():
    for n, parts, head in ((10, 3, 2), (1 << 20, 2, 65536), (5, 2, 100), (7, 7, 3), (9, 1, 4)):
        rs = ranges(n, parts, head)
        assert [i for lo, hi in rs for i in range(lo, hi)] == list(range(n))
        assert len(rs) == max(1, min(parts, n))
        sizes = [hi - lo for lo, hi in rs]
        assert min(sizes) >= 1 and max(sizes[1:], default=0) - min(sizes[1:], default=0) <= 1
        if parts > 1:  # the first is an equal share plus head, as far as the rest allows
            assert sizes[0] == min(n - (len(rs) - 1), -(-n // parts) + head), sizes


def test_split_gives_the_caller_a_head_start_only_with_one_range_per_thread(three_threads):
    n = 3 << 20
    even = ranges(n, 3)
    head = threads.split(n, 3, n)  # one range per thread: the first longer
    assert head[0][1] - head[0][0] == -(-n // 3) + _config.HEAD_START
    assert head[-1][1] == n and len(head) == 3
    assert threads.split(n, 12, n) == ranges(n, 12)  # balanced chunks: as they are
    rows = threads.split(3000, 3, 3000 * 1024)  # rows of 1024: the head start in rows
    assert rows[0][1] - rows[0][0] == 1000 + -(-_config.HEAD_START // 1024)
    assert even != head


def test_parallel_for_results_in_order_and_uses_workers(three_threads):
    barrier = threading.Barrier(3, timeout=10)  # only passes if 3 chunks run at once

    def chunk(i):
        barrier.wait()
        return i * i, threading.get_ident()

    out = parallel_for(chunk, [(i,) for i in range(3)])
    assert [r[0] for r in out] == [0, 1, 4]
    assert len({r[1] for r in out}) == 3, out


def test_parallel_for_reraises_and_stays_usable(three_threads):
    def chunk(i):
        if i == 5:
            raise ValueError("chunk 5 failed")
        return i

    with pytest.raises(ValueError, match="chunk 5 failed"):
        parallel_for(chunk, [(i,) for i in range(8)])
    assert parallel_for(chunk, [(i,) for i in range(4)]) == [0, 1, 2, 3]


def test_parallel_for_does_not_wait_for_workers_that_have_not_started(three_threads,
                                                                    monkeypatch):  # fmt: skip
    """The caller runs every chunk itself when no worker picks the task up, and returns
    without waiting; a worker that wakes later finds the task closed."""
    parallel_for(lambda i: i, [(0,), (1,), (2,)])  # the workers exist, blocked on _tasks
    unread = threads.queue.SimpleQueue()  # a queue no worker reads: the workers never wake
    monkeypatch.setattr(threads, "_tasks", unread)
    me = threading.get_ident()
    box = []
    caller = threading.Thread(target=lambda: box.append(
        parallel_for(lambda i: (i, threading.get_ident()), [(i,) for i in range(5)])))
    caller.start()
    caller.join(timeout=10)
    assert not caller.is_alive(), "parallel_for waited for workers that never started"
    out = box[0]
    assert [r[0] for r in out] == list(range(5))
    assert len({r[1] for r in out}) == 1 and out[0][1] != me  # all in the calling thread
    tasks = [unread.get_nowait() for _ in range(2)]
    assert all(t.closed and t.active == 0 for t in tasks)


def test_one_thread_runs_in_the_caller():
    before = threads.get_num_threads()
    shrew_cpu.set_num_threads(1)
    try:
        names = parallel_for(lambda: threading.current_thread().name, [()] * 4)
    finally:
        shrew_cpu.set_num_threads(before)
    assert names == [threading.current_thread().name] * 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        shrew_cpu.set_num_threads(bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_pool_works_in_a_forked_child(three_threads, cpu):
    """Worker threads do not survive fork(); the child starts its own instead of waiting
    forever on the parent's (dead) ones."""
    parallel_for(lambda i: i, [(i,) for i in range(3)])  # the parent's workers exist
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a parallel kernel through the backend, then report
        try:
            a = np.arange(1 << 20, dtype=np.float64)
            _config.PARALLEL_THRESHOLD = 1
            lay = Layout.contiguous(a.shape)
            out = cpu.binary("add", a, lay, a, lay, D.f64)
            os.write(w, b"ok" if np.array_equal(out, 2 * a) else b"bad")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 2) == b"ok" and status == 0


def test_cache_fallback_locator_only_for_this_package():
    from numba.core import caching

    from shrew_cpu import _cache
    from shrew_cpu.kernels import reduce as K

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    assert _cache.TempDirCacheLocator in impl._locator_classes

    def not_ours():
        pass

    assert _cache.TempDirCacheLocator.from_function(not_ours, __file__) is None
    py = K.reduce_rows.py_func
    loc = _cache.TempDirCacheLocator.from_function(py, K.__file__)
    assert loc is not None and loc.get_cache_path().startswith(tempfile.gettempdir())
    assert os.path.isdir(loc.get_cache_path())


def test_kernel_cache_stamp_covers_every_kernel_module(tmp_path):
    """A cached kernel is stale when ANY kernel module changes (kernels inline helpers
    from vmath / rows), not only its own file: Numba's default stamp missed that."""
    from numba.core import caching

    from shrew_cpu import _cache
    from shrew_cpu.kernels import rnn, vmath

    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("ignored")
    first = _cache.sources_stamp(str(tmp_path))
    assert _cache.sources_stamp(str(tmp_path)) == first
    (tmp_path / "notes.txt").write_text("still ignored")
    assert _cache.sources_stamp(str(tmp_path)) == first
    (tmp_path / "b.py").write_text("y = 3\n")
    assert _cache.sources_stamp(str(tmp_path)) != first

    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    assert impl._locator_classes[: len(_cache.LOCATORS)] == list(_cache.LOCATORS)
    py = rnn.masked_softmax_rows.py_func
    for cls in _cache.LOCATORS[1:]:  # (UserProvided answers only with NUMBA_CACHE_DIR set)
        loc = cls.from_function(py, rnn.__file__)
        assert loc is not None
        assert loc.get_source_stamp() == _cache.sources_stamp()
    own = caching.InTreeCacheLocator.from_function(py, rnn.__file__)
    if own is not None:  # Numba's stamp: rnn.py alone, blind to an edit of vmath.py
        assert own.get_source_stamp() != _cache.sources_stamp()
    assert vmath.__file__.startswith(_cache.KERNELS_DIR)
