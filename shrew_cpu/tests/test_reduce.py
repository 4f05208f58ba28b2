"""Reductions, arg reductions, cumsum and sort at the storage level (NumPy / torch oracles)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shrew_core import dtypes as D
from shrew_core.layout import Layout
from shrew_cpu import _config
from shrew_cpu.testing import VIEW_KINDS, check, rand, storage_of

NP_REDUCE = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}


@pytest.mark.parametrize("op", ["sum", "max", "min", "prod"])
@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.f16, D.bf16, D.i64, D.u8])
def test_reduce_2d(cpu, path, op, dtype):
    rng = np.random.default_rng(10)
    lo, hi = (0.5, 1.5) if op == "prod" else (-3.0, 3.0)
    vals = rand((9, 33), dtype, rng, low=lo, high=hi)
    for kind in VIEW_KINDS:
        s, lay, logical = storage_of(vals, kind)
        for dims in [(0,), (1,), (0, 1)]:
            out = cpu.reduce(op, s, lay, dtype, dims)
            calc = np.float64 if dtype.is_float else dtype.np_dtype
            kw = {"dtype": calc} if op in ("sum", "prod") else {}
            ref = NP_REDUCE[op](logical.astype(calc), axis=dims, **kw)
            check(out, np.asarray(ref).astype(dtype.np_dtype), dtype,
                  rtol=3e-2 if dtype is D.bf16 else None)  # fmt: skip


@pytest.mark.parametrize("shape,dims", [((3, 4, 5, 6), (1, 3)), ((2, 3, 4), (0, 2)),
                                        ((5, 1, 7), (1,)), ((4, 5, 6), (2,))])  # fmt: skip
def test_reduce_nd(cpu, path, shape, dims):
    vals = np.random.default_rng(11).standard_normal(shape)
    lay = Layout.contiguous(shape)
    for op in ("sum", "max", "min"):
        check(cpu.reduce(op, vals.reshape(-1), lay, D.f64, dims),
              NP_REDUCE[op](vals, axis=dims), D.f64)  # fmt: skip


@pytest.mark.parametrize("n", [1, 7, 1023, 65535, 65536, 1 << 20])
def test_sum_long_axis_accuracy(cpu, n):
    """f32 sums over long axes stay accurate (f64 blocks; NumPy f64 as the oracle)."""
    x = (np.random.default_rng(n).random(n) + 1e3).astype(np.float32)
    out = cpu.reduce("sum", x, Layout.contiguous((n,)), D.f32, (0,))
    check(out, [x.astype(np.float64).sum()], D.f32, rtol=1e-6)
    two = np.stack([x, -x])
    check(cpu.reduce("sum", two.reshape(-1), Layout.contiguous((2, n)), D.f32, (1,)),
          [x.astype(np.float64).sum(), -x.astype(np.float64).sum()], D.f32, rtol=1e-6)  # fmt: skip


def test_sum_16m(cpu):
    n = 1 << 24
    x = np.ones(n, np.float32)
    check(cpu.reduce("sum", x, Layout.contiguous((n,)), D.f32, (0,)), [float(n)], D.f32, rtol=0)
    check(cpu.reduce("sum", x, Layout.contiguous((4096, 4096)), D.f32, (1,)),
          np.full(4096, 4096.0), D.f32, rtol=0)  # fmt: skip


def test_reduction_forms_memo_is_bounded_and_layout_exact(cpu, monkeypatch):
    """The row/column forms are memoised per (layout, dims): the same layout over new data
    gives the new sums, views at other offsets get their own offsets, the memo stays
    within its bound and forms with more rows than the cap are not kept."""
    from shrew_cpu import reduce as red

    monkeypatch.setattr(_config, "REDUCE_THRESHOLD", 1)
    monkeypatch.setattr(red, "_FORMS", {})
    monkeypatch.setattr(red, "_MEMO_SIZE", 8)
    monkeypatch.setattr(red, "_MEMO_MAX_ROWS", 64)
    rng = np.random.default_rng(12)
    base = rng.standard_normal(40 * 33)
    for step in range(3):  # same layouts, fresh data each time
        x = base + step
        for off in (0, 33, 66):  # row views [rows 0..9], [1..10], [2..11] of a [40, 33]
            lay = Layout((10, 33), (33, 1), off)
            logical = x[off : off + 330].reshape(10, 33)
            for dims in [(0,), (1,)]:
                check(cpu.reduce("sum", x, lay, D.f64, dims), logical.sum(axis=dims), D.f64)
    assert 0 < len(red._FORMS) <= 8
    for rows in range(1, 20):  # more layouts than the bound
        cpu.reduce("max", base, Layout.contiguous((rows, 33)), D.f64, (1,))
    assert len(red._FORMS) <= 8
    red._FORMS.clear()
    tall = Layout.contiguous((40, 33))  # 40 rows fit under the cap of 64; 1320 do not
    check(cpu.reduce("sum", base, tall, D.f64, (1,)), base.reshape(40, 33).sum(1), D.f64)
    assert len(red._FORMS) == 1
    long = np.repeat(base, 2)[: 1320 * 2].reshape(1320, 2)
    check(cpu.reduce("sum", long.reshape(-1), Layout.contiguous((1320, 2)), D.f64, (1,)),
          long.sum(1), D.f64)  # fmt: skip
    assert len(red._FORMS) == 1


@pytest.mark.parametrize("shape,dims", [((300, 70), (0,)), ((6, 50, 40), (1,)),
                                        ((2000, 5000), (0,)), ((3, 9000, 4, 5), (1,))])  # fmt: skip
@pytest.mark.parametrize("dtype", [D.f32, D.f64])
def test_reduce_strided_axis(cpu, path, shape, dims, dtype):
    """Reductions over a non-last axis (the column kernel): sums accurate against f64,
    max/min exact and NaN-propagating, offset views."""
    rng = np.random.default_rng(12)
    vals = (rng.random(shape) + 1e3).astype(dtype.np_dtype)
    lay = Layout.contiguous(shape)
    store = np.concatenate([np.zeros(3, dtype.np_dtype), vals.reshape(-1)])
    lay = Layout(shape, lay.strides, 3)
    ref = vals.astype(np.float64).sum(axis=dims)
    check(cpu.reduce("sum", store, lay, dtype, dims), ref, dtype,
          rtol=1e-6 if dtype is D.f32 else None)  # fmt: skip
    for op in ("max", "min"):
        check(cpu.reduce(op, store, lay, dtype, dims), NP_REDUCE[op](vals, axis=dims), dtype,
              rtol=0, atol=0)  # fmt: skip
    vals2 = vals.copy()
    idx = tuple(d // 2 for d in shape)
    vals2[idx] = np.nan
    store2 = np.concatenate([np.zeros(3, dtype.np_dtype), vals2.reshape(-1)])
    for op in ("max", "min", "sum"):
        got = cpu.reduce(op, store2, lay, dtype, dims)
        np.testing.assert_array_equal(np.isnan(got),
                                      np.isnan(NP_REDUCE[op](vals2, axis=dims)).reshape(-1))


def test_max_min_propagate_nan(cpu, path):
    x = np.arange(200000, dtype=np.float32)
    x[123457] = np.nan
    lay = Layout.contiguous((200000,))
    for op in ("max", "min"):
        assert np.isnan(cpu.reduce(op, x, lay, D.f32, (0,))[0])


def test_integer_sum_wraps_like_numpy(cpu):
    x = np.full(10, 200, np.uint8)
    check(cpu.reduce("sum", x, Layout.contiguous((10,)), D.u8, (0,)),
          [np.sum(x, dtype=np.uint8)], D.u8)  # fmt: skip


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", [D.f32, D.bf16, D.i64])
def test_arg_reduce_first_index_ties(cpu, op, dtype):
    vals = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, -1, 5, -1]]).astype(dtype.np_dtype)
    for kind in ("contig", "transposed", "narrow"):
        s, lay, logical = storage_of(vals, kind)
        for dim in (0, 1):
            t = torch.from_numpy(logical.astype(np.float64))
            ref = getattr(torch, op)(t, dim=dim).numpy()
            check(cpu.arg_reduce(op, s, lay, dtype, dim), ref, D.i64)


def test_arg_reduce_nan_wins(cpu):
    x = np.array([1.0, np.nan, 5.0, np.nan], np.float32)
    lay = Layout.contiguous((4,))
    check(cpu.arg_reduce("argmax", x, lay, D.f32, 0), [1], D.i64)
    check(cpu.arg_reduce("argmin", x, lay, D.f32, 0), [1], D.i64)


@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16, D.i64])
def test_cumsum(cpu, dtype):
    vals = rand((6, 8), dtype, np.random.default_rng(12))
    for kind in ("contig", "transposed", "bcast_col"):
        s, lay, logical = storage_of(vals, kind)
        for dim in (0, 1):
            ref = np.cumsum(logical.astype(np.float64), axis=dim)
            check(cpu.cumsum(s, lay, dtype, dim), ref.astype(dtype.np_dtype), dtype,
                  rtol=3e-2 if dtype is D.bf16 else None, atol=0.1 if dtype is D.bf16 else None)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dtype", [D.f32, D.f64, D.bf16, D.i64, D.u8])
def test_sort_stable_like_torch(cpu, dtype, descending):
    rng = np.random.default_rng(13)
    vals = rng.integers(0, 4, size=(5, 12)).astype(dtype.np_dtype)  # many ties
    if dtype.is_float:
        vals[1, 3] = vals[2, 0] = np.nan
    for kind in ("contig", "transposed"):
        s, lay, logical = storage_of(vals, kind)
        for dim in (0, 1):
            t = torch.from_numpy(logical.astype(np.float64))
            rv, ri = torch.sort(t, dim=dim, descending=descending, stable=True)
            v, i = cpu.sort(s, lay, dtype, dim, descending)
            check(i, ri.numpy(), D.i64)
            check(v, rv.numpy().astype(dtype.np_dtype), dtype)
