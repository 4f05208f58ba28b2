"""DistributedDataParallel scaling (2 MPI ranks vs 1 process) and a 100 MB all-reduce through
shrew.distributed vs raw mpi4py ``Allreduce``.

Run: ``python benchmarks/bench_distributed.py [--steps 12] [--rounds 3]``. The script launches
itself under ``mpiexec`` (the mpich wheel's, next to the interpreter):

* training throughput of a conv net (compute-bound) and of the digits MLP (tiny, so
  overhead-bound) — one process with one compute thread, two DDP ranks with one thread
  each (weak scaling: every rank trains on its own batch of the same size), and one process
  with two threads (what the same cores give without DDP). Speedup and efficiency are
  against one process with one thread; rounds alternate the configurations and the best
  round counts;
* a 100 MB f32 all-reduce on 2 ranks: shrew's ``all_reduce`` (signature check + polled
  ``Iallreduce`` on the tensor's own memory) against ``comm.Allreduce(MPI.IN_PLACE, array)``,
  interleaved, best of N.

The machine's load average is printed before and after: on a shared 2-core machine other
work takes cores from the ranks, so read the ratios with it.

Under pytest-benchmark (``pytest benchmarks/bench_distributed.py``) the timed bodies run on the
``local`` backend (ranks as threads): ``test_local_allreduce`` and ``test_local_ddp_step``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import shrew.distributed as dist
import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F
import shrew_optim as optim

MPIEXEC = Path(sys.executable).with_name("mpiexec")
BATCH = {"conv": 32, "mlp": 64}
LABELS = {"conv": "conv net (3x32x32, batch 32/rank)",
          "mlp": "digits MLP (64-64-10, batch 64/rank)"}


def build(kind: str) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """The model and one batch of inputs/labels for ``kind`` ('conv' or 'mlp')."""
    sc.manual_seed(0)
    rng = np.random.default_rng(dist.get_rank() if dist.is_initialized() else 0)
    if kind == "conv":
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 10),
        )  # fmt: skip
        x = rng.standard_normal((BATCH[kind], 3, 32, 32)).astype(np.float32)
    else:
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        x = rng.random((BATCH[kind], 64)).astype(np.float32)
    return model, x, rng.integers(0, 10, BATCH[kind])


def train_step_fn(kind: str):
    """One optimizer step of ``kind`` (DDP when a group with several ranks exists)."""
    model, x, y = build(kind)
    distributed = dist.is_initialized() and dist.get_world_size() > 1
    if distributed:
        model = dist.DistributedDataParallel(model)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = sc.tensor(x), sc.tensor(y)

    def step() -> None:
        loss = F.cross_entropy(model(xt), yt)
        opt.step(model.backward(loss) if distributed else loss.backward())

    return step


# ------------------------------------------------------------------------------ MPI workers
def worker_train(kind: str, steps: int) -> dict:
    dist.init_process_group("mpi")
    step = train_step_fn(kind)
    for _ in range(3):
        step()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dist.barrier()
    elapsed = time.perf_counter() - t0
    world = dist.get_world_size()
    return {"samples_per_s": world * BATCH[kind] * steps / elapsed}


def worker_allreduce(rounds: int) -> dict:
    from mpi4py import MPI

    group = dist.init_process_group("mpi")
    n = 100 * 2**20 // 4
    tensor, array = sc.zeros(n), np.zeros(n, np.float32)
    comm = MPI.COMM_WORLD
    times: dict[str, list[float]] = {"shrew": [], "mpi4py": []}
    for k in range(rounds + 1):
        order = ("shrew", "mpi4py") if k % 2 else ("mpi4py", "shrew")
        for name in order:
            comm.Barrier()
            t0 = time.perf_counter()
            if name == "shrew":
                dist.all_reduce(tensor, group=group)
            else:
                comm.Allreduce(MPI.IN_PLACE, array)
            if k:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    return {name: min(v) for name, v in times.items()}


def mpirun(n: int, threads: int, *args: str) -> dict:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")  # fmt: skip
    cmd = [str(MPIEXEC), "-n", str(n), sys.executable, __file__, "--worker", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="timed steps per run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (best counts)")
    ap.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        kind = args.worker[0]
        if kind == "allreduce":
            res = worker_allreduce(args.rounds)
        else:
            res = worker_train(kind, args.steps)
        if dist.get_rank() == 0:
            print(json.dumps(res))
        dist.destroy_process_group()
        return
    load_before = os.getloadavg()
    configs = {"1 process, 1 thread": (1, 1), "2 DDP ranks, 1 thread each": (2, 1),
               "1 process, 2 threads": (1, 2)}  # fmt: skip
    print(f"load average before: {load_before[0]:.2f} (1 min) on {os.cpu_count()} cores")
    for kind in ("conv", "mlp"):
        best: dict[str, float] = {}
        for r in range(args.rounds):
            names = list(configs) if r % 2 == 0 else list(configs)[::-1]
            for name in names:
                n, threads = configs[name]
                res = mpirun(n, threads, kind, "--steps", str(args.steps))
                best[name] = max(best.get(name, 0.0), res["samples_per_s"])
        base = best["1 process, 1 thread"]
        print(f"\n{LABELS[kind]}")
        print(f"{'configuration':30s} {'samples/s':>10s} {'speedup':>8s} {'efficiency':>10s}")
        for name, value in best.items():
            ranks_or_threads = 2 if "2" in name else 1
            print(f"{name:30s} {value:10.1f} {value / base:7.2f}x "
                  f"{value / base / ranks_or_threads:9.0%}")  # fmt: skip
    res = mpirun(2, 1, "allreduce", "--rounds", str(max(args.rounds, 5)))
    print("\n100 MB f32 all-reduce, 2 ranks (best of rounds)")
    print(f"raw mpi4py Allreduce {res['mpi4py'] * 1e3:8.1f} ms")
    print(f"shrew all_reduce     {res['shrew'] * 1e3:8.1f} ms   "
          f"{res['mpi4py'] / res['shrew']:.2f}x of raw mpi4py speed")  # fmt: skip
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min)")


# ------------------------------------------------------------------------------ pytest-benchmark
def local_allreduce_body(numel: int = 1 << 20):
    """All-reduce of ``numel`` f32 on 2 local ranks (threads), once."""

    def body() -> None:
        dist.spawn(lambda rank: dist.all_reduce(sc.ones(numel)), 2)

    return body


def local_ddp_body(kind: str = "mlp"):
    def body() -> None:
        dist.spawn(lambda rank: train_step_fn(kind)(), 2)

    return body


def test_local_allreduce(benchmark):
    benchmark(local_allreduce_body())


def test_local_ddp_step(benchmark):
    benchmark(local_ddp_body())


if __name__ == "__main__":
    main()
