"""The per-op host path of shrew_core, compiled (Cython ``_speedups``) vs pure Python (``_shapes``).

Run: ``python benchmarks/bench_core_hotpath.py``. Prints microseconds per call and the
speed-up for the shape arithmetic every op performs and for the backward graph walk, then
the front end's cost per op on the ``cpu`` backend (a 4x4 tensor: the work is nil) beside
PyTorch's when it is installed. For instruction counts, which a shared machine does not
disturb, run ``tiny_step`` under ``valgrind --tool=callgrind`` at two iteration counts.
"""

from __future__ import annotations

import timeit

import shrew_core as sc
from shrew_core import _shapes, _speedups


def _time(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    shape, strides = (8, 16, 32, 64), (32768, 2048, 64, 1)
    cases = {
        "broadcast_shapes": lambda m: m.broadcast_shapes((8, 1, 32, 64), (16, 1, 64)),
        "broadcast_strides": lambda m: m.broadcast_strides((1, 32, 64), (2048, 64, 1), shape),
        "is_contiguous": lambda m: m.is_contiguous(shape, strides),
        "view_strides": lambda m: m.view_strides(shape, strides, (128, 2048)),
        "contiguous_strides": lambda m: m.contiguous_strides(shape),
    }
    x = sc.ones(4, device="reference").requires_grad_()
    y = x
    for _ in range(2000):
        y = y * 1.0
    cases_walk = {"topo_order (2000-node graph)": lambda m: m.topo_order(y)}
    print(f"{'function':32s} {'python us':>10s} {'cython us':>10s} {'speed-up':>9s}")
    for name, fn in {**cases, **cases_walk}.items():
        n = 20 if "topo" in name else 100_000
        py = _time(lambda fn=fn: fn(_shapes), n)
        cy = _time(lambda fn=fn: fn(_speedups), n)
        print(f"{name:32s} {py:10.3f} {cy:10.3f} {py / cy:8.2f}x")
    per_op()


def tiny_step(lib, a, b) -> None:
    """Two fresh leaf tensors, mul, sum, backward: the per-op overhead benchmark."""
    if lib == "shrew":
        p, q = sc.tensor(a).requires_grad_(), sc.tensor(b).requires_grad_()
    else:
        import torch

        p = torch.from_numpy(a.copy()).requires_grad_()
        q = torch.from_numpy(b.copy()).requires_grad_()
    (p * q).sum().backward()


def per_op() -> None:
    import numpy as np

    from shrew_core.layout import Layout
    from shrew_core.ops._base import wrap

    a, b = np.random.rand(4, 4).astype(np.float32), np.random.rand(4, 4).astype(np.float32)
    x, y = sc.tensor(a), sc.tensor(b)
    s = (x.requires_grad_() * y).sum()
    cases = {
        "Layout.contiguous((4, 4))": lambda: Layout.contiguous((4, 4)),
        "wrap (result tensor)": lambda: wrap(x._storage, (4, 4), x.dtype, x._backend),
        "x * y (4x4, cpu)": lambda: x * y,
        "backward of (x * y).sum()": lambda: s.backward(),
        "tiny mul+sum+backward": lambda: tiny_step("shrew", a, b),
    }
    try:
        import torch

        torch.set_num_threads(1)
        cases["torch tiny mul+sum+backward"] = lambda: tiny_step("torch", a, b)
    except ImportError:
        pass
    print(f"\n{'per op (cpu backend)':32s} {'us':>10s}")
    for name, fn in cases.items():
        print(f"{name:32s} {_time(fn, 5000):10.3f}")


if __name__ == "__main__":
    main()
