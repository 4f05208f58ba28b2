"""Matmul (BLAS paths, batched, broadcast batch, transposed operands, half, integer) and
indexing (index_select / index_add / gather / scatter_add, bounds errors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shrew_core import dtypes as D
from shrew_core.errors import IndexOutOfRangeError, ShrewError
from shrew_core.layout import Layout
from shrew_cpu.testing import check, rand, storage_of


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.f16, D.bf16, D.i64, D.u8])
@pytest.mark.parametrize("ka", ["contig", "transposed", "narrow", "offset"])
@pytest.mark.parametrize("kb", ["contig", "transposed", "narrow"])
def test_matmul_2d(cpu, dtype, ka, kb):
    rng = np.random.default_rng(20)
    a = rand((7, 5), dtype, rng, -2, 2)
    b = rand((5, 9), dtype, rng, -2, 2)
    if dtype is D.u8:
        a, b = a % 4, b % 4
    sa, la, va = storage_of(a, ka)
    sb, lb, vb = storage_of(b, kb)
    calc = np.float64 if dtype.is_float else np.int64
    ref = (va.astype(calc) @ vb.astype(calc)).astype(dtype.np_dtype)
    check(cpu.matmul(sa, la, sb, lb, dtype), ref, dtype, rtol=2e-2 if dtype is D.bf16 else None,
          atol=5e-2 if dtype is D.bf16 else None)  # fmt: skip


def test_integer_matmul_exact(cpu):
    a = np.full((2, 3), 2**40 + 1, np.int64)
    b = np.ones((3, 2), np.int64)
    out = cpu.matmul(a.reshape(-1), Layout.contiguous((2, 3)), b.reshape(-1),
                     Layout.contiguous((3, 2)), D.i64)  # fmt: skip
    check(out, np.full(4, 3 * (2**40 + 1)), D.i64)


@pytest.mark.parametrize("dtype", [D.f32, D.f64])
def test_matmul_batched_broadcast(cpu, dtype):
    rng = np.random.default_rng(21)
    a = rng.standard_normal((3, 4, 6, 5)).astype(dtype.np_dtype)
    w = rng.standard_normal((5, 7)).astype(dtype.np_dtype)
    # rhs broadcast over both batch dims (stride 0), lhs batch transposed
    la = Layout.contiguous((4, 3, 6, 5)).permute((1, 0, 2, 3))
    sa = np.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(-1)
    lb = Layout((3, 4, 5, 7), (0, 0, 7, 1), 0)
    out = cpu.matmul(sa, la, w.reshape(-1), lb, dtype)
    check(out, (a.astype(np.float64) @ w.astype(np.float64)).astype(dtype.np_dtype), dtype,
          rtol=1e-4 if dtype is D.f32 else None)  # fmt: skip


@pytest.mark.parametrize("shapes", [
    ((70, 33), (33, 40)),  # blocks of rows
    ((40, 33), (33, 70)),  # blocks of columns
    ((9, 40, 6), (9, 6, 35)),  # blocks of batch entries
    ((2, 3, 70, 5), (5, 33)),  # rows of every batch entry, rhs broadcast
    ((35, 6), (4, 6, 40)),  # lhs broadcast over the batch
])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_matmul_split_over_worker_threads(cpu, monkeypatch, shapes, threads):
    """SHREW_CPU_GEMM_THREADS=workers: every product split into blocks (threshold 0) on 1-3
    threads equals NumPy's; the thread count of NumPy's BLAS is restored afterwards."""
    from shrew_cpu import _config, gemm
    from shrew_cpu import threads as th

    monkeypatch.setattr(_config, "GEMM_THREADS", "workers")
    monkeypatch.setattr(_config, "GEMM_PARALLEL_MACS", 0)
    monkeypatch.setattr(th, "_num_threads", threads)
    rng = np.random.default_rng(24)
    a, b = (rng.standard_normal(s) for s in shapes)
    api = gemm._openblas_thread_api()
    before = api[1]() if api else None
    out = cpu.matmul(a.reshape(-1), Layout.contiguous(a.shape), b.reshape(-1),
                     Layout.contiguous(b.shape), D.f64)  # fmt: skip
    check(out, a @ b, D.f64)
    if api:
        assert api[1]() == before


@pytest.mark.parametrize("dtype", [D.f32, D.bf16, D.i64])
def test_index_select_and_add(cpu, dtype):
    rng = np.random.default_rng(22)
    vals = rand((6, 5), dtype, rng)
    idx = np.array([5, 0, 0, 3], np.int64)
    for kind in ("contig", "transposed", "narrow"):
        s, lay, logical = storage_of(vals, kind)
        for dim, n in ((0, 6), (1, 5)):
            ix = idx % n
            out = cpu.index_select(s, lay, dtype, dim, ix, Layout.contiguous((4,)))
            check(out, np.take(logical, ix, axis=dim), dtype)
    src = rand((4, 5), dtype, rng)
    ss, sl, sv = storage_of(src, "transposed")
    out = cpu.index_add((6, 5), 0, idx, Layout.contiguous((4,)), ss, sl, dtype)
    ref = torch.zeros(6, 5, dtype=torch.float64).index_add_(0, torch.from_numpy(idx),
                                                            torch.from_numpy(sv.astype(np.float64)))
    check(out, ref.numpy().astype(dtype.np_dtype), dtype)


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.i64])
def test_gather_scatter_add(cpu, dtype):
    rng = np.random.default_rng(23)
    vals = rand((4, 6), dtype, rng)
    s, lay, logical = storage_of(vals, "transposed")
    tv = torch.from_numpy(np.ascontiguousarray(logical).astype(np.float64))
    for dim in (0, 1):
        idx = rng.integers(0, logical.shape[dim], size=(3, 4)).astype(np.int64)  # smaller index
        out = cpu.gather(s, lay, dtype, dim, idx.reshape(-1), Layout.contiguous((3, 4)))
        ref = torch.gather(tv, dim, torch.from_numpy(idx))
        check(out, ref.numpy().astype(dtype.np_dtype), dtype)
        src = rand((3, 4), dtype, rng)
        out = cpu.scatter_add((4, 6), dim, idx.reshape(-1), Layout.contiguous((3, 4)),
                              src.reshape(-1), Layout.contiguous((3, 4)), dtype)  # fmt: skip
        ref = torch.zeros(4, 6, dtype=torch.float64).scatter_add_(
            dim, torch.from_numpy(idx), torch.from_numpy(src.astype(np.float64)))
        check(out, ref.numpy().astype(dtype.np_dtype), dtype)


@pytest.mark.parametrize("bad", [-1, 6, 10**9])
def test_out_of_range_index_raises(cpu, bad):
    x = np.zeros(12, np.float32)
    lay = Layout.contiguous((6, 2))
    idx = np.array([0, bad], np.int64)
    il = Layout.contiguous((2,))
    with pytest.raises(IndexOutOfRangeError, match=f"index {bad} is out of range"):
        cpu.index_select(x, lay, D.f32, 0, idx, il)
    with pytest.raises(IndexOutOfRangeError):
        cpu.index_add((6, 2), 0, idx, il, np.zeros(4, np.float32), Layout.contiguous((2, 2)),
                      D.f32)  # fmt: skip
    gi = np.array([[0, bad]], np.int64)
    with pytest.raises(IndexOutOfRangeError):
        cpu.gather(x, lay, D.f32, 0, gi.reshape(-1), Layout.contiguous((1, 2)))
    with pytest.raises(ShrewError):
        cpu.scatter_add((6, 2), 0, gi.reshape(-1), Layout.contiguous((1, 2)),
                        np.ones(2, np.float32), Layout.contiguous((1, 2)), D.f32)  # fmt: skip


def test_random_fills_reproducible(cpu):
    for fn, args in ((cpu.rand_uniform, (-2.0, 3.0)), (cpu.rand_normal, (1.0, 2.0))):
        a = fn((1000,), D.f32, *args, seed=5)
        b = fn((1000,), D.f32, *args, seed=5)
        c = fn((1000,), D.f32, *args, seed=6)
        check(a, b, D.f32, rtol=0, atol=0)
        assert not np.array_equal(a, c)
    u = cpu.rand_uniform((100000,), D.f64, -2.0, 3.0, seed=1)
    assert u.min() >= -2.0 and u.max() < 3.0
    check(np.array([u.mean()]), [0.5], D.f64, rtol=0, atol=0.02)
    z = cpu.rand_normal((100000,), D.bf16, 1.0, 2.0, seed=2).astype(np.float64)
    check(np.array([z.mean(), z.std()]), [1.0, 2.0], D.f64, rtol=0, atol=0.03)
    m = cpu.bernoulli((100000,), 0.3, D.f32, seed=3)
    assert set(np.unique(m)) <= {0.0, 1.0}
    check(np.array([m.mean()], np.float64), [0.3], D.f64, rtol=0, atol=0.01)
