"""Reductions: sum/prod/max/min over dims, argmax/argmin, cumsum, stable sort.

``reduce`` views the input as [outputs, reduced] without copying (kept and reduced dims
each coalesced to a canonical tuple) and picks one of two kernels:

* ``rows``: one block per output (grid-stride over outputs); its threads stride over the
  reduced elements, then combine in a shared-memory tree. Float sums are Kahan-compensated
  per thread and pairwise across threads.
* ``columns``: one thread per output when there are many outputs and the innermost kept
  dim is contiguous (e.g. a sum over dim 0): neighbouring threads read neighbouring
  addresses, each walks its reduced run serially (Kahan for float sums).

max/min propagate NaN; integer sums wrap like NumPy (i64 accumulator, stored in the
dtype). ``arg_reduce`` is a block-per-row (value, index) tree with ties to the first index
and NaN winning. ``cumsum`` and ``sort`` run one thread per row (a serial scan, a
bottom-up merge sort with NaN last: stable, so equal keys keep their order).
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda

from . import _access as A
from . import _runtime, memory
from .layouts import canonical, contiguous_strides, storage_dtype

SUM, PROD, MAX, MIN = range(4)
OP_CODE = {"sum": SUM, "prod": PROD, "max": MAX, "min": MIN}
COLUMN_MIN_OUTPUTS = 1024  # outputs from which the column kernel serves a contiguous inner dim


def _block() -> int:
    return _runtime.threads()


@functools.cache
def _combine(acc: str):
    T = A.ACC_TYPES[acc]
    from ._intrinsics import device_fn

    @device_fn
    def combine(op, a, b):
        if op == 0:
            return a + b
        elif op == 1:
            return a * b
        elif op == 2:
            return a if (a > b or a != a) else b
        return a if (a < b or a != a) else b

    ident = {
        SUM: T(0), PROD: T(1),
        MAX: T(-np.inf) if acc != "i64" else T(np.iinfo(np.int64).min),
        MIN: T(np.inf) if acc != "i64" else T(np.iinfo(np.int64).max),
    }  # fmt: skip
    return combine, ident


@_runtime.kernel_factory
def rows_kernel(acc: str, store_kind: int, block: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)
    combine, ident = _combine(acc)
    is_float = acc != "i64"
    Z = T(0)

    @cuda.jit(cache=True)
    def rows(x, xoff, kshape, kin, kout, rshape, rstr, m, nout, out, op, kind, identity):
        buf = cuda.shared.array(block, T)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nout, cuda.gridDim.x):
            rem = row
            base = xoff
            obase = 0
            for d in range(len(kshape) - 1, -1, -1):
                q = rem // kshape[d]
                idx = rem - q * kshape[d]
                rem = q
                base += idx * kin[d]
                obase += idx * kout[d]
            acc_v = identity
            comp = Z
            for j in range(tid, m, block):
                rem = j
                off = base
                for d in range(len(rshape) - 1, -1, -1):
                    if rem == 0:
                        break
                    q = rem // rshape[d]
                    off += (rem - q * rshape[d]) * rstr[d]
                    rem = q
                v = load(x, off, kind)
                if op == 0 and is_float:  # Kahan
                    y = v - comp
                    t = acc_v + y
                    comp = (t - acc_v) - y
                    acc_v = t
                else:
                    acc_v = combine(op, acc_v, v)
            buf[tid] = acc_v
            cuda.syncthreads()
            s = block // 2
            while s > 0:
                if tid < s:
                    buf[tid] = combine(op, buf[tid], buf[tid + s])
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                store(out, obase, buf[0])
            cuda.syncthreads()

    return rows


@_runtime.kernel_factory
def columns_kernel(acc: str, store_kind: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)
    combine, _ = _combine(acc)
    is_float = acc != "i64"
    Z = T(0)

    @cuda.jit(cache=True)
    def columns(x, xoff, kshape, kin, rshape, rstr, m, nout, out, op, kind, identity):
        for o in range(cuda.grid(1), nout, cuda.gridsize(1)):
            rem = o
            base = xoff
            for d in range(len(kshape) - 1, -1, -1):
                q = rem // kshape[d]
                base += (rem - q * kshape[d]) * kin[d]
                rem = q
            acc_v = identity
            comp = Z
            for j in range(m):
                rem = j
                off = base
                for d in range(len(rshape) - 1, -1, -1):
                    if rem == 0:
                        break
                    q = rem // rshape[d]
                    off += (rem - q * rshape[d]) * rstr[d]
                    rem = q
                v = load(x, off, kind)
                if op == 0 and is_float:
                    y = v - comp
                    t = acc_v + y
                    comp = (t - acc_v) - y
                    acc_v = t
                else:
                    acc_v = combine(op, acc_v, v)
            store(out, o, acc_v)

    return columns


def reduce(op: str, x, layout, dtype, dims):
    shape, strides = layout.shape, layout.strides
    kept = [i for i in range(len(shape)) if i not in dims]
    kshape = [shape[i] for i in kept]
    nout = math.prod(kshape)
    m = math.prod(shape[d] for d in dims)
    out = memory.empty(nout, storage_dtype(dtype))
    if nout == 0:
        return out
    acc = A.acc_name(dtype)
    code = OP_CODE[op]
    _, ident = _combine(acc)
    ks, (kin, kout) = canonical(kshape, [strides[i] for i in kept], contiguous_strides(kshape))
    rs, (rst,) = canonical([shape[d] for d in dims], [strides[d] for d in dims])
    sk = A.store_kind(dtype, acc)
    kind = A.load_kind(dtype)
    inner_contig = kshape and strides[kept[-1]] == 1 and kshape[-1] > 1
    if nout >= COLUMN_MIN_OUTPUTS and inner_contig:
        blocks, threads = _runtime.grid(nout)
        columns_kernel(acc, sk)[blocks, threads](x, layout.offset, ks, kin, rs, rst, m, nout,
                                                 out, code, kind, ident[code])  # fmt: skip
        return out
    block = _block()
    blocks = max(1, min(nout, _runtime.grid(nout * block, block)[0]))
    rows_kernel(acc, sk, block)[blocks, block](x, layout.offset, ks, kin, kout, rs, rst, m,
                                               nout, out, code, kind, ident[code])  # fmt: skip
    return out


# ----------------------------------------------------------------------------- argmax/argmin
@_runtime.kernel_factory
def arg_kernel(acc: str, block: int):
    T = A.ACC_TYPES[acc]
    load = A.loader(acc)
    BIG = numba.int64(np.iinfo(np.int64).max)

    from ._intrinsics import device_fn

    @device_fn
    def better(is_max, v, i, bv, bi):
        if bi == BIG:
            return True
        if bv != bv:
            return v != v and i < bi
        if v != v:
            return True
        if v == bv:
            return i < bi
        return v > bv if is_max else v < bv

    @cuda.jit(cache=True)
    def argk(x, xoff, kshape, kin, L, es, nrows, out, is_max, kind):
        vals = cuda.shared.array(block, T)
        idxs = cuda.shared.array(block, numba.int64)
        tid = cuda.threadIdx.x
        for row in range(cuda.blockIdx.x, nrows, cuda.gridDim.x):
            rem = row
            base = xoff
            for d in range(len(kshape) - 1, -1, -1):
                q = rem // kshape[d]
                base += (rem - q * kshape[d]) * kin[d]
                rem = q
            bv = T(0)
            bi = BIG
            for j in range(tid, L, block):
                v = load(x, base + j * es, kind)
                if better(is_max, v, j, bv, bi):
                    bv = v
                    bi = j
            vals[tid] = bv
            idxs[tid] = bi
            cuda.syncthreads()
            s = block // 2
            while s > 0:
                if tid < s and idxs[tid + s] != BIG:
                    if better(is_max, vals[tid + s], idxs[tid + s], vals[tid], idxs[tid]):
                        vals[tid] = vals[tid + s]
                        idxs[tid] = idxs[tid + s]
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[row] = idxs[0]
            cuda.syncthreads()

    return argk


def _row_form(layout, dim):
    """(row shape4, row strides4, L, elem stride, nrows) with ``dim`` as the row."""
    shape, strides = list(layout.shape), list(layout.strides)
    if not shape:
        return (1, 1, 1, 1), (0, 0, 0, 0), 1, 1, 1
    L, es = shape.pop(dim), strides.pop(dim)
    rs, (rst,) = canonical(shape, strides)
    return rs, rst, L, es, math.prod(shape)


def arg_reduce(op: str, x, layout, dtype, dim):
    rs, rst, L, es, nrows = _row_form(layout, dim)
    out = memory.empty(nrows, np.int64)
    if nrows == 0:
        return out
    block = _block()
    blocks = max(1, min(nrows, _runtime.grid(nrows * block, block)[0]))
    arg_kernel(A.acc_name(dtype), block)[blocks, block](
        x, layout.offset, rs, rst, L, es, nrows, out, op == "argmax", A.load_kind(dtype))
    return out


# ----------------------------------------------------------------------------- cumsum
@_runtime.kernel_factory
def cumsum_kernel(acc: str, store_kind: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)

    @cuda.jit(cache=True)
    def cums(x, xoff, rshape, rin, rout, L, es, eo, nrows, out, kind):
        for row in range(cuda.grid(1), nrows, cuda.gridsize(1)):
            rem = row
            base = xoff
            obase = 0
            for d in range(len(rshape) - 1, -1, -1):
                q = rem // rshape[d]
                idx = rem - q * rshape[d]
                base += idx * rin[d]
                obase += idx * rout[d]
                rem = q
            s = T(0)
            for j in range(L):
                s += load(x, base + j * es, kind)
                store(out, obase + j * eo, s)

    return cums


def _moved_rows(layout, dim):
    """Rows along ``dim`` for the input and for a contiguous output of the same shape."""
    shape, strides = list(layout.shape), list(layout.strides)
    ostrides = list(contiguous_strides(shape))
    if not shape:
        return (1, 1, 1, 1), (0,) * 4, (0,) * 4, 1, 1, 1, 1
    L, es, eo = shape.pop(dim), strides.pop(dim), ostrides.pop(dim)
    rs, (rin, rout) = canonical(shape, strides, ostrides)
    return rs, rin, rout, L, es, eo, math.prod(shape)


def cumsum(x, layout, dtype, dim):
    out = memory.empty(layout.numel, storage_dtype(dtype))
    rs, rin, rout, L, es, eo, nrows = _moved_rows(layout, dim)
    if layout.numel == 0:
        return out
    acc = A.acc_name(dtype)
    blocks, threads = _runtime.grid(nrows)
    cumsum_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
        x, layout.offset, rs, rin, rout, L, es, eo, nrows, out, A.load_kind(dtype))
    return out


# ----------------------------------------------------------------------------- sort
@_runtime.kernel_factory
def sort_kernel(acc: str, store_kind: int):
    load, store = A.loader(acc), A.storer(store_kind, acc)
    from ._intrinsics import device_fn

    @device_fn
    def before(a, b, desc):
        """a strictly before b (NaN counts as the largest value)."""
        if desc:
            return (a != a and b == b) or a > b
        return (b != b and a == a) or a < b

    @cuda.jit(cache=True)
    def sortk(x, xoff, rshape, rin, rout, L, es, eo, nrows, kA, kB, iA, iB, out, oidx,
              desc, kind):  # fmt: skip
        for row in range(cuda.grid(1), nrows, cuda.gridsize(1)):
            rem = row
            base = xoff
            obase = 0
            for d in range(len(rshape) - 1, -1, -1):
                q = rem // rshape[d]
                idx = rem - q * rshape[d]
                base += idx * rin[d]
                obase += idx * rout[d]
                rem = q
            r0 = row * L
            for j in range(L):
                kA[r0 + j] = load(x, base + j * es, kind)
                iA[r0 + j] = j
            width = 1
            src_is_a = True
            while width < L:
                for lo in range(0, L, 2 * width):
                    mid = min(lo + width, L)
                    hi = min(lo + 2 * width, L)
                    i, j, k = lo, mid, lo
                    while k < hi:
                        if src_is_a:
                            take_right = j < hi and (i >= mid or before(kA[r0 + j], kA[r0 + i],
                                                                        desc))  # fmt: skip
                            if take_right:
                                kB[r0 + k] = kA[r0 + j]
                                iB[r0 + k] = iA[r0 + j]
                                j += 1
                            else:
                                kB[r0 + k] = kA[r0 + i]
                                iB[r0 + k] = iA[r0 + i]
                                i += 1
                        else:
                            take_right = j < hi and (i >= mid or before(kB[r0 + j], kB[r0 + i],
                                                                        desc))  # fmt: skip
                            if take_right:
                                kA[r0 + k] = kB[r0 + j]
                                iA[r0 + k] = iB[r0 + j]
                                j += 1
                            else:
                                kA[r0 + k] = kB[r0 + i]
                                iA[r0 + k] = iB[r0 + i]
                                i += 1
                        k += 1
                src_is_a = not src_is_a
                width *= 2
            for j in range(L):
                if src_is_a:
                    store(out, obase + j * eo, kA[r0 + j])
                    oidx[obase + j * eo] = iA[r0 + j]
                else:
                    store(out, obase + j * eo, kB[r0 + j])
                    oidx[obase + j * eo] = iB[r0 + j]

    return sortk


def sort(x, layout, dtype, dim, descending):
    n = layout.numel
    out = memory.empty(n, storage_dtype(dtype))
    oidx = memory.empty(n, np.int64)
    if n == 0:
        return out, oidx
    acc = A.acc_name(dtype)
    rs, rin, rout, L, es, eo, nrows = _moved_rows(layout, dim)
    T = A.np_acc(acc)
    kA, kB = memory.empty(n, T), memory.empty(n, T)
    iA, iB = memory.empty(n, np.int64), memory.empty(n, np.int64)
    blocks, threads = _runtime.grid(nrows)
    sort_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
        x, layout.offset, rs, rin, rout, L, es, eo, nrows, kA, kB, iA, iB, out, oidx,
        bool(descending), A.load_kind(dtype))
    return out, oidx

