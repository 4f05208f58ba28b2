"""Low-bit linear layers: shrew QuantizedLinear (int8 per channel, int4 per group of 128)
against the f32 Linear (BLAS) and torch's dynamic int8 Linear, 4096x4096, in one process.

Run: ``python benchmarks/bench_quant.py [--size 4096] [--rounds 30] [--batches 1,4,64]
[--threads N]``.
Each case is timed in interleaved rounds (every implementation in turn, so a busy machine
slows all alike) after warm-up calls (which also compile the Numba kernels); the table
shows the best and the median milliseconds per forward and the best-time ratio to shrew's
f32 Linear. Targets (batch 1 is memory-bound: 4x and 8x fewer weight bytes): int8 <= 0.5x
the f32 time, int4 <= 0.35x; batch 64 <= 1.5x.

Under pytest-benchmark: ``pytest benchmarks/bench_quant.py`` times the same bodies.
"""

from __future__ import annotations

import os
import sys


def _threads_from_argv() -> int | None:
    """``--threads N`` must act before NumPy / Numba / torch start their thread pools."""
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if a.startswith("--threads="):
            return int(a.split("=", 1)[1])
    return None


os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_cpu_ops.py
if _threads_from_argv():
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):  # fmt: skip
        os.environ[var] = str(_threads_from_argv())

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

import shrew_core as sc  # noqa: E402
import shrew_nn as nn  # noqa: E402
from shrew.quantization import QuantConfig, QuantizedLinear  # noqa: E402

CONFIGS = {
    "shrew int8 per-channel": QuantConfig.int8_per_channel(),
    "shrew int4 per-group(128)": QuantConfig.int4_per_group(128),
}


def build(size: int, batch: int, seed: int = 0) -> dict:
    """name -> zero-argument callable running one forward of a size x size layer."""
    sc.manual_seed(seed)
    lin = nn.Linear(size, size)
    x = sc.randn(batch, size)
    w = torch.from_numpy(lin.weight.detach().numpy().copy())
    tlin = torch.nn.Linear(size, size)
    with torch.no_grad():
        tlin.weight.copy_(w)
        tlin.bias.copy_(torch.from_numpy(lin.bias.detach().numpy()))
    tdyn = torch.ao.nn.quantized.dynamic.Linear(size, size)
    tdyn.set_weight_bias(torch.quantize_per_channel(
        w, w.abs().amax(1) / 127, torch.zeros(size, dtype=torch.long), 0, torch.qint8),
        tlin.bias.detach())  # fmt: skip
    tx = torch.from_numpy(x.numpy().copy())
    cases = {"shrew f32 Linear (BLAS)": lambda: lin(x)}
    for name, cfg in CONFIGS.items():
        q = QuantizedLinear.from_linear(lin, cfg)
        cases[name] = lambda q=q: q(x)
    cases["torch f32 Linear"] = lambda: tlin(tx)
    cases["torch dynamic int8 Linear"] = lambda: tdyn(tx)
    return cases


def timeit(fns: dict, rounds: int, warmup: int = 3) -> dict[str, tuple[float, float]]:
    """(best, median) ms per call of each function, timed in alternation."""
    with sc.no_grad(), torch.no_grad():
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(rounds):
            order = list(fns.items())
            for k, fn in order if r % 2 == 0 else reversed(order):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: (min(v) * 1e3, statistics.median(v) * 1e3) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batches", default="1,4,64")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for BLAS, Numba and torch (default: all cores)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "x86" if "x86" in \
        torch.backends.quantized.supported_engines else torch.backends.quantized.engine  # fmt: skip
    print(f"{args.size}x{args.size} linear, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads, engine {torch.backends.quantized.engine})")
    for batch in (int(b) for b in args.batches.split(",")):
        rows = timeit(build(args.size, batch), args.rounds)
        base = rows["shrew f32 Linear (BLAS)"][0]
        print(f"\nbatch {batch}: {'implementation':28s} {'best ms':>9s} {'median ms':>10s} "
              f"{'vs shrew f32':>13s}")  # fmt: skip
        for name, (best, med) in rows.items():
            print(f"{'':9s}{name:28s} {best:9.3f} {med:10.3f} {best / base:12.2f}x")


# ------------------------------------------------------------------ pytest-benchmark
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("name", ["shrew f32 Linear (BLAS)", *CONFIGS])
def test_quantized_linear(benchmark, name, batch):
    fn = build(4096, batch)[name]
    with sc.no_grad():
        benchmark(fn)


if __name__ == "__main__":
    main()
