"""The per-op host path of shrew_core, compiled (Cython ``_speedups``) vs pure Python (``_shapes``).

Run: ``python benchmarks/bench_core_hotpath.py``. Prints microseconds per call and the
speed-up for the shape arithmetic every op performs and for the backward graph walk.
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


if __name__ == "__main__":
    main()
