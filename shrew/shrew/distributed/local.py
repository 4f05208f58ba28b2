"""The ``local`` backend: N ranks as threads of one process, sharing memory.

Ranks meet at a rendezvous (a condition variable, one generation per collective step) and
read each other's buffers directly: an all-reduce is one step in which every rank publishes
its buffer, then rank r reduces chunk r of all buffers (rank order, so every rank gets
bit-identical results), then a second step after which each copies the reduced chunks into
its own buffer. NumPy releases the GIL in those loops, so ranks reduce concurrently.

Failure handling: a rank that waits longer than ``timeout`` raises CollectiveTimeoutError
(naming the ranks that never arrived) and breaks the world for the others; ``spawn`` breaks
it as soon as a rank's function raises, or returns while others wait in a collective, so
they raise DistributedError naming that rank instead of waiting for the timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

from .errors import CollectiveTimeoutError, DistributedError
from .group import DEFAULT_TIMEOUT, ProcessGroup, as_timeout, set_thread_group

_REDUCERS = {"sum": np.add, "max": np.maximum, "min": np.minimum, "prod": np.multiply}


class LocalWorld:
    """What the threads of one local job share: the rendezvous and the published buffers."""

    def __init__(self, world_size: int, timeout: float) -> None:
        self.world_size = world_size
        self.timeout = timeout
        self._cond = threading.Condition()
        self._generation = 0
        self._arrived: set[int] = set()
        self._failure: str | None = None
        self._returned: set[int] = set()
        self._slots: list[list[Any]] = [[None] * world_size, [None] * world_size]

    def step(self, rank: int, payload: Any, what: str) -> list[Any]:
        """Publish ``payload``, wait until every rank has, return all payloads by rank.

        Payloads stay readable until the step after next (slots alternate per generation),
        which every rank only starts after everyone finished reading them."""
        with self._cond:
            self._check(what)
            gen = self._generation
            slots = self._slots[gen % 2]
            slots[rank] = payload
            self._arrived.add(rank)
            if len(self._arrived) == self.world_size:
                self._arrived = set()
                self._generation += 1
                self._cond.notify_all()
                return list(slots)
            deadline = time.monotonic() + self.timeout
            while self._generation == gen and self._failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(self.world_size)) - self._arrived)
                    self._fail(
                        f"{what} timed out after {self.timeout:g} s on rank {rank}: rank(s) "
                        f"{missing} never joined (stuck, dead, or calling other collectives)"
                    )
                    raise CollectiveTimeoutError(self._failure)
                self._cond.wait(left)
            if self._generation == gen:
                raise DistributedError(f"{what} on rank {rank}: {self._failure}")
            return list(slots)

    def _check(self, what: str) -> None:
        if self._failure is not None:
            raise DistributedError(f"{what}: the local process group is broken: {self._failure}")
        if self._returned:
            raise DistributedError(
                f"{what}: rank(s) {sorted(self._returned)} already returned from their function; "
                "every rank must call the same collectives"
            )

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
        self._cond.notify_all()

    def fail(self, reason: str) -> None:
        """Break the world: every rank waiting (or arriving later) raises with ``reason``."""
        with self._cond:
            self._fail(reason)

    def returned(self, rank: int) -> None:
        """Rank ``rank``'s function returned; ranks still waiting for it cannot complete."""
        with self._cond:
            self._returned.add(rank)
            if self._arrived:
                self._fail(
                    f"rank {rank} returned from its function while rank(s) "
                    f"{sorted(self._arrived)} wait in a collective"
                )


class LocalGroup(ProcessGroup):
    """One thread's view of a LocalWorld."""

    backend = "local"

    def __init__(self, world: LocalWorld, rank: int) -> None:
        super().__init__(rank, world.world_size, world.timeout)
        self.world = world

    def destroy(self) -> None:
        self.world.returned(self.rank)

    def exchange(self, signature: np.ndarray, what: str) -> np.ndarray:
        if self.world_size == 1:
            return signature[None, :]
        return np.stack(self.world.step(self.rank, signature, what))

    def _chunk(self, n: int, rank: int) -> slice:
        lo = n * rank // self.world_size
        return slice(lo, n * (rank + 1) // self.world_size)

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        if self.world_size == 1:
            return
        bufs = self.world.step(self.rank, buf, "all_reduce")
        part = _reduce(op, [b[self._chunk(buf.size, self.rank)] for b in bufs])
        parts = self.world.step(self.rank, part, "all_reduce")
        for r, p in enumerate(parts):
            buf[self._chunk(buf.size, r)] = p

    def broadcast(self, buf: np.ndarray, src: int) -> None:
        if self.world_size == 1:
            return
        bufs = self.world.step(self.rank, buf.copy() if self.rank == src else None, "broadcast")
        if self.rank != src:
            buf[...] = bufs[src]

    def allgather(self, buf: np.ndarray, out: np.ndarray) -> None:
        if self.world_size == 1:
            out[0] = buf
            return
        bufs = self.world.step(self.rank, buf.copy(), "all_gather")
        for r, b in enumerate(bufs):
            out[r] = b

    def reduce_scatter(self, inp: np.ndarray, out: np.ndarray, op: str) -> None:
        n = out.size
        if self.world_size == 1:
            out[...] = inp[:n]
            return
        bufs = self.world.step(self.rank, inp, "reduce_scatter")
        out[...] = _reduce(op, [b[self.rank * n : (self.rank + 1) * n] for b in bufs])
        self.world.step(self.rank, None, "reduce_scatter")  # inputs stay readable until here


def _reduce(op: str, parts: list[np.ndarray]) -> np.ndarray:
    ufunc = _REDUCERS[op]
    acc = parts[0].copy()
    for p in parts[1:]:
        ufunc(acc, p, out=acc)
    return acc


# --- joining a world ------------------------------------------------------------------------
_pending: dict[str, tuple[LocalWorld, set[int]]] = {}
_pending_lock = threading.Lock()


def join_local(world_size: int | None, rank: int | None, timeout: float, key: str) -> LocalGroup:
    """This thread's group in the local world called ``key`` (created by the first joiner)."""
    n = 1 if world_size is None else world_size
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DistributedError(f"init_process_group('local'): world_size must be >= 1, got {n!r}")
    if n == 1:
        if rank not in (None, 0):
            raise DistributedError(f"init_process_group('local'): rank {rank} >= world_size 1")
        return LocalGroup(LocalWorld(1, timeout), 0)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < n:
        raise DistributedError(
            f"init_process_group('local', world_size={n}): each thread must pass its rank in "
            f"0..{n - 1}, got {rank!r} (or use shrew.distributed.spawn(fn, {n}))"
        )
    with _pending_lock:
        world, joined = _pending.setdefault(key, (LocalWorld(n, timeout), set()))
        if world.world_size != n or rank in joined:
            why = f"world_size {world.world_size}" if world.world_size != n else f"rank {rank}"
            raise DistributedError(
                f"init_process_group('local', init_method={key!r}): another thread already "
                f"joined with {why}"
            )
        joined.add(rank)
        if len(joined) == n:
            del _pending[key]  # complete: the next init with this key starts a new world
    group = LocalGroup(world, rank)
    group.barrier()  # every rank has joined (or this times out naming the missing ones)
    return group


def spawn(
    fn: Callable[[int], Any],
    world_size: int,
    *,
    timeout: float | timedelta = DEFAULT_TIMEOUT,
    args: tuple = (),
) -> list[Any]:
    """Run ``fn(rank, *args)`` on ``world_size`` threads, each with a ``local`` default group.

    Returns the results in rank order. If any rank raises, the others' collectives fail at
    once (no waiting for the timeout), and the first rank's original exception is re-raised
    after every thread has finished (with a note naming the rank)."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise DistributedError(f"spawn: world_size must be a positive int, got {world_size!r}")
    world = LocalWorld(world_size, as_timeout(timeout))
    results: list[Any] = [None] * world_size
    errors: list[BaseException | None] = [None] * world_size
    first_failure: list[int] = []
    lock = threading.Lock()

    def run(rank: int) -> None:
        set_thread_group(LocalGroup(world, rank))
        try:
            results[rank] = fn(rank, *args)
            world.returned(rank)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors[rank] = exc
            with lock:
                if not first_failure:
                    first_failure.append(rank)
            world.fail(f"rank {rank} raised {type(exc).__name__}: {exc}")
        finally:
            set_thread_group(None)

    threads = [
        threading.Thread(target=run, args=(r,), name=f"shrew-rank-{r}", daemon=True)
        for r in range(world_size)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = [r for r in range(world_size) if errors[r] is not None]
    if failed:
        rank = first_failure[0] if first_failure else failed[0]
        exc = errors[rank]
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"(raised on rank {rank} of {world_size} in shrew.distributed.spawn)")
        raise exc
    return results
