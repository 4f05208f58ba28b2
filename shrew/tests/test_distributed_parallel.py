"""Single-process parallelism of shrew.distributed: DataParallel (shards in threads),
reduce_gradients, ParallelTrainer, GPipe PipelineParallel (gradients equal the unsplit
model's; the measured bubble matches (p-1)/(m+p-1)), and the GIL-free CPU kernels."""

from __future__ import annotations

import importlib
import pkgutil
import time

import numpy as np
import pytest

import shrew.distributed as dist
import shrew_core as sc
import shrew_cpu.kernels
import shrew_nn as nn
import shrew_nn.functional as F
import shrew_optim as optim
from shrew.amp import autocast
from shrew_core import GradStore

TOL = {"rtol": 1e-12, "atol": 1e-12}  # f64 throughout


def mlp(seed=0) -> nn.Sequential:
    sc.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16, dtype="f64"), nn.Tanh(), nn.Linear(16, 16, dtype="f64"),
                         nn.Tanh(), nn.Linear(16, 3, dtype="f64"))  # fmt: skip


def assert_grads_equal(got: GradStore, want: GradStore, params) -> None:
    for i, p in enumerate(params):
        np.testing.assert_allclose(got[p].numpy(), want[p].numpy(), **TOL, err_msg=f"param {i}")


class Sleepy(nn.Module):
    """A layer that sleeps (GIL released, no CPU) before a tiny linear map."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.lin = nn.Linear(2, 2, dtype="f64")

    def forward(self, x):
        time.sleep(self.seconds)
        return self.lin(x)


# ------------------------------------------------------------------------------ DataParallel
def test_data_parallel_matches_the_module():
    model = mlp()
    x = sc.randn(10, 4, dtype="f64")
    dp = dist.DataParallel(model, num_workers=3)
    out = dp(x)
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), **TOL)
    assert_grads_equal(out.square().sum().backward(), model(x).square().sum().backward(),
                       list(model.parameters()))  # fmt: skip
    assert [n for n, _ in dp.named_parameters()][0] == "module.0.weight"
    assert dist.data_parallel.split_sizes(10, 3) == [4, 3, 3]
    assert dp(x[:2]).shape == (2, 3)  # fewer rows than workers: one shard per row


def test_data_parallel_runs_shards_concurrently_with_the_callers_modes():
    dp = dist.DataParallel(Sleepy(0.1), num_workers=4)
    x = sc.randn(8, 2, dtype="f64")
    dp(x)  # warm the pool
    start = time.perf_counter()
    out = dp(x)
    assert time.perf_counter() - start < 0.3  # 4 shards x 0.1 s run side by side, not 0.4 s
    assert out.requires_grad
    with sc.no_grad():
        assert not dp(x).requires_grad
    with autocast(dtype=sc.bf16):
        y = dist.DataParallel(nn.Linear(2, 2), num_workers=4)(sc.randn(8, 2))
    assert y.dtype == sc.bf16  # every shard ran under the caller's autocast


def test_data_parallel_tuple_outputs_and_errors():
    class Two(nn.Module):
        def forward(self, x, scale):
            return x * scale, (x + 1.0,)

    a, (b,) = dist.DataParallel(Two(), num_workers=2)(sc.arange(6, dtype="f32"), 2.0)
    assert a.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0] and b.shape == (6,)
    with pytest.raises(sc.ShapeError, match="batch size 4"):
        dist.DataParallel(Two(), 2)(sc.zeros(4), sc.zeros(3))
    with pytest.raises(ValueError, match="num_workers must be a positive int"):
        dist.DataParallel(Two(), 0)


# ------------------------------------------------------------------------------ reduce_gradients
def test_reduce_gradients_seed_semantics():
    p, q, other = (sc.zeros(2).requires_grad_() for _ in range(3))
    s1, s2, s3 = GradStore(), GradStore(), GradStore()
    s1[p], s1[q], s1[other] = sc.tensor([1.0, 2.0]), sc.tensor([4.0, 4.0]), sc.tensor([9.0, 9.0])
    s2[p] = sc.tensor([3.0, 6.0])
    s3[p] = sc.tensor([5.0, 1.0])
    avg = dist.reduce_gradients([s1, s2, s3], [p, q])
    assert avg[p].tolist() == [3.0, 3.0] and avg[q].tolist() == [4.0, 4.0]  # q: 1 store had it
    assert other not in avg  # only the given params
    assert dist.reduce_gradients([s1, s2, s3], [p], op="sum")[p].tolist() == [9.0, 9.0]
    assert len(dist.reduce_gradients([], [p])) == 0
    clone = dist.reduce_gradients([s1], [p])
    assert clone[other].tolist() == [9.0, 9.0] and clone[p] is not s1[p]
    h1, h2 = GradStore(), GradStore()
    h1[p], h2[p] = sc.tensor([1.0, 2.0], dtype="f16"), sc.tensor([2.0, 2.0], dtype="f16")
    assert dist.reduce_gradients([h1, h2], [p])[p].dtype == sc.f16
    with pytest.raises(ValueError, match="op must be 'avg' or 'sum'"):
        dist.reduce_gradients([s1, s2], [p], op="max")


# ------------------------------------------------------------------------------ ParallelTrainer
def test_parallel_trainer_accumulates_and_flushes():
    rng = np.random.default_rng(0)
    xs = [sc.tensor(rng.standard_normal((4, 4))) for _ in range(5)]
    ys = [sc.tensor(rng.integers(0, 3, 4)) for _ in range(5)]
    model, ref = mlp(1), mlp(1)
    trainer = dist.ParallelTrainer(model, optim.SGD(model.parameters(), lr=0.1), 3)
    ref_opt = optim.SGD(ref.parameters(), lr=0.1)
    results = [trainer.accumulate_step(x, y, F.cross_entropy) for x, y in zip(xs, ys)]
    assert results[0] is None and results[1] is None and results[3] is None
    window = [F.cross_entropy(ref(x), y) for x, y in zip(xs[:3], ys[:3])]
    assert results[2] == pytest.approx(sum(float(v.item()) for v in window) / 3, rel=1e-12)
    ref_opt.step(dist.reduce_gradients([v.backward() for v in window], list(ref.parameters())))
    assert trainer.pending_steps == 2
    partial = [F.cross_entropy(ref(x), y) for x, y in zip(xs[3:], ys[3:])]
    assert trainer.flush() == pytest.approx(sum(float(v.item()) for v in partial) / 2, rel=1e-12)
    ref_opt.step(dist.reduce_gradients([v.backward() for v in partial], list(ref.parameters())))
    assert trainer.flush() is None
    for a, b in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TOL)


def test_parallel_trainer_with_ddp_keeps_ranks_identical():
    models = [mlp(3), mlp(4)]
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((4, 4)), rng.integers(0, 3, 4)

    def fn(rank):
        model = dist.DistributedDataParallel(models[rank])
        trainer = dist.ParallelTrainer(model, optim.Adam(model.parameters(), lr=0.01), 2)
        for _ in range(4):
            trainer.accumulate_step(sc.tensor(x[2 * rank:][:2]), sc.tensor(y[2 * rank:][:2]),
                                    F.cross_entropy)  # fmt: skip
        return [p.numpy().copy() for p in model.parameters()]

    p0, p1 = dist.spawn(fn, 2)
    for a, b in zip(p0, p1):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ PipelineParallel
def pipeline_of(model: nn.Sequential, cuts, micro_batches):
    layers = list(model)
    stages, start = [], 0
    for i, stop in enumerate(list(cuts) + [len(layers)]):
        stage = dist.PipelineStage(i)
        for layer in layers[start:stop]:
            stage.add_layer(layer)
        stages.append(stage)
        start = stop
    return dist.PipelineParallel(stages, micro_batches)


@pytest.mark.parametrize("micro_batches", [1, 3, 4])
def test_pipeline_gradients_equal_the_unsplit_model(micro_batches):
    model = mlp(2)
    pp = pipeline_of(model, [2, 4], micro_batches)
    x = sc.randn(10, 4, dtype="f64").requires_grad_()
    target = sc.randn(10, 3, dtype="f64")
    want = F.mse_loss(model(x), target).backward()
    out = pp(x)
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), **TOL)
    params = list(model.parameters()) + [x]
    assert_grads_equal(F.mse_loss(out, target).backward(), want, params)  # the plain walk
    out = pp(x)
    got = pp.backward(F.mse_loss(out, target))  # the pipelined backward
    assert_grads_equal(got, want, params)
    stats = pp.last_stats
    assert stats.micro_batches == micro_batches and stats.stages == 3
    assert stats.backward_s is not None and 0.0 <= stats.backward_bubble < 1.0
    with pytest.raises(dist.DistributedError, match="no forward with grad enabled"):
        pp.backward(F.mse_loss(out, target))  # the stage graphs were consumed


def test_pipeline_input_from_an_upstream_graph_and_no_grad():
    model = mlp(5)
    pp = pipeline_of(model, [3], 2)
    w = sc.randn(4, 4, dtype="f64").requires_grad_()
    x = sc.randn(6, 4, dtype="f64")
    want = model(x @ w).sum().backward()
    got = pp.backward(pp(x @ w).sum())
    np.testing.assert_allclose(got[w].numpy(), want[w].numpy(), **TOL)
    with sc.no_grad():
        y = pp(x)
    assert not y.requires_grad
    np.testing.assert_allclose(y.numpy(), model(x).numpy(), **TOL)


def test_pipeline_bubble_matches_gpipe():
    p, m, step = 3, 6, 0.03
    stages = [dist.PipelineStage(i).add_layer(Sleepy(step)) for i in range(p)]
    pp = dist.PipelineParallel(stages, m)
    pp(sc.randn(m, 2, dtype="f64"))
    stats = pp.last_stats
    assert stats.ideal_bubble == pytest.approx((p - 1) / (m + p - 1))
    # a sequential schedule would idle 1 - 1/p = 0.67 of the time; GPipe's bubble is 0.25
    assert abs(stats.forward_bubble - stats.ideal_bubble) < 0.12, stats
    assert stats.forward_s < 0.75 * p * m * step


def test_pipeline_stage_error_is_raised():
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("stage exploded")

    pp = dist.PipelineParallel([dist.PipelineStage(0).add_layer(nn.Linear(2, 2)),
                                dist.PipelineStage(1).add_layer(Boom())], 2)  # fmt: skip
    with pytest.raises(RuntimeError, match="stage exploded") as info:
        pp(sc.randn(4, 2))
    assert "(raised in PipelineParallel stage 1)" in info.value.__notes__
    with pytest.raises(ValueError, match="micro_batches must be a positive int"):
        dist.PipelineParallel([nn.Linear(2, 2)], 0)


# ------------------------------------------------------------------------------ shrew_cpu
def test_every_cached_cpu_kernel_releases_the_gil():
    """DataParallel shards, pipeline stages and local ranks only overlap if the compiled
    kernels run without the GIL (parallel=True ones released it already; serial ones did not)."""
    from numba.core.registry import CPUDispatcher

    holding = []
    for info in pkgutil.iter_modules(shrew_cpu.kernels.__path__):
        mod = importlib.import_module(f"shrew_cpu.kernels.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and type(obj._cache).__name__ == "FunctionCache":
                if not obj.targetoptions.get("nogil"):
                    holding.append(f"{info.name}.{name}")
    assert holding == []
