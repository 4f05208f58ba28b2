"""shrew.distributed on the ``local`` backend (ranks as threads): collectives on every dtype,
the error cases (no group, mismatched calls, a failing/leaving/stalled rank), the autograd
gradient-ready callback, thread-safe backend lookup, and DistributedDataParallel equal to a
1-process run on the full batch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import shrew.distributed as dist
import shrew_core as sc
import shrew_nn as nn
import shrew_nn.functional as F
import shrew_optim as optim
from shrew_core import registry
from shrew_cpu import CpuBackend

FLOATS = ["float16", "bfloat16", "float32", "float64"]


def values(rank: int, dtype, shape=(2, 5)) -> np.ndarray:
    base = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) * 0.3 - 1.1
    if not sc.as_dtype(dtype).is_float:
        base = np.arange(int(np.prod(shape))).reshape(shape) % 7
    return sc.tensor(base * (rank + 1), dtype=dtype).to("f64").numpy()


def rounded(x: np.ndarray, dtype) -> np.ndarray:
    return sc.tensor(x, dtype="f64").to(dtype).to("f64").numpy()


# ------------------------------------------------------------------------------ collectives
@pytest.mark.parametrize("dtype", FLOATS + ["int64", "uint8"])
def test_collectives_every_dtype(dtype):
    world = 3
    per_rank = [values(r, dtype) for r in range(world)]
    wire = np.float64 if dtype in ("float64", "int64", "uint8") else np.float32
    stack = np.stack([v.astype(wire) for v in per_rank])

    def fn(rank):
        out = {}
        ops = ["sum", "max", "min"] + (["avg", "prod"] if sc.as_dtype(dtype).is_float else [])
        for op in ops:
            t = sc.tensor(per_rank[rank], dtype=dtype)
            assert dist.all_reduce(t, op=op) is t
            out[op] = t.to("f64").numpy()
        t = sc.tensor(per_rank[rank], dtype=dtype)
        assert dist.broadcast(t, src=2) is t
        out["broadcast"] = t.to("f64").numpy()
        mine = sc.tensor(per_rank[rank], dtype=dtype)
        out["all_gather"] = [g.to("f64").numpy() for g in dist.all_gather(mine)]
        dst = [sc.zeros(2, 5, dtype=dtype) for _ in range(world)]
        assert dist.all_gather(dst, sc.tensor(per_rank[rank], dtype=dtype)) is dst
        out["all_gather_list"] = [d.to("f64").numpy() for d in dst]
        rs = sc.zeros(1, 5, dtype=dtype)
        src = sc.tensor(np.concatenate([per_rank[rank][:1]] * world), dtype=dtype)
        dist.reduce_scatter(rs, src)
        out["reduce_scatter"] = rs.to("f64").numpy()
        return out

    results = dist.spawn(fn, world)
    with np.errstate(over="ignore"):
        expect = {
            "sum": stack.sum(0), "max": stack.max(0), "min": stack.min(0),
            "avg": stack.sum(0) / world, "prod": stack.prod(0),
        }  # fmt: skip
    if dtype == "uint8":
        expect["sum"] = expect["sum"] % 256
    for r, out in enumerate(results):
        for op in ("sum", "max", "min", "avg", "prod"):
            if op in out:
                want = rounded(expect[op].astype(wire), dtype)  # reduced in f32, rounded once
                np.testing.assert_array_equal(out[op], want, err_msg=f"{op} rank {r} {dtype}")
        np.testing.assert_array_equal(out["broadcast"], per_rank[2])
        np.testing.assert_array_equal(np.stack(out["all_gather"]), np.stack(per_rank))
        np.testing.assert_array_equal(np.stack(out["all_gather_list"]), np.stack(per_rank))
        want = rounded(stack[:, :1].sum(0).astype(wire), dtype)
        np.testing.assert_array_equal(out["reduce_scatter"], want)


def test_collectives_edge_shapes_and_views():
    def fn(rank):
        scalar = sc.tensor(float(rank + 1))
        empty = sc.zeros(0, 3)
        grid = sc.tensor(np.arange(12.0).reshape(3, 4) * (rank + 1))
        view = grid.t()[1:]  # non-contiguous, offset view: written back in place
        dist.all_reduce(scalar)
        dist.all_reduce(empty)
        dist.all_reduce(view, op="max")
        flag = sc.tensor([rank == 0, False])
        dist.all_reduce(flag, op="max")
        parts = [sc.full((2,), float(rank * 10 + i)) for i in range(2)]
        out = dist.reduce_scatter(sc.zeros(2), parts, op="avg")
        return scalar.item(), empty.shape, grid.numpy().copy(), flag.tolist(), out.tolist()

    (s0, e0, g0, f0, o0), (s1, _, g1, _, o1) = dist.spawn(fn, 2)
    assert s0 == 3.0 and e0 == (0, 3) and f0 == [True, False]
    want = np.arange(12.0).reshape(3, 4)
    want[:, 1:] *= 2  # columns 1.. are the view: max over ranks = rank 1's values
    np.testing.assert_array_equal(g0, want)
    np.testing.assert_array_equal(g1, np.arange(12.0).reshape(3, 4) * 2)  # its own were the max
    assert o0 == [5.0, 5.0] and o1 == [6.0, 6.0]


def test_spawn_doc_example_and_rank_queries():
    def fn(rank):
        assert dist.is_initialized() and dist.get_backend() == "local"
        t = sc.tensor([float(rank + 1)])
        dist.all_reduce(t, op="sum")
        return dist.get_rank(), dist.get_world_size(), t.item()

    assert dist.spawn(fn, 2) == [(0, 2, 3.0), (1, 2, 3.0)]
    assert not dist.is_initialized()  # spawned ranks' groups do not leak into the caller


def test_init_from_user_threads_and_sampler_defaults():
    results = [None, None]

    def run(rank):
        dist.init_process_group("local", world_size=2, rank=rank, init_method="local://users")
        t = sc.tensor([float(rank)])
        dist.all_reduce(t)
        results[rank] = (dist.get_rank(), t.item(), list(dist.DistributedSampler(range(5), seed=4)))
        dist.destroy_process_group()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler

    for r in range(2):
        assert results[r][:2] == (r, 1.0)
        assert results[r][2] == list(TorchSampler(range(5), 2, r, seed=4))


def test_single_rank_local_group():
    dist.init_process_group("local")
    try:
        t = sc.tensor([2.0, 3.0])
        dist.all_reduce(t, "avg")
        assert t.tolist() == [2.0, 3.0] and dist.get_world_size() == 1
        with pytest.raises(dist.DistributedError, match="already initialized"):
            dist.init_process_group("local")
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


# ------------------------------------------------------------------------------ errors
def test_collectives_before_init():
    for call in (lambda: dist.all_reduce(sc.zeros(2)), dist.get_rank, dist.barrier,
                 lambda: dist.DistributedDataParallel(nn.Linear(2, 2))):  # fmt: skip
        with pytest.raises(dist.DistributedError, match="process group is not initialized"):
            call()


def test_mismatched_shapes_dtypes_and_calls_raise_on_every_rank():
    def fn(rank):
        msgs = []
        cases = [
            lambda: dist.all_reduce(sc.zeros(3 + rank)),
            lambda: dist.all_reduce(sc.zeros(2, dtype="f32" if rank == 0 else "bf16")),
            lambda: dist.broadcast(sc.zeros(2), src=rank),
            lambda: dist.broadcast(sc.zeros(2)) if rank == 0 else dist.all_reduce(sc.zeros(2)),
            lambda: dist.all_reduce(sc.zeros(2), op="sum" if rank == 0 else "max"),
        ]
        for case in cases:
            with pytest.raises(dist.CollectiveMismatchError) as info:
                case()
            msgs.append(str(info.value))
        dist.barrier()  # the group is still usable
        return msgs

    m0, m1 = dist.spawn(fn, 2)
    assert [m.split(": ", 1)[1] for m in m0] == [m.split(": ", 1)[1] for m in m1]
    assert "rank 0: all_reduce(op='sum') of float32 (3,); rank 1: all_reduce(op='sum') of " \
           "float32 (4,)" in m0[0]  # fmt: skip
    assert "bfloat16 (2,)" in m0[1]
    assert "broadcast(src=0)" in m0[2] and "broadcast(src=1)" in m0[2]
    assert "rank 0: broadcast(src=0) of float32 (2,); rank 1: all_reduce" in m0[3]
    assert "op='max'" in m0[4]


def test_bad_arguments():
    def fn(rank):
        with pytest.raises(dist.DistributedError, match="op must be one of"):
            dist.all_reduce(sc.zeros(2), op="mean")
        with pytest.raises(sc.DTypeError, match="'avg' needs a floating-point tensor"):
            dist.all_reduce(sc.zeros(2, dtype="i64"), op="avg")
        with pytest.raises(sc.DTypeError, match="not defined for bool"):
            dist.all_reduce(sc.tensor([True]), op="sum")
        with pytest.raises(dist.DistributedError, match="src must be a rank in 0..1"):
            dist.broadcast(sc.zeros(2), src=2)
        with pytest.raises(TypeError, match="expected a shrew Tensor"):
            dist.all_reduce(np.zeros(2))
        with pytest.raises(dist.DistributedError, match="input must be 2 tensors"):
            dist.reduce_scatter(sc.zeros(2), [sc.zeros(2)])
        return True

    assert dist.spawn(fn, 2) == [True, True]
    with pytest.raises(dist.DistributedError, match="world_size must be a positive int"):
        dist.spawn(lambda r: r, 0)
    with pytest.raises(dist.DistributedError, match="timeout must be a positive"):
        dist.spawn(lambda r: r, 2, timeout=0)
    with pytest.raises(dist.DistributedError, match="each thread must pass its rank"):
        dist.init_process_group("local", world_size=2)


def test_failing_rank_stops_the_others_at_once():
    def fn(rank):
        if rank == 1:
            raise ValueError("boom on rank 1")
        dist.all_reduce(sc.zeros(2))

    start = time.monotonic()
    with pytest.raises(ValueError, match="boom on rank 1") as info:
        dist.spawn(fn, 2, timeout=60)
    assert time.monotonic() - start < 10  # not the 60 s timeout
    assert "(raised on rank 1 of 2 in shrew.distributed.spawn)" in info.value.__notes__


def test_rank_returning_early_is_reported():
    def fn(rank):
        if rank == 0:
            return "done"
        time.sleep(0.05)
        dist.all_reduce(sc.zeros(2))

    with pytest.raises(dist.DistributedError, match=r"rank\(s\) \[0\] already returned"):
        dist.spawn(fn, 2, timeout=60)


def test_stalled_rank_times_out_with_the_missing_rank_named():
    errors = {}

    def run(rank):
        dist.init_process_group("local", world_size=2, rank=rank, timeout=0.3,
                                init_method="local://stall")  # fmt: skip
        try:
            if rank == 1:
                time.sleep(0.8)
            dist.all_reduce(sc.zeros(2))
        except dist.DistributedError as exc:
            errors[rank] = exc
        finally:
            dist.destroy_process_group()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert isinstance(errors[0], dist.CollectiveTimeoutError)
    assert "all_reduce timed out after 0.3 s on rank 0: rank(s) [1] never joined" in str(errors[0])
    assert "broken" in str(errors[1])  # rank 1 arrives late: told why, not left waiting


# ------------------------------------------------------------------------------ shrew_core edits
def test_backend_lookup_is_thread_safe(monkeypatch):
    class SlowCpu(CpuBackend):
        def __init__(self, device):
            time.sleep(0.05)  # widen the window two threads could both create an instance in
            super().__init__(device)

    monkeypatch.setattr(registry, "_classes", dict(registry._classes))
    monkeypatch.setattr(registry, "_instances", dict(registry._instances))
    sc.register_backend("slowcpu", SlowCpu)
    barrier = threading.Barrier(8)
    got = []

    def first_tensor():
        barrier.wait()
        got.append(sc.ones(3, device="slowcpu"))

    threads = [threading.Thread(target=first_tensor) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(t.backend) for t in got}) == 1
    total = got[0]
    for t in got[1:]:
        total = total + t  # raised "cpu and cpu"-style DeviceError with two instances
    assert total.tolist() == [8.0, 8.0, 8.0]


def test_on_grad_ready_reports_each_leaf_once_when_final():
    w = sc.randn(3, 3, dtype="f64").requires_grad_()
    b = sc.randn(3, dtype="f64").requires_grad_()
    extra = sc.randn(2, dtype="f64").requires_grad_()
    x = sc.randn(4, 3, dtype="f64")
    loss = ((x @ w + b).tanh() @ w).sum() + extra.sum() * 0.0
    seen = []

    def ready(t, g):
        seen.append((t, g.numpy().copy()))

    store = sc.autograd.backward(loss, on_grad_ready=ready)
    assert [id(t) for t, _ in seen].count(id(w)) == 1 and len(seen) == 3
    order = [id(t) for t, _ in seen]
    assert order.index(id(b)) < order.index(id(w))  # w's last use is the first matmul
    for t, g in seen:
        np.testing.assert_array_equal(g, store[t].numpy())
    leaf_root = sc.randn(2).requires_grad_()
    calls = []
    sc.autograd.backward(leaf_root, sc.ones(2), on_grad_ready=lambda t, g: calls.append(t))
    assert calls == [leaf_root]


# ------------------------------------------------------------------------------ DDP
def mlp(seed: int, dtype="f64") -> nn.Module:
    sc.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 12, dtype=dtype), nn.Tanh(), nn.Linear(12, 12, dtype=dtype),
                         nn.Tanh(), nn.Linear(12, 3, dtype=dtype))  # fmt: skip


RNG = np.random.default_rng(3)
X = RNG.standard_normal((5, 8, 5))  # 5 steps of 8 samples
Y = RNG.integers(0, 3, (5, 8))


def test_ddp_equals_one_process_full_batch_from_different_seeds():
    reference = mlp(10)
    opt = optim.Adam(reference.parameters(), lr=1e-2)
    ref_steps = []
    for x, y in zip(X, Y):
        opt.step(F.cross_entropy(reference(sc.tensor(x)), sc.tensor(y)).backward())
        ref_steps.append([p.numpy().copy() for p in reference.parameters()])
    models = [mlp(10), mlp(11)]  # different initialisations: DDP broadcasts rank 0's

    def fn(rank):
        model = dist.DistributedDataParallel(models[rank], bucket_cap_mb=0.0005)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        steps = []
        for x, y in zip(X, Y):
            rows = slice(4 * rank, 4 * rank + 4)
            opt.step(model.backward(F.cross_entropy(model(sc.tensor(x[rows])), sc.tensor(y[rows]))))
            steps.append([p.numpy().copy() for p in model.parameters()])
        return steps, model.last_reduction, model.bucket_sizes

    (s0, stats, sizes), (s1, _, _) = dist.spawn(fn, 2)
    for k, ref in enumerate(ref_steps):
        for i, want in enumerate(ref):
            np.testing.assert_array_equal(s0[k][i], s1[k][i], err_msg=f"step {k} param {i}")
            np.testing.assert_allclose(s0[k][i], want, rtol=1e-6, atol=1e-6,
                                       err_msg=f"step {k} param {i}")  # fmt: skip
    assert stats.buckets == len(sizes) >= 3
    assert stats.launched_during_backward == stats.buckets  # every bucket left mid-walk


def test_ddp_no_sync_accumulates_the_window():
    models = [mlp(1), mlp(2)]
    reference = mlp(1)
    want = {}
    for k in range(3):
        for p, g in F.cross_entropy(reference(sc.tensor(X[k])), sc.tensor(Y[k])).backward().items():
            want[id(p)] = want.get(id(p), 0) + g.numpy()

    def fn(rank):
        model = dist.DistributedDataParallel(models[rank])
        rows = slice(4 * rank, 4 * rank + 4)
        for k in range(3):
            loss = F.cross_entropy(model(sc.tensor(X[k][rows])), sc.tensor(Y[k][rows]))
            if k < 2:
                with model.no_sync():
                    model.backward(loss)
            else:
                grads = model.backward(loss)
        return [grads[p].numpy() for p in model.parameters()]

    g0, g1 = dist.spawn(fn, 2)
    for p, a, b in zip(reference.parameters(), g0, g1):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, want[id(p)], rtol=1e-9, atol=1e-12)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        sc.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)

    def forward(self, x, use_b):
        return self.a(x) + (self.b(x) if use_b else 0.0)


@pytest.mark.parametrize("find_unused", [False, True])
def test_ddp_unused_parameters(find_unused):
    models = [Branchy(), Branchy()]
    x = sc.randn(4, 3)

    def fn(rank):
        model = dist.DistributedDataParallel(models[rank], find_unused_parameters=find_unused)
        grads = model.backward(model(x, use_b=rank == 0).sum())
        return {n: grads.get(p) for n, p in model.module.named_parameters()}

    g0, g1 = dist.spawn(fn, 2)
    local_b = (models[0].a(x) + models[0].b(x)).sum().backward()[models[0].b.weight]
    np.testing.assert_allclose(g0["b.weight"].numpy(), local_b.numpy() / 2, rtol=1e-6)
    if find_unused:
        assert g0["c.weight"] is None and g1["c.bias"] is None  # no rank used c
    else:
        np.testing.assert_array_equal(g0["c.weight"].numpy(), np.zeros((2, 3), np.float32))


def test_ddp_half_params_reduce_in_f32_and_state_dict_prefix():
    models = [mlp(5, "bf16"), mlp(6, "bf16")]

    def fn(rank):
        model = dist.DistributedDataParallel(models[rank])
        x = sc.tensor(X[0][4 * rank : 4 * rank + 4], dtype="bf16")
        grads = model.backward(model(x).sum())
        return {n: grads[p] for n, p in model.module.named_parameters()}, list(model.state_dict())

    (g0, keys), (g1, _) = dist.spawn(fn, 2)
    ref = mlp(5, "bf16")
    local = [ref(sc.tensor(X[0][4 * r : 4 * r + 4], dtype="bf16")).sum().backward() for r in (0, 1)]
    for n, p in ref.named_parameters():
        assert g0[n].dtype == sc.bf16
        mean = (local[0][p].to("f32").numpy() + local[1][p].to("f32").numpy()) / 2
        np.testing.assert_array_equal(g0[n].to("f32").numpy(), rounded(mean, "bf16"))
        np.testing.assert_array_equal(g0[n].to("f32").numpy(), g1[n].to("f32").numpy())
    assert keys[0] == "module.0.weight"


def test_ddp_rejects_different_models():
    models = [mlp(0), nn.Linear(5, 3, dtype="f64")]

    def fn(rank):
        dist.DistributedDataParallel(models[rank])

    with pytest.raises(dist.CollectiveMismatchError, match="model replicas"):
        dist.spawn(fn, 2)


def test_tensors_of_another_backend_go_through_host_copies():
    """The path GPU tensors take: a non-cpu device is staged on the host and written back."""
    pytest.importorskip("shrew_reference_backend")

    def fn(rank):
        t = sc.tensor([1.0, 2.0 * rank], device="reference")
        dist.all_reduce(t, op="sum")
        b = dist.broadcast(sc.tensor([float(rank)], dtype="bf16", device="reference"), src=1)
        g = dist.all_gather(sc.tensor([rank], device="reference"))
        lin = nn.Linear(2, 1, device="reference")
        model = dist.DistributedDataParallel(lin)
        grads = model.backward(model(sc.ones(1, 2, device="reference")).sum())
        return (t.device.type, t.tolist(), b.tolist(), [x.tolist() for x in g],
                grads[lin.weight].device.type)  # fmt: skip

    for out in dist.spawn(fn, 2):
        assert out == ("reference", [2.0, 2.0], [1.0], [[0], [1]], "reference")
