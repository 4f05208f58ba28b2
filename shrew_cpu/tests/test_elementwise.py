"""Unary / affine / binary / compare / where / cast / copy at the storage level, against
torch (unary math) and NumPy (arithmetic), over dtypes, view kinds and both paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shrew_core import dtypes as D
from shrew_core.backend import BINARY_OPS, UNARY_OPS
from shrew_core.layout import Layout
from shrew_cpu.kernels import elementwise as K
from shrew_cpu.testing import FLOATS, VIEW_KINDS, check, rand, storage_of

TORCH_UNARY = {
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "square": torch.square,
    "reciprocal": torch.reciprocal, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "gelu": F.gelu,
    "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu, "erf": torch.erf,
    "floor": torch.floor, "ceil": torch.ceil, "round": torch.round, "sign": torch.sign,
    "log1p": torch.log1p, "expm1": torch.expm1,
}  # fmt: skip


def test_op_codes_match_protocol_order():
    assert [K.UNARY_CODE[o] for o in UNARY_OPS] == list(range(len(UNARY_OPS)))
    assert (K.NEG, K.EXPM1, K.ADD, K.REM) == (
        UNARY_OPS.index("neg"), UNARY_OPS.index("expm1"),
        BINARY_OPS.index("add"), BINARY_OPS.index("remainder"),
    )  # fmt: skip


def _ref_unary(op, vals):
    return TORCH_UNARY[op](torch.from_numpy(np.asarray(vals, np.float64))).numpy()


@pytest.mark.parametrize("op", UNARY_OPS)
@pytest.mark.parametrize("dtype", [D.f32, D.f64])
def test_unary_float(cpu, path, op, dtype):
    rng = np.random.default_rng(0)
    vals = rand((7, 13), dtype, rng)
    vals[0, :4] = [0.5, 1.5, -2.5, 0.0]  # round half to even, sign of zero
    for kind in VIEW_KINDS:
        s, lay, logical = storage_of(vals, kind)
        out = cpu.unary(op, s, lay, dtype)
        check(out, _ref_unary(op, logical).astype(dtype.np_dtype), dtype)


@pytest.mark.parametrize("op", ["sigmoid", "silu"])
@pytest.mark.parametrize("dtype", [D.f32, D.f64])
def test_composed_unary_on_the_kernel_from_compile_free_size(cpu, op, dtype, monkeypatch):
    """Sigmoid and SiLU take the one-pass kernel from COMPILE_FREE_BELOW elements (their
    NumPy forms are several passes), below it NumPy; both match torch."""
    from shrew_cpu import _config
    from shrew_cpu.kernels import elementwise as KE

    calls = []
    real = KE.unary_serial
    monkeypatch.setattr(KE, "unary_serial", lambda *a: calls.append(a[0]) or real(*a))
    rng = np.random.default_rng(4)
    for shape, kernel in (((128, 160), True), ((7, 13), False)):
        assert (shape[0] * shape[1] >= _config.COMPILE_FREE_BELOW) == kernel
        vals = rand(shape, dtype, rng) * 8
        for kind in VIEW_KINDS:
            calls.clear()
            s, lay, logical = storage_of(vals, kind)
            check(cpu.unary(op, s, lay, dtype), _ref_unary(op, logical).astype(dtype.np_dtype),
                  dtype)  # fmt: skip
            assert calls == ([K.UNARY_CODE[op]] if kernel else [])


@pytest.mark.parametrize("op", ["exp", "gelu", "sigmoid", "round", "tanh"])
@pytest.mark.parametrize("dtype", [D.f16, D.bf16])
def test_unary_half(cpu, op, dtype):
    vals = rand((5, 9), dtype, np.random.default_rng(1))
    s, lay, logical = storage_of(vals, "transposed")
    out = cpu.unary(op, s, lay, dtype)
    check(out, _ref_unary(op, logical.astype(np.float32)), dtype)


@pytest.mark.parametrize("op", ["neg", "abs", "square", "relu", "sign", "floor", "round"])
@pytest.mark.parametrize("dtype", [D.i64, D.u32, D.u8])
def test_unary_int(cpu, op, dtype):
    vals = rand((4, 6), dtype, np.random.default_rng(2))
    s, lay, logical = storage_of(vals, "narrow")
    out = cpu.unary(op, s, lay, dtype)
    t = torch.from_numpy(np.asarray(logical, np.int64))
    ref = TORCH_UNARY[op](t).numpy() if op not in ("floor", "round") else t.numpy()
    check(out, ref.astype(dtype.np_dtype), dtype)


def test_unary_nan_semantics(cpu, path):
    vals = np.array([np.nan, -np.inf, np.inf, -0.0], np.float32)
    lay = Layout.contiguous((4,))
    for op in ("relu", "sign", "round", "abs", "sigmoid"):
        out = cpu.unary(op, vals, lay, D.f32)
        check(out, _ref_unary(op, vals).astype(np.float32), D.f32)


@pytest.mark.parametrize("dtype", FLOATS + (D.i64,))
def test_affine(cpu, path, dtype):
    vals = rand((6, 5), dtype, np.random.default_rng(3))
    for kind in VIEW_KINDS:
        s, lay, logical = storage_of(vals, kind)
        mul, add = (2.5, -1.25) if dtype.is_float else (3, 4)
        out = cpu.affine(s, lay, dtype, mul, add)
        check(out, (logical.astype(np.float64) * mul + add).astype(dtype.np_dtype), dtype)


def _binary_inputs(op, dtype, shape, rng):
    a = rand(shape, dtype, rng)
    b = rand(shape, dtype, rng)
    if dtype.is_float:
        b = (np.sign(b) + (b == 0)) * (np.abs(b) + 0.5)
        if op == "pow":
            a = np.abs(a) + 0.1
    elif op in ("floor_divide", "remainder"):
        b = np.where(b == 0, 1, b).astype(dtype.np_dtype)
    elif op == "pow":
        b = (np.abs(b.astype(np.int64)) % 4).astype(dtype.np_dtype)
    return a.astype(dtype.np_dtype), b.astype(dtype.np_dtype)


NP_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "pow": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "floor_divide": np.floor_divide, "remainder": np.remainder,
}  # fmt: skip


# integer true division is never requested (the front end promotes it to float)
BINARY_CASES = [(op, dt) for op in BINARY_OPS for dt in (D.f32, D.f64, D.f16, D.bf16, D.i64, D.u8)
                if not (op == "div" and not dt.is_float)]  # fmt: skip


@pytest.mark.parametrize("op,dtype", BINARY_CASES)
def test_binary(cpu, path, op, dtype):
    rng = np.random.default_rng(4)
    a, b = _binary_inputs(op, dtype, (9, 11), rng)
    kinds_b = ["contig", "transposed", "bcast_row", "bcast_col", "scalar", "offset"]
    for ka, kb in zip(VIEW_KINDS, kinds_b):
        sa, la, va = storage_of(a, ka)
        sb, lb, vb = storage_of(b, kb)
        out = cpu.binary(op, sa, la, sb, lb, dtype)
        calc = np.float32 if dtype.np_dtype.itemsize == 2 else dtype.np_dtype
        with np.errstate(all="ignore"):
            ref = NP_BINARY[op](va.astype(calc), vb.astype(calc))
        check(out, ref.astype(dtype.np_dtype), dtype)


def test_binary_nan_propagation(cpu, path):
    a = np.array([np.nan, 1.0, 2.0, np.nan], np.float64)
    b = np.array([1.0, np.nan, 1.0, np.nan], np.float64)
    lay = Layout.contiguous((4,))
    check(cpu.binary("maximum", a, lay, b, lay, D.f64), np.maximum(a, b), D.f64)
    check(cpu.binary("minimum", a, lay, b, lay, D.f64), np.minimum(a, b), D.f64)


@pytest.mark.parametrize("op", ["floor_divide", "remainder"])
def test_integer_division_by_zero_raises(cpu, op):
    a = np.array([1, 2, 3], np.int64)
    b = np.array([1, 0, 3], np.int64)
    lay = Layout.contiguous((3,))
    with pytest.raises(ZeroDivisionError, match=op):
        cpu.binary(op, a, lay, b, lay, D.i64)


@pytest.mark.parametrize("n", [1, 7, 1023, 262143, 262144, 300001])
def test_sizes_around_threshold(cpu, n):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    lay = Layout.contiguous((n,))
    check(cpu.binary("mul", a, lay, b, lay, D.f32), a * b, D.f32)
    check(cpu.unary("gelu", a, lay, D.f32), _ref_unary("gelu", a).astype(np.float32), D.f32)
    # a strided view of the same size: every other element of a 2n buffer
    wide = np.repeat(a, 2)
    check(cpu.unary("neg", wide, Layout((n,), (2,), 0), D.f32), -a, D.f32)


def test_large_16m(cpu):
    n = 1 << 24
    a = np.arange(n, dtype=np.float32)
    lay = Layout.contiguous((n,))
    out = cpu.binary("add", a, lay, np.ones(1, np.float32), Layout((n,), (0,), 0), D.f32)
    check(out[-5:], a[-5:] + 1, D.f32)
    check(np.ascontiguousarray(out[::4099]), a[::4099] + 1, D.f32)


def test_high_rank_strided(cpu, path):
    """Rank 6 with non-mergeable strides (more than the canonical 4 dims)."""
    base = np.random.default_rng(5).standard_normal((3, 4, 5, 2, 3, 4))
    perm = (5, 0, 3, 1, 4, 2)
    lay = Layout.contiguous(base.shape).permute(perm)
    s = base.reshape(-1)
    check(cpu.binary("sub", s, lay, s, lay, D.f64), np.zeros(base.size), D.f64)
    check(cpu.unary("exp", s, lay, D.f64), np.exp(base.transpose(perm)), D.f64)


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
@pytest.mark.parametrize("dtype", [D.f32, D.bf16, D.i64, D.u8, D.bool_])
def test_compare(cpu, op, dtype):
    rng = np.random.default_rng(6)
    a = rand((5, 6), dtype, rng)
    b = a.copy()
    b[::2] = rand((3, 6), dtype, rng)
    sa, la, va = storage_of(a, "transposed")
    sb, lb, vb = storage_of(b, "contig")
    f = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
         "gt": np.greater, "ge": np.greater_equal}[op]  # fmt: skip
    check(cpu.compare(op, sa, la, sb, lb, dtype), f(va.astype(np.float64), vb.astype(np.float64)),
          D.bool_)  # fmt: skip


@pytest.mark.parametrize("dtype", [D.f32, D.bf16, D.i64])
def test_where(cpu, dtype):
    rng = np.random.default_rng(7)
    c = rand((4, 5), D.bool_, rng)
    a, b = rand((4, 5), dtype, rng), rand((4, 5), dtype, rng)
    sc, lc, vc = storage_of(c, "transposed")
    sa, la, va = storage_of(a, "bcast_row")
    sb, lb, vb = storage_of(b, "narrow")
    check(cpu.where(sc, lc, sa, la, sb, lb, dtype), np.where(vc, va, vb), dtype)


@pytest.mark.parametrize("src", [D.f32, D.f64, D.f16, D.bf16, D.i64, D.u8, D.bool_])
@pytest.mark.parametrize("dst", [D.f32, D.bf16, D.i64, D.u8, D.bool_])
def test_cast(cpu, src, dst):
    vals = rand((3, 7), src, np.random.default_rng(8))
    if src.is_float and dst in (D.u8,):
        vals = np.abs(vals)
    s, lay, logical = storage_of(vals, "transposed")
    check(cpu.cast(s, lay, src, dst), logical.astype(dst.np_dtype), dst)


def test_float_to_int_truncates(cpu):
    v = np.array([-2.7, -0.5, 0.5, 2.7], np.float32)
    check(cpu.cast(v, Layout.contiguous((4,)), D.f32, D.i64), [-2, 0, 0, 2], D.i64)


@pytest.mark.parametrize("kind", VIEW_KINDS)
def test_copy_and_copy_into(cpu, kind):
    vals = rand((6, 4), D.f32, np.random.default_rng(9))
    s, lay, logical = storage_of(vals, kind)
    out = cpu.copy(s, lay, D.f32)
    check(out, logical, D.f32)
    assert not np.shares_memory(out, s)
    dst_vals = np.zeros((6, 4), np.float32)
    ds, dl, dv = storage_of(dst_vals, "transposed")
    cpu.copy_into(ds, dl, s, lay, D.f32)
    check(np.ascontiguousarray(cpu.to_numpy(ds, dl, D.f32)).reshape(-1), logical, D.f32)


def test_storage_roundtrip(cpu):
    arr = np.arange(12, dtype=np.float32)
    s = cpu.from_numpy(arr)
    assert np.shares_memory(s, arr)
    v = cpu.to_numpy(s, Layout.contiguous((3, 4)).transpose(0, 1), D.f32)
    assert np.shares_memory(v, arr) and v.shape == (4, 3)
    check(np.ascontiguousarray(v).reshape(-1), arr.reshape(3, 4).T, D.f32)
    check(cpu.full((2, 3), 1.5, D.bf16), np.full(6, 1.5), D.bf16)
