"""DistributedDataParallel: one model replica per rank, gradients averaged over the ranks.

At construction the replicas are checked to have the same parameters (names' shapes and
dtypes) and rank 0's parameters and buffers are broadcast to every rank, so replicas start
identical whatever each rank's seed was. ``backward(loss)`` runs the autograd walk with a
gradient-ready callback: each parameter's gradient is copied into its *bucket* (flat
buffers of at most ``bucket_cap_mb`` MiB, filled in reverse parameter order, which is
roughly the order backward produces them) as soon as it is final, and a full bucket's
all-reduce starts at once, non-blocking (``Iallreduce`` under MPI), while the walk goes on.
Buckets launch in index order on every rank (a ready bucket waits for its predecessors), so
ranks always issue the same collectives in the same order. At the end of the walk the
remaining buckets launch, all are waited for, and the sums are divided by the world size.

The returned GradStore holds every parameter's averaged gradient (zeros for one no rank
used, unless ``find_unused_parameters=True``, which leaves those out like torch) as views of
the bucket buffers, which are fresh for each backward. f16/bf16 gradients are reduced in f32
and cast back. Identical gradients on every rank keep the replicas identical after each
optimizer step.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

import shrew_core as sc
from shrew_core import GradStore, Tensor
from shrew_core.autograd import backward as autograd_backward
from shrew_nn import Module

from .collectives import stage
from .group import ProcessGroup, current_group, make_signature


@dataclass
class ReductionStats:
    """How the last synchronised ``backward`` communicated.

    Attributes:
        buckets: number of buckets (one all-reduce each).
        launched_during_backward: buckets whose all-reduce started before the autograd walk
            ended (overlapping the rest of backward).
        backward_s: seconds in the autograd walk (including bucket copies and launches).
        wait_s: seconds spent waiting for the all-reduces after the walk.
    """

    buckets: int
    launched_during_backward: int
    backward_s: float
    wait_s: float


class _Bucket:
    """Parameters whose gradients are all-reduced together in one flat buffer."""

    def __init__(self, np_dtype: np.dtype) -> None:
        self.np_dtype = np_dtype
        self.params: list[Tensor] = []
        self.offsets: list[int] = []
        self.numel = 0

    def add(self, p: Tensor) -> None:
        self.params.append(p)
        self.offsets.append(self.numel)
        self.numel += p.numel

    @property
    def nbytes(self) -> int:
        return self.numel * self.np_dtype.itemsize


def _unique(tensors) -> list[Tensor]:
    seen: set[int] = set()
    out = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _wire_dtype(dtype: sc.DType) -> np.dtype:
    return np.dtype(np.float64) if dtype is sc.f64 else np.dtype(np.float32)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training on the ranks of ``process_group``.

    Args:
        module: the local replica (built the same way on every rank).
        bucket_cap_mb: gradient bucket size in MiB (torch's default 25).
        process_group: default: the default group (``init_process_group`` / ``spawn``).
        broadcast_buffers: copy rank 0's buffers (BatchNorm statistics) to every rank at the
            start of each forward, like torch.
        find_unused_parameters: also all-reduce a "has a gradient" mask and leave parameters
            no rank used out of the GradStore (costs one more small all-reduce per step).

    Attributes:
        module: the wrapped module (``state_dict`` keys get the ``module.`` prefix, as torch's).
        last_reduction: ReductionStats of the last synchronised backward.

    Example::

        model = DistributedDataParallel(MLP())
        grads = model.backward(loss_fn(model(x_local), y_local))   # averaged over ranks
        opt.step(grads)
    """

    def __init__(
        self,
        module: Module,
        bucket_cap_mb: float = 25.0,
        *,
        process_group: ProcessGroup | None = None,
        broadcast_buffers: bool = True,
        find_unused_parameters: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected a shrew_nn Module, got {type(module).__name__}"
            )
        if isinstance(bucket_cap_mb, bool) or not (
            isinstance(bucket_cap_mb, (int, float)) and bucket_cap_mb > 0
        ):
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be > 0, got "
                             f"{bucket_cap_mb!r}")  # fmt: skip
        self.module = module
        self.process_group = process_group or current_group("DistributedDataParallel")
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.last_reduction: ReductionStats | None = None
        self._params = _unique(p for p in module.parameters() if p.requires_grad)
        self._verify_replicas()
        self._broadcast_from_rank0(self._params + list(module.buffers()))
        self._buckets = self._assign_buckets()
        self._slot: dict[int, tuple[int, int, int]] = {}  # id(param) -> (bucket, offset, index)
        index = {id(p): i for i, p in enumerate(self._params)}
        for b, bucket in enumerate(self._buckets):
            for p, off in zip(bucket.params, bucket.offsets):
                self._slot[id(p)] = (b, off, index[id(p)])
        self._sync = True
        self._accumulated: dict[int, np.ndarray] = {}  # gradients summed under no_sync()

    # ------------------------------------------------------------------ construction
    def _verify_replicas(self) -> None:
        """Every rank must wrap the same parameter/buffer structure."""
        h = hashlib.blake2b(digest_size=8)
        tensors = self._params + list(self.module.buffers())
        for t in tensors:
            h.update(f"{t.shape}:{t.dtype.name};".encode())
        digest = int.from_bytes(h.digest(), "little", signed=True)
        numel = sum(p.numel for p in self._params)
        sig = make_signature("ddp", shape=(len(self._params), numel, len(tensors), digest))

        def describe(row: np.ndarray) -> str:
            return (
                f"{int(row[6])} parameters with {int(row[7])} elements, {int(row[8])} "
                f"tensors with layout digest {int(row[9]):#x}"
            )

        self.process_group.verify("DistributedDataParallel (model replicas)", sig, describe)

    def _broadcast_from_rank0(self, tensors: list[Tensor]) -> None:
        """Copy rank 0's values of ``tensors`` to every rank, one broadcast per dtype."""
        if self.process_group.world_size == 1 or not tensors:
            return
        by_dtype: dict[Any, list[Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            staged = [stage(t) for t in group]
            flat = np.concatenate([buf for buf, _ in staged]) if staged else None
            self.process_group.broadcast(flat, 0)
            off = 0
            for buf, write_back in staged:
                buf[...] = flat[off : off + buf.size]
                write_back(buf)
                off += buf.size

    def _assign_buckets(self) -> list[_Bucket]:
        cap = self.bucket_cap_mb * 2**20
        buckets: list[_Bucket] = []
        open_: dict[np.dtype, _Bucket] = {}
        for p in reversed(self._params):
            wire = _wire_dtype(p.dtype)
            bucket = open_.get(wire)
            if bucket is not None and bucket.nbytes + p.numel * wire.itemsize > cap:
                bucket = None  # full: open a new one (a parameter over the cap gets its own)
            if bucket is None:
                bucket = open_[wire] = _Bucket(wire)
                buckets.append(bucket)
            bucket.add(p)
        return buckets

    @property
    def bucket_sizes(self) -> list[int]:
        """Bytes of each gradient bucket, in launch order."""
        return [b.nbytes for b in self._buckets]

    # ------------------------------------------------------------------ forward / backward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers:
            buffers = list(self.module.buffers())
            if buffers:
                self._broadcast_from_rank0(buffers)
        return self.module(*args, **kwargs)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Inside, ``backward`` only accumulates gradients locally (no communication); the
        first synchronised ``backward`` after it averages the accumulated sum plus its own
        gradients — the whole window, like ``param.grad`` after torch's ``no_sync``."""
        prev = self._sync
        self._sync = False
        try:
            yield
        finally:
            self._sync = prev

    def backward(self, loss: Tensor, grad: Tensor | None = None) -> GradStore:
        """Gradients of ``loss`` for every variable it depends on; the wrapped module's
        parameters' gradients are averaged over the ranks (unless inside ``no_sync()``)."""
        if not self._sync:
            store = autograd_backward(loss, grad)
            self._accumulate(store)
            return store
        reduction = _Reduction(self)
        start = time.perf_counter()
        store = autograd_backward(loss, grad, on_grad_ready=reduction.ready)
        walked = time.perf_counter()
        launched = reduction.next
        out = reduction.finish(store)
        self.last_reduction = ReductionStats(
            len(self._buckets), launched, walked - start, time.perf_counter() - walked
        )
        return out

    def _accumulate(self, store: GradStore) -> None:
        for p in self._params:
            g = store.get(p)
            if g is None:
                continue
            wire = _wire_dtype(p.dtype)
            acc = self._accumulated.get(id(p))
            arr = np.asarray(g.numpy(), dtype=wire)
            self._accumulated[id(p)] = arr.copy() if acc is None else acc + arr

    def extra_repr(self) -> str:
        return (
            f"world_size={self.process_group.world_size}, buckets={len(self._buckets)}, "
            f"bucket_cap_mb={self.bucket_cap_mb:g}"
        )


class _Reduction:
    """The bucket buffers and all-reduces of one synchronised backward."""

    def __init__(self, ddp: DistributedDataParallel) -> None:
        self.ddp = ddp
        self.group = ddp.process_group
        buckets = ddp._buckets
        self.flats = [np.empty(b.numel, b.np_dtype) for b in buckets]
        self.pending = [len(b.params) for b in buckets]
        self.filled = np.zeros(len(ddp._params), bool)  # holds a gradient of this rank
        self.seen = np.zeros(len(ddp._params), bool)  # copied into its bucket
        self.works: list = []
        self.next = 0

    def _fill(self, p: Tensor, grad: Tensor | None) -> None:
        b, off, i = self.ddp._slot[id(p)]
        dst = self.flats[b][off : off + p.numel].reshape(p.shape)
        acc = self.ddp._accumulated.get(id(p))
        if grad is not None:
            np.copyto(dst, grad.numpy(), casting="unsafe")
            if acc is not None:
                dst += acc.reshape(p.shape)
        elif acc is not None:
            dst[...] = acc.reshape(p.shape)
        else:
            dst[...] = 0
        self.filled[i] = grad is not None or acc is not None
        self.seen[i] = True
        self.pending[b] -= 1

    def ready(self, param: Tensor, grad: Tensor) -> None:
        """The autograd walk's callback: ``param``'s gradient is final."""
        if id(param) not in self.ddp._slot:
            return
        self._fill(param, grad)
        self._launch_ready()

    def _launch_ready(self) -> None:
        while self.next < len(self.flats) and self.pending[self.next] == 0:
            self.works.append(self.group.iallreduce(self.flats[self.next], "sum"))
            self.next += 1
        self.group.progress()

    def finish(self, store: GradStore) -> GradStore:
        ddp = self.ddp
        for b, bucket in enumerate(ddp._buckets):
            if self.pending[b]:
                for p in bucket.params:
                    if not self.seen[ddp._slot[id(p)][2]]:
                        self._fill(p, None)
        self._launch_ready()
        for work in self.works:
            work.wait()
        world = self.group.world_size
        if world > 1:
            for flat in self.flats:
                np.divide(flat, world, out=flat)
        used = None
        if ddp.find_unused_parameters:
            used = self.filled.astype(np.uint8)
            self.group.allreduce(used, "max")
        out = GradStore()
        for t, g in store.items():
            if id(t) not in ddp._slot:
                out[t] = g
        for i, p in enumerate(ddp._params):
            if used is not None and not used[i]:
                continue
            b, off, _ = ddp._slot[id(p)]
            g = sc.from_numpy(self.flats[b][off : off + p.numel].reshape(p.shape))
            if g.dtype != p.dtype:
                g = g.to(p.dtype)
            if g.device != p.device:
                g = g.to(p.device)
            out[p] = g
        ddp._accumulated.clear()
        return out
