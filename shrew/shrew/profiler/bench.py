"""``benchmark_forward`` / ``benchmark_forward_backward``: time a model's step, excluding
the time spent creating its inputs (``input_fn``) from every figure (the seed counted it in
the average and the throughput)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shrew_core as sc
from shrew_core import Tensor


@dataclass(frozen=True)
class BenchmarkResult:
    """Timings in seconds of ``iterations`` timed steps (``input_fn`` excluded throughout).

    Attributes:
        iterations, batch_size: as asked.
        total_time: the sum of the per-step times.
        avg_time, min_time, max_time, median_time: per step.
        throughput: samples per second, ``iterations * batch_size / total_time``.
        times: every step's time.
    """

    iterations: int
    batch_size: int
    total_time: float
    avg_time: float
    min_time: float
    max_time: float
    median_time: float
    throughput: float
    times: tuple[float, ...] = field(repr=False, default=())

    def __str__(self) -> str:
        return "\n".join([
            f"Benchmark: {self.iterations} iters, batch_size={self.batch_size}",
            f"  Total:      {self.total_time * 1e3:.3f} ms",
            f"  Avg/iter:   {self.avg_time * 1e3:.3f} ms",
            f"  Min/Max:    {self.min_time * 1e3:.3f} / {self.max_time * 1e3:.3f} ms",
            f"  Throughput: {self.throughput:.1f} samples/sec",
        ])  # fmt: skip


def _synchronize(obj: Any) -> None:
    """Wait for asynchronous backends to finish what produced ``obj``."""
    if isinstance(obj, Tensor):
        obj._backend.synchronize()
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _synchronize(o)
    elif isinstance(obj, dict):
        _synchronize(list(obj.values()))


def _call(model: Callable, inputs: Any) -> Any:
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def _check(iters: int, warmup: int, batch_size: int) -> None:
    if not isinstance(iters, int) or iters < 1:
        raise ValueError(f"benchmark: iters must be a positive int, got {iters!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"benchmark: warmup must be a non-negative int, got {warmup!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"benchmark: batch_size must be a positive int, got {batch_size!r}")


def _run(step: Callable[[Any], Any], input_fn: Callable[[], Any], batch_size: int, warmup: int,
         iters: int) -> BenchmarkResult:  # fmt: skip
    _check(iters, warmup, batch_size)
    for _ in range(warmup):
        _synchronize(step(input_fn()))
    times = []
    for _ in range(iters):
        inputs = input_fn()
        _synchronize(inputs)
        start = time.perf_counter()
        _synchronize(step(inputs))
        times.append(time.perf_counter() - start)
    total = sum(times)
    ordered = sorted(times)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return BenchmarkResult(iters, batch_size, total, total / iters, ordered[0], ordered[-1],
                           median, iters * batch_size / total if total > 0 else float("inf"),
                           tuple(times))  # fmt: skip


def benchmark_forward(model: Callable, input_fn: Callable[[], Any], batch_size: int = 1,
                      warmup: int = 5, iters: int = 100) -> BenchmarkResult:  # fmt: skip
    """Time ``model(input_fn())`` (under ``no_grad``: inference). ``input_fn`` returns the
    input, or a tuple of inputs; it is called outside the timed region."""

    def step(inputs):
        with sc.no_grad():
            return _call(model, inputs)

    return _run(step, input_fn, batch_size, warmup, iters)


def benchmark_forward_backward(model: Callable, input_fn: Callable[[], Any],
                               loss_fn: Callable[[Any], Tensor], batch_size: int = 1,
                               warmup: int = 5, iters: int = 100) -> BenchmarkResult:  # fmt: skip
    """Time ``loss_fn(model(input_fn())).backward()`` (forward, loss and backward);
    ``input_fn`` is outside the timed region. Returns the timings; the gradients are
    discarded."""

    def step(inputs):
        loss = loss_fn(_call(model, inputs))
        return loss.backward().values()

    return _run(step, input_fn, batch_size, warmup, iters)
