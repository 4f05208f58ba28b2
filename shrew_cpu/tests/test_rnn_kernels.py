"""Fused LSTM / GRU cell kernels (forward and backward) against the default compositions of
``shrew_core.fused_defaults`` (run on this backend's primitives) and against torch autograd:
f32/f64 (halves against the defaults), batch 1, hidden 1, odd sizes, a batch above the
parallel threshold, and every size forced onto the parallel driver (``path``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shrew_core import dtypes as D
from shrew_core import fused_defaults as FD
from shrew_core.layout import Layout
from shrew_cpu.kernels import rnn as K
from shrew_cpu.testing import check

# (batch, hidden): tiny, batch 1, hidden 1, odd, and 130 * 4 * 129 > REDUCE_THRESHOLD
SIZES = [(1, 1), (1, 7), (4, 1), (3, 5), (130, 129)]
DTYPES = [D.f32, D.f64]
# the f32 cell uses a rational tanh (<= 2.4e-7) and a SIMD exp: a few ulp, not 1
F32_TOL = {"rtol": 1e-5, "atol": 1e-6}


def _tol(dtype):
    return F32_TOL if dtype is D.f32 else {}


def _rand(rng, shape, dtype, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(dtype.np_dtype)


def _torch(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64)).requires_grad_()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,H", SIZES)
def test_lstm_cell(cpu, path, dtype, B, H):
    rng = np.random.default_rng(B * 100 + H)
    gates, c_prev = _rand(rng, (B, 4 * H), dtype), _rand(rng, (B, H), dtype)
    dh, dc = _rand(rng, (B, H), dtype, 1.0), _rand(rng, (B, H), dtype, 1.0)
    g_s, c_s = gates.reshape(-1), c_prev.reshape(-1)
    got = cpu.lstm_cell_forward(g_s, c_s, dtype, B, H)
    ref = FD.lstm_cell_forward(cpu, g_s, c_s, dtype, B, H)
    for a, r in zip(got, ref):
        check(a, r, dtype, **_tol(dtype))
    h, c, act, tc = got
    gb = cpu.lstm_cell_backward(dh.reshape(-1), dc.reshape(-1), act, c_s, tc, dtype, B, H)
    rb = FD.lstm_cell_backward(cpu, dh.reshape(-1), dc.reshape(-1), act, c_s, tc, dtype, B, H)
    for a, r in zip(gb, rb):
        check(a, r, dtype, **_tol(dtype))
    # torch autograd as the second oracle
    tg, tcp = _torch(gates), _torch(c_prev)
    i, f, g, o = tg.chunk(4, 1)
    tc_new = torch.sigmoid(f) * tcp + torch.sigmoid(i) * torch.tanh(g)
    th = torch.sigmoid(o) * torch.tanh(tc_new)
    check(h, th.detach().numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))
    check(c, tc_new.detach().numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))
    torch.autograd.backward([th, tc_new], [torch.from_numpy(dh.astype(np.float64)),
                                           torch.from_numpy(dc.astype(np.float64))])  # fmt: skip
    check(gb[0], tg.grad.numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))
    check(gb[1], tcp.grad.numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,H", SIZES)
def test_gru_cell(cpu, path, dtype, B, H):
    rng = np.random.default_rng(B * 100 + H + 1)
    xg, hg = _rand(rng, (B, 3 * H), dtype), _rand(rng, (B, 3 * H), dtype)
    h_prev, dh = _rand(rng, (B, H), dtype), _rand(rng, (B, H), dtype, 1.0)
    lay = Layout.contiguous((B, 3 * H))
    args = (xg.reshape(-1), lay, hg.reshape(-1), h_prev.reshape(-1), dtype, B, H)
    got = cpu.gru_cell_forward(*args)
    ref = FD.gru_cell_forward(cpu, *args)
    for a, r in zip(got, ref):
        check(a, r, dtype, **_tol(dtype))
    h_new, rz, n = got
    bargs = (dh.reshape(-1), h_prev.reshape(-1), hg.reshape(-1), rz, n, dtype, B, H)
    gb = cpu.gru_cell_backward(*bargs)
    rb = FD.gru_cell_backward(cpu, *bargs)
    for a, r in zip(gb, rb):
        check(a, r, dtype, **_tol(dtype))
    # torch: PyTorch's GRU equations with xg, hg and h_prev as independent leaves
    tx, thg, thp = _torch(xg), _torch(hg), _torch(h_prev)
    xr, xz, xn = tx.chunk(3, 1)
    hr, hz, hn = thg.chunk(3, 1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    tn = torch.tanh(xn + r * hn)
    th = (1 - z) * tn + z * thp
    check(h_new, th.detach().numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))
    th.backward(torch.from_numpy(dh.astype(np.float64)))
    for a, t in zip(gb, (tx, thg, thp)):
        check(a, t.grad.numpy().astype(dtype.np_dtype), dtype, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gru_cell_strided_input_part(cpu, dtype):
    """``xg`` is read through its layout: one time step of [T, B, 3H] (an offset) and a
    transposed view give the same result as a contiguous copy."""
    rng = np.random.default_rng(7)
    T, B, H = 3, 4, 5
    seq = _rand(rng, (T, B, 3 * H), dtype)
    hg, h_prev = _rand(rng, (B, 3 * H), dtype), _rand(rng, (B, H), dtype)
    lay1 = Layout((B, 3 * H), (3 * H, 1), 1 * B * 3 * H)
    base = cpu.gru_cell_forward(np.ascontiguousarray(seq[1]).reshape(-1),
                                Layout.contiguous((B, 3 * H)), hg.reshape(-1),
                                h_prev.reshape(-1), dtype, B, H)  # fmt: skip
    got = cpu.gru_cell_forward(seq.reshape(-1), lay1, hg.reshape(-1), h_prev.reshape(-1), dtype,
                               B, H)  # fmt: skip
    for a, r in zip(got, base):
        np.testing.assert_array_equal(a, r)
    tr = np.ascontiguousarray(seq[1].T).reshape(-1)  # stored [3H, B], seen as [B, 3H]
    got = cpu.gru_cell_forward(tr, Layout.contiguous((3 * H, B)).transpose(0, 1),
                               hg.reshape(-1), h_prev.reshape(-1), dtype, B, H)  # fmt: skip
    for a, r in zip(got, base):
        np.testing.assert_array_equal(a, r)


@pytest.mark.parametrize("dtype", [D.f16, D.bf16])
def test_cells_half_dtypes(cpu, dtype):
    """Halves compute in f32 and round once: they match the defaults (which do the same)."""
    rng = np.random.default_rng(3)
    B, H = 3, 6
    gates, c_prev = _rand(rng, (B, 4 * H), dtype), _rand(rng, (B, H), dtype)
    got = cpu.lstm_cell_forward(gates.reshape(-1), c_prev.reshape(-1), dtype, B, H)
    ref = FD.lstm_cell_forward(cpu, gates.reshape(-1), c_prev.reshape(-1), dtype, B, H)
    for a, r in zip(got, ref):
        assert a.dtype == dtype.np_dtype
        check(a, r, dtype)
    dh = _rand(rng, (B, H), dtype, 1.0).reshape(-1)
    args = (dh, dh, got[2], c_prev.reshape(-1), got[3], dtype, B, H)
    for a, r in zip(cpu.lstm_cell_backward(*args), FD.lstm_cell_backward(cpu, *args)):
        check(a, r, dtype)
    xg, hg = _rand(rng, (B, 3 * H), dtype), _rand(rng, (B, 3 * H), dtype)
    args = (xg.reshape(-1), Layout.contiguous((B, 3 * H)), hg.reshape(-1), c_prev.reshape(-1),
            dtype, B, H)  # fmt: skip
    got = cpu.gru_cell_forward(*args)
    for a, r in zip(got, FD.gru_cell_forward(cpu, *args)):
        check(a, r, dtype)
    args = (dh, c_prev.reshape(-1), hg.reshape(-1), got[1], got[2], dtype, B, H)
    for a, r in zip(cpu.gru_cell_backward(*args), FD.gru_cell_backward(cpu, *args)):
        check(a, r, dtype)


def test_f32_activations_accuracy_and_nan():
    """The f32 rational tanh / SIMD-exp sigmoid stay within a few 1e-7 of exact over the whole
    range (tanh: 3e-7 just past its clamp; sigmoid: 2.4e-7), NaN in -> NaN out."""
    x = np.concatenate([np.linspace(-30, 30, 200001), [0.0, -0.0, 1e-30, -1e-30, np.inf,
                                                      -np.inf]]).astype(np.float32)  # fmt: skip
    B, H = 1, x.size
    gates = np.concatenate([x, x, x, x]).reshape(1, -1)
    zeros = np.zeros((1, H), np.float32)
    h, c, act, tc = (np.empty((1, n), np.float32) for n in (H, H, 4 * H, H))
    K.lstm_fwd_rows(gates, zeros, h, c, act, tc, 0, B)
    x64 = x.astype(np.float64)
    sig = 1.0 / (1.0 + np.exp(-x64))
    assert np.abs(act[0, :H] - sig).max() <= 2.4e-7
    assert np.abs(act[0, 2 * H : 3 * H] - np.tanh(x64)).max() <= 3e-7
    nan = np.full((1, 4), np.nan, np.float32)
    h, c, act, tc = (np.empty((1, n), np.float32) for n in (1, 1, 4, 1))
    K.lstm_fwd_rows(nan, np.zeros((1, 1), np.float32), h, c, act, tc, 0, 1)
    assert np.isnan(act).all() and np.isnan(h).all() and np.isnan(c).all()
