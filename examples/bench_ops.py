"""CPU performance of core ops -- the seed README's table (matmul 256/512, add 1M, linear
forward [64,512]x[512,512]+bias) plus softmax, with NumPy (and PyTorch, when installed)
timed in the same run.

Run: ``python examples/bench_ops.py``. Times are the best of N runs after a warm-up (the
first call compiles the Numba kernels); ratios below 1 mean Shrew is faster. For the full
side-by-side suites see ``benchmarks/``.
"""

from __future__ import annotations

import time

import numpy as np

import shrew_core as sc
import shrew_nn.functional as F


def best_ms(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _np_softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# (operation, size, input shapes, implementations: one for all libraries, or one each)
CASES = [
    ("matmul", "256x256 @ 256x256", [(256, 256)] * 2, lambda a, b: a @ b),
    ("matmul", "512x512 @ 512x512", [(512, 512)] * 2, lambda a, b: a @ b),
    ("add", "1M elements", [(1_000_000,)] * 2, lambda a, b: a + b),
    ("linear forward", "[64,512]x[512,512]+bias", [(64, 512), (512, 512), (512,)], {
        "shrew": F.linear,
        "numpy": lambda x, w, b: x @ w.T + b,
        "torch": lambda x, w, b: __import__("torch").nn.functional.linear(x, w, b),
    }),
    ("softmax", "[1024,1024] dim=1", [(1024, 1024)], {
        "shrew": lambda z: z.softmax(1),
        "numpy": _np_softmax,
        "torch": lambda z: z.softmax(1),
    }),
]  # fmt: skip


def _inputs(shapes, rng):
    arrays = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    out = {"shrew": [sc.from_numpy(a) for a in arrays], "numpy": arrays}
    try:
        import torch

        out["torch"] = [torch.from_numpy(a) for a in arrays]
    except ImportError:  # torch is optional: its column shows nan
        pass
    return out


def main(repeat: int = 20) -> list[tuple]:
    rows, rng = [], np.random.default_rng(0)
    with sc.no_grad():
        for op, size, shapes, impl in CASES:
            times = {}
            for lib, args in _inputs(shapes, rng).items():
                fn = impl[lib] if isinstance(impl, dict) else impl
                times[lib] = best_ms(lambda fn=fn, args=args: fn(*args), repeat)
            rows.append((op, size, times["shrew"], times["numpy"], times.get("torch", np.nan)))
    print(f"{'operation':<15} {'size':<24} {'shrew ms':>9} {'numpy ms':>9} {'torch ms':>9} "
          f"{'vs numpy':>9} {'vs torch':>9}")  # fmt: skip
    for op, size, ours, ref, theirs in rows:
        print(f"{op:<15} {size:<24} {ours:9.3f} {ref:9.3f} {theirs:9.3f} "
              f"{ours / ref:8.2f}x {ours / theirs:8.2f}x")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
