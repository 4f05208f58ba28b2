"""ModelSummary against torch forward hooks on the equivalent torch model, and the
step benchmarks (every figure excludes ``input_fn``, checked with a fake clock)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn
from shrew.profiler import BenchmarkResult, ModelSummary, bench, benchmark_forward
from shrew.profiler import benchmark_forward_backward as benchmark_fb


def _split(x):
    """(first 2 features, (next 4, the rest)): a module with nested tuple outputs, like an
    LSTM's (output, (h, c))."""
    return x[:, :2], (x[:, 2:6], x[:, 6:])


class _Split(nn.Module):
    def forward(self, x):
        return _split(x)


class _TorchSplit(torch.nn.Module):
    def forward(self, x):
        return _split(x)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                                      nn.Linear(64, 12))  # fmt: skip
        self.split = _Split()
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        a, (b, c) = self.split(self.features(x))
        return self.head(c.tanh() * a.sum(-1, keepdim=True))


class _TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 12),
        )  # fmt: skip
        self.split = _TorchSplit()
        self.head = torch.nn.Linear(6, 2)

    def forward(self, x):
        a, (b, c) = self.split(self.features(x))
        return self.head(c.tanh() * a.sum(-1, keepdim=True))


def _shape(out):
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    return tuple(_shape(o) for o in out)


def test_summary_shapes_match_torch_hooks():
    torch_net = _TorchNet()
    seen: dict[str, tuple] = {}

    def hook(name):
        def record(module, inputs, output):
            seen.setdefault(name, _shape(output))  # returns None: the output is unchanged

        return record

    for name, mod in torch_net.named_modules():
        mod.register_forward_hook(hook(name))
    torch_net(torch.randn(2, 4, 8, 8))

    model = _Net()
    training = [m.training for m in model.modules()]
    summary = ModelSummary.from_module(model, input_shape=(2, 4, 8, 8))
    ours = {r.name: r.output_shape for r in summary.layers}
    assert ours == seen
    assert seen["split"] == ((2, 2), ((2, 4), (2, 6)))
    # rows in call order, containers before their children, with their depth
    assert [(r.name, r.depth) for r in summary.layers[:3]] == [("", 0), ("features", 1),
                                                               ("features.0", 2)]  # fmt: skip
    assert [m.training for m in model.modules()] == training
    assert "forward" not in vars(model.features)  # the wrappers are gone

    counts = {r.name: r.num_params for r in summary.layers}
    torch_counts = {n: sum(p.numel() for p in m.parameters(recurse=False))
                    for n, m in torch_net.named_modules()}  # fmt: skip
    assert counts == torch_counts
    total = sum(p.numel() for p in torch_net.parameters())
    assert summary.total_params == summary.trainable_params == total
    assert sum(counts.values()) == total and summary.estimated_bytes == 4 * total
    assert summary.num_tensors == len(list(torch_net.parameters()))
    assert [(n, s) for n, s, _ in summary.param_details][:2] == \
        [("features.3.weight", (12, 64)), ("features.3.bias", (12,))]  # fmt: skip
    text = str(summary)
    assert "features.0 (MaxPool2d)" in text and "[2, 4, 4, 4]" in text and f"{total:,}" in text


def test_summary_without_input_and_real_dtypes():
    model = nn.Sequential(nn.Linear(4, 3, dtype=sc.f64), nn.ReLU())
    s = ModelSummary.from_module(model)
    assert [(r.name, r.type, r.output_shape) for r in s.layers] == [
        ("", "Sequential", None), ("0", "Linear", None), ("1", "ReLU", None)]  # fmt: skip
    assert s.estimated_bytes == 15 * 8
    state = sc.get_rng_state()
    ModelSummary.from_module(model, (2, 4))
    assert np.array_equal(np.asarray(sc.get_rng_state()), np.asarray(state))


class _FakeClock:
    """perf_counter that only moves when the test says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _FakeClock()
    monkeypatch.setattr(bench, "time", fake)
    return fake


def test_benchmark_forward_excludes_input_fn(clock):
    calls = {"input": 0, "model": 0}
    x = sc.randn(8, 4)

    def input_fn():
        calls["input"] += 1
        clock.now += 1.0  # expensive input creation
        return x

    def model(inp):
        calls["model"] += 1
        clock.now += 0.25 if calls["model"] % 2 else 0.5
        assert not sc.is_grad_enabled()
        return inp * 2

    r = benchmark_forward(model, input_fn, batch_size=8, warmup=2, iters=4)
    assert isinstance(r, BenchmarkResult)
    assert calls == {"input": 6, "model": 6}
    assert r.times == (0.25, 0.5, 0.25, 0.5)
    assert (r.total_time, r.avg_time, r.min_time, r.max_time) == (1.5, 0.375, 0.25, 0.5)
    assert r.median_time == 0.375 and r.throughput == 4 * 8 / 1.5
    assert "Benchmark: 4 iters, batch_size=8" in str(r) and "samples/sec" in str(r)


def test_benchmark_forward_backward(clock):
    lin = nn.Linear(4, 2)
    backward_ran = []

    def model(inp):
        clock.now += 0.125
        return lin(inp)

    def loss_fn(out):
        backward_ran.append(True)
        return out.sum()

    r = benchmark_fb(model, lambda: sc.randn(3, 4), loss_fn, batch_size=3, warmup=1, iters=3)
    assert r.times == (0.125,) * 3 and r.total_time == 0.375 and len(backward_ran) == 4
    with pytest.raises(ValueError, match="iters"):
        benchmark_forward(model, lambda: None, iters=0)


def test_benchmark_with_tuple_inputs():
    r = benchmark_forward(lambda a, b: a + b, lambda: (sc.ones(2), sc.ones(2)), warmup=0, iters=2)
    assert r.iterations == 2 and len(r.times) == 2 and r.total_time > 0
