"""Host side of the optimizer updates: dtype handling, the serial/parallel switch, and
batching a whole optimizer step into one parallel region.

Storages are updated IN PLACE. f32/f64 storages are handed to the kernels directly;
f16/bf16 parameters/states are updated through f32 copies written back once.

Inside ``batched()`` (the backend's ``batched_updates``, entered by ``shrew_optim`` around
a step) f32/f64 updates are queued and run on exit as ONE ``parallel_for``: the queued
index ranges, laid end to end, are cut into equal parts, each part a list of kernel
calls. Per parameter, a parallel region costs a worker wake-up and the wait for the
last chunk (~0.1 ms each on the 2-core VM): an Adam step over 10 layers of 1000x1000
went 7.6-8.0 ms -> 6.5-7.2 ms (``benchmarks/bench_optim.py``). Small parameters (biases)
join the same region instead of running serially in the caller.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator

import numpy as np

from . import _config
from .elementwise import chunks
from .kernels import optim as K
from .threads import parallel_for

_F32 = np.dtype(np.float32)
#: Per thread: the queue of the ``batched()`` context it is in (absent or None: run now).
_local = threading.local()


def _ranges(n: int) -> list[tuple[int, int]]:
    """Index ranges for ``n`` elements of update: the elementwise ops' chunks from
    ``PARALLEL_THRESHOLD``, else one range run in the caller."""
    return chunks(n) if n >= _config.PARALLEL_THRESHOLD else [(0, n)]


class _Half:
    """f32 working copies of half storages, written back on exit. Their updates run at
    once, also inside ``batched()``: the write-back needs the kernel's result."""

    def __init__(self, *arrays):
        self.orig = arrays

    def __enter__(self):
        self.queue, _local.queue = getattr(_local, "queue", None), None
        self.work = [None if a is None else a.astype(_F32) for a in self.orig]
        return self.work

    def __exit__(self, *exc):
        _local.queue = self.queue
        if exc[0] is None:
            for o, w in zip(self.orig, self.work):
                if o is not None:
                    o[...] = w.astype(o.dtype)


def _run(kernel, arrays, scalars, n):
    args = (*arrays, *scalars)
    queue = getattr(_local, "queue", None)
    if queue is not None:
        queue.append((kernel, args, n))
    else:
        _run_now(kernel, args, n)


def _run_now(kernel, args, n):
    rs = _ranges(n)
    if len(rs) > 1:
        parallel_for(kernel, [(*args, lo, hi) for lo, hi in rs])
    else:
        kernel(*args, 0, n)


def _run_calls(calls) -> None:
    for kernel, args, lo, hi in calls:
        kernel(*args, lo, hi)


def _flush(queue: list) -> None:
    """Run the queued updates: their ranges end to end, cut as ``_ranges`` cuts one update.
    Updates of one storage twice (two parameters viewing it) run one after the other, and
    so does a step small enough for one range (nothing to split, no storages to compare)."""
    total = sum(n for _, _, n in queue)
    bounds = _ranges(total)
    if len(bounds) == 1 or len({args[0].ctypes.data for _, args, _ in queue}) < len(queue):
        for kernel, args, n in queue:
            _run_now(kernel, args, n)
        return
    parts: list[list] = [[] for _ in bounds]
    start, j = 0, 0  # global index of the current update's first element; current part
    for kernel, args, n in queue:
        lo = 0
        while lo < n:
            while bounds[j][1] <= start + lo:
                j += 1
            hi = min(n, bounds[j][1] - start)
            parts[j].append((kernel, args, lo, hi))
            lo = hi
        start += n
    parallel_for(_run_calls, [(p,) for p in parts])


@contextlib.contextmanager
def batched() -> Iterator[None]:
    """Queue this thread's f32/f64 updates and run them together on exit (also when the
    body raises: queued updates belong to steps already counted). Nested: the outer
    context runs everything."""
    if getattr(_local, "queue", None) is not None:
        yield
        return
    queue: list = []
    _local.queue = queue
    try:
        yield
    finally:
        _local.queue = None
        if queue:
            _flush(queue)


def _dummy(like):
    return np.zeros(1, like.dtype)


def sgd(n, param, grad, buf, *, lr, momentum, dampening, nesterov, weight_decay, maximize,
        first_step):  # fmt: skip
    def go(p, g, b):
        t = p.dtype.type
        common = (weight_decay != 0.0, t(-1.0 if maximize else 1.0), t(weight_decay), t(lr))
        if momentum != 0.0 and b is not None:
            _run(K.sgd_momentum, (p[:n], g[:n], b), (*common, bool(first_step), bool(nesterov),
                 t(momentum), t(1.0 - dampening)), n)  # fmt: skip
        else:
            _run(K.sgd, (p[:n], g[:n]), common, n)

    if param.dtype.itemsize == 2:
        with _Half(param, grad, buf) as w:
            go(*w)
    else:
        go(param, grad, buf)


def adam(n, param, grad, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled, step,
         maximize):  # fmt: skip
    bc1, bc2 = 1.0 - beta1**step, 1.0 - beta2**step

    def go(p, g, m_, v_, vm):
        t = p.dtype.type
        scalars = (weight_decay != 0.0 and not decoupled, t(-1.0 if maximize else 1.0),
                   t(1.0 - lr * weight_decay if decoupled else 1.0), t(weight_decay), t(beta1),
                   t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(lr / bc1),
                   t(1.0 / math.sqrt(bc2)), t(eps))  # fmt: skip
        if vm is None:
            _run(K.adam, (p[:n], g[:n], m_, v_), scalars, n)
        else:
            _run(K.adam_amsgrad, (p[:n], g[:n], m_, v_, vm), scalars, n)

    if param.dtype.itemsize == 2:
        with _Half(param, grad, m, v, vmax) as w:
            go(*w)
    else:
        go(param, grad, m, v, vmax)


def radam(n, param, grad, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, step,
          maximize=False):  # fmt: skip
    def go(p, g, m_, v_):
        _run(K.radam, (p[:n], g[:n], m_, v_),
             (float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
              bool(decoupled), float(step), bool(maximize)), n)  # fmt: skip

    if param.dtype.itemsize == 2:
        with _Half(param, grad, m, v) as w:
            go(*w)
    else:
        go(param, grad, m, v)


def rmsprop(n, param, grad, sq, buf, gavg, *, lr, alpha, eps, weight_decay, momentum, centered,
            maximize=False):  # fmt: skip
    def go(p, g, s, b, ga):
        has = b is not None
        _run(K.rmsprop,
             (p[:n], g[:n], s, b if has else _dummy(p), ga if ga is not None else _dummy(p)),
             (has, bool(centered), float(lr), float(alpha), float(eps), float(weight_decay),
              float(momentum), bool(maximize)), n)  # fmt: skip

    if param.dtype.itemsize == 2:
        with _Half(param, grad, sq, buf, gavg) as w:
            go(*w)
    else:
        go(param, grad, sq, buf, gavg)
