"""Host side of the elementwise family: unary, affine, binary, compare, where, cast, copy.

Below ``PARALLEL_THRESHOLD`` elements, and for integer/bool dtypes, NumPy ufuncs run on
zero-copy strided views (no thread start-up, ~1 us dispatch). Float tensors at or above
the threshold (and the ops NumPy lacks: erf, gelu; sigmoid and SiLU from
``COMPILE_FREE_BELOW``) run the Numba kernels of
``kernels.elementwise`` on the canonical 4-D form of the layouts, large ones split into
output ranges over the worker threads (``threads.py``). f16/bf16 compute in f32 and
round once.
"""

from __future__ import annotations

import numpy as np

from shrew_core.errors import ShrewError

from . import _config
from .kernels import elementwise as K
from .strided import canonical, contiguous, fp_quiet, fp_restore, is_full, view
from .threads import parallel_for, parts_for, split

_F32 = np.dtype(np.float32)
_NUMBA_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: Unary ops whose NumPy form is several passes (exp, add, divide...): the one-pass Numba
#: kernel wins from ``COMPILE_FREE_BELOW`` elements (sigmoid 16K: 17.2 -> 12.4 us).
_COMPOSED = frozenset({"sigmoid", "silu"})


def is_half(np_dtype: np.dtype) -> bool:
    return np_dtype.itemsize == 2


def chunks(n: int, align: int = 1) -> list[tuple[int, int]]:
    """Output ranges for the worker threads (``threads.parts_for``), at least
    ``MIN_CHUNK`` elements each, the caller's first one ``_config.HEAD_START`` longer when
    there is one per thread; boundaries rounded up to multiples of ``align``."""
    rs = split(n, max(1, min(parts_for(n), n // _config.MIN_CHUNK)), n)
    if align == 1:
        return rs
    cuts = sorted({min(n, -(-hi // align) * align) for _, hi in rs})
    return [(lo, hi) for lo, hi in zip([0] + cuts[:-1], cuts) if hi > lo]


def _canon1(x, layout):
    c = canonical(layout.shape, layout.strides)
    if c is None:
        x = contiguous(x, layout).reshape(-1)
        return x, 0, (0, 0, 0, 1), (1, 1, 1, x.size)
    shape, (st,) = c
    return x, layout.offset, st, shape


def numba_unary(code: int, x, layout, np_dtype, p0=0.0, p1=0.0) -> np.ndarray:
    n = layout.numel
    out = np.empty(n, np_dtype)
    if n == 0:
        return out
    x, xo, xs, shape = _canon1(x, layout)
    t = np_dtype.type
    if n >= _config.PARALLEL_THRESHOLD:
        args = (code, x, xo, xs, out, shape, t(p0), t(p1))
        parallel_for(K.unary_serial, [args + r for r in chunks(n)])
    else:
        K.unary_serial(code, x, xo, xs, out, shape, t(p0), t(p1), 0, n)
    return out


def unary(op: str, x, layout, np_dtype) -> np.ndarray:
    if is_half(np_dtype):
        xf = view(x, layout).astype(_F32).reshape(-1)
        return unary(op, xf, _contig(layout.shape), _F32).astype(np_dtype)
    fn = K.NUMPY_UNARY[op]
    n = layout.numel
    big = n >= _config.PARALLEL_THRESHOLD or (op in _COMPOSED and n >= _config.COMPILE_FREE_BELOW)
    if np_dtype in _NUMBA_FLOATS and (fn is None or big):
        return numba_unary(K.UNARY_CODE[op], x, layout, np_dtype)
    if fn is None:  # an integer input to a float-only op: the front end casts first
        raise ShrewError(f"unary {op}: not defined for {np_dtype}")
    out = np.empty(layout.numel, np_dtype)
    tok = fp_quiet()
    try:
        if is_full(x, layout):  # the storage itself: no view to build
            fn(x, out)
        else:
            fn(view(x, layout), out.reshape(layout.shape))
    finally:
        fp_restore(tok)
    return out


def affine(x, layout, np_dtype, mul: float, add: float) -> np.ndarray:
    if is_half(np_dtype):
        xf = view(x, layout).astype(_F32).reshape(-1)
        return affine(xf, _contig(layout.shape), _F32, mul, add).astype(np_dtype)
    if np_dtype in _NUMBA_FLOATS:
        if layout.numel >= _config.PARALLEL_THRESHOLD:
            return numba_unary(K.AFFINE, x, layout, np_dtype, mul, add)
        out = np.multiply(view(x, layout), np_dtype.type(mul))
        out += np_dtype.type(add)
        return out.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        res = view(x, layout).astype(np.float64) * mul + add
        return np.trunc(res).astype(np_dtype).reshape(-1)


def _contig(shape):
    from shrew_core.layout import Layout

    return Layout.contiguous(tuple(shape))


def binary(op: str, a, la, b, lb, np_dtype) -> np.ndarray:
    if is_half(np_dtype):
        af = view(a, la).astype(_F32).reshape(-1)
        bf = view(b, lb).astype(_F32).reshape(-1)
        lc = _contig(la.shape)
        return binary(op, af, lc, bf, lc, _F32).astype(np_dtype)
    n = la.numel
    if n >= _config.PARALLEL_THRESHOLD and np_dtype in _NUMBA_FLOATS:
        return numba_binary(K.BINARY_CODE[op], a, la, b, lb, np_dtype)
    if np_dtype.kind in "iub":
        bv = view(b, lb)
        if op in ("floor_divide", "remainder") and n and not np.all(bv):
            raise ZeroDivisionError(f"{op}: integer division by zero")
        if op == "pow" and np_dtype.kind == "i" and n and np.any(bv < 0):
            return int_pow(view(a, la), bv).reshape(-1)
    ufunc = K.NUMPY_BINARY[op]
    tok = fp_quiet()
    try:  # dense operands are the storages themselves; a broadcast scalar is one element
        a_dense = la.offset == 0 and a.size == n and la.is_contiguous()
        b_dense = lb.offset == 0 and b.size == n and lb.is_contiguous()
        if a_dense and (b_dense or not any(lb.strides)):
            return ufunc(a, b if b_dense else b[lb.offset])
        if b_dense and not any(la.strides):
            return ufunc(a[la.offset], b)
        if a_dense or b_dense:  # NumPy gives the result the dense operand's C order
            out = ufunc(view(a, la), view(b, lb))
        else:
            out = np.empty(la.shape, np_dtype)
            ufunc(view(a, la), view(b, lb), out=out)
    finally:
        fp_restore(tok)
    return out.ravel()  # a view; a copy only if NumPy chose another order


def int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer ``a ** b`` where some ``b < 0``, like torch: 1 for a == 1, ±1 for a == -1,
    0 otherwise."""
    out = np.power(a, np.maximum(b, 0))
    neg = b < 0
    tiny = np.where(a == 1, 1, np.where(a == -1, np.where(b % 2 == 0, 1, -1), 0))
    return np.where(neg, tiny, out).astype(out.dtype)


def numba_binary(code: int, a, la, b, lb, np_dtype) -> np.ndarray:
    n = la.numel
    out = np.empty(n, np_dtype)
    if n == 0:
        return out
    c = canonical(la.shape, la.strides, lb.strides)
    if c is None:
        a, b = contiguous(a, la).reshape(-1), contiguous(b, lb).reshape(-1)
        ao = bo = 0
        shape, ast, bst = (1, 1, 1, n), (0, 0, 0, 1), (0, 0, 0, 1)
    else:
        shape, (ast, bst) = c
        ao, bo = la.offset, lb.offset
    if n >= _config.PARALLEL_THRESHOLD:
        args = (code, a, ao, ast, b, bo, bst, out, shape)
        parallel_for(K.binary_serial, [args + r for r in chunks(n)])
    else:
        K.binary_serial(code, a, ao, ast, b, bo, bst, out, shape, 0, n)
    return out


def compare(op: str, a, la, b, lb, np_dtype) -> np.ndarray:
    out = np.empty(la.shape, np.bool_)
    av, bv = view(a, la), view(b, lb)
    if np_dtype.name == "bfloat16":
        av, bv = av.astype(_F32), bv.astype(_F32)
    K.NUMPY_COMPARE[op](av, bv, out=out)
    return out.reshape(-1)


def where(c, lc, a, la, b, lb, np_dtype) -> np.ndarray:
    out = np.empty(la.shape, np_dtype)
    np.copyto(out, view(b, lb))
    np.copyto(out, view(a, la), where=view(c, lc))
    return out.reshape(-1)


def cast(x, layout, dst: np.dtype) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return view(x, layout).astype(dst, order="C").reshape(-1)


def copy(x, layout) -> np.ndarray:
    return view(x, layout).copy(order="C").reshape(-1)


def copy_into(dst, dst_layout, src, src_layout) -> None:
    np.copyto(view(dst, dst_layout), view(src, src_layout))


_BWD_OPS = ("gelu", "gelu_tanh", "silu", "sigmoid", "tanh")


def unary_backward(op: str, x, grad, np_dtype) -> np.ndarray | None:
    """grad * d op(x)/dx for contiguous x and grad; None for an op without a kernel."""
    if op not in _BWD_OPS:
        return None
    calc = _F32 if is_half(np_dtype) else np_dtype
    xa = np.ascontiguousarray(x, dtype=calc).reshape(-1)
    ga = np.ascontiguousarray(grad, dtype=calc).reshape(-1)
    out = np.empty(xa.size, calc)
    code = K.UNARY_CODE[op]
    n = xa.size
    if n >= _config.PARALLEL_THRESHOLD:
        parallel_for(K.unary_bwd_serial, [(code, xa, ga, out) + r for r in chunks(n)])
    elif n:
        K.unary_bwd_serial(code, xa, ga, out, 0, n)
    return out.astype(np_dtype, copy=False)


def fused_elementwise(program, inputs, shape, np_dtype) -> np.ndarray | None:
    """Evaluate an instruction tape in one blocked pass (None: not a float program, the
    caller falls back to the composed default)."""
    import numba
    from numba.typed import List

    in_dts = [dt.np_dtype for _, _, dt in inputs]
    if not all(d.kind in "fV" for d in in_dts + [np_dtype]):
        return None
    calc = np.dtype(np.float64) if np.dtype(np.float64) in in_dts + [np_dtype] else _F32
    n = 1
    for d in shape:
        n *= d
    rows = []
    consts = []
    arrays = List.empty_list(numba.typeof(np.empty(0, calc)))
    for s, lay, _dt in inputs:
        if lay.numel == 1:  # a scalar: a constant of the tape
            rows.append((K.FUSED_CONST, len(consts), 0, 0))
            consts.append(float(view(s, lay).reshape(-1)[0]))
            continue
        v = view(s, lay)
        if v.shape != tuple(shape):
            v = np.broadcast_to(v, shape)
        arr = np.ascontiguousarray(v, dtype=calc).reshape(-1)
        rows.append((K.FUSED_INPUT, len(arrays), 0, 0))
        arrays.append(arr)
    for op, *args in program:
        if op == "const":
            rows.append((K.FUSED_CONST, len(consts), 0, 0))
            consts.append(float(args[0]))
        elif len(args) == 1:
            rows.append((K.FUSED_UNARY, K.UNARY_CODE[op], args[0], 0))
        else:
            rows.append((K.FUSED_BINARY, K.BINARY_CODE[op], args[0], args[1]))
    if not arrays:
        arrays.append(np.zeros(1, calc))
    prog = np.array(rows, np.int64).reshape(-1, 4)
    cst = np.array(consts + [0.0], calc)
    out = np.empty(n, calc)
    if n >= _config.PARALLEL_THRESHOLD:
        parallel_for(K.fused_serial,
                     [(prog, cst, arrays, out) + r for r in chunks(n, K.FUSED_BLOCK)])  # fmt: skip
    elif n:
        K.fused_serial(prog, cst, arrays, out, 0, n)
    return out.astype(np_dtype, copy=False)
