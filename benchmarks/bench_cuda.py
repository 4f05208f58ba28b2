"""shrew_cuda vs CuPy and torch.cuda, side by side in one run (needs an NVIDIA GPU).

Cases:

* matmul f32 / bf16: 4096 x 4096 @ 4096 x 4096 (shrew -> cuBLAS through CuPy); TFLOP/s
  and the ratio to CuPy's ``matmul`` (target >= 0.9) and to torch.
* softmax / layer_norm f32 on [8192, 4096]: effective bandwidth (read + write) in GB/s,
  ratio to torch.cuda (target >= 0.8).
* mlp step: 1024-4096-1024 MLP, batch 256: forward, MSE, backward, Adam step.
* transformer step: TransformerBlock(256, 4 heads, 1024), batch 16, seq 128: forward,
  mean-square loss, backward, Adam step.

Run: ``python benchmarks/bench_cuda.py [--repeat 20] [--only matmul,softmax]``. Each
figure is the best of ``repeat`` timed runs after warm-up, every contestant synchronised
and timed in alternation. Without a GPU the script exits with a message and measures
nothing. Under pytest-benchmark: ``python -m pytest benchmarks/bench_cuda.py`` (each
``test_*`` hands its shrew body to the ``benchmark`` fixture; skipped without a GPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import shrew_core as sc
import shrew_cuda

N_MM, ROWS, COLS = 4096, 8192, 4096


def gpu_ready() -> bool:
    return shrew_cuda.is_available() and not shrew_cuda.is_simulated()


def _sync():
    import cupy
    import torch

    sc.get_backend("cuda").synchronize()
    cupy.cuda.Device().synchronize()
    torch.cuda.synchronize()


def _best_s(*fns, repeat: int, warmup: int = 3) -> list[float]:
    """Best-of-``repeat`` seconds of each function (synchronised), in alternation."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    _sync()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


# ----------------------------------------------------------------------------- bodies
def matmul_bodies(dtype: str):
    import cupy
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((N_MM, N_MM), dtype=np.float32)
    b = rng.standard_normal((N_MM, N_MM), dtype=np.float32)
    sa, sb = sc.tensor(a, device="cuda").to(dtype), sc.tensor(b, device="cuda").to(dtype)
    tdt = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    ta, tb = torch.tensor(a, device="cuda").to(tdt), torch.tensor(b, device="cuda").to(tdt)
    bodies = {"shrew": lambda: sa @ sb, "torch": lambda: ta @ tb}
    if dtype == "f32":  # CuPy has no bfloat16
        ca, cb = cupy.asarray(a), cupy.asarray(b)
        bodies["cupy"] = lambda: ca @ cb
    return bodies


def row_bodies(op: str):
    import torch

    x = np.random.default_rng(1).standard_normal((ROWS, COLS), dtype=np.float32)
    sx, tx = sc.tensor(x, device="cuda"), torch.tensor(x, device="cuda")
    sw, sbias = sc.ones(COLS, device="cuda"), sc.zeros(COLS, device="cuda")
    tw, tbias = torch.ones(COLS, device="cuda"), torch.zeros(COLS, device="cuda")
    if op == "softmax":
        return {"shrew": lambda: sc.softmax(sx, -1),
                "torch": lambda: torch.softmax(tx, -1)}  # fmt: skip
    return {"shrew": lambda: sc.layer_norm(sx, (COLS,), sw, sbias),
            "torch": lambda: torch.nn.functional.layer_norm(tx, (COLS,), tw, tbias)}


def _train_pair(make_shrew, make_torch, x_shape):
    import torch

    import shrew_optim

    sm, tm = make_shrew(), make_torch()
    sm.load_state_dict({k: sc.tensor(v.detach().cpu().numpy(), device="cuda")
                        for k, v in tm.state_dict().items()})  # fmt: skip
    x = np.random.default_rng(2).standard_normal(x_shape, dtype=np.float32)
    sx, tx = sc.tensor(x, device="cuda"), torch.tensor(x, device="cuda")
    sopt = shrew_optim.Adam(sm.parameters(), lr=1e-4)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-4, foreach=True)

    def shrew_step():
        grads = sm(sx).square().mean().backward()
        sopt.step(grads)

    def torch_step():
        topt.zero_grad(set_to_none=True)
        tm(tx).square().mean().backward()
        topt.step()

    return {"shrew": shrew_step, "torch": torch_step}


def mlp_bodies():
    import torch

    import shrew_nn as nn

    return _train_pair(
        lambda: nn.Sequential(nn.Linear(1024, 4096, device="cuda"), nn.GELU(),
                              nn.Linear(4096, 1024, device="cuda")),
        lambda: torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(),
                                    torch.nn.Linear(4096, 1024)).cuda(),
        (256, 1024))  # fmt: skip


def transformer_bodies():
    import torch

    import shrew_nn as nn

    class TorchBlock(torch.nn.Module):
        """Pre-norm block with shrew_nn.TransformerBlock's parameter names."""

        def __init__(self, d, h, ff):
            super().__init__()
            self.norm1, self.norm2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
            self.self_attn = torch.nn.MultiheadAttention(d, h, batch_first=True)
            self.linear1, self.linear2 = torch.nn.Linear(d, ff), torch.nn.Linear(ff, d)
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(
                128), persistent=False)  # fmt: skip

        def forward(self, x):
            h = self.norm1(x)
            x = x + self.self_attn(h, h, h, attn_mask=self.mask, need_weights=False)[0]
            return x + self.linear2(torch.nn.functional.gelu(self.linear1(self.norm2(x))))

    make_s = lambda: nn.TransformerBlock(256, 4, 1024, causal=True, device="cuda")  # noqa: E731
    pair = _train_pair(make_s, lambda: TorchBlock(256, 4, 1024).cuda(), (16, 128, 256))
    return pair


# ----------------------------------------------------------------------------- pytest-benchmark
def _bench(benchmark, bodies):
    import pytest

    if not gpu_ready():
        pytest.skip("bench_cuda needs an NVIDIA GPU")
    fn = bodies()["shrew"]

    def run():
        fn()
        sc.get_backend("cuda").synchronize()

    benchmark(run)


def test_matmul_f32(benchmark):
    _bench(benchmark, lambda: matmul_bodies("f32"))


def test_softmax(benchmark):
    _bench(benchmark, lambda: row_bodies("softmax"))


def test_layer_norm(benchmark):
    _bench(benchmark, lambda: row_bodies("layer_norm"))


def test_mlp_step(benchmark):
    _bench(benchmark, mlp_bodies)


# ----------------------------------------------------------------------------- the table
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--only", default="matmul,softmax,layer_norm,mlp,transformer")
    args = p.parse_args()
    if not gpu_ready():
        raise SystemExit("bench_cuda: no NVIDIA GPU found (or NUMBA_ENABLE_CUDASIM is set); "
                         "this benchmark needs a real device, nothing was measured")
    only = set(args.only.split(","))
    rows = []
    if "matmul" in only:
        for dt in ("f32", "bf16"):
            bodies = matmul_bodies(dt)
            t = dict(zip(bodies, _best_s(*bodies.values(), repeat=args.repeat)))
            tflops = {k: 2 * N_MM**3 / v / 1e12 for k, v in t.items()}
            ref = "cupy" if "cupy" in t else "torch"
            rows.append((f"matmul {N_MM} {dt}", "TFLOP/s", tflops, tflops["shrew"] / tflops[ref],
                         ref))  # fmt: skip
    for op in ("softmax", "layer_norm"):
        if op in only:
            bodies = row_bodies(op)
            t = dict(zip(bodies, _best_s(*bodies.values(), repeat=args.repeat)))
            gbs = {k: 2 * ROWS * COLS * 4 / v / 1e9 for k, v in t.items()}
            rows.append((f"{op} [{ROWS},{COLS}] f32", "GB/s", gbs, gbs["shrew"] / gbs["torch"],
                         "torch"))  # fmt: skip
    for name, make in (("mlp step", mlp_bodies), ("transformer step", transformer_bodies)):
        if name.split()[0] in only:
            bodies = make()
            t = dict(zip(bodies, _best_s(*bodies.values(), repeat=args.repeat)))
            ms = {k: v * 1e3 for k, v in t.items()}
            rows.append((name, "ms", ms, ms["torch"] / ms["shrew"], "torch"))
    print(f"{'case':32} {'unit':8} {'shrew':>10} {'cupy':>10} {'torch':>10} "
          f"{'speed vs ref':>14}")  # fmt: skip
    for name, unit, vals, ratio, ref in rows:
        cupy_v = f"{vals['cupy']:10.2f}" if "cupy" in vals else f"{'-':>10}"
        print(f"{name:32} {unit:8} {vals['shrew']:10.2f} {cupy_v} {vals['torch']:10.2f} "
              f"{ratio:10.2f}x {ref}")  # fmt: skip


if __name__ == "__main__":
    main()
