"""One Adam step over a 10M-parameter model: shrew_optim vs torch.optim.Adam.

Run: ``python benchmarks/bench_optim.py [--device cpu] [--dtype f32] [--rounds 15]``.
Times ``opt.step(grads)`` (shrew: one fused backend kernel per parameter) against
torch.optim.Adam in its single-tensor, foreach and fused implementations on the same
parameter shapes, interleaved round-robin, and prints the median milliseconds per step and
the ratio to PyTorch's fastest. Also reports whether the backend overrides the fused
``adam_update`` kernel or runs the composed default from ``shrew_core.fused_defaults``.
Under pytest-benchmark: ``pytest benchmarks/bench_optim.py --benchmark-only``.
"""

from __future__ import annotations

import _compare  # noqa: I001 - first: sets OMP_WAIT_POLICY before torch loads OpenMP
import numpy as np
import torch

import shrew_core as sc
import shrew_optim as so
from shrew_core.backend import Backend

# 10 linear layers of 1000x1000 with biases: 10,010,000 parameters.
SHAPES = [(1000, 1000), (1000,)] * 10
IMPLS = {"torch single-tensor": dict(foreach=False), "torch foreach": dict(foreach=True),
         "torch fused": dict(fused=True)}  # fmt: skip
BENCH = _compare.Bench("Adam step, 10.01M parameters in 20 tensors",
                       baseline=tuple(IMPLS), stat="median", rounds=15)


def shrew_step(device: str, dtype: str):
    rng = np.random.default_rng(0)
    np_dt = {"f32": np.float32, "f64": np.float64}[dtype]
    params = [sc.tensor(rng.standard_normal(s).astype(np_dt), device=device).requires_grad_()
              for s in SHAPES]  # fmt: skip
    grads = sc.GradStore()
    for p in params:
        grads[p] = sc.tensor(rng.standard_normal(p.shape).astype(np_dt), device=device)
    opt = so.Adam(params, lr=1e-3, weight_decay=0.01)
    return lambda: opt.step(grads)


def torch_step(dtype: str, **impl):
    torch_dt = {"f32": torch.float32, "f64": torch.float64}[dtype]
    params = [torch.randn(s, dtype=torch_dt, requires_grad=True) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=0.01, **impl)
    return opt.step


@BENCH.case("adam", "Adam(weight_decay=0.01) step", ("shrew", *IMPLS))
def adam():
    device = str(BENCH.options.get("device", "cpu"))
    dtype = str(BENCH.options.get("dtype", "f32"))
    fused = type(sc.get_backend(device)).adam_update is not Backend.adam_update
    steps = {"shrew": shrew_step(device, dtype)}
    steps.update({name: torch_step(dtype, **impl) for name, impl in IMPLS.items()})
    note = (f"shrew on {device!r}, {dtype}: adam_update "
            f"{'overridden (fused kernel)' if fused else 'NOT overridden: composed default'}")
    return steps, note


test_benchmark = BENCH.pytest_test()

if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    BENCH.main(configure=lambda ap: (ap.add_argument("--device", default="cpu"),
                                     ap.add_argument("--dtype", default="f32",
                                                     choices=["f32", "f64"])))  # fmt: skip
