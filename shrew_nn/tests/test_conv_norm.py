"""Convolution, pooling and normalisation layers against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shrew_core as sc
import shrew_nn as nn

CONV2D = [
    # in, out, kernel, kwargs, input shape
    (3, 4, 3, {}, (2, 3, 6, 5)),
    (2, 3, (2, 3), {"stride": (2, 1), "padding": (1, 0)}, (1, 2, 5, 6)),
    (4, 4, 3, {"groups": 2, "dilation": 2, "padding": 2}, (2, 4, 7, 7)),
    (2, 3, (2, 4), {"padding": "same"}, (1, 2, 5, 6)),  # even kernel: asymmetric padding
    (2, 3, 3, {"padding": "valid", "bias": False}, (1, 2, 4, 4)),
    (2, 2, 1, {"stride": 3}, (1, 2, 5, 5)),  # stride > kernel
    (2, 3, 3, {"padding": 1}, (2, 5, 5)),  # unbatched
]


@pytest.mark.parametrize("case", CONV2D, ids=[str(i) for i in range(len(CONV2D))])
def test_conv2d(device, dtype, nnt, case):
    cin, cout, k, kw, shape = case
    m = nn.Conv2d(cin, cout, k, **kw, dtype=dtype, device=device)
    nnt.check_module(m, torch.nn.Conv2d(cin, cout, k, **kw), [nnt.randn(*shape)], dtype, device)


CONV1D = [
    (3, 4, 3, {}, (2, 3, 7)),
    (2, 4, 4, {"stride": 2, "padding": 1, "groups": 2}, (1, 2, 9)),
    (2, 3, 4, {"padding": "same", "dilation": 1}, (2, 2, 6)),
    (2, 3, 3, {"padding": "same", "dilation": 2, "bias": False}, (2, 2, 6)),
    (2, 2, 2, {"stride": 3}, (2, 7)),
]


@pytest.mark.parametrize("case", CONV1D, ids=[str(i) for i in range(len(CONV1D))])
def test_conv1d(device, dtype, nnt, case):
    cin, cout, k, kw, shape = case
    m = nn.Conv1d(cin, cout, k, **kw, dtype=dtype, device=device)
    nnt.check_module(m, torch.nn.Conv1d(cin, cout, k, **kw), [nnt.randn(*shape)], dtype, device)


def test_conv_errors(device):
    m = nn.Conv2d(3, 4, 3, device=device)
    with pytest.raises(sc.ShapeError, match="expected 3 input channels, got 2"):
        m(sc.randn(1, 2, 5, 5, device=device))
    with pytest.raises(sc.ShapeError, match=r"expected input \[N, C, H, W\]"):
        m(sc.randn(5, 5, device=device))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv1d(3, 4, 3, stride=2, padding="same")


POOLS = [
    (lambda: nn.MaxPool2d(2), lambda: torch.nn.MaxPool2d(2), (2, 3, 6, 5)),
    (lambda: nn.MaxPool2d((3, 2), stride=(1, 2), padding=1),
     lambda: torch.nn.MaxPool2d((3, 2), stride=(1, 2), padding=1), (1, 2, 5, 6)),
    (lambda: nn.MaxPool2d(2, stride=3, ceil_mode=True),
     lambda: torch.nn.MaxPool2d(2, stride=3, ceil_mode=True), (1, 2, 7, 8)),
    (lambda: nn.MaxPool2d(2, dilation=2), lambda: torch.nn.MaxPool2d(2, dilation=2), (2, 6, 6)),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 6, 5)),
    (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
     lambda: torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 6, 7)),
    (lambda: nn.AvgPool2d((1, 3), stride=4), lambda: torch.nn.AvgPool2d((1, 3), stride=4),
     (1, 1, 5, 9)),
    (lambda: nn.AdaptiveAvgPool2d((2, 3)), lambda: torch.nn.AdaptiveAvgPool2d((2, 3)),
     (2, 3, 5, 7)),
    (lambda: nn.AdaptiveAvgPool2d(1), lambda: torch.nn.AdaptiveAvgPool2d(1), (2, 3, 4, 4)),
]  # fmt: skip


@pytest.mark.parametrize("case", POOLS, ids=[str(i) for i in range(len(POOLS))])
def test_pool(device, dtype, nnt, case):
    nnt.check_module(case[0](), case[1](), [nnt.randn(*case[2])], dtype, device)


def test_maxpool_indices(device, nnt):
    x = nnt.randn(1, 2, 4, 4)
    s, si = nn.MaxPool2d(2, return_indices=True)(sc.tensor(x, device=device))
    t, ti = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    nnt.close(s, t, "float64")
    np.testing.assert_array_equal(si.numpy(), ti.numpy())
    with pytest.raises(sc.ShapeError):
        nn.MaxPool2d(2)(sc.randn(4, 4, device=device))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (4, 3)), ("BatchNorm1d", (2, 3, 5)),
                                       ("BatchNorm2d", (2, 3, 4, 3))])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False},
                                {"track_running_stats": False}, {"momentum": 0.3, "eps": 1e-3}])
def test_batchnorm(device, dtype, nnt, train, cls, shape, kw):
    t = getattr(torch.nn, cls)(3, **kw)
    with torch.no_grad():  # non-trivial running stats and affine parameters
        if t.running_mean is not None:
            t.running_mean.uniform_(-1, 1)
            t.running_var.uniform_(0.5, 2)
        if t.weight is not None:
            t.weight.uniform_(0.5, 2)
            t.bias.uniform_(-1, 1)
    m = getattr(nn, cls)(3, **kw, dtype=dtype, device=device)
    nnt.check_module(m, t, [nnt.randn(*shape)], dtype, device, train=train)
    if train and m.running_mean is not None:  # a second step: momentum applied again
        x = nnt.randn(*shape, seed=4).astype(dtype)
        m(sc.tensor(x, device=device))
        t(torch.tensor(x))
        nnt.close(m.running_var, t.running_var, dtype, "running_var after 2 steps")
        assert int(m.num_batches_tracked.item()) == int(t.num_batches_tracked) == 2


def test_batchnorm_errors(device):
    with pytest.raises(sc.ShapeError, match="expected 3 channels"):
        nn.BatchNorm2d(3, device=device)(sc.randn(2, 4, 2, 2, device=device))
    with pytest.raises(sc.ShapeError, match=r"BatchNorm2d: expected input \[N, C, H, W\]"):
        nn.BatchNorm2d(3, device=device)(sc.randn(2, 3, device=device))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3, device=device)(sc.randn(1, 3, device=device))


@pytest.mark.parametrize("shape,norm", [((2, 3, 4), 4), ((2, 3, 4), (3, 4)), ((1, 5), 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm(device, dtype, nnt, shape, norm, affine):
    t = torch.nn.LayerNorm(norm, elementwise_affine=affine)
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 2)
            t.bias.uniform_(-1, 1)
    m = nn.LayerNorm(norm, elementwise_affine=affine, dtype=dtype, device=device)
    nnt.check_module(m, t, [nnt.randn(*shape)], dtype, device)


@pytest.mark.parametrize("groups,shape", [(2, (2, 4, 3, 3)), (1, (3, 4, 5)), (4, (1, 4, 2))])
@pytest.mark.parametrize("affine", [True, False])
def test_groupnorm(device, dtype, nnt, groups, shape, affine):
    t = torch.nn.GroupNorm(groups, 4, affine=affine)
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 2)
            t.bias.uniform_(-1, 1)
    m = nn.GroupNorm(groups, 4, affine=affine, dtype=dtype, device=device)
    nnt.check_module(m, t, [nnt.randn(*shape)], dtype, device)


@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("norm", [5, (3, 5)])
def test_rmsnorm(device, dtype, nnt, eps, norm):
    t = torch.nn.RMSNorm(norm, eps=eps)
    with torch.no_grad():
        t.weight.uniform_(0.5, 2)
    m = nn.RMSNorm(norm, eps=eps, dtype=dtype, device=device)
    nnt.check_module(m, t, [nnt.randn(2, 3, 5)], dtype, device)


def test_norm_errors(device):
    with pytest.raises(sc.ShapeError, match="normalized_shape"):
        nn.LayerNorm(4, device=device)(sc.randn(2, 3, device=device))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(sc.ShapeError, match="GroupNorm: expected input"):
        nn.GroupNorm(2, 4, device=device)(sc.randn(2, 3, 5, device=device))
