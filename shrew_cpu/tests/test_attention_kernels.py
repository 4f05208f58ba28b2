"""The fused masked softmax (``softmax(x * scale + mask)``, + backward) against the default
composition of ``shrew_core.fused_defaults`` and torch autograd: no mask, broadcast masks
read through stride-0 layouts ([L, S] and key-padding [N, 1, 1, S] against
[N, heads, L, S] scores, a stride-0 column), a full per-head mask, a transposed mask,
softmax over a dim that is not last, fully masked rows (NaN, like torch), and sizes
above the parallel threshold (plus every size forced parallel through ``path``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shrew_core import dtypes as D
from shrew_core import fused_defaults as FD
from shrew_core.layout import Layout
from shrew_cpu.testing import check

DTYPES = [D.f32, D.f64]


def _mask(kind, shape, dtype, rng):
    """(storage, layout of x's shape, logical broadcast array) for a mask kind."""
    N, Hn, L, S = shape
    blocked = lambda *s: np.where(rng.random(s) > 0.7, -np.inf, 0.0)  # noqa: E731
    if kind == "none":
        return None, None, np.zeros(shape)
    if kind == "causal":  # [L, S] broadcast over batch and heads
        m = np.triu(np.full((L, S), -np.inf), 1)
        return m.astype(dtype.np_dtype).reshape(-1), Layout(shape, (0, 0, S, 1), 0), m
    if kind == "padding":  # [N, 1, 1, S]
        m = blocked(N, 1, 1, S)
        m[:, :, :, 0] = 0.0  # at least one visible key per row
        return m.astype(dtype.np_dtype).reshape(-1), Layout(shape, (S, 0, 0, 1), 0), m
    if kind == "full":  # per-head float mask, with an offset into the storage
        m = rng.standard_normal(shape)
        s = np.concatenate([np.zeros(5), m.reshape(-1)]).astype(dtype.np_dtype)
        return s, Layout.contiguous(shape, offset=5), m
    if kind == "column":  # [L, 1]: one value per query row (stride 0 along the softmax dim)
        m = rng.standard_normal((L, 1))
        return m.astype(dtype.np_dtype).reshape(-1), Layout(shape, (0, 0, 1, 0), 0), m
    if kind == "transposed":  # [L, S] stored as [S, L]
        m = rng.standard_normal((L, S))
        s = np.ascontiguousarray(m.T).astype(dtype.np_dtype).reshape(-1)
        return s, Layout(shape, (0, 0, 1, L), 0), m
    raise ValueError(kind)


MASKS = ["none", "causal", "padding", "full", "column", "transposed"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (1, 2, 3, 1), (8, 4, 40, 64)])
def test_masked_softmax(cpu, path, dtype, kind, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 3).astype(dtype.np_dtype)
    m_s, m_l, m_arr = _mask(kind, shape, dtype, rng)
    scale = 1.0 / math.sqrt(shape[-1] + 3)
    lay = Layout.contiguous(shape)
    y = cpu.masked_softmax(x.reshape(-1), lay, m_s, m_l, dtype, 3, scale)
    check(y, FD.masked_softmax(cpu, x.reshape(-1), lay, m_s, m_l, dtype, 3, scale), dtype)
    tx = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    tm = torch.from_numpy(np.broadcast_to(m_arr, shape).astype(dtype.np_dtype).astype(np.float64))
    tm.requires_grad_()
    ty = torch.softmax(tx * scale + tm, dim=3)
    check(y, ty.detach().numpy().astype(dtype.np_dtype), dtype)
    g = rng.standard_normal(shape).astype(dtype.np_dtype)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    gx = cpu.masked_softmax_backward(y, g.reshape(-1), shape, dtype, 3, scale)
    check(gx, FD.masked_softmax_backward(cpu, y, g.reshape(-1), shape, dtype, 3, scale), dtype)
    check(gx, tx.grad.numpy().astype(dtype.np_dtype), dtype)
    gm = cpu.masked_softmax_backward(y, g.reshape(-1), shape, dtype, 3, 1.0)
    check(gm, tm.grad.numpy().astype(dtype.np_dtype), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_masked_softmax_other_dims(cpu, path, dtype, dim):
    rng = np.random.default_rng(dim)
    shape = (3, 4, 5)
    x = rng.standard_normal(shape).astype(dtype.np_dtype)
    m = rng.standard_normal((4, 1)).astype(dtype.np_dtype)  # broadcast over dims 0 and 2
    m_l = Layout(shape, (0, 1, 0), 0)
    lay = Layout.contiguous(shape)
    y = cpu.masked_softmax(x.reshape(-1), lay, m.reshape(-1), m_l, dtype, dim, 0.5)
    ref = torch.softmax(torch.from_numpy(x.astype(np.float64)) * 0.5
                        + torch.from_numpy(np.broadcast_to(m, shape).astype(np.float64)), dim)
    check(y, ref.numpy().astype(dtype.np_dtype), dtype)
    check(y, FD.masked_softmax(cpu, x.reshape(-1), lay, m.reshape(-1), m_l, dtype, dim, 0.5),
          dtype)  # fmt: skip
    g = rng.standard_normal(shape).astype(dtype.np_dtype).reshape(-1)
    check(cpu.masked_softmax_backward(y, g, shape, dtype, dim, 0.5),
          FD.masked_softmax_backward(cpu, y, g, shape, dtype, dim, 0.5), dtype)  # fmt: skip


def test_masked_softmax_strided_scores_and_nan_rows(cpu):
    """Transposed scores are read through their layout; a fully masked row gives NaN (like
    torch) and leaves the other rows alone."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 7))
    lay = Layout.contiguous((7, 6)).transpose(0, 1)
    m = np.zeros((6, 7))
    m[2] = -np.inf
    y = cpu.masked_softmax(np.ascontiguousarray(x.T).reshape(-1), lay, m.reshape(-1),
                           Layout.contiguous((6, 7)), D.f64, 1, 1.0).reshape(6, 7)  # fmt: skip
    ref = torch.softmax(torch.from_numpy(x + m), 1).numpy()
    assert np.isnan(y[2]).all() and np.isnan(ref[2]).all()
    np.testing.assert_allclose(np.delete(y, 2, 0), np.delete(ref, 2, 0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [D.f16, D.bf16])
def test_masked_softmax_half_dtypes(cpu, dtype):
    rng = np.random.default_rng(9)
    shape = (2, 2, 3, 9)
    x = rng.standard_normal(shape).astype(dtype.np_dtype)
    m_s, m_l, _ = _mask("causal", shape, dtype, rng)
    lay = Layout.contiguous(shape)
    y = cpu.masked_softmax(x.reshape(-1), lay, m_s, m_l, dtype, 3, 0.3)
    check(y, FD.masked_softmax(cpu, x.reshape(-1), lay, m_s, m_l, dtype, 3, 0.3), dtype)
    g = rng.standard_normal(shape).astype(dtype.np_dtype).reshape(-1)
    check(cpu.masked_softmax_backward(y, g, shape, dtype, 3, 0.3),
          FD.masked_softmax_backward(cpu, y, g, shape, dtype, 3, 0.3), dtype)  # fmt: skip
