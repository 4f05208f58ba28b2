"""shrew.distributed's ``mpi`` backend under a real ``mpiexec -n 2`` (launched from pytest with
a timeout): DDP on 2 ranks equals a 1-process run on the full batch, collectives on every
float dtype, mismatch errors, and a rank that leaves early or stalls giving an error on the
other rank instead of a hang. The three launches together take ~15 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import shrew_core as sc
from shrew.distributed import DistributedError, init_process_group, is_initialized
from shrew_data import MissingDependencyError

MPIEXEC = Path(sys.executable).with_name("mpiexec")
pytestmark = pytest.mark.skipif(
    not MPIEXEC.exists(), reason="the mpich wheel's mpiexec is part of requirements-dev.txt"
)

# The model, data and training loop shared by the MPI ranks and the 1-process reference.
COMMON = textwrap.dedent(
    """
    import numpy as np
    import shrew_core as sc
    import shrew_nn as nn
    import shrew_nn.functional as F
    import shrew_optim as optim

    STEPS, BATCH = 4, 16

    def make_model(seed):
        sc.manual_seed(seed)
        return nn.Sequential(
            nn.Linear(6, 32, dtype="f64"), nn.Tanh(), nn.Linear(32, 32, dtype="f64"), nn.Tanh(),
            nn.Linear(32, 3, dtype="f64"),
        )

    def data():
        rng = np.random.default_rng(7)
        return rng.standard_normal((STEPS, BATCH, 6)), rng.integers(0, 3, (STEPS, BATCH))

    def train(model, backward, rows):
        opt = optim.Adam(model.parameters(), lr=1e-2)
        xs, ys = data()
        for x, y in zip(xs, ys):
            loss = F.cross_entropy(model(sc.tensor(x[rows])), sc.tensor(y[rows]))
            opt.step(backward(loss))
        return [p.numpy().copy() for p in model.parameters()]
    """
)

WORKER = COMMON + textwrap.dedent(
    """
    import json, sys
    import shrew.distributed as dist

    out_dir = sys.argv[1]
    try:
        dist.init_process_group("mpi", world_size=3)
    except dist.DistributedError as exc:
        wrong_size = str(exc)
    group = dist.init_process_group("mpi", timeout=30)
    rank, world = dist.get_rank(), dist.get_world_size()
    arrays, info = {}, {"world": world, "wrong_size": wrong_size, "backend": dist.get_backend()}

    # collectives on every float dtype (and i64): values depend on the rank
    for name in ("float16", "bfloat16", "float32", "float64", "int64"):
        base = np.arange(6, dtype=np.float64).reshape(2, 3) * 0.37 + 1.0
        if name == "int64":
            base = np.arange(6).reshape(2, 3) + 1
        for op in ("sum", "avg", "max"):
            if op == "avg" and name == "int64":
                continue
            t = sc.tensor(base * (rank + 1), dtype=name)
            ret = dist.all_reduce(t, op=op)
            arrays[f"all_reduce_{op}_{name}"] = t.to("f64").numpy()
            info[f"returned_{op}_{name}"] = ret is t
        t = sc.tensor(base * (rank + 1), dtype=name)
        dist.broadcast(t, src=1)
        arrays[f"broadcast_{name}"] = t.to("f64").numpy()
        gathered = dist.all_gather(sc.tensor(base * (rank + 1), dtype=name))
        arrays[f"all_gather_{name}"] = np.stack([g.to("f64").numpy() for g in gathered])
        out = sc.zeros(1, 3, dtype=name)
        dist.reduce_scatter(out, sc.tensor(base * (rank + 1), dtype=name))
        arrays[f"reduce_scatter_{name}"] = out.to("f64").numpy()
    strided = sc.tensor(np.arange(12.0).reshape(3, 4) * (rank + 1)).t()  # a non-contiguous view
    dist.all_reduce(strided)
    arrays["all_reduce_strided"] = strided.numpy()
    dist.barrier()

    # ranks that disagree get an error on every rank, and the group stays usable
    try:
        dist.all_reduce(sc.zeros(3 + rank))
    except dist.CollectiveMismatchError as exc:
        info["mismatch"] = str(exc)
    try:
        dist.all_reduce(sc.zeros(2, dtype="f32" if rank == 0 else "f64"))
    except dist.CollectiveMismatchError as exc:
        info["dtype_mismatch"] = str(exc)

    # DDP from different seeds on half batches each
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    model = dist.DistributedDataParallel(make_model(100 + rank), bucket_cap_mb=0.004)
    params = train(model, model.backward, rows)
    for i, p in enumerate(params):
        arrays[f"ddp_{i}"] = p
    info["buckets"] = model.last_reduction.buckets
    info["launched_during_backward"] = model.last_reduction.launched_during_backward

    info["sampler"] = list(dist.DistributedSampler(range(7), shuffle=True, seed=3))
    dist.destroy_process_group()
    np.savez(f"{out_dir}/rank{rank}.npz", **arrays)
    with open(f"{out_dir}/rank{rank}.json", "w") as f:
        json.dump(info, f)
    """
)

EARLY_EXIT = textwrap.dedent(
    """
    import sys
    import shrew_core as sc
    import shrew.distributed as dist

    dist.init_process_group("mpi", timeout=60)
    if dist.get_rank() == 1:
        sys.exit(0)  # leaves without destroy_process_group(): the exit hook tells the others
    try:
        dist.all_reduce(sc.ones(4))
    except dist.DistributedError as exc:
        print(f"RANK0 {type(exc).__name__}: {exc}", flush=True)
    """
)

STALL = textwrap.dedent(
    """
    import time
    import shrew_core as sc
    import shrew.distributed as dist

    dist.init_process_group("mpi", timeout=1.0)
    if dist.get_rank() == 1:
        time.sleep(20)
    try:
        dist.all_reduce(sc.ones(4))
    except dist.CollectiveTimeoutError as exc:
        print(f"RANK0 {type(exc).__name__}: {exc}", flush=True)
    """
)


def mpirun(script: str, tmp_path: Path, timeout: float, *args: str):
    path = tmp_path / "script.py"
    path.write_text(script)
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(path), *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path,
    )  # fmt: skip
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def mpi_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi")
    proc, _ = mpirun(WORKER, tmp, 50, str(tmp))
    assert proc.returncode == 0, f"mpiexec failed:\n{proc.stdout}\n{proc.stderr}"
    ranks = []
    for r in range(2):
        with np.load(tmp / f"rank{r}.npz") as z:
            arrays = dict(z)
        ranks.append((arrays, json.loads((tmp / f"rank{r}.json").read_text())))
    return ranks


def test_ddp_two_ranks_equals_one_process_full_batch(mpi_results):
    ns: dict = {}
    exec(COMMON, ns)  # noqa: S102 - the test's own model code, shared with the ranks
    model = ns["make_model"](100)  # rank 0's initialisation: DDP broadcasts it
    reference = ns["train"](model, lambda loss: loss.backward(), slice(None))
    (a0, info0), (a1, _) = mpi_results
    for i, ref in enumerate(reference):
        np.testing.assert_array_equal(a0[f"ddp_{i}"], a1[f"ddp_{i}"], err_msg=f"param {i}")
        np.testing.assert_allclose(a0[f"ddp_{i}"], ref, rtol=1e-6, atol=1e-6, err_msg=f"param {i}")
    assert info0["buckets"] >= 3, info0
    assert info0["launched_during_backward"] >= 1, info0


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64", "int64"])
def test_collectives_every_dtype_under_mpi(mpi_results, name):
    dtype = sc.as_dtype(name)
    base = np.arange(6, dtype=np.float64).reshape(2, 3) * 0.37 + 1.0
    if name == "int64":
        base = np.arange(6).reshape(2, 3) + 1
    per_rank = [sc.tensor(base * (r + 1), dtype=dtype).to("f64").numpy() for r in range(2)]
    wire = np.float64 if name in ("float64", "int64") else np.float32
    total = (per_rank[0].astype(wire) + per_rank[1].astype(wire)).astype(np.float64)
    expect = {
        "sum": total,
        "avg": (total.astype(wire) / 2).astype(np.float64),
        "max": np.maximum(per_rank[0], per_rank[1]),
    }
    for r, (arrays, info) in enumerate(mpi_results):
        for op, want in expect.items():
            if op == "avg" and name == "int64":
                continue
            want = sc.tensor(want, dtype="f64").to(dtype).to("f64").numpy()  # rounded once
            np.testing.assert_array_equal(arrays[f"all_reduce_{op}_{name}"], want,
                                          err_msg=f"rank {r} all_reduce {op}")  # fmt: skip
            assert info[f"returned_{op}_{name}"], "all_reduce must return its tensor"
        np.testing.assert_array_equal(arrays[f"broadcast_{name}"], per_rank[1])
        np.testing.assert_array_equal(arrays[f"all_gather_{name}"], np.stack(per_rank))
        chunk = expect["sum"][r : r + 1]
        want = sc.tensor(chunk, dtype="f64").to(dtype).to("f64").numpy()
        np.testing.assert_array_equal(arrays[f"reduce_scatter_{name}"], want)


def test_mpi_strided_tensor_mismatch_sampler_and_world_size(mpi_results):
    (a0, info0), (a1, info1) = mpi_results
    want = (np.arange(12.0).reshape(3, 4) * 3).T
    np.testing.assert_array_equal(a0["all_reduce_strided"], want)
    np.testing.assert_array_equal(a1["all_reduce_strided"], want)
    for info in (info0, info1):
        assert info["backend"] == "mpi" and info["world"] == 2
        assert "has 2 ranks" in info["wrong_size"]
        assert "rank 0: all_reduce(op='sum') of float32 (3,)" in info["mismatch"]
        assert "rank 1: all_reduce(op='sum') of float32 (4,)" in info["mismatch"]
        assert "float64 (2,)" in info["dtype_mismatch"]
    pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    for r, info in enumerate((info0, info1)):
        assert info["sampler"] == list(TorchSampler(range(7), 2, r, shuffle=True, seed=3))


def test_rank_leaving_early_gives_error_not_hang(tmp_path):
    proc, elapsed = mpirun(EARLY_EXIT, tmp_path, 40)
    assert "RANK0 DistributedError" in proc.stdout, proc.stdout + proc.stderr
    assert "rank(s) [1] left the job" in proc.stdout
    assert elapsed < 30, f"took {elapsed:.1f} s"


def test_stalled_rank_times_out_and_job_is_aborted(tmp_path):
    proc, elapsed = mpirun(STALL, tmp_path, 40)
    assert "RANK0 CollectiveTimeoutError: all_reduce timed out after 1 s" in proc.stdout, (
        proc.stdout + proc.stderr
    )
    assert proc.returncode != 0  # the broken group aborts the job at exit, freeing rank 1
    assert elapsed < 18, f"took {elapsed:.1f} s: rank 1's 20 s sleep was not cut short"


def test_mpi_backend_without_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'shrew\[mpi\]'"):
        init_process_group("mpi")
    assert not is_initialized()


def test_unknown_backend_and_nccl():
    with pytest.raises(DistributedError, match="unknown backend 'gloo'"):
        init_process_group("gloo")
    with pytest.raises(NotImplementedError, match="NCCL backend is not implemented"):
        init_process_group("nccl")
