"""The shared side-by-side benchmark pattern: declare cases once, run them two ways.

A benchmark file declares a :class:`Bench` and its cases; each case builds (once) the
timed bodies of its contestants — zero-argument functions, e.g. one shrew step and the same
step in PyTorch or NumPy::

    BENCH = Bench("shrew_nn vs PyTorch", baseline=("torch",))

    @BENCH.case("conv", "Conv2d fwd+bwd [32,16,28,28]", ("shrew", "torch"))
    def conv():
        ...                                   # set up both sides (not timed)
        return {"shrew": run_shrew, "torch": run_torch}, "a note"

    test_benchmark = BENCH.pytest_test()      # pytest benchmarks --benchmark-only

    if __name__ == "__main__":
        BENCH.main()                          # python benchmarks/bench_x.py

* ``python benchmarks/bench_x.py`` times the contestants of each case *in one process,
  interleaved* (each in turn, every round, so load from other processes hits all alike),
  the best or the median of ``--rounds`` samples, and prints the table the READMEs quote:
  milliseconds per contestant and the ratio of the first contestant to the fastest
  baseline (< 1 means shrew is faster).
* ``pytest benchmarks --benchmark-only`` runs one pytest-benchmark test per (case,
  contestant), grouped by case, so pytest-benchmark's comparison table shows the
  contestants of a case next to each other, and ``--benchmark-autosave`` /
  ``--benchmark-compare`` save runs and compare against saved ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# torch's and Numba's OpenMP pools and OpenBLAS's threads share the cores of one process:
# spinning idle workers would steal them from whoever runs next. Set before torch loads --
# unless a benchmark measures the default on purpose (bench_nn.py --import-order's children
# run with SHREW_BENCH_DEFAULT_OMP=1).
if not os.environ.get("SHREW_BENCH_DEFAULT_OMP"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Timed = Callable[[], object]
_UNITS = {"ms": 1.0, "us": 1e3}  # milliseconds -> the table's unit
Build = Callable[[], "tuple[dict[str, Timed], str] | dict[str, Timed]"]


@dataclass(frozen=True)
class Case:
    """One benchmark case: ``build()`` returns ``{contestant: fn}`` (and optionally a note)."""

    name: str
    title: str
    contestants: tuple[str, ...]
    build: Build
    baseline: tuple[str, ...] | None = None  # overrides the Bench's


def time_interleaved(fns: dict[str, Timed], rounds: int, warmup: int = 2,
                     stat: str = "min", min_sample_s: float = 2e-3) -> dict[str, float]:
    """Milliseconds per call of each function: ``stat`` ("min" or "median") over ``rounds``
    samples, the functions taking turns within each round. A sample repeats a fast function
    so that it lasts at least ``min_sample_s``."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    inner = {}
    for k, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        inner[k] = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-7)))
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner[k]):
                fn()
            samples[k].append((time.perf_counter() - t0) / inner[k])
    pick = min if stat == "min" else statistics.median
    return {k: pick(v) * 1e3 for k, v in samples.items()}


class Bench:
    """The cases of one benchmark file, runnable as a script and under pytest-benchmark.

    Args:
        title: printed above the table.
        baseline: contestants the ratio divides by (the fastest of those present).
        stat: "min" (best of N) or "median" of the interleaved samples.
        rounds: default number of samples per contestant for the script.
        unit: "ms" or "us" in the printed table.
        ratio_label: the ratio column's heading (e.g. "speed-up").
    """

    def __init__(self, title: str, baseline: Sequence[str] = ("torch",), stat: str = "min",
                 rounds: int = 7, unit: str = "ms", ratio_label: str = "ratio") -> None:
        if unit not in _UNITS:
            raise ValueError(f"Bench: unit must be one of {sorted(_UNITS)}, got {unit!r}")
        self.title, self.baseline, self.stat, self.rounds = title, tuple(baseline), stat, rounds
        self.unit, self.ratio_label = unit, ratio_label
        self.cases: dict[str, Case] = {}
        self.options: dict[str, object] = {}  # the script's extra options (see main)
        self._built: tuple[str, dict[str, Timed], str] | None = None

    def case(self, name: str, title: str, contestants: Sequence[str],
             baseline: Sequence[str] | None = None):  # fmt: skip
        """Decorator registering ``build`` as a case (``baseline`` overrides the Bench's)."""
        def register(build: Build) -> Build:
            self.cases[name] = Case(name, title, tuple(contestants), build,
                                    None if baseline is None else tuple(baseline))
            return build
        return register

    def build(self, name: str) -> tuple[dict[str, Timed], str]:
        """The case's timed functions and note; the last case built is kept (so a case's
        contestants share one setup under pytest) and the one before is released."""
        if self._built is None or self._built[0] != name:
            self._built = None
            out = self.cases[name].build()
            fns, note = out if isinstance(out, tuple) else (out, "")
            missing = set(self.cases[name].contestants) ^ set(fns)
            if missing:
                raise ValueError(f"case {name!r}: contestants {sorted(missing)} do not match")
            self._built = (name, fns, note)
        return self._built[1], self._built[2]

    # ------------------------------------------------------------------ the script
    def table(self, names: Sequence[str] | None = None, rounds: int | None = None) -> None:
        """Time ``names`` (default: every case) and print the side-by-side table."""
        names = list(names or self.cases)
        columns = [c for n in names for c in self.cases[n].contestants]
        columns = list(dict.fromkeys(columns))
        width = max(len(self.cases[n].title) for n in names)
        unit, scale = self.unit, _UNITS[self.unit]
        widths = {c: max(10, len(c) + 1 + len(unit)) for c in columns}
        rw = max(6, len(self.ratio_label))
        print(self.title)
        head = f"{'case':{width}} " + " ".join(f"{c + ' ' + unit:>{widths[c]}}" for c in columns)
        print(f"{head} {self.ratio_label:>{rw}}  note")
        for n in names:
            case = self.cases[n]
            fns, note = self.build(n)
            ms = time_interleaved(fns, rounds or self.rounds, stat=self.stat)
            base = [ms[c] for c in (case.baseline or self.baseline) if c in ms]
            ratio = f"{ms[case.contestants[0]] / min(base):{rw}.2f}" if base else " " * rw
            cells = " ".join(f"{ms[c] * scale:{widths[c]}.3f}" if c in ms else " " * widths[c]
                             for c in columns)  # fmt: skip
            print(f"{case.title:{width}} {cells} {ratio}  {note}", flush=True)
        self._built = None

    def main(self, argv: Sequence[str] | None = None,
             configure: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
        """The script's command line: ``[--rounds N] [--only a,b]`` plus whatever
        ``configure(parser)`` adds; those values land in ``self.options`` for the cases
        (under pytest the cases see an empty ``options`` and use their defaults)."""
        ap = argparse.ArgumentParser(description=self.title)
        if configure is not None:
            configure(ap)
        ap.add_argument("--rounds", type=int, default=self.rounds,
                        help="interleaved samples per contestant")  # fmt: skip
        ap.add_argument("--only", default="", help="comma-separated subset of " +
                        ",".join(self.cases))  # fmt: skip
        args = ap.parse_args(argv)
        self.options = {k: v for k, v in vars(args).items() if k not in ("rounds", "only")}
        names = [n for n in args.only.split(",") if n] or None
        unknown = set(names or ()) - set(self.cases)
        if unknown:
            ap.error(f"unknown case(s) {sorted(unknown)}; choose from {sorted(self.cases)}")
        self.table(names, args.rounds)

    # ------------------------------------------------------------------ pytest-benchmark
    def pytest_test(self):
        """A ``test_*`` function: one pytest-benchmark test per (case, contestant), grouped
        by case. Each function is called once before timing (warm-up, JIT compilation)."""
        import pytest

        params = [pytest.param(c.name, who, id=f"{c.name}-{who}")
                  for c in self.cases.values() for who in c.contestants]  # fmt: skip

        @pytest.mark.parametrize("case,contestant", params)
        def test_benchmark(benchmark, case, contestant):
            fns, note = self.build(case)
            benchmark.group = self.cases[case].title
            benchmark.extra_info["note"] = note
            fn = fns[contestant]
            fn()
            benchmark(fn)

        return test_benchmark
