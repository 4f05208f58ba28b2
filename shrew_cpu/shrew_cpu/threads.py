"""The CPU backend's worker threads: kernels run in parallel as chunks on a small pool of
Python threads. The serial Numba kernels are compiled ``nogil=True``, so each chunk runs
without the GIL while the caller thread works on another chunk.

Why not Numba's ``prange``: every ``parallel=True`` kernel cost 1-1.5 s of extra Numba
compilation (the parfor lowering), the bulk of the cold-start time; and Numba's OpenMP
workers spin after each parallel region unless ``OMP_WAIT_POLICY=PASSIVE`` was set before
the process loaded libgomp (torch loads it first when imported first), stealing the cores
OpenBLAS's GEMM threads need. These workers block on a queue between kernels: they never
spin, whatever the import order. A launch (wake a worker, wait for it) costs 15-90 us on
the 2-core VM (the upper end when the other virtual CPU is idle and must be woken),
hence the thresholds in ``_config``. A bounded spin before blocking (tried) cut the
hand-over to ~25 us but gained nothing on whole ops and cost 5% on a char-GPT step, where
a spinning worker competes with OpenBLAS's threads.

``parallel_for(fn, chunks)`` calls ``fn(*args)`` for every ``args`` in ``chunks`` (the
caller and the workers pull chunks dynamically, so a core slowed by another process
takes fewer chunks) and returns the results in order; an exception in any chunk is
re-raised in the caller. The caller waits only for workers already inside the call: when
it has run out of chunks before a worker woke up, it returns at once (a short region paid
the full wake-up before: 34 -> 20 us for two 2.5 us chunks). ``split`` gives the caller's
first chunk a head start when there is one chunk per thread, so that the late-starting
worker tends to finish first. The pool starts on first use, and again in a forked child.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence

from . import _config

_num_threads = _config.NUM_THREADS
_workers: list[threading.Thread] = []
_tasks: queue.SimpleQueue = queue.SimpleQueue()
_start_lock = threading.Lock()


def get_num_threads() -> int:
    """Threads the CPU backend's kernels use (the caller's thread included)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` >= 1 threads for the CPU backend's parallel kernels (1: everything runs in
    the calling thread). Default: ``SHREW_CPU_NUM_THREADS`` or the CPUs this process may
    run on."""
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected an int >= 1, got {n!r}")
    _num_threads = n


class _Task:
    """One ``parallel_for`` call as the workers see it. ``active`` counts the workers inside
    it; once the caller has run out of chunks it sets ``closed``, and a worker that wakes
    after that leaves the task alone."""

    __slots__ = ("fn", "it", "results", "errors", "lock", "active", "closed", "finished")

    def __init__(self, fn, it, results):
        self.fn, self.it, self.results, self.errors = fn, it, results, []
        self.lock = threading.Lock()
        self.active = 0
        self.closed = False
        self.finished = threading.Lock()  # held until the last active worker leaves
        self.finished.acquire()


def _worker(tasks: queue.SimpleQueue) -> None:
    while True:
        task = tasks.get()
        with task.lock:
            if task.closed:
                continue
            task.active += 1
        try:
            for i, args in task.it:
                task.results[i] = task.fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            task.errors.append(e)
        finally:
            with task.lock:
                task.active -= 1
                last = task.closed and task.active == 0
            if last:
                task.finished.release()


def _ensure_workers(n: int) -> None:
    with _start_lock:
        while len(_workers) < n:
            t = threading.Thread(target=_worker, args=(_tasks,), name="shrew-cpu-worker",
                                 daemon=True)
            t.start()
            _workers.append(t)


def _after_fork_in_child() -> None:  # threads do not survive fork(): start afresh
    global _tasks, _start_lock
    _workers.clear()
    _tasks = queue.SimpleQueue()
    _start_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def parallel_for(fn: Callable, chunks: Sequence[tuple]) -> list:
    """``[fn(*args) for args in chunks]``, the chunks spread over the worker threads."""
    n = len(chunks)
    helpers = min(n, _num_threads) - 1
    if helpers <= 0:
        return [fn(*args) for args in chunks]
    if len(_workers) < helpers:
        _ensure_workers(helpers)
    results: list = [None] * n
    task = _Task(fn, iter(enumerate(chunks)), results)
    for _ in range(helpers):
        _tasks.put(task)
    try:
        for i, args in task.it:
            results[i] = fn(*args)
    finally:  # wait for the workers inside the task, not for those still waking up
        with task.lock:
            task.closed = True
            wait = task.active > 0
        if wait:
            task.finished.acquire()
    if task.errors:
        raise task.errors[0]
    return results


def parts_for(work: int) -> int:
    """Chunks for ``work`` elements of parallel work: one per thread, or
    ``_config.CHUNKS_PER_THREAD`` per thread from ``_config.BALANCE_WORK`` elements."""
    per = _config.CHUNKS_PER_THREAD if work >= _config.BALANCE_WORK else 1
    return _num_threads * per


def row_parts(rows: int, work: int) -> int:
    """Ranges to cut ``rows`` rows of ``work`` elements in all into: 0 (run the serial
    kernel in the caller) below ``_config.REDUCE_THRESHOLD`` or for one row, else
    ``parts_for(work)``, at most one per row."""
    if work < _config.REDUCE_THRESHOLD or rows < 2:
        return 0
    return min(rows, parts_for(work))


def parallel_rows(kernel: Callable, args: tuple, rows: int, parts: int, work: int) -> list:
    """``kernel(*args, lo, hi)`` over ``split(rows, parts, work)``; the per-range results."""
    return parallel_for(kernel, [args + r for r in split(rows, parts, work)])


def split(tasks: int, parts: int, work: int) -> list[tuple[int, int]]:
    """``ranges(tasks, parts)`` for ``work`` elements of work spread over ``tasks`` tasks,
    the first range -- the caller's: it starts on it while the workers wake -- longer by
    ``_config.HEAD_START`` elements of work when there is one range per thread."""
    head = 0
    if 1 < parts <= _num_threads and work > 0:
        head = -(-_config.HEAD_START * tasks // work)
    return ranges(tasks, parts, head)


def ranges(n: int, parts: int, head: int = 0) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(lo, hi)`` ranges covering ``range(n)`` (the first ones one
    longer when ``parts`` does not divide ``n``); fewer when ``n < parts``. With ``head``,
    the first range is up to ``head`` longer than an equal share and the rest split what is
    left (the caller's head start: ``_config.HEAD_START``)."""
    parts = max(1, min(parts, n))
    if head and parts > 1:
        first = min(n - (parts - 1), -(-n // parts) + head)
        return [(0, first)] + [(lo + first, hi + first) for lo, hi in ranges(n - first, parts - 1)]
    step, extra = divmod(n, parts)
    out, lo = [], 0
    for p in range(parts):
        hi = lo + step + (p < extra)
        out.append((lo, hi))
        lo = hi
    return out
