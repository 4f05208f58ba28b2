"""Host side of reductions: sum/prod/max/min over dims, argmax/argmin, cumsum, sort.

Large f32/f64 sum/max/min whose reduced dims form one contiguous run per output go to
the parallel row kernel (``kernels.reduce``); those reducing one strided run with a
contiguous kept inner run (e.g. over dim 0) go to the parallel column kernel, which adds
whole rows into L1-resident accumulators; everything else (small tensors, prod,
integer dtypes, other layouts) uses NumPy's reductions on a zero-copy view, which are
pairwise along the contiguous axis. f16/bf16 accumulate in f32.
"""

from __future__ import annotations

import numpy as np

from . import _config
from .kernels import reduce as K
from .strided import coalesce, fp_quiet, fp_restore, is_full, row_offsets, view
from .threads import get_num_threads, parallel_rows, parts_for

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_CODE = {"sum": K.SUM, "max": K.MAX, "min": K.MIN}
_UFUNC = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}


#: Row/column forms by (shape, strides, offset, dims, builder): a training loop reduces the
#: same layouts every step, and building the offsets costs ~0.1 ms cold at 4096 rows.
#: Bounded: cleared when full; forms with more than _MEMO_MAX_ROWS offsets are not kept.
_FORMS: dict = {}
_MEMO_SIZE = 256
_MEMO_MAX_ROWS = 1 << 16


def _form(build, layout, dims):
    """``build(layout, dims)`` (``_row_form`` / ``_col_form``), memoised in ``_FORMS``."""
    key = (layout.shape, layout.strides, layout.offset, dims, build)
    form = _FORMS.get(key, False)
    if form is False:
        form = build(layout, dims)
        if form is None or form[0].size <= _MEMO_MAX_ROWS:
            if len(_FORMS) >= _MEMO_SIZE:
                _FORMS.clear()
            _FORMS[key] = form
    return form


def _row_form(layout, dims):
    """(offsets of each output row, run length, run stride) or None if not one run."""
    shape, strides = layout.shape, layout.strides
    rshape, (rstr,) = coalesce([shape[d] for d in dims], [strides[d] for d in dims])
    if len(rshape) != 1 or rstr[0] != 1:
        return None
    kept = [i for i in range(len(shape)) if i not in dims]
    kshape, (kstr,) = coalesce([shape[i] for i in kept], [strides[i] for i in kept])
    return row_offsets(kshape, kstr, layout.offset), rshape[0], 1


def _col_form(layout, dims):
    """(outer offsets, contiguous kept inner length, reduced length, reduced stride) when
    the reduced dims coalesce to one strided run and the innermost kept dims to one
    contiguous run (e.g. sum over dim 0 of a row-major matrix), else None."""
    shape, strides = layout.shape, layout.strides
    rshape, (rstr,) = coalesce([shape[d] for d in dims], [strides[d] for d in dims])
    kept = [i for i in range(len(shape)) if i not in dims]
    kshape, (kstr,) = coalesce([shape[i] for i in kept], [strides[i] for i in kept])
    if len(rshape) != 1 or not kshape or kstr[-1] != 1 or rstr[0] < kshape[-1]:
        return None
    return row_offsets(kshape[:-1], kstr[:-1], layout.offset), kshape[-1], rshape[0], rstr[0]


def reduce(op: str, x, layout, np_dtype, dims) -> np.ndarray:
    n = layout.numel
    big = n >= _config.REDUCE_THRESHOLD and op in _CODE and np_dtype in (_F32, _F64)
    if big and (form := _form(_row_form, layout, dims)) is not None:
        offs, length, st = form
        nrows = offs.size
        nthreads = get_num_threads()
        nck = 1 if nrows >= 2 * nthreads else -(-2 * nthreads // nrows)
        nck = max(1, min(nck, length // K.BLOCK))
        chunk = -(-length // nck)
        partial = np.empty((nrows, nck), _F64)
        args = (_CODE[op], x, offs, length, st, chunk, partial)
        parallel_rows(K.reduce_rows, args, nrows * nck, parts_for(n), n)
        if nck == 1:
            res = partial[:, 0]
        elif op == "sum":
            res = partial.sum(1)
        else:
            res = (np.max if op == "max" else np.min)(partial, axis=1)
        return res.astype(np_dtype)
    if big and (cform := _form(_col_form, layout, dims)) is not None:
        offs, m, length, st = cform
        nthreads = get_num_threads()
        nck = max(1, min(length, -(-2 * nthreads // offs.size)))
        chunk = -(-length // nck)
        nck = -(-length // chunk)
        partial = np.empty((nck, offs.size, m), _F64 if op == "sum" else np_dtype)
        args = (_CODE[op], x, offs, m, length, st, chunk, partial)
        parallel_rows(K.reduce_cols, args, offs.size * nck, parts_for(n), n)
        if nck == 1:
            res = partial[0]
        elif op == "sum":
            res = partial.sum(0)
        else:
            res = (np.maximum if op == "max" else np.minimum).reduce(partial, axis=0)
        return res.astype(np_dtype).reshape(-1)
    acc = np_dtype
    if len(dims) == len(layout.shape) and is_full(x, layout):
        v, dims = x, None  # everything, in storage order: one 1-D pairwise reduce
    else:
        v = view(x, layout)
    if np_dtype.itemsize == 2 and np_dtype.kind != "u":  # f16 / bf16
        v = v.astype(_F32)
        acc = _F32
    tok = fp_quiet()
    try:  # the cast back too: an f16 product may overflow to inf, silently as in torch
        res = _UFUNC[op].reduce(v, axis=dims, dtype=acc if op in ("sum", "prod") else None,
                                keepdims=True)  # fmt: skip - an array, never a NumPy scalar
        return (res if res.dtype == np_dtype else res.astype(np_dtype)).reshape(-1)
    finally:
        fp_restore(tok)


def arg_reduce(op: str, x, layout, np_dtype, dim: int) -> np.ndarray:
    v = view(x, layout)
    if np_dtype.name == "bfloat16":
        v = v.astype(_F32)
    fn = np.argmax if op == "argmax" else np.argmin
    return np.asarray(fn(v, axis=dim)).astype(np.int64).reshape(-1)


def cumsum(x, layout, np_dtype, dim: int) -> np.ndarray:
    v = view(x, layout)
    if np_dtype.kind in "fV":
        acc = _F64 if np_dtype.itemsize >= 4 else _F32
        if np_dtype.name == "bfloat16":
            v = v.astype(_F32)
    else:
        acc = np_dtype
    with np.errstate(all="ignore"):
        return np.cumsum(v, axis=dim, dtype=acc).astype(np_dtype).reshape(-1)


def sort(x, layout, np_dtype, dim: int, descending: bool):
    v = view(x, layout)
    key = v.astype(_F32) if np_dtype.name == "bfloat16" else v
    if descending:  # stable descending: sort the reversed axis ascending, reverse back
        n = v.shape[dim]
        rev = np.flip(key, axis=dim)
        idx = np.flip(np.argsort(rev, axis=dim, kind="stable"), axis=dim)
        idx = (n - 1) - idx
    else:
        idx = np.argsort(key, axis=dim, kind="stable")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    values = np.take_along_axis(v, idx, axis=dim)
    return np.ascontiguousarray(values).reshape(-1), idx.reshape(-1)
