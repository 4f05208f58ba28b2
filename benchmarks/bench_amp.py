"""Mixed precision step time: one training step (forward, backward, Adam) in f32 vs under
``shrew.amp.autocast`` (bf16 and f16, with a GradScaler), side by side with the same models in
torch (f32 vs ``torch.autocast("cpu", bfloat16)``).

Run: ``python benchmarks/bench_amp.py [--rounds 15]``. Steps are timed round-robin (each round
runs every configuration once) and the median counts, so a busy machine slows all alike.
On CPUs without native bf16 matrix units both libraries compute a bf16 GEMM by converting to
f32, so autocast costs time here; it pays on GPUs (and halves activation memory).

Under pytest-benchmark: ``test_step_f32`` / ``test_step_bf16`` time the digits-MLP step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import numpy as np

import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F
import shrew_optim as optim
from shrew.amp import GradScaler, autocast


def shrew_model(kind: str) -> nn.Module:
    sc.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                             nn.Linear(256, 10))  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 10),
    )  # fmt: skip


def batch(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((256, 64)) if kind == "mlp" else rng.standard_normal((32, 3, 32, 32))
    return x.astype(np.float32), rng.integers(0, 10, len(x))


def shrew_step(kind: str, dtype=None):
    """One training step; ``dtype`` None is plain f32, else autocast(dtype) + GradScaler."""
    model = shrew_model(kind)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    scaler = GradScaler(enabled=dtype is not None)
    x, y = (sc.tensor(a) for a in batch(kind))

    def step() -> None:
        with autocast(dtype) if dtype is not None else nullcontext():
            loss = F.cross_entropy(model(x), y)
        scaler.step(opt, scaler.scale(loss).backward())
        scaler.update()

    return step


def torch_step(kind: str, amp: bool):
    import torch

    torch.manual_seed(0)
    tnn = torch.nn
    if kind == "mlp":
        model = tnn.Sequential(tnn.Linear(64, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(),
                               tnn.Linear(256, 10))  # fmt: skip
    else:
        model = tnn.Sequential(
            tnn.Conv2d(3, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Flatten(), tnn.Linear(64 * 8 * 8, 10),
        )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = (torch.tensor(a) for a in batch(kind))

    def step() -> None:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def median_ms(steps: dict, rounds: int, warmup: int = 3) -> dict[str, float]:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    import os

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")  # fmt: skip
    for kind, label in (("mlp", "MLP 64-256-256-10, batch 256"),
                        ("conv", "conv net 3x32x32, batch 32")):  # fmt: skip
        steps = {
            "shrew f32": shrew_step(kind),
            "shrew bf16 autocast": shrew_step(kind, sc.bf16),
            "shrew f16 autocast": shrew_step(kind, sc.f16),
            "torch f32": torch_step(kind, False),
            "torch bf16 autocast": torch_step(kind, True),
        }
        ms = median_ms(steps, args.rounds)
        print(f"\n{label}\n{'configuration':22s} {'ms/step':>8s} {'vs own f32':>11s}")
        for name, value in ms.items():
            own = ms["torch f32"] if name.startswith("torch") else ms["shrew f32"]
            print(f"{name:22s} {value:8.2f} {value / own:10.2f}x")


def test_step_f32(benchmark):
    benchmark(shrew_step("mlp"))


def test_step_bf16(benchmark):
    benchmark(shrew_step("mlp", sc.bf16))


if __name__ == "__main__":
    main()
