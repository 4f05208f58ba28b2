"""The process group: the ranks of one job and the collectives each backend implements on
flat, contiguous NumPy buffers (the tensor-level API in ``collectives`` stages tensors into
them). Also the default group of this process (``mpi``) or of this thread (``local``
ranks), and ``init_process_group`` / ``destroy_process_group`` / ``get_rank`` / ...

Every collective first exchanges a small int64 *signature* (which collective, reduce op,
dtype, shape, root) among the ranks, with the group's timeout: a rank that is missing,
dead or calling something else is reported instead of waited for forever, and ranks that
disagree raise ``CollectiveMismatchError`` on every rank, naming each rank's tensor.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta

import numpy as np

from .errors import CollectiveMismatchError, DistributedError

#: Seconds a collective waits for the other ranks before raising (torch's default).
DEFAULT_TIMEOUT = 1800.0
#: Reduce ops the backends implement; "avg" is a "sum" divided by the world size.
BACKEND_OPS = ("sum", "max", "min", "prod")


def as_timeout(timeout: float | timedelta) -> float:
    """Seconds from a number or a ``datetime.timedelta``; must be positive."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise DistributedError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(seconds)


class Work:
    """Handle of a non-blocking collective: ``wait()`` blocks (with the group's timeout)."""

    def wait(self) -> None:
        raise NotImplementedError

    def is_completed(self) -> bool:
        raise NotImplementedError


class CompletedWork(Work):
    """A collective that already finished when it was issued."""

    def wait(self) -> None:
        return None

    def is_completed(self) -> bool:
        return True


class ProcessGroup(ABC):
    """One job's ranks. Buffers are 1-D C-contiguous NumPy arrays, modified in place.

    Attributes:
        backend: ``"mpi"`` or ``"local"``.
        rank, world_size: this rank and the number of ranks.
        timeout: seconds any collective waits for the other ranks.
    """

    backend: str

    def __init__(self, rank: int, world_size: int, timeout: float) -> None:
        self.rank = rank
        self.world_size = world_size
        self.timeout = timeout

    # --- what a backend implements -----------------------------------------------------
    @abstractmethod
    def exchange(self, signature: np.ndarray, what: str) -> np.ndarray:
        """Every rank's int64 signature, as rows of a ``[world_size, len]`` array."""

    @abstractmethod
    def allreduce(self, buf: np.ndarray, op: str) -> None:
        """Reduce ``buf`` over the ranks with ``op`` (one of BACKEND_OPS), in place."""

    def iallreduce(self, buf: np.ndarray, op: str) -> Work:
        """Start ``allreduce``; ``buf`` must stay untouched until ``wait()`` returns."""
        self.allreduce(buf, op)
        return CompletedWork()

    @abstractmethod
    def broadcast(self, buf: np.ndarray, src: int) -> None:
        """Overwrite ``buf`` with rank ``src``'s ``buf``."""

    @abstractmethod
    def allgather(self, buf: np.ndarray, out: np.ndarray) -> None:
        """``out[r] = buf of rank r``; ``out`` has shape ``[world_size, buf.size]``."""

    @abstractmethod
    def reduce_scatter(self, inp: np.ndarray, out: np.ndarray, op: str) -> None:
        """``out = op over ranks of inp[rank * n:(rank + 1) * n]`` with ``n = out.size``."""

    def progress(self) -> None:  # noqa: B027 - optional: only MPI needs it
        """Let outstanding non-blocking collectives advance (MPI needs calls to progress)."""

    def destroy(self) -> None:  # noqa: B027 - optional: most backends hold nothing
        """Release the group's resources; it cannot be used afterwards."""

    # --- shared ---------------------------------------------------------------------------
    def verify(self, what: str, signature: np.ndarray, describe: Callable[[np.ndarray], str]):
        """Exchange ``signature``; raise CollectiveMismatchError on every rank if they differ."""
        rows = self.exchange(np.ascontiguousarray(signature, dtype=np.int64), what)
        if not (rows == rows[0]).all():
            detail = "; ".join(f"rank {r}: {describe(row)}" for r, row in enumerate(rows))
            raise CollectiveMismatchError(
                f"{what}: the ranks called it with different arguments ({detail})"
            )

    def barrier(self) -> None:
        self.verify("barrier", _BARRIER_SIGNATURE, describe_call)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} backend={self.backend!r} rank={self.rank} "
            f"world_size={self.world_size}>"
        )


# --- signatures ------------------------------------------------------------------------------
#: Collective kinds as signature codes (index + 1; 0 is unused).
KINDS = ("barrier", "all_reduce", "broadcast", "all_gather", "reduce_scatter", "ddp")
OPS = ("", "sum", "avg", "max", "min", "prod")
SIGNATURE_DIMS = 10  # shape dims carried (numel is always compared)


def make_signature(kind: str, op: str = "", dtype_code: int = 0, shape=(), root: int = 0):
    """The int64 signature of one collective call: kind, op, dtype, root, rank, numel, dims."""
    shape = tuple(int(d) for d in shape)
    dims = list(shape[:SIGNATURE_DIMS]) + [-1] * (SIGNATURE_DIMS - min(len(shape), SIGNATURE_DIMS))
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    return np.array(
        [KINDS.index(kind) + 1, OPS.index(op), dtype_code, root, len(shape), numel, *dims],
        dtype=np.int64,
    )


_BARRIER_SIGNATURE = make_signature("barrier")


def describe_call(row: np.ndarray) -> str:
    """One rank's signature in words: ``all_reduce(op='sum') of f32 (3, 4)``."""
    from shrew_core import ALL_DTYPES

    kind = KINDS[int(row[0]) - 1] if 0 < row[0] <= len(KINDS) else f"<unknown {row[0]}>"
    if kind == "barrier":
        return "barrier()"
    ndim = int(row[4])
    dims = [int(d) for d in row[6 : 6 + min(ndim, SIGNATURE_DIMS)]]
    shape = "(" + ", ".join(map(str, dims)) + ("," if ndim == 1 else "")
    shape += ", ..." if ndim > SIGNATURE_DIMS else ""
    shape += ")"
    dtype = ALL_DTYPES[int(row[2])].name if 0 <= row[2] < len(ALL_DTYPES) else "?"
    args = [f"op={OPS[int(row[1])]!r}"] if row[1] else []
    if kind == "broadcast":
        args.append(f"src={int(row[3])}")
    return f"{kind}({', '.join(args)}) of {dtype} {shape}"


# --- the default group ------------------------------------------------------------------------
class _ThreadGroup(threading.local):
    group: ProcessGroup | None = None


_thread = _ThreadGroup()  # local ranks: one group per thread
_process: list[ProcessGroup] = []  # mpi: one group per process
_process_lock = threading.Lock()


def current_group(op: str) -> ProcessGroup:
    """This thread's group (a local rank), else this process's, else a DistributedError."""
    group = _thread.group or (_process[0] if _process else None)
    if group is None:
        raise DistributedError(
            f"{op}: the default process group is not initialized; call "
            "shrew.distributed.init_process_group('mpi' | 'local') first (or run the function "
            "under shrew.distributed.spawn)"
        )
    return group


def set_thread_group(group: ProcessGroup | None) -> None:
    _thread.group = group


def _launched_by_mpi() -> bool:
    """True when an MPI launcher (mpiexec/mpirun/srun) started this process."""
    keys = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
    return any(k in os.environ for k in keys)


def init_process_group(
    backend: str | None = None,
    world_size: int | None = None,
    rank: int | None = None,
    *,
    timeout: float | timedelta = DEFAULT_TIMEOUT,
    init_method: str = "local://default",
) -> ProcessGroup:
    """Create the default process group and return it.

    Args:
        backend: ``"mpi"`` (processes started by ``mpiexec -n N python script.py``; needs
            ``pip install 'shrew[mpi]'``) or ``"local"`` (ranks are threads of this process).
            ``None`` picks ``"mpi"`` when an MPI launcher started the process, else ``"local"``.
        world_size: number of ranks; for ``mpi`` it must match ``mpiexec -n`` (default: that
            number); for ``local`` the threads that will join (default 1).
        rank: for ``local`` with several ranks, this thread's rank; ``mpi`` ranks come from
            the launcher.
        timeout: seconds (or a ``timedelta``) any collective waits before raising
            ``CollectiveTimeoutError``.
        init_method: ``local`` ranks calling with the same string join the same world.
    """
    seconds = as_timeout(timeout)
    if backend is None:
        backend = "mpi" if _launched_by_mpi() else "local"
    if is_initialized():
        raise DistributedError(
            "init_process_group: the default process group is already initialized "
            "(call destroy_process_group() first)"
        )
    if backend == "mpi":
        from .mpi import MpiGroup

        if rank is not None:
            raise DistributedError("init_process_group('mpi'): the rank comes from mpiexec")
        with _process_lock:
            group: ProcessGroup = MpiGroup(world_size, seconds)
            _process.append(group)
        return group
    if backend == "local":
        from .local import join_local

        group = join_local(world_size, rank, seconds, init_method)
        set_thread_group(group)
        return group
    if backend == "nccl":
        raise NotImplementedError(
            "init_process_group('nccl'): the NCCL backend is not implemented; use 'mpi' "
            "(GPU tensors are staged through host memory) or 'local'"
        )
    raise DistributedError(
        f"init_process_group: unknown backend {backend!r} (expected 'mpi' or 'local')"
    )


def destroy_process_group() -> None:
    """Tear down this thread's (local) or this process's (mpi) default group."""
    group = _thread.group
    if group is not None:
        set_thread_group(None)
        group.destroy()
        return
    with _process_lock:
        if _process:
            _process.pop().destroy()


def is_initialized() -> bool:
    return _thread.group is not None or bool(_process)


def get_rank(group: ProcessGroup | None = None) -> int:
    """This rank's index in ``group`` (default: the default group)."""
    return (group or current_group("get_rank")).rank


def get_world_size(group: ProcessGroup | None = None) -> int:
    return (group or current_group("get_world_size")).world_size


def get_backend(group: ProcessGroup | None = None) -> str:
    return (group or current_group("get_backend")).backend
