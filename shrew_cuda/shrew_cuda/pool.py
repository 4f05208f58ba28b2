"""2-D pooling (NCHW, torch semantics): max (with flat H*W indices; padding never wins;
NaN propagates), average (count_include_pad, ceil_mode) and adaptive average, forward and
backward. Forwards are one thread per output cell reading its window from the strided
input; backwards add each output's gradient into its window with atomics in an f32/f64
accumulator, rounded to the dtype once.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from shrew_core.dtypes import f32, f64
from shrew_core.layout import Layout

from . import _access as A
from . import _runtime, memory
from .layouts import storage_dtype


def out_size(size, k, s, p, d, ceil_mode) -> int:
    eff = d * (k - 1) + 1
    num = size + 2 * p - eff
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return max(o, 0)


def _acc(dtype):
    acc = A.acc_name(dtype)
    return acc, {"f32": f32, "f64": f64}[acc]


def _finish(buf, shape, acc_dt, dtype):
    if acc_dt is dtype:
        return buf
    from .elementwise import cast

    return cast(buf, Layout.contiguous(tuple(shape)), acc_dt, dtype)


@_runtime.kernel_factory
def max_fwd_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def fwd(x, xo, st, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, n, out, idx, kind):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            ow = e % OW
            oh = (e // OW) % OH
            c = (e // (OW * OH)) % C
            b = e // (OW * OH * C)
            base = xo + b * st[0] + c * st[1]
            best = T(0.0)
            bi = -1
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= H:
                    continue
                for j in range(kw):
                    iw = ow * sw - pw + j * dw
                    if iw < 0 or iw >= W:
                        continue
                    v = load(x, base + ih * st[2] + iw * st[3], kind)
                    if bi < 0 or v > best or (v != v and best == best):
                        best = v
                        bi = ih * W + iw
            store(out, e, best)
            idx[e] = bi

    return fwd


def max_pool2d(x, layout, dtype, kernel, stride, padding, dilation, ceil_mode):
    N, C, H, W = layout.shape
    OH = out_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = out_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    n = N * C * OH * OW
    out, idx = memory.empty(n, storage_dtype(dtype)), memory.empty(n, np.int64)
    if n:
        acc = A.acc_name(dtype)
        blocks, threads = _runtime.grid(n)
        max_fwd_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
            x, layout.offset, layout.strides, C, H, W, OH, OW, *kernel, *stride, *padding,
            *dilation, n, out, idx, A.load_kind(dtype))  # fmt: skip
    return out, idx


@_runtime.kernel_factory
def scatter_plane_kernel(acc: str):
    load = A.loader(acc)

    @cuda.jit(cache=True)
    def sc(g, go, gst, ind, io, ist, C, OH, OW, HW, n, out, kind):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            ow = e % OW
            oh = (e // OW) % OH
            c = (e // (OW * OH)) % C
            b = e // (OW * OH * C)
            k = ind[io + b * ist[0] + c * ist[1] + oh * ist[2] + ow * ist[3]]
            v = load(g, go + b * gst[0] + c * gst[1] + oh * gst[2] + ow * gst[3], kind)
            cuda.atomic.add(out, (b * C + c) * HW + k, v)

    return sc


def max_pool2d_backward(grad, grad_layout, indices, indices_layout, input_shape, dtype):
    from .elementwise import fill

    acc, acc_dt = _acc(dtype)
    N, C, H, W = input_shape
    buf = fill(input_shape, 0, acc_dt)
    n = grad_layout.numel
    if n:
        _, _, OH, OW = grad_layout.shape
        blocks, threads = _runtime.grid(n)
        scatter_plane_kernel(acc)[blocks, threads](
            grad, grad_layout.offset, grad_layout.strides, indices, indices_layout.offset,
            indices_layout.strides, C, OH, OW, H * W, n, buf, A.load_kind(dtype))  # fmt: skip
    return _finish(buf, input_shape, acc_dt, dtype)


@_runtime.kernel_factory
def avg_kernel(acc: str, sk: int, backward: bool):
    """Forward: out[e] = window mean. Backward: grad[e] / count added over the window."""
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def avg(x, xo, st, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, incl, adaptive, n, out, kind):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            ow = e % OW
            oh = (e // OW) % OH
            c = (e // (OW * OH)) % C
            b = e // (OW * OH * C)
            if adaptive:
                h0 = (oh * H) // OH
                h1 = -((-(oh + 1) * H) // OH)
                w0 = (ow * W) // OW
                w1 = -((-(ow + 1) * W) // OW)
                cnt = (h1 - h0) * (w1 - w0)
            else:
                hs = oh * sh - ph
                ws = ow * sw - pw
                h0, h1 = max(hs, 0), min(hs + kh, H)
                w0, w1 = max(ws, 0), min(ws + kw, W)
                if incl:
                    cnt = (min(hs + kh, H + ph) - hs) * (min(ws + kw, W + pw) - ws)
                else:
                    cnt = (h1 - h0) * (w1 - w0)
            if backward:
                gv = load(x, xo + b * st[0] + c * st[1] + oh * st[2] + ow * st[3], kind)
                gv = gv / T(cnt)
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        cuda.atomic.add(out, ((b * C + c) * H + ih) * W + iw, gv)
            else:
                s = T(0.0)
                base = xo + b * st[0] + c * st[1]
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        s += load(x, base + ih * st[2] + iw * st[3], kind)
                store(out, e, s / T(cnt))

    return avg


def _avg(x, layout, dtype, in_shape, out_hw, kernel, stride, padding, incl, adaptive, bwd):
    from .elementwise import fill

    N, C, H, W = in_shape
    OH, OW = out_hw
    n = N * C * OH * OW
    acc, acc_dt = _acc(dtype)
    if bwd:
        out = fill(in_shape, 0, acc_dt)
    else:
        out = memory.empty(n, storage_dtype(dtype))
    if n:
        blocks, threads = _runtime.grid(n)
        sk = A.store_kind(acc_dt if bwd else dtype, acc)
        avg_kernel(acc, sk, bwd)[blocks, threads](
            x, layout.offset, layout.strides, C, H, W, OH, OW, *kernel, *stride, *padding,
            bool(incl), bool(adaptive), n, out, A.load_kind(dtype))  # fmt: skip
    return _finish(out, in_shape, acc_dt, dtype) if bwd else out


def _avg_out(shape, kernel, stride, padding, ceil_mode):
    return tuple(out_size(s, k, st, p, 1, ceil_mode)
                 for s, k, st, p in zip(shape[2:], kernel, stride, padding))  # fmt: skip


def avg_pool2d(x, layout, dtype, kernel, stride, padding, ceil_mode, count_include_pad):
    ohw = _avg_out(layout.shape, kernel, stride, padding, ceil_mode)
    return _avg(x, layout, dtype, layout.shape, ohw, kernel, stride, padding,
                count_include_pad, False, False)  # fmt: skip


def avg_pool2d_backward(grad, grad_layout, input_shape, dtype, kernel, stride, padding,
                        ceil_mode, count_include_pad):  # fmt: skip
    return _avg(grad, grad_layout, dtype, input_shape, grad_layout.shape[2:], kernel, stride,
                padding, count_include_pad, False, True)  # fmt: skip


def adaptive_avg_pool2d(x, layout, dtype, output_size):
    return _avg(x, layout, dtype, layout.shape, output_size, (1, 1), (1, 1), (0, 0), False,
                True, False)  # fmt: skip


def adaptive_avg_pool2d_backward(grad, grad_layout, input_shape, dtype):
    return _avg(grad, grad_layout, dtype, input_shape, grad_layout.shape[2:], (1, 1), (1, 1),
                (0, 0), False, True, True)  # fmt: skip
