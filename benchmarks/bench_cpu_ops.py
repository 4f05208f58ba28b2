"""The cpu backend side by side with PyTorch and NumPy, in one process.

Run: ``python benchmarks/bench_cpu_ops.py [--rounds 15]``. Every case is timed as the
median of interleaved rounds (each implementation in turn, so a busy machine slows all
alike) after warm-up calls (which also compile and load the Numba kernels). Prints a
table with milliseconds and the ratio shrew/reference (< 1 means shrew is faster).
Shrew runs through the public tensor API (``shrew_core`` on the ``cpu`` device), so the
times include the front end's per-op overhead.
"""

from __future__ import annotations

import os

# torch's and Numba's OpenMP pools and OpenBLAS's threads share 2 cores in this one
# process: spinning idle workers would steal the cores from whoever runs next.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import shrew_core as sc  # noqa: E402


def timeit(fns: dict, rounds: int, warmup: int = 3) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    inner = {}
    for k, fn in fns.items():  # calls per sample, so a sample lasts >= ~2 ms
        t0 = time.perf_counter()
        fn()
        inner[k] = max(1, int(2e-3 / max(time.perf_counter() - t0, 1e-7)))
    for _ in range(rounds):
        for k, fn in fns.items():
            n = inner[k]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def cases(rng):
    f32 = np.float32

    def arr(*shape):
        return rng.standard_normal(shape).astype(f32)

    def st(a, grad=False):
        t = sc.tensor(a, device="cpu")
        return t.requires_grad_() if grad else t

    def tt(a, grad=False):
        return torch.from_numpy(a.copy()).requires_grad_(grad)

    for n in (256, 512, 1024):
        a, b = arr(n, n), arr(n, n)
        sa, sb, ta, tb = st(a), st(b), tt(a), tt(b)
        yield (f"matmul {n}x{n} f32", "numpy",
               {"shrew": lambda sa=sa, sb=sb: sa @ sb, "numpy": lambda a=a, b=b: a @ b,
                "torch": lambda ta=ta, tb=tb: ta @ tb})  # fmt: skip
    for label, n, op in (("add 1M f32", 1 << 20, "add"), ("mul 16M f32", 1 << 24, "mul")):
        a, b = arr(n), arr(n)
        sa, sb, ta, tb = st(a), st(b), tt(a), tt(b)
        f = np.add if op == "add" else np.multiply
        yield (label, "torch",
               {"shrew": (lambda sa=sa, sb=sb: sa + sb) if op == "add" else
                         (lambda sa=sa, sb=sb: sa * sb),
                "numpy": lambda a=a, b=b, f=f: f(a, b),
                "torch": (lambda ta=ta, tb=tb: ta + tb) if op == "add" else
                         (lambda ta=ta, tb=tb: ta * tb)})  # fmt: skip
    x = arr(4096, 1024)
    sx, tx = st(x), tt(x)
    yield ("softmax [4096,1024] dim=-1", "torch",
           {"shrew": lambda: sc.softmax(sx, -1), "torch": lambda: torch.softmax(tx, -1)})
    w, b = arr(1024), arr(1024)
    sw, sbias, tw, tb_ = st(w), st(b), tt(w), tt(b)
    yield ("layer_norm [4096,1024]", "torch",
           {"shrew": lambda: sc.layer_norm(sx, (1024,), sw, sbias),
            "torch": lambda: F.layer_norm(tx, (1024,), tw, tb_)})  # fmt: skip
    y = arr(4096, 4096)
    sy, ty = st(y), tt(y)
    yield ("sum dim=1 [4096,4096]", "torch",
           {"shrew": lambda: sy.sum(1), "numpy": lambda: y.sum(1), "torch": lambda: ty.sum(1)})
    a4, b4 = arr(4, 4), arr(4, 4)

    def shrew_tiny():
        p, q = st(a4, True), st(b4, True)
        (p * q).sum().backward()

    def torch_tiny():
        p, q = tt(a4, True), tt(b4, True)
        (p * q).sum().backward()

    yield ("tiny 4x4 mul+sum+backward", "torch", {"shrew": shrew_tiny, "torch": torch_tiny})
    xl, wl, bl = arr(64, 512), arr(512, 512), arr(512)
    sxl, swl, sbl, txl, twl, tbl = st(xl), st(wl), st(bl), tt(xl), tt(wl), tt(bl)
    yield ("linear fwd [64,512]x[512,512]+b", "torch",
           {"shrew": lambda: sc.linear(sxl, swl, sbl), "numpy": lambda: xl @ wl.T + bl,
            "torch": lambda: F.linear(txl, twl, tbl)})  # fmt: skip
    xc, wc, bc = arr(32, 16, 28, 28), arr(32, 16, 3, 3) * 0.1, arr(32)

    def shrew_conv():
        p, q, r = st(xc, True), st(wc, True), st(bc, True)
        sc.conv2d(p, q, r, padding=1).sum().backward()

    def torch_conv():
        p, q, r = tt(xc, True), tt(wc, True), tt(bc, True)
        F.conv2d(p, q, r, padding=1).sum().backward()

    yield ("conv2d 16->32 3x3 [32,16,28,28] fwd+bwd", "torch",
           {"shrew": shrew_conv, "torch": torch_conv})


SEED_ROWS = {  # the seed README's CPU table (Rust, release mode), for reference
    "matmul 256x256 f32": "~0.370",
    "matmul 512x512 f32": "~3.5",
    "add 1M f32": "~1.3",
    "linear fwd [64,512]x[512,512]+b": "~3.9",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}  numpy {np.__version__}")
    head = (f"{'case':42} {'shrew ms':>9} {'numpy ms':>9} {'torch ms':>9} {'seed ms':>8} "
            f"{'ratio':>14}")
    print(head)
    print("-" * len(head))
    for name, ref, fns in cases(rng):
        t = timeit(fns, args.rounds)
        ratio = t["shrew"] / t[ref]
        cols = {k: (f"{t[k]:9.3f}" if k in t else f"{'':9}") for k in ("shrew", "numpy", "torch")}
        print(f"{name:42} {cols['shrew']} {cols['numpy']} {cols['torch']} "
              f"{SEED_ROWS.get(name, ''):>8} {ratio:6.2f}x {ref:>6}")  # fmt: skip


if __name__ == "__main__":
    main()
