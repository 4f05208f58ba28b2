"""Single-process data parallelism: ``DataParallel`` (shards of a batch run concurrently in
threads), ``reduce_gradients`` (combine GradStores) and the seed's accumulating
``ParallelTrainer``.

``DataParallel`` threads share the module (no replicas): each runs the forward of one shard
with the caller's grad mode and autocast dtype, and the outputs are concatenated on dim 0, so
the autograd graph joins them and ``loss.backward()`` returns ordinary gradients. The CPU
backend's Numba kernels release the GIL (``nogil=True``) and NumPy's BLAS does too, so shards
really overlap when cores are free; the backward walk itself is one thread (its kernels are
multi-threaded). Like torch's DataParallel, buffers updated in forward (BatchNorm running
statistics) see every shard's update in turn.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import shrew_core as sc
from shrew_core import GradStore, Tensor
from shrew_core.autocast import get_autocast_dtype, set_autocast_dtype
from shrew_nn import Module
from shrew_optim import GradAccumulator

from .errors import DistributedError


def split_sizes(n: int, parts: int) -> list[int]:
    """``n`` split into ``parts`` sizes as equal as possible (the first ones one larger)."""
    q, r = divmod(n, parts)
    return [q + 1 if i < r else q for i in range(parts)]


def run_in_mode(fn: Callable, grad_enabled: bool, autocast_dtype) -> Callable:
    """``fn`` wrapped to run with the given grad mode and autocast dtype (thread-local state
    a worker thread does not inherit)."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        prev = set_autocast_dtype(autocast_dtype)
        try:
            with sc.enable_grad() if grad_enabled else sc.no_grad():
                return fn(*args, **kwargs)
        finally:
            set_autocast_dtype(prev)

    return wrapped


class DataParallel(Module):
    """Run ``module`` on shards of the batch concurrently, one thread per shard.

    ``forward(*inputs)`` splits every tensor argument along dim 0 into
    ``min(num_workers, batch)`` shards (sizes as equal as possible), runs the shards on a
    thread pool and concatenates the outputs (a tensor or a tuple/list of tensors) on dim 0.
    Non-tensor arguments are passed to every shard. Parameters, ``train()``/``eval()`` and
    ``state_dict`` (``module.`` prefix, like torch) are the wrapped module's.

    Args:
        module: the model.
        num_workers: number of shards/threads (default: the CPU count).
    """

    def __init__(self, module: Module, num_workers: int | None = None) -> None:
        super().__init__()
        if num_workers is None:
            num_workers = os.cpu_count() or 1
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
            raise ValueError(f"DataParallel: num_workers must be a positive int, got "
                             f"{num_workers!r}")  # fmt: skip
        self.module = module
        self.num_workers = num_workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        batch = next((a.shape[0] for a in inputs if isinstance(a, Tensor) and a.ndim), None)
        if batch is None:
            raise DistributedError("DataParallel: forward needs a tensor argument with a batch dim")
        for a in inputs:
            if isinstance(a, Tensor) and (a.ndim == 0 or a.shape[0] != batch):
                raise sc.ShapeError(
                    f"DataParallel: every tensor argument must have batch size {batch} on dim 0, "
                    f"got {a.shape}"
                )
        parts = min(self.num_workers, batch)
        if parts <= 1:
            return self.module(*inputs, **kwargs)
        sizes = split_sizes(batch, parts)
        shards = []
        start = 0
        for size in sizes:
            shards.append([_narrow(a, start, size) for a in inputs])
            start += size
        if self._pool_size < parts - 1:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="shrew-dp")
            self._pool_size = parts - 1
        run = run_in_mode(self.module, sc.is_grad_enabled(), get_autocast_dtype())
        futures = [self._pool.submit(run, *shard, **kwargs) for shard in shards[1:]]
        outputs = [self.module(*shards[0], **kwargs)] + [f.result() for f in futures]
        return _gather(outputs)



def _narrow(a: Any, start: int, size: int) -> Any:
    return a.narrow(0, start, size) if isinstance(a, Tensor) else a


def _gather(outputs: list) -> Any:
    first = outputs[0]
    if isinstance(first, Tensor):
        return sc.cat(outputs, 0)
    if isinstance(first, (tuple, list)):
        return type(first)(_gather([o[i] for o in outputs]) for i in range(len(first)))
    raise DistributedError(
        f"DataParallel: the module returned {type(first).__name__}; expected a tensor or a "
        "tuple/list of tensors to concatenate"
    )


def reduce_gradients(
    stores: Iterable[GradStore], params: Iterable[Tensor], op: str = "avg"
) -> GradStore:
    """Combine the GradStores of several workers (the seed's semantics).

    No store gives an empty store and one a clone of it. Otherwise, for each of ``params``
    present in at least one store, the gradients are summed and, for ``"avg"``, divided by
    the number of stores that had one; the result holds only those parameters. f16/bf16
    gradients are summed in f32 and cast back."""
    if op not in ("avg", "sum"):
        raise ValueError(f"reduce_gradients: op must be 'avg' or 'sum', got {op!r}")
    stores = list(stores)
    out = GradStore()
    if not stores:
        return out
    with sc.no_grad():
        if len(stores) == 1:
            for t, g in stores[0].items():
                out[t] = g.clone()
            return out
        for p in params:
            grads = [s[p] for s in stores if p in s]
            if not grads:
                continue
            dtype = grads[0].dtype
            acc = grads[0].to(sc.f32) if dtype in (sc.f16, sc.bf16) else grads[0].clone()
            for g in grads[1:]:
                acc = acc + g.to(acc.dtype)
            if op == "avg":
                acc = acc / len(grads)
            out[p] = acc.to(dtype)
    return out


class ParallelTrainer:
    """Gradient accumulation over ``accumulation_steps`` micro-batches (the seed's API).

    ``accumulate_step(x, y, loss_fn)`` runs ``loss_fn(model(x), y)`` and its backward
    (``model.backward(loss)`` for a DistributedDataParallel model, so gradients are averaged
    over ranks too) and adds the gradients up; every ``accumulation_steps``-th call divides
    them by that number, steps the optimizer and returns the window's mean loss (else None).
    ``flush()`` applies a partial window (divided by the steps it holds), or returns None.
    """

    def __init__(self, model: Module, optimizer, accumulation_steps: int = 1) -> None:
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int) or (
            accumulation_steps <= 0
        ):
            raise ValueError(f"ParallelTrainer: accumulation_steps must be a positive int, got "
                             f"{accumulation_steps!r}")  # fmt: skip
        self.model = model
        self.optimizer = optimizer
        self.accumulation_steps = accumulation_steps
        self._acc = GradAccumulator(accumulation_steps, "sum")
        self._losses: list[float] = []

    def accumulate_step(self, x: Tensor, y: Tensor, loss_fn: Callable) -> float | None:
        loss = loss_fn(self.model(x), y)
        backward = getattr(self.model, "backward", None)
        grads = backward(loss) if callable(backward) else loss.backward()
        self._acc.add(grads)
        self._losses.append(float(loss.item()))
        if len(self._losses) == self.accumulation_steps:
            return self._apply()
        return None

    def flush(self) -> float | None:
        return self._apply() if self._losses else None

    @property
    def pending_steps(self) -> int:
        return len(self._losses)

    def _apply(self) -> float:
        n = len(self._losses)
        summed = self._acc.release()
        grads = GradStore()
        with sc.no_grad():
            for t, g in summed.items():
                grads[t] = g / n if n > 1 else g
        self.optimizer.step(grads)
        mean = sum(self._losses) / n
        self._losses = []
        return mean
