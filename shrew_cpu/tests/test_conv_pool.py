"""conv2d (forward, input and weight gradients) and pooling (max with indices, avg,
adaptive avg, and their backwards) against torch.nn.functional."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shrew_core import dtypes as D
from shrew_core.layout import Layout
from shrew_cpu import _config
from shrew_cpu.testing import check

CONV_CASES = [
    # (N, C, H, W), OC, (KH, KW), stride, padding, dilation, groups
    ((2, 3, 9, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((1, 4, 11, 7), 6, (3, 2), (2, 3), (0, 1), (1, 1), 2),
    ((2, 4, 10, 10), 4, (3, 3), (1, 2), (2, 2), (2, 1), 4),  # depthwise, dilated
    ((3, 6, 5, 6), 8, (1, 1), (1, 1), (0, 0), (1, 1), 1),  # pointwise fast path
    ((2, 6, 7, 9), 3, (2, 4), (3, 1), (1, 2), (2, 2), 3),
    ((1, 2, 1, 17), 5, (1, 5), (1, 2), (0, 2), (1, 3), 1),  # conv1d as 2-D
    # stride 1: the direct kernels on the fused path (dilation, asymmetric kernels, tile tails)
    ((3, 5, 7, 6), 6, (3, 3), (1, 1), (2, 2), (2, 2), 1),
    ((2, 3, 6, 7), 5, (5, 3), (1, 1), (1, 1), (1, 1), 1),
    ((2, 4, 5, 9), 3, (2, 5), (1, 1), (0, 2), (1, 1), 1),
    # taps entirely in the padding; padding beyond the reach: fused flat-shift im2col/col2im
    ((5, 2, 3, 3), 9, (3, 3), (1, 1), (4, 1), (1, 1), 1),
    ((1, 17, 4, 5), 17, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # direct: > TAP_BLOCK taps
    ((2, 3, 9, 8), 4, (3, 3), (2, 2), (1, 1), (1, 1), 1),  # fused, general im2col
    ((1, 130, 5, 5), 130, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # large weight: BLAS path
    ((2, 3, 3, 1100), 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),  # > 1 GEMM column block
]


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float64))


@pytest.fixture(params=["blas", "fused"])
def conv_path(request, monkeypatch):
    """Every convolution once through NumPy im2col + BLAS and once (where the geometry
    allows: ungrouped, small weight, not pointwise) through the Numba kernels: the direct
    ones at stride 1 (padding within the kernel's reach), the fused im2col ones else."""
    monkeypatch.setattr(_config, "CONV_FUSED_MACS", 0 if request.param == "fused" else 1 << 62)
    return request.param


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16])
def test_conv2d_forward_and_grads(cpu, case, dtype, conv_path):
    xs, oc, (kh, kw), stride, padding, dilation, groups = case
    rng = np.random.default_rng(30)
    x = rng.standard_normal(xs).astype(dtype.np_dtype)
    w = rng.standard_normal((oc, xs[1] // groups, kh, kw)).astype(dtype.np_dtype)
    tx, tw = _t(x).requires_grad_(), _t(w).requires_grad_()
    ty = F.conv2d(tx, tw, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = rng.standard_normal(ty.shape).astype(dtype.np_dtype)
    ty.backward(_t(g))
    xl, wl, gl = Layout.contiguous(xs), Layout.contiguous(w.shape), Layout.contiguous(g.shape)
    tol = {"rtol": 5e-2, "atol": 0.25} if dtype is D.bf16 else {"rtol": 1e-4, "atol": 1e-4}
    if dtype is D.f64:
        tol = {}
    y = cpu.conv2d(x.reshape(-1), xl, w.reshape(-1), wl, dtype, stride, padding, dilation, groups)
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype, **tol)
    gx = cpu.conv2d_grad_input(g.reshape(-1), gl, w.reshape(-1), wl, dtype, xs, stride, padding,
                               dilation, groups)  # fmt: skip
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype, **tol)
    gw = cpu.conv2d_grad_weight(g.reshape(-1), gl, x.reshape(-1), xl, dtype, w.shape, stride,
                                padding, dilation, groups)  # fmt: skip
    check(gw, tw.grad.numpy().astype(dtype.np_dtype), dtype, **tol)


def test_conv2d_strided_input_view(cpu, conv_path):
    """A transposed (H<->W) input view is read correctly."""
    rng = np.random.default_rng(31)
    base = rng.standard_normal((2, 3, 6, 5))
    xl = Layout.contiguous(base.shape).permute((0, 1, 3, 2))
    w = rng.standard_normal((4, 3, 3, 3))
    y = cpu.conv2d(base.reshape(-1), xl, w.reshape(-1), Layout.contiguous(w.shape), D.f64,
                   (1, 1), (1, 1), (1, 1), 1)  # fmt: skip
    ref = F.conv2d(_t(base).permute(0, 1, 3, 2), _t(w), padding=1)
    check(y, ref.numpy(), D.f64)


@pytest.mark.parametrize("dtype", [D.f32, D.bf16])
def test_conv2d_grads_of_views(cpu, dtype, conv_path):
    """A broadcast output gradient (of ``y.sum()``: one element, strides 0), an offset
    permuted input view and a bf16 storage larger than its view, read in place or copied."""
    rng = np.random.default_rng(34)
    xs, ws = (2, 3, 7, 6), (4, 3, 3, 3)
    base = rng.standard_normal((4, 2, 6, 7)).astype(dtype.np_dtype)  # x = base[1:].permute
    xl = Layout((2, 3, 7, 6), (42, 84, 1, 7), 84)
    x = np.ascontiguousarray(base[1:].transpose(1, 0, 3, 2))
    w = rng.standard_normal(ws).astype(dtype.np_dtype)
    tx, tw = _t(x).requires_grad_(), _t(w).requires_grad_()
    ty = F.conv2d(tx, tw, padding=1)
    ty.sum().backward()
    gl = Layout(tuple(ty.shape), (0, 0, 0, 0), 0)
    one = np.ones(1, dtype.np_dtype)
    wl = Layout.contiguous(ws)
    tol = {"rtol": 5e-2, "atol": 0.25} if dtype is D.bf16 else {"rtol": 1e-4, "atol": 1e-4}
    y = cpu.conv2d(base.reshape(-1), xl, w.reshape(-1), wl, dtype, (1, 1), (1, 1), (1, 1), 1)
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype, **tol)
    gx = cpu.conv2d_grad_input(one, gl, w.reshape(-1), wl, dtype, xs, (1, 1), (1, 1), (1, 1), 1)
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype, **tol)
    gw = cpu.conv2d_grad_weight(one, gl, base.reshape(-1), xl, dtype, ws, (1, 1), (1, 1),
                                (1, 1), 1)  # fmt: skip
    check(gw, tw.grad.numpy().astype(dtype.np_dtype), dtype, **tol)


@pytest.mark.parametrize("xs", [(0, 3, 5, 5), (2, 0, 5, 5)])
def test_conv2d_empty(cpu, xs, conv_path):
    """No images, or no input channels (the output is then all zeros: torch 2.13 instead
    returns 0 output channels for a [4, 0, 3, 3] weight)."""
    w = np.ones((4, xs[1], 3, 3))
    g = np.ones((xs[0], 4, 5, 5))
    xl, wl, gl = Layout.contiguous(xs), Layout.contiguous(w.shape), Layout.contiguous(g.shape)
    args = ((1, 1), (1, 1), (1, 1), 1)
    y = cpu.conv2d(np.ones(int(np.prod(xs))), xl, w.reshape(-1), wl, D.f64, *args)
    check(y, np.zeros(g.shape), D.f64)
    gx = cpu.conv2d_grad_input(g.reshape(-1), gl, w.reshape(-1), wl, D.f64, xs, *args)
    check(gx, np.zeros(xs), D.f64)
    gw = cpu.conv2d_grad_weight(g.reshape(-1), gl, np.ones(int(np.prod(xs))), xl, D.f64, w.shape,
                                *args)  # fmt: skip
    check(gw, np.zeros(w.shape), D.f64)


POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 2), (2, 1), (1, 0), (2, 1), True),
    ((2, 3), (3, 2), (0, 1), (1, 1), True),
]


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16])
def test_max_pool2d(cpu, path, case, dtype):
    kernel, stride, padding, dilation, ceil_mode = case
    rng = np.random.default_rng(32)
    x = rng.permutation(2 * 3 * 9 * 10).reshape(2, 3, 9, 10).astype(dtype.np_dtype)  # no ties
    tx = _t(x).requires_grad_()
    ty, ti = F.max_pool2d(tx, kernel, stride, padding, dilation, ceil_mode=ceil_mode,
                          return_indices=True)  # fmt: skip
    g = rng.standard_normal(ty.shape)
    ty.backward(_t(g))
    y, idx = cpu.max_pool2d(x.reshape(-1), Layout.contiguous(x.shape), dtype, kernel, stride,
                            padding, dilation, ceil_mode)  # fmt: skip
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype)
    check(idx, ti.numpy(), D.i64)
    gs = g.astype(dtype.np_dtype)
    gx = cpu.max_pool2d_backward(gs.reshape(-1), Layout.contiguous(g.shape), idx,
                                 Layout.contiguous(g.shape), x.shape, dtype)  # fmt: skip
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype)


def test_max_pool2d_padding_never_wins(cpu):
    x = -np.ones((1, 1, 3, 3)) * 5.0
    y, idx = cpu.max_pool2d(x.reshape(-1), Layout.contiguous(x.shape), D.f64, (3, 3), (1, 1),
                            (1, 1), (1, 1), False)  # fmt: skip
    check(y, np.full(9, -5.0), D.f64)
    assert idx.min() >= 0


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("dtype", [D.f32, D.f64])
def test_avg_pool2d(cpu, path, case, include_pad, dtype):
    kernel, stride, padding, _, ceil_mode = case
    rng = np.random.default_rng(33)
    x = rng.standard_normal((2, 3, 9, 10)).astype(dtype.np_dtype)
    tx = _t(x).requires_grad_()
    ty = F.avg_pool2d(tx, kernel, stride, padding, ceil_mode=ceil_mode,
                      count_include_pad=include_pad)  # fmt: skip
    g = rng.standard_normal(ty.shape).astype(dtype.np_dtype)
    ty.backward(_t(g))
    y = cpu.avg_pool2d(x.reshape(-1), Layout.contiguous(x.shape), dtype, kernel, stride, padding,
                       ceil_mode, include_pad)  # fmt: skip
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype)
    gx = cpu.avg_pool2d_backward(g.reshape(-1), Layout.contiguous(g.shape), x.shape, dtype,
                                 kernel, stride, padding, ceil_mode, include_pad)  # fmt: skip
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype)


@pytest.mark.parametrize("out_size", [(1, 1), (3, 4), (5, 7), (9, 10)])
def test_adaptive_avg_pool2d(cpu, path, out_size):
    rng = np.random.default_rng(34)
    x = rng.standard_normal((2, 3, 9, 10))
    tx = _t(x).requires_grad_()
    ty = F.adaptive_avg_pool2d(tx, out_size)
    g = rng.standard_normal(ty.shape)
    ty.backward(_t(g))
    y = cpu.adaptive_avg_pool2d(x.reshape(-1), Layout.contiguous(x.shape), D.f64, out_size)
    check(y, ty.detach().numpy(), D.f64)
    gx = cpu.adaptive_avg_pool2d_backward(g.reshape(-1), Layout.contiguous(g.shape), x.shape,
                                          D.f64)  # fmt: skip
    check(gx, tx.grad.numpy(), D.f64)


def test_max_pool_backward_bad_index_raises(cpu, path):
    from shrew_core.errors import IndexOutOfRangeError

    g = np.ones(4)
    idx = np.array([0, 1, 99, 2], np.int64)
    with pytest.raises(IndexOutOfRangeError):
        cpu.max_pool2d_backward(g, Layout.contiguous((1, 1, 2, 2)), idx,
                                Layout.contiguous((1, 1, 2, 2)), (1, 1, 3, 3), D.f64)  # fmt: skip
