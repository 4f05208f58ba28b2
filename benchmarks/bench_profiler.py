"""Cost of the profiler's dispatch hook (``shrew_core.hooks``) on a tiny-op step.

Run: ``python benchmarks/bench_profiler.py [--rounds 40] [--iters 2000]``.

The step is seven backend calls on 4x4 tensors (add, mul, relu, sum, matmul, sum, add):
per-op overhead dominates it. To compare "no profiler active" with "never profiled" in
one process, interleaved (so a busy machine slows both alike), the script registers two
identical subclasses of the cpu backend as devices ``cpu-a`` and ``cpu-b``: ``cpu-a``'s
class goes through a ``profile()`` block first (its methods wrapped, then restored),
``cpu-b``'s never does. Figures are the median and the best of the rounds:

* ``never profiled`` (cpu-b) and ``after a profile`` (cpu-a): target <= 1.02x;
* ``inside profile()``: the step while a profile records it (µs per backend call shown).

Under pytest-benchmark: ``pytest benchmarks/bench_profiler.py`` times the step outside
and inside a profile.
"""

from __future__ import annotations

import argparse
import statistics
import time

import shrew_core as sc
from shrew.profiler import profile
from shrew_core import registry
from shrew_cpu import CpuBackend

CALLS_PER_STEP = 7  # add, mul, relu, sum, matmul, sum, add


class _CpuA(CpuBackend):
    name = "cpu-a"


class _CpuB(CpuBackend):
    name = "cpu-b"


def make_step(device: str = "cpu"):
    a, b = sc.randn(4, 4).to(device), sc.randn(4, 4).to(device)

    def step():
        return ((a + b) * a).relu().sum() + (a @ b).sum()

    return step


def time_step(step, iters: int) -> float:
    """µs per step over a loop of ``iters`` steps."""
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - t0) / iters * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--iters", type=int, default=2000)
    args = ap.parse_args()
    registry.register_backend("cpu-a", _CpuA)
    registry.register_backend("cpu-b", _CpuB)
    after = make_step("cpu-a")
    with profile():  # wraps the methods of _CpuA (and of the plain cpu backend, unused here)
        for _ in range(200):
            after()
    never = make_step("cpu-b")  # its class is created after the profile: never wrapped
    assert "unary" not in vars(_CpuA) and "unary" not in vars(_CpuB)
    inside_step = make_step("cpu-a")
    times: dict[str, list[float]] = {"never": [], "after": [], "inside": []}
    for fn in (after, never, inside_step):
        for _ in range(200):
            fn()
    for r in range(args.rounds):
        order = [("never", never), ("after", after)]
        for name, fn in order if r % 2 == 0 else reversed(order):
            times[name].append(time_step(fn, args.iters))
        with profile():
            times["inside"].append(time_step(inside_step, max(1, args.iters // 4)))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    print(f"tiny-op step ({CALLS_PER_STEP} backend calls), {args.rounds} interleaved rounds of "
          f"{args.iters} steps: median / best us per step")  # fmt: skip
    print(f"  never profiled             {med['never']:8.2f} {best['never']:8.2f}")
    print(f"  after a profile, inactive  {med['after']:8.2f} {best['after']:8.2f}   "
          f"{med['after'] / med['never']:.3f}x median, {best['after'] / best['never']:.3f}x "
          "best (target <= 1.02x)")  # fmt: skip
    print(f"  inside profile()           {med['inside']:8.2f} {best['inside']:8.2f}   "
          f"{med['inside'] / med['never']:.3f}x median "
          f"(+{(med['inside'] - med['never']) / CALLS_PER_STEP:.2f} us per backend call)")


# ------------------------------------------------------------------ pytest-benchmark
def test_step_no_profiler(benchmark):
    benchmark(make_step())


def test_step_inside_profile(benchmark):
    step = make_step()
    with profile():
        benchmark(step)


if __name__ == "__main__":
    main()
