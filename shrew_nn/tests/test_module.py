"""The Module system: registration, traversal, modes, state dicts, moves, repr, init."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn
from shrew_nn import init


class Net(nn.Module):
    def __init__(self, device="cpu"):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(3, 4, device=device), nn.ReLU(),
                                    nn.Linear(4, 2, device=device))
        self.bn = nn.BatchNorm1d(2, device=device)
        self.blocks = nn.ModuleList([nn.Linear(2, 2, bias=False, device=device)])
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.blocks[0](self.bn(self.layers(x)))


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                          torch.nn.Linear(4, 2))
        self.bn = torch.nn.BatchNorm1d(2)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2, bias=False)])
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x):
        return self.blocks[0](self.bn(self.layers(x)))


def test_names_match_torch(device):
    net, ref = Net(device), TorchNet()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert list(net.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in net.named_modules()] == [n for n, _ in ref.named_modules()]
    assert [type(m).__name__ for m in net.children()] == [
        "Sequential", "BatchNorm1d", "ModuleList", "Dropout"]
    assert len(list(net.parameters())) == 7
    assert net.num_parameters() == sum(p.numel() for p in ref.parameters())


def test_torch_roundtrip_both_directions(device, nnt):
    ref = TorchNet()
    net = Net(device)
    nnt.load_torch(net, ref, device)
    ref.eval()
    net.eval()
    x = nnt.randn(5, 3).astype("float32")
    nnt.close(net(sc.tensor(x, device=device)), ref(torch.tensor(x)), "float32")
    # shrew -> torch
    net2, ref2 = Net(device), TorchNet()
    ref2.load_state_dict({k: torch.tensor(v.numpy().copy()) for k, v in net2.state_dict().items()})
    ref2.eval()
    net2.eval()
    nnt.close(net2(sc.tensor(x, device=device)), ref2(torch.tensor(x)), "float32")


def test_train_eval_propagates(device):
    net = Net(device)
    assert net.training and net.bn.training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError, match="mode must be a bool"):
        net.train("no")


def test_load_state_dict_errors_name_the_key(device):
    net = Net(device)
    sd = dict(net.state_dict())
    bad = dict(sd)
    del bad["layers.0.bias"]
    bad["extra.weight"] = sc.zeros(1, device=device)
    with pytest.raises(nn.StateDictError, match=r"missing keys: 'layers.0.bias'.*unexpected "
                       r"keys: 'extra.weight'"):
        net.load_state_dict(bad)
    res = net.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["layers.0.bias"] and res.unexpected_keys == ["extra.weight"]
    bad = dict(sd, **{"layers.2.weight": sc.zeros(3, 4, device=device)})
    with pytest.raises(nn.StateDictError, match=r"size mismatch for 'layers.2.weight'.*"
                       r"\(3, 4\).*\(2, 4\)"):
        net.load_state_dict(bad)
    bad = dict(sd, **{"bn.running_mean": sc.zeros(2, dtype="f64", device=device)})
    with pytest.raises(nn.StateDictError, match="dtype mismatch for 'bn.running_mean'"):
        net.load_state_dict(bad)


def test_load_state_dict_is_in_place_and_atomic(device):
    net = Net(device)
    w = net.layers[0].weight
    before = w.numpy().copy()
    sd = {k: v * 0.0 if v.dtype.is_float else v for k, v in net.state_dict().items()}
    sd["bn.weight"] = sc.zeros(5, device=device)  # bad: nothing may be written
    with pytest.raises(nn.StateDictError):
        net.load_state_dict(sd)
    np.testing.assert_array_equal(w.numpy(), before)
    sd["bn.weight"] = sc.zeros(2, device=device)
    net.load_state_dict(sd)
    assert net.layers[0].weight is w and w.requires_grad
    assert not np.any(w.numpy())


def test_to_dtype_and_device(device):
    net = Net(device).to(sc.f64)
    assert all(p.dtype is sc.f64 and p.requires_grad for p in net.parameters())
    assert net.bn.num_batches_tracked.dtype is sc.i64
    y = net(sc.randn(4, 3, dtype="f64", device=device))
    assert y.dtype is sc.f64
    other = "cpu" if device != "cpu" else "reference"
    net.to(other)
    assert all(p.device == sc.as_device(other) for p in net.parameters())
    w = net.layers[0].weight
    assert net.to(other).layers[0].weight is w  # no-op keeps identity
    with pytest.raises(sc.DTypeError):
        net.to(sc.i64)


def test_repr_lists_submodules():
    text = repr(Net())
    assert "(layers): Sequential(" in text
    assert "(0): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(bn): BatchNorm1d(2, eps=1e-05" in text


def test_registration_rules(device):
    m = nn.Module()
    m.w = sc.randn(2, device=device).requires_grad_()
    m.c = sc.randn(2, device=device)  # plain tensor: not a parameter
    m.register_buffer("b", sc.zeros(2, device=device))
    m.register_buffer("tmp", sc.zeros(1, device=device), persistent=False)
    assert [n for n, _ in m.named_parameters()] == ["w"]
    assert [n for n, _ in m.named_buffers()] == ["b", "tmp"]
    assert list(m.state_dict()) == ["w", "b"]
    m.w = None
    assert list(m.named_parameters()) == []
    del m.b
    with pytest.raises(AttributeError):
        _ = m.b
    with pytest.raises(KeyError):
        m.register_parameter("a.b", sc.zeros(1, device=device))

    class Early(nn.Module):
        def __init__(self):
            self.x = 1

    with pytest.raises(AttributeError, match="super"):
        Early()


def test_shared_parameter_listed_once(device):
    lin = nn.Linear(2, 2, device=device)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2
    assert len(seq) == 2 and seq[-1] is lin and len(seq[:1]) == 1
    with pytest.raises(IndexError):
        seq[5]


def test_requires_grad_freezes(device):
    net = Net(device).requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_sequential_and_containers(device):
    seq = nn.Sequential(nn.Linear(3, 3, device=device)).append(nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh"]
    d = nn.ModuleDict({"a": nn.Linear(1, 1, device=device)})
    d["b"] = nn.ReLU()
    assert list(d.keys()) == ["a", "b"] and "a" in d and len(d) == 2
    assert [n for n, _ in d.named_parameters()] == ["a.weight", "a.bias"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)


# ------------------------------------------------------------------------------- init
def test_default_init_bounds(device):
    sc.manual_seed(0)
    lin = nn.Linear(50, 40, device=device)
    bound = 1 / math.sqrt(50)
    w = lin.weight.numpy()
    assert w.min() >= -bound and w.max() <= bound and w.std() > bound / 2
    conv = nn.Conv2d(4, 6, (3, 2), groups=2, device=device)
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(2 * 3 * 2)
    emb = nn.Embedding(100, 50, device=device)
    assert abs(emb.weight.numpy().std() - 1) < 0.05
    lstm = nn.LSTM(3, 16, device=device)
    assert np.abs(lstm.weight_hh_l0.numpy()).max() <= 0.25


def test_init_seeded(device):
    sc.manual_seed(3)
    a = nn.Linear(4, 4, device=device).weight.numpy().copy()
    sc.manual_seed(3)
    b = nn.Linear(4, 4, device=device).weight.numpy().copy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fn,check", [
    (lambda t: init.zeros_(t), lambda a: np.all(a == 0)),
    (lambda t: init.ones_(t), lambda a: np.all(a == 1)),
    (lambda t: init.constant_(t, 0.5), lambda a: np.all(a == 0.5)),
    (lambda t: init.uniform_(t, -2, -1), lambda a: a.min() >= -2 and a.max() <= -1),
    (lambda t: init.normal_(t, 3.0, 0.1), lambda a: abs(a.mean() - 3) < 0.02),
    (lambda t: init.xavier_uniform_(t), lambda a: np.abs(a).max() <= math.sqrt(6 / 300)),
    (lambda t: init.xavier_normal_(t), lambda a: abs(a.std() - math.sqrt(2 / 300)) < 0.01),
    (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"),
     lambda a: np.abs(a).max() <= math.sqrt(6 / 100)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
     lambda a: abs(a.std() - math.sqrt(2 / 200)) < 0.01),
])  # fmt: skip
def test_init_functions(device, fn, check):
    t = sc.zeros(200, 100, device=device).requires_grad_()
    assert fn(t) is t and t.requires_grad
    assert check(t.numpy())


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 2)])
def test_orthogonal(device, shape):
    t = sc.zeros(*shape, dtype="f64", device=device)
    init.orthogonal_(t, gain=2.0)
    a = t.numpy().reshape(shape[0], -1)
    small = a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T
    np.testing.assert_allclose(small, 4 * np.eye(small.shape[0]), atol=1e-10)


def test_calculate_gain():
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError):
        init.calculate_gain("swishy")


def test_to_keeps_parameter_identity(device):
    lin = nn.Linear(3, 2, device=device)
    before = [id(p) for p in lin.parameters()]
    lin.to(sc.f64)
    assert [id(p) for p in lin.parameters()] == before
    assert all(p.dtype == sc.f64 and p.requires_grad for p in lin.parameters())
    assert lin(sc.randn(4, 3, dtype="f64", device=device)).dtype == sc.f64
