"""Does the DataLoader overlap loading with compute?

A loader over 100 batches applies a ~2 ms per-batch transform (``batch_transform``) while
the consumer runs a ~2 ms "model step". Serial loading (num_workers=0) costs about the
*sum* (4 ms/batch); with 2 worker threads and prefetch the epoch should cost about the
*max* (2 ms/batch). Two workloads:

* ``sleep``: the transform and the step wait 2 ms (I/O-like: decoding, reading files);
* ``numpy``: the transform is RandomCrop + flip + Normalize on a batch of 32x3x64x64
  images (fixed size: ~2-4 ms here) and the step a float32 matmul chain sized to ~2 ms;
  NumPy releases the GIL for much of this, so it shows the overlap threads get on real
  array work (it needs two free cores; on a busy machine the figure degrades).

Run: ``python benchmarks/bench_data_loader.py [--batches 100] [--repeat 3]``. Under
pytest-benchmark (``pytest benchmarks/bench_data_loader.py --benchmark-only``) one epoch
per (workload, workers) is the timed body, grouped by workload.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shrew_data import DataLoader, TensorDataset, default_collate
from shrew_data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip


def busy_sleep(seconds: float) -> None:
    time.sleep(seconds)


def calibrate(fn) -> float:
    """Seconds one call of ``fn`` takes (median of a few)."""
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def make_workload(kind: str, n_batches: int):
    if kind == "sleep":
        ds = TensorDataset(np.arange(n_batches * 8, dtype=np.float32))

        def transform(batch):
            busy_sleep(0.002)
            return batch

        def step(batch):
            busy_sleep(0.002)

        return ds, 8, transform, step, None
    rng = np.random.default_rng(0)
    images = rng.random((16, 3, 64, 64), dtype=np.float32)
    aug = Compose([RandomCrop(64, padding=4), RandomHorizontalFlip(), Normalize(0.5, 0.25)])
    ds = TensorDataset(np.arange(n_batches * 8, dtype=np.float32))
    m = rng.random((128, 128), dtype=np.float32)
    while calibrate(lambda m=m: m @ m @ m) < 0.002 and m.shape[0] < 2048:
        m = rng.random((int(m.shape[0] * 1.15),) * 2, dtype=np.float32)

    def transform(batch):
        return batch, aug(images)

    def step(batch):
        m @ m @ m

    return ds, 8, transform, step, None


def make_epoch(kind: str, workers: int, n_batches: int):
    """(the timed body: one epoch of loading + stepping, transform ms/batch, step ms/batch)."""
    ds, bs, transform, step, sampler = make_workload(kind, n_batches)
    loader = DataLoader(ds, batch_size=bs, num_workers=workers, prefetch_factor=2,
                        batch_transform=transform, sampler=sampler, device="reference")
    raw = default_collate([ds[i] for i in range(bs)], device="reference")
    first = transform(raw)
    t_transform = calibrate(lambda: transform(raw))
    t_step = calibrate(lambda: step(first))

    def epoch() -> None:
        count = 0
        for batch in loader:
            step(batch)
            count += 1
        if count != n_batches:
            raise RuntimeError(f"the loader gave {count} batches, expected {n_batches}")

    return epoch, t_transform * 1e3, t_step * 1e3


def epoch_time(kind: str, workers: int, n_batches: int) -> tuple[float, float, float]:
    """(epoch seconds, transform ms/batch, step ms/batch)."""
    epoch, load, step = make_epoch(kind, workers, n_batches)
    t0 = time.perf_counter()
    epoch()
    return time.perf_counter() - t0, load, step


def pytest_generate_tests(metafunc):
    if "workers" in metafunc.fixturenames:
        metafunc.parametrize("kind", ["sleep", "numpy"])
        metafunc.parametrize("workers", [0, 2])


def test_epoch(benchmark, kind, workers):
    epoch, load, step = make_epoch(kind, workers, 100)
    benchmark.group = f"DataLoader epoch, 100 batches, workload {kind!r}"
    benchmark.extra_info.update(load_ms=load, step_ms=step)
    benchmark.pedantic(epoch, rounds=3, iterations=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workloads", default="sleep,numpy")
    args = parser.parse_args()
    print(f"{'workload':<8} {'workers':>7} {'epoch ms':>9} {'ms/batch':>9} "
          f"{'load ms':>8} {'step ms':>8} {'sum ms':>7} {'max ms':>7} {'vs sum':>7}")
    for kind in args.workloads.split(","):
        for workers in (0, 2):
            runs = [epoch_time(kind, workers, args.batches) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r[0])
            total, load, step = best
            per = total / args.batches * 1e3
            print(f"{kind:<8} {workers:>7} {total * 1e3:>9.1f} {per:>9.2f} {load:>8.2f} "
                  f"{step:>8.2f} {load + step:>7.2f} {max(load, step):>7.2f} "
                  f"{per / (load + step):>7.2f}")


if __name__ == "__main__":
    main()
