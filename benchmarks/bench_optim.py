"""One Adam step over a 10M-parameter model: shrew_optim vs torch.optim.Adam.

Run: ``python benchmarks/bench_optim.py [--device cpu] [--steps 10] [--dtype f32]``.
Times ``opt.step(grads)`` (shrew: one fused backend kernel per parameter) against
torch.optim.Adam in its single-tensor, foreach and fused implementations on the same
parameter shapes, and prints milliseconds per step and the ratio to PyTorch's fastest.
Also reports whether the backend overrides the fused ``adam_update`` kernel or runs the
composed default from ``shrew_core.fused_defaults``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import shrew_core as sc
import shrew_optim as so
from shrew_core.backend import Backend

# 10 linear layers of 1000x1000 with biases: 10,010,000 parameters.
SHAPES = [(1000, 1000), (1000,)] * 10


def _interleaved_median_ms(steps: dict, rounds: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each step function, timed in alternation (round-robin) so a
    machine shared with other work slows every implementation alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for k, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f64"])
    ap.add_argument("--steps", type=int, default=15, help="timed rounds")
    args = ap.parse_args()
    backend = sc.get_backend(args.device)
    fused = type(backend).adam_update is not Backend.adam_update
    n = sum(int(np.prod(s)) for s in SHAPES)
    print(f"Adam step, {n / 1e6:.2f}M {args.dtype} parameters in {len(SHAPES)} tensors; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print(f"shrew backend {args.device!r}: adam_update "
          f"{'overridden (fused kernel)' if fused else 'NOT overridden: composed default'}")
    steps = {f"shrew_optim.Adam ({args.device})": shrew_step(args.device, args.dtype),
             "torch Adam (single-tensor)": torch_step(args.dtype, foreach=False),
             "torch Adam (foreach)": torch_step(args.dtype, foreach=True)}  # fmt: skip
    try:
        fused_step = torch_step(args.dtype, fused=True)
        fused_step()
        steps["torch Adam (fused)"] = fused_step
    except (RuntimeError, ValueError) as e:  # fused may be unavailable for a device/dtype
        print(f"torch fused Adam unavailable: {e}")
    rows = _interleaved_median_ms(steps, args.steps)
    fastest = min(v for k, v in rows.items() if k.startswith("torch"))
    print(f"{'implementation':34s} {'ms/step':>9s} {'vs torch fastest':>17s}")
    for k, v in rows.items():
        print(f"{k:34s} {v:9.2f} {v / fastest:16.2f}x")


if __name__ == "__main__":
    main()
