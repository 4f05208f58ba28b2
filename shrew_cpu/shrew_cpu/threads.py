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
re-raised in the caller. The pool starts on first use, and again in a forked child.
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


def _worker() -> None:
    while True:
        fn, it, results, errors, done = _tasks.get()
        try:
            for i, args in it:
                results[i] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors.append(e)
        finally:
            done.put(None)


def _ensure_workers(n: int) -> None:
    with _start_lock:
        while len(_workers) < n:
            t = threading.Thread(target=_worker, name="shrew-cpu-worker", daemon=True)
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
    it = iter(enumerate(chunks))
    results: list = [None] * n
    errors: list = []
    done: queue.SimpleQueue = queue.SimpleQueue()
    task = (fn, it, results, errors, done)
    for _ in range(helpers):
        _tasks.put(task)
    try:
        for i, args in it:
            results[i] = fn(*args)
    finally:
        for _ in range(helpers):
            done.get()
    if errors:
        raise errors[0]
    return results


def parts_for(work: int) -> int:
    """Chunks for ``work`` elements of parallel work: one per thread, or
    ``_config.CHUNKS_PER_THREAD`` per thread from ``_config.BALANCE_WORK`` elements."""
    per = _config.CHUNKS_PER_THREAD if work >= _config.BALANCE_WORK else 1
    return _num_threads * per


def ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(lo, hi)`` ranges covering ``range(n)`` (the first ones one
    longer when ``parts`` does not divide ``n``); fewer when ``n < parts``."""
    parts = max(1, min(parts, n))
    step, extra = divmod(n, parts)
    out, lo = [], 0
    for p in range(parts):
        hi = lo + step + (p < extra)
        out.append((lo, hi))
        lo = hi
    return out
