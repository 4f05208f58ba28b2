"""Indexing: gather and its adjoint scatter_add; index_select / index_add are the same
kernels with the 1-D index broadcast (stride 0) over the other dims.

A position of the index tensor is split into (outer dims, the indexed dim, inner dims);
outer and inner dims are coalesced jointly for every operand, so strided operands are
read in place. ``scatter`` adds with atomics into an f32/f64/i64 accumulator (f16/bf16
and u8/u32 accumulate wide and are rounded/wrapped once at the end), so repeated indices
add up. Indices are range-checked on the device first (one min/max reduction read back)
so a bad one raises IndexOutOfRangeError and nothing is read or written out of bounds.
"""

from __future__ import annotations

import math

from numba import cuda

from shrew_core.dtypes import f32, f64, i64
from shrew_core.errors import IndexOutOfRangeError, fmt_shape
from shrew_core.layout import Layout

from . import _access as A
from . import _runtime, memory
from .layouts import canonical, contiguous_strides, storage_dtype


def check(op: str, index, index_layout, size: int, dim: int, shape) -> None:
    """Raise IndexOutOfRangeError unless every index is in [0, size)."""
    if index_layout.numel == 0:
        return
    from . import reduce as R

    dims = tuple(range(len(index_layout.shape)))
    lo = int(R.reduce("min", index, index_layout, i64, dims).copy_to_host()[0])
    hi = int(R.reduce("max", index, index_layout, i64, dims).copy_to_host()[0])
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexOutOfRangeError(
            f"{op}: index {bad} is out of range for dim {dim} of size {size} "
            f"(shape {fmt_shape(shape)}; valid indices are 0..{size - 1})"
        )


def _split(shape, dim, *strides_list):
    """Canonical (outer, inner) forms of ``shape`` around ``dim`` for every stride list."""
    outer = canonical(shape[:dim], *[s[:dim] for s in strides_list])
    inner = canonical(shape[dim + 1 :], *[s[dim + 1 :] for s in strides_list])
    return outer, inner


@_runtime.kernel_factory
def gather_kernel():

    @cuda.jit(cache=True)
    def gather(n, oshape, ox, oi, J, xd, idd, ishape, ix, ii, x, xoff, idx, ioff, out):
        ninner = 1
        for d in range(len(ishape)):
            ninner *= ishape[d]
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            rem_in = i % ninner
            j = (i // ninner) % J
            o = i // (ninner * J)
            px = xoff
            pi = ioff + j * idd
            for d in range(len(oshape) - 1, -1, -1):
                q = o // oshape[d]
                k = o - q * oshape[d]
                o = q
                px += k * ox[d]
                pi += k * oi[d]
            for d in range(len(ishape) - 1, -1, -1):
                q = rem_in // ishape[d]
                k = rem_in - q * ishape[d]
                rem_in = q
                px += k * ix[d]
                pi += k * ii[d]
            out[i] = x[px + idx[pi] * xd]

    return gather


@_runtime.kernel_factory
def scatter_kernel(acc: str):
    load = A.loader(acc)

    @cuda.jit(cache=True)
    def scatter(n, oshape, osrc, oi, oout, J, sd, idd, od, ishape, isrc, ii, iout, src, soff,
                idx, ioff, out, kind):  # fmt: skip
        ninner = 1
        for d in range(len(ishape)):
            ninner *= ishape[d]
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            rem_in = i % ninner
            j = (i // ninner) % J
            o = i // (ninner * J)
            ps = soff + j * sd
            pi = ioff + j * idd
            po = 0
            for d in range(len(oshape) - 1, -1, -1):
                q = o // oshape[d]
                k = o - q * oshape[d]
                o = q
                ps += k * osrc[d]
                pi += k * oi[d]
                po += k * oout[d]
            for d in range(len(ishape) - 1, -1, -1):
                q = rem_in // ishape[d]
                k = rem_in - q * ishape[d]
                rem_in = q
                ps += k * isrc[d]
                pi += k * ii[d]
                po += k * iout[d]
            cuda.atomic.add(out, po + idx[pi] * od, load(src, ps, kind))

    return scatter


def gather(x, layout, dtype, dim, index, index_layout):
    check("gather", index, index_layout, layout.shape[dim], dim, layout.shape)
    return _gather(x, layout, dtype, dim, index, index_layout)


def _gather(x, layout, dtype, dim, index, index_layout):
    shape = index_layout.shape
    n = math.prod(shape)
    out = memory.empty(n, storage_dtype(dtype))
    if n == 0:
        return out
    (osh, (ox, oi)), (ish, (ix, ii)) = _split(shape, dim, layout.strides, index_layout.strides)
    blocks, threads = _runtime.grid(n)
    gather_kernel()[blocks, threads](n, osh, ox, oi, shape[dim], layout.strides[dim],
                                     index_layout.strides[dim], ish, ix, ii, x, layout.offset,
                                     index, index_layout.offset, out)  # fmt: skip
    return out


def _acc_dtype(dtype):
    acc = A.acc_name(dtype)
    return acc, {"f32": f32, "f64": f64, "i64": i64}[acc]


def scatter_add(shape, dim, index, index_layout, src, src_layout, dtype):
    check("scatter_add", index, index_layout, shape[dim], dim, tuple(shape))
    return _scatter_add(tuple(shape), dim, index, index_layout, src, src_layout, dtype)


def _scatter_add(shape, dim, index, index_layout, src, src_layout, dtype):
    from . import elementwise as ew

    acc, acc_dt = _acc_dtype(dtype)
    out = ew.fill(shape, 0, acc_dt)
    ishape = index_layout.shape
    n = math.prod(ishape)
    if n:
        ost = contiguous_strides(shape)
        (osh, (os_, oi, oo)), (ish, (is_, ii, io)) = _split(
            ishape, dim, src_layout.strides, index_layout.strides, ost)
        blocks, threads = _runtime.grid(n)
        scatter_kernel(acc)[blocks, threads](
            n, osh, os_, oi, oo, ishape[dim], src_layout.strides[dim],
            index_layout.strides[dim], ost[dim], ish, is_, ii, io, src, src_layout.offset,
            index, index_layout.offset, out, A.load_kind(dtype))  # fmt: skip
    if acc_dt is dtype:
        return out
    return ew.cast(out, Layout.contiguous(shape), acc_dt, dtype)


def _broadcast_index(index_layout, shape, dim) -> Layout:
    """The 1-D index seen as a tensor of ``shape`` varying only along ``dim``."""
    strides = [0] * len(shape)
    strides[dim] = index_layout.strides[0] if index_layout.shape[0] > 1 else 0
    return Layout(tuple(shape), tuple(strides), index_layout.offset)


def index_select(x, layout, dtype, dim, index, index_layout):
    check("index_select", index, index_layout, layout.shape[dim], dim, layout.shape)
    shape = list(layout.shape)
    shape[dim] = index_layout.shape[0]
    full = Layout(tuple(shape), layout.strides, layout.offset)
    return _gather(x, full, dtype, dim, index, _broadcast_index(index_layout, shape, dim))


def index_add(shape, dim, index, index_layout, src, src_layout, dtype):
    check("index_add", index, index_layout, shape[dim], dim, shape)
    il = _broadcast_index(index_layout, src_layout.shape, dim)
    return _scatter_add(tuple(shape), dim, index, il, src, src_layout, dtype)

