"""shrew.distributed: data and pipeline parallelism over MPI processes or in-process ranks.

Two backends share one API:

* ``mpi`` — one rank per process, started by ``mpiexec -n N python script.py`` (mpi4py with
  the mpich wheel: ``pip install 'shrew[mpi]'``); buffer-based collectives on the tensors'
  memory, never pickled objects;
* ``local`` — N ranks as threads of this process (``spawn(fn, N)``), for tests and
  single-machine use.

>>> import shrew_core as sc
>>> import shrew.distributed as dist
>>> def fn(rank):
...     t = sc.tensor([float(rank + 1)])
...     dist.all_reduce(t, op="sum")          # in place, and returned
...     return t.item()
>>> dist.spawn(fn, 2)
[3.0, 3.0]

Also ``DistributedDataParallel`` (bucketed, overlapped gradient all-reduce), ``DataParallel``
(shards in threads), GPipe ``PipelineParallel``, ``reduce_gradients`` and ``ParallelTrainer``.
``DistributedSampler`` lives in shrew_data (re-exported here). A collective never hangs: it
raises ``CollectiveTimeoutError`` after the group's ``timeout``, ``CollectiveMismatchError``
when ranks disagree on shapes/dtypes, and ``DistributedError`` when another rank failed.
"""

from shrew_data import DistributedSampler
from shrew_data.distributed_sampler import register_world_provider

from .collectives import (
    ReduceOp,
    all_gather,
    all_reduce,
    barrier,
    broadcast,
    reduce_scatter,
    reduce_scatter_tensor,
)
from .data_parallel import DataParallel, ParallelTrainer, reduce_gradients
from .ddp import DistributedDataParallel, ReductionStats
from .errors import CollectiveMismatchError, CollectiveTimeoutError, DistributedError
from .group import (
    DEFAULT_TIMEOUT,
    ProcessGroup,
    Work,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_initialized,
)
from .local import spawn
from .pipeline import PipelineParallel, PipelineStage, PipelineStats


def _default_world() -> tuple[int, int]:
    return get_world_size(), get_rank()


register_world_provider(_default_world)


def is_mpi_available() -> bool:
    """True when mpi4py can be imported (without initialising MPI)."""
    from importlib.util import find_spec

    return find_spec("mpi4py") is not None


__all__ = [
    "DEFAULT_TIMEOUT", "CollectiveMismatchError", "CollectiveTimeoutError", "DataParallel",
    "DistributedDataParallel", "DistributedError", "DistributedSampler", "ParallelTrainer",
    "PipelineParallel", "PipelineStage", "PipelineStats", "ProcessGroup", "ReduceOp",
    "ReductionStats", "Work", "all_gather", "all_reduce", "barrier", "broadcast",
    "destroy_process_group", "get_backend", "get_rank", "get_world_size", "init_process_group",
    "is_initialized", "is_mpi_available", "reduce_gradients", "reduce_scatter",
    "reduce_scatter_tensor", "spawn",
]  # fmt: skip
