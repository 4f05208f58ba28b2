"""The cpu backend side by side with PyTorch and NumPy, in one process.

Run: ``python benchmarks/bench_cpu_ops.py [--rounds 15] [--only matmul-256,softmax]``.
Every case is timed as the median of interleaved rounds (each implementation in turn, so a
busy machine slows all alike) after warm-up calls (which also compile and load the Numba
kernels). Prints milliseconds and the ratio shrew / reference (the case's baseline: NumPy
for matmul, torch otherwise; < 1 means shrew is faster). Shrew runs through the public
tensor API (``shrew_core`` on the ``cpu`` device), so the times include the front end's
per-op overhead. Under pytest-benchmark: ``pytest benchmarks/bench_cpu_ops.py
--benchmark-only``.
"""

from __future__ import annotations

import _compare  # noqa: I001 - first: sets OMP_WAIT_POLICY before torch loads OpenMP
import numpy as np
import torch
import torch.nn.functional as F

import shrew_core as sc

BENCH = _compare.Bench("shrew_core on the cpu backend vs NumPy and PyTorch",
                       baseline=("torch",), stat="median", rounds=15)
RNG = np.random.default_rng(0)
SEED_ROWS = {  # the seed README's CPU table (Rust, release mode), for reference
    "matmul-256": "seed ~0.370 ms", "matmul-512": "seed ~3.5 ms", "add-1M": "seed ~1.3 ms",
    "linear": "seed ~3.9 ms",
}  # fmt: skip


def _arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _st(a, grad=False):
    t = sc.tensor(a, device="cpu")
    return t.requires_grad_() if grad else t


def _tt(a, grad=False):
    return torch.from_numpy(a.copy()).requires_grad_(grad)


def _matmul(n):
    def build():
        a, b = _arr(n, n), _arr(n, n)
        sa, sb, ta, tb = _st(a), _st(b), _tt(a), _tt(b)
        return {"shrew": lambda: sa @ sb, "numpy": lambda: a @ b,
                "torch": lambda: ta @ tb}, SEED_ROWS.get(f"matmul-{n}", "")  # fmt: skip
    return build


for _n in (256, 512, 1024):
    BENCH.case(f"matmul-{_n}", f"matmul {_n}x{_n} f32", ("shrew", "numpy", "torch"),
               baseline=("numpy",))(_matmul(_n))  # fmt: skip


def _elementwise(n, op):
    def build():
        a, b = _arr(n), _arr(n)
        sa, sb, ta, tb = _st(a), _st(b), _tt(a), _tt(b)
        if op == "add":
            fns = {"shrew": lambda: sa + sb, "numpy": lambda: np.add(a, b),
                   "torch": lambda: ta + tb}  # fmt: skip
        else:
            fns = {"shrew": lambda: sa * sb, "numpy": lambda: np.multiply(a, b),
                   "torch": lambda: ta * tb}  # fmt: skip
        return fns, SEED_ROWS.get(f"{op}-1M" if n == 1 << 20 else "", "")
    return build


BENCH.case("add-1M", "add 1M f32", ("shrew", "numpy", "torch"))(_elementwise(1 << 20, "add"))
BENCH.case("mul-16M", "mul 16M f32", ("shrew", "numpy", "torch"))(_elementwise(1 << 24, "mul"))


@BENCH.case("softmax", "softmax [4096,1024] dim=-1", ("shrew", "torch"))
def softmax():
    x = _arr(4096, 1024)
    sx, tx = _st(x), _tt(x)
    return {"shrew": lambda: sc.softmax(sx, -1), "torch": lambda: torch.softmax(tx, -1)}


@BENCH.case("layer_norm", "layer_norm [4096,1024]", ("shrew", "torch"))
def layer_norm():
    x, w, b = _arr(4096, 1024), _arr(1024), _arr(1024)
    sx, sw, sb, tx, tw, tb = _st(x), _st(w), _st(b), _tt(x), _tt(w), _tt(b)
    return {"shrew": lambda: sc.layer_norm(sx, (1024,), sw, sb),
            "torch": lambda: F.layer_norm(tx, (1024,), tw, tb)}  # fmt: skip


@BENCH.case("sum", "sum dim=1 [4096,4096]", ("shrew", "numpy", "torch"))
def sum_rows():
    y = _arr(4096, 4096)
    sy, ty = _st(y), _tt(y)
    return {"shrew": lambda: sy.sum(1), "numpy": lambda: y.sum(1), "torch": lambda: ty.sum(1)}


@BENCH.case("tiny", "tiny 4x4 mul+sum+backward", ("shrew", "torch"))
def tiny():
    a4, b4 = _arr(4, 4), _arr(4, 4)

    def shrew_tiny():
        p, q = _st(a4, True), _st(b4, True)
        (p * q).sum().backward()

    def torch_tiny():
        p, q = _tt(a4, True), _tt(b4, True)
        (p * q).sum().backward()

    return {"shrew": shrew_tiny, "torch": torch_tiny}


@BENCH.case("linear", "linear fwd [64,512]x[512,512]+b", ("shrew", "numpy", "torch"))
def linear():
    xl, wl, bl = _arr(64, 512), _arr(512, 512), _arr(512)
    sxl, swl, sbl, txl, twl, tbl = _st(xl), _st(wl), _st(bl), _tt(xl), _tt(wl), _tt(bl)
    return {"shrew": lambda: sc.linear(sxl, swl, sbl), "numpy": lambda: xl @ wl.T + bl,
            "torch": lambda: F.linear(txl, twl, tbl)}, SEED_ROWS["linear"]  # fmt: skip


@BENCH.case("conv2d", "conv2d 16->32 3x3 [32,16,28,28] fwd+bwd", ("shrew", "torch"))
def conv2d():
    xc, wc, bc = _arr(32, 16, 28, 28), _arr(32, 16, 3, 3) * 0.1, _arr(32)

    def shrew_conv():
        p, q, r = _st(xc, True), _st(wc, True), _st(bc, True)
        sc.conv2d(p, q, r, padding=1).sum().backward()

    def torch_conv():
        p, q, r = _tt(xc, True), _tt(wc, True), _tt(bc, True)
        F.conv2d(p, q, r, padding=1).sum().backward()

    return {"shrew": shrew_conv, "torch": torch_conv}


test_benchmark = BENCH.pytest_test()

if __name__ == "__main__":
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}  numpy {np.__version__}")
    BENCH.main()
