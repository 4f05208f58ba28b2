"""The cpu backend through the public tensor API: default device, views, autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import shrew_core as sc
from shrew_core import dtypes as D
from shrew_cpu import CpuBackend
from shrew_cpu.testing import check


def test_default_device_is_cpu_backend():
    assert isinstance(sc.tensor([1.0, 2.0])._backend, CpuBackend)


def test_views_matmul_softmax_backward():
    rng = np.random.default_rng(60)
    a = rng.standard_normal((8, 6))
    b = rng.standard_normal((8, 5))
    sa = sc.tensor(a, device="cpu").requires_grad_()
    sb = sc.tensor(b, device="cpu").requires_grad_()
    y = sc.softmax(sa.t() @ sb, -1).sum(0)  # transposed operand, reduction
    grads = (y * sc.tensor(np.arange(5.0))).sum().backward()
    ta = torch.from_numpy(a).requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    ty = F.softmax(ta.t() @ tb, -1).sum(0)
    (ty * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    check(np.ascontiguousarray(y.numpy()).reshape(-1), ty.detach().numpy(), D.f64)
    check(np.ascontiguousarray(grads[sa].numpy()).reshape(-1), ta.grad.numpy(), D.f64)
    check(np.ascontiguousarray(grads[sb].numpy()).reshape(-1), tb.grad.numpy(), D.f64)


def test_conv_pool_through_api():
    rng = np.random.default_rng(61)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    sx, sw = sc.tensor(x).requires_grad_(), sc.tensor(w).requires_grad_()
    out = sc.max_pool2d(sc.conv2d(sx, sw, padding=1, stride=2), 2)
    grads = out.sum().backward()
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    tout = F.max_pool2d(F.conv2d(tx, tw, padding=1, stride=2), 2)
    tout.sum().backward()
    check(np.ascontiguousarray(out.numpy()).reshape(-1), tout.detach().numpy(), D.f32,
          rtol=1e-4, atol=1e-5)  # fmt: skip
    check(np.ascontiguousarray(grads[sx].numpy()).reshape(-1), tx.grad.numpy(), D.f32,
          rtol=1e-4, atol=1e-5)  # fmt: skip
    check(np.ascontiguousarray(grads[sw].numpy()).reshape(-1), tw.grad.numpy(), D.f32,
          rtol=1e-4, atol=1e-4)  # fmt: skip


# ------------------------------------------------------------- the front end's fast paths
# Each per-op shortcut (a 0-d operand broadcast by zero strides, linear straight to the
# GEMM, softmax on the storage's rows, a broadcast result NumPy allocates) beside the
# general path it skips, on inputs that take one and inputs that take the other.
def _grads_match(s_out, t_out, s_leaves, t_leaves, dtype, tol):
    rng = np.random.default_rng(62)
    weights = rng.standard_normal(t_out.shape)
    grads = (s_out * sc.tensor(weights, dtype=dtype)).sum().backward()
    (t_out * torch.from_numpy(weights).to(t_out.dtype)).sum().backward()
    check(np.ascontiguousarray(s_out.numpy()).reshape(-1), t_out.detach().numpy(), dtype, *tol)
    for s, t in zip(s_leaves, t_leaves):
        check(np.ascontiguousarray(grads[s].numpy()).reshape(-1), t.grad.numpy(), dtype, *tol)


def _pair(a, dtype):
    return (sc.tensor(a, dtype=dtype).requires_grad_(),
            torch.from_numpy(a).to(getattr(torch, dtype.name)).requires_grad_())  # fmt: skip


_TOLS = {"f32": (1e-5, 1e-5), "f64": (1e-12, 1e-12)}


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_zero_dim_operand_at_an_offset_broadcasts_with_its_gradient(dt):
    dtype = D.as_dtype(dt)
    rng = np.random.default_rng(63)
    (sm, tm), (sv, tv) = _pair(rng.standard_normal((3, 4)), dtype), _pair(np.arange(5.0), dtype)
    s0, t0 = sv[3], tv[3]  # a 0-d view 3 elements into its storage
    s_out = sc.cat([(sm * s0).reshape(-1), (s0 - sm).reshape(-1), (2.0 / sm).reshape(-1)])
    t_out = torch.cat([(tm * t0).reshape(-1), (t0 - tm).reshape(-1), (2.0 / tm).reshape(-1)])
    _grads_match(s_out, t_out, (sm, sv), (tm, tv), dtype, _TOLS[dt])


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("case", ["2d", "3d-bias-row", "weight-view", "no-bias"])
def test_linear_fast_path_matches_torch(dt, case):
    dtype = D.as_dtype(dt)
    rng = np.random.default_rng(64)
    (sx, tx) = _pair(rng.standard_normal((2, 3, 5) if case != "2d" else (4, 5)), dtype)
    if case == "weight-view":  # weight [6, 5] as the transposed view of a [5, 6] leaf
        (sw0, tw0) = _pair(rng.standard_normal((5, 6)), dtype)
        sw, tw = sw0.t(), tw0.t()
    else:
        (sw0, tw0) = _pair(rng.standard_normal((6, 5)), dtype)
        sw, tw = sw0, tw0
    leaves_s, leaves_t = [sx, sw0], [tx, tw0]
    sb = tb = None
    if case != "no-bias":
        (sb, tb) = _pair(rng.standard_normal((1, 6) if case == "3d-bias-row" else (6,)), dtype)
        leaves_s.append(sb)
        leaves_t.append(tb)
    s_out = sc.linear(sx, sw, sb)
    t_out = F.linear(tx, tw, None if tb is None else tb.reshape(-1))
    _grads_match(s_out, t_out, leaves_s, leaves_t, dtype, _TOLS[dt])


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("transposed", [False, True])
def test_softmax_on_rows_and_on_moved_dims_match_torch(dt, transposed):
    dtype = D.as_dtype(dt)
    (sx, tx) = _pair(np.random.default_rng(65).standard_normal((6, 7)), dtype)
    s_in, t_in = (sx.t(), tx.t()) if transposed else (sx, tx)
    for log in (False, True):
        fn_s, fn_t = (sc.log_softmax, F.log_softmax) if log else (sc.softmax, F.softmax)
        sx.requires_grad_()
        _grads_match(fn_s(s_in, -1), fn_t(t_in, -1), (sx,), (tx,), dtype, _TOLS[dt])
        tx.grad = None


@pytest.mark.parametrize("dt", ["f32", "f64", "i64"])
def test_broadcast_binary_results_are_dense_in_row_major_order(dt):
    dtype = D.as_dtype(dt)
    rng = np.random.default_rng(66)
    m = (rng.standard_normal((4, 5)) * 4).astype(dtype.np_dtype)
    col, row = m[:, :1].copy(), m[:1, :].copy()
    s_m, s_col, s_row = sc.tensor(m), sc.tensor(col), sc.tensor(row)
    cases = [  # (shrew, numpy): dense with broadcast, broadcast with dense, strided with both
        (s_col * s_m, col * m), (s_m - s_row, m - row), (s_m.t() + s_col.t(), m.T + col.T),
        (s_col + s_row, col + row),
    ]
    for out, ref in cases:
        storage = out._storage
        assert storage.ndim == 1 and storage.flags.c_contiguous and out.is_contiguous()
        assert out.shape == ref.shape
        np.testing.assert_array_equal(out.numpy(), ref)


@pytest.mark.parametrize("dt", ["f16", "bf16", "f32", "f64"])
def test_python_scalars_keep_a_float_tensors_dtype_on_either_side(dt):
    x = sc.tensor([1.0, -2.0, 3.0], dtype=dt)
    tx = torch.tensor([1.0, -2.0, 3.0], dtype=getattr(torch, D.as_dtype(dt).name))
    for s_out, t_out in [(x * 2.5, tx * 2.5), (3 - x, 3 - tx), (x / 2, tx / 2), (1.5 + x, 1.5 + tx),
                         (x * True, tx * True)]:  # fmt: skip
        assert s_out.dtype.name == str(t_out.dtype).removeprefix("torch.")
        np.testing.assert_allclose(s_out.numpy().astype(np.float64),
                                   t_out.to(torch.float64).numpy())  # fmt: skip
    i = sc.tensor([1, 2, 3])
    assert (i * 2.5).dtype == sc.f32 and (i * 2).dtype == sc.i64


def test_scalar_past_the_half_range_rounds_to_inf_silently():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sc.tensor([1.0, -1.0], dtype="f16") * 70000.0
    assert out.dtype == sc.f16 and out.tolist() == [float("inf"), float("-inf")]
