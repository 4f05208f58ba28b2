"""Cost of the profiler's dispatch hook (``shrew_core.hooks``) on a tiny-op step.

Run: ``python benchmarks/bench_profiler.py [--procs 6] [--iters 20000]``.

The step is five ops on 4x4 tensors (add, mul, relu, sum, matmul): per-op overhead
dominates it. Three figures, each the best of several measurements:

* ``baseline``: a fresh process that never imports ``shrew.profiler``;
* ``after a profile``: a fresh process that first runs the step inside ``profile()`` (the
  hook installed, then removed), then times it with no profiler active: target <= 1.02x;
* ``inside profile()``: the step while a profile records it (µs per backend call shown).

The baseline and after-profile processes alternate, so a busy machine slows both alike.
Under pytest-benchmark: ``pytest benchmarks/bench_profiler.py`` times the step outside
and inside a profile.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import shrew_core as sc


def make_step():
    a, b = sc.randn(4, 4), sc.randn(4, 4)

    def step():
        return ((a + b) * a).relu().sum() + (a @ b).sum()

    return step


CALLS_PER_STEP = 7  # add, mul, relu, sum, matmul, sum, add


def time_step(step, iters: int, repeats: int = 5) -> float:
    """Best µs per step over ``repeats`` loops of ``iters`` steps."""
    for _ in range(200):
        step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        best = min(best, (time.perf_counter() - t0) / iters)
    return best * 1e6


def child(mode: str, iters: int) -> None:
    step = make_step()
    if mode == "after":
        from shrew.profiler import profile

        with profile():
            for _ in range(100):
                step()
    print(time_step(step, iters))


def _spawn(mode: str, iters: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--iters", str(iters)],
                         check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=6, help="processes per mode (alternating)")
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--child", choices=["baseline", "after"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.iters)
        return
    results: dict[str, list[float]] = {"baseline": [], "after": []}
    for i in range(args.procs):
        for mode in ("baseline", "after") if i % 2 == 0 else ("after", "baseline"):
            results[mode].append(_spawn(mode, args.iters))
    base, after = min(results["baseline"]), min(results["after"])

    from shrew.profiler import profile

    step = make_step()
    with profile():
        inside = time_step(step, max(1, args.iters // 10))
    print(f"tiny-op step ({CALLS_PER_STEP} backend calls), best of {args.procs} processes each")
    print(f"  baseline (never profiled)     {base:8.2f} us/step")
    print(f"  after a profile, none active  {after:8.2f} us/step  {after / base:6.3f}x "
          f"(target <= 1.02x)")  # fmt: skip
    print(f"  inside profile()              {inside:8.2f} us/step  {inside / base:6.3f}x "
          f"(+{(inside - base) / CALLS_PER_STEP:.2f} us per backend call)")


# ------------------------------------------------------------------ pytest-benchmark
def test_step_no_profiler(benchmark):
    benchmark(make_step())


def test_step_inside_profile(benchmark):
    from shrew.profiler import profile

    step = make_step()
    with profile():
        benchmark(step)


if __name__ == "__main__":
    main()
