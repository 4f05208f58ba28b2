"""2-D convolution (NCHW cross-correlation, groups, stride, padding, dilation) as im2col +
batched GEMM, so the FLOPs go to cuBLAS on a GPU (the tiled kernel under the simulator).

* forward: ``cols[N, C*KH*KW, OH*OW]`` (one thread per element, read from the strided
  input, zero in the padding), then ``W[G, Og, Cg*KH*KW] @ cols[N, G, ...]`` as one
  batched matmul whose weight batch dim over N has stride 0: the result is already
  ``[N, O, OH, OW]``.
* grad_input: ``Wᵀ @ grad`` (the transpose is a view, a cuBLAS flag) then col2im, which
  gathers for each input pixel the column entries that read it (no atomics, deterministic).
* grad_weight: ``grad[N, G, Og, L] @ colsᵀ`` batched over (N, G), summed over N.
"""

from __future__ import annotations

from numba import cuda

from shrew_core.layout import Layout

from . import _access as A
from . import _runtime, memory
from .layouts import storage_dtype


def _out_hw(H, W, w_shape, stride, padding, dilation):
    kh, kw = w_shape[2:]
    oh = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return max(oh, 0), max(ow, 0)


@_runtime.kernel_factory
def im2col_kernel():

    @cuda.jit(cache=True)
    def im2col(x, xo, st, C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, n, cols, zero):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            ow = e % OW
            oh = (e // OW) % OH
            kw = (e // (OW * OH)) % KW
            kh = (e // (OW * OH * KW)) % KH
            c = (e // (OW * OH * KW * KH)) % C
            b = e // (OW * OH * KW * KH * C)
            ih = oh * sh - ph + kh * dh
            iw = ow * sw - pw + kw * dw
            if 0 <= ih < H and 0 <= iw < W:
                cols[e] = x[xo + b * st[0] + c * st[1] + ih * st[2] + iw * st[3]]
            else:
                cols[e] = zero

    return im2col


@_runtime.kernel_factory
def col2im_kernel(acc: str, sk: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(sk, acc)

    @cuda.jit(cache=True)
    def col2im(cols, C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, n, out, kind):
        for e in range(cuda.grid(1), n, cuda.gridsize(1)):
            iw = e % W
            ih = (e // W) % H
            c = (e // (W * H)) % C
            b = e // (W * H * C)
            s = T(0.0)
            for kh in range(KH):
                th = ih + ph - kh * dh
                if th < 0 or th % sh != 0:
                    continue
                oh = th // sh
                if oh >= OH:
                    continue
                for kw in range(KW):
                    tw = iw + pw - kw * dw
                    if tw < 0 or tw % sw != 0:
                        continue
                    ow = tw // sw
                    if ow >= OW:
                        continue
                    r = ((b * C + c) * KH + kh) * KW + kw
                    s += load(cols, r * OH * OW + oh * OW + ow, kind)
            store(out, e, s)

    return col2im


def _im2col(x, layout, dtype, w_shape, stride, padding, dilation):
    N, C, H, W = layout.shape
    KH, KW = w_shape[2:]
    OH, OW = _out_hw(H, W, w_shape, stride, padding, dilation)
    n = N * C * KH * KW * OH * OW
    sdt = storage_dtype(dtype)
    cols = memory.empty(n, sdt)
    if n:
        blocks, threads = _runtime.grid(n)
        im2col_kernel()[blocks, threads](x, layout.offset, layout.strides, C, H, W, KH, KW, OH,
                                         OW, *stride, *padding, *dilation, n, cols,
                                         sdt.type(0))  # fmt: skip
    return cols, OH, OW


def _dense(backend, s, layout, dtype):
    if layout.offset == 0 and layout.is_contiguous():
        return s
    return backend.copy(s, layout, dtype)


def conv2d(backend, x, x_layout, w, w_layout, dtype, stride, padding, dilation, groups):
    N, C = x_layout.shape[:2]
    O, Cg, KH, KW = w_layout.shape
    G, Og, K = groups, O // groups, Cg * KH * KW
    cols, OH, OW = _im2col(x, x_layout, dtype, w_layout.shape, stride, padding, dilation)
    L = OH * OW
    w = _dense(backend, w, w_layout, dtype)
    wl = Layout((N, G, Og, K), (0, Og * K, K, 1), 0)
    cl = Layout((N, G, K, L), (G * K * L, K * L, L, 1), 0)
    return backend.matmul(w, wl, cols, cl, dtype)


def conv2d_grad_input(backend, grad, grad_layout, w, w_layout, dtype, input_shape, stride,
                      padding, dilation, groups):  # fmt: skip
    N, C, H, W = input_shape
    O, Cg, KH, KW = w_layout.shape
    G, Og, K = groups, O // groups, Cg * KH * KW
    OH, OW = grad_layout.shape[2:]
    L = OH * OW
    g = _dense(backend, grad, grad_layout, dtype)
    w = _dense(backend, w, w_layout, dtype)
    wt = Layout((N, G, K, Og), (0, Og * K, 1, K), 0)
    gl = Layout((N, G, Og, L), (G * Og * L, Og * L, L, 1), 0)
    cols = backend.matmul(w, wt, g, gl, dtype)  # [N, C*KH*KW, L]
    n = N * C * H * W
    out = memory.empty(n, storage_dtype(dtype))
    if n:
        acc = A.acc_name(dtype)
        blocks, threads = _runtime.grid(n)
        col2im_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
            cols, C, H, W, KH, KW, OH, OW, *stride, *padding, *dilation, n, out,
            A.load_kind(dtype))  # fmt: skip
    return out


def conv2d_grad_weight(backend, grad, grad_layout, x, x_layout, dtype, weight_shape, stride,
                       padding, dilation, groups):  # fmt: skip
    N = x_layout.shape[0]
    O, Cg, KH, KW = weight_shape
    G, Og, K = groups, O // groups, Cg * KH * KW
    cols, OH, OW = _im2col(x, x_layout, dtype, weight_shape, stride, padding, dilation)
    L = OH * OW
    g = _dense(backend, grad, grad_layout, dtype)
    gl = Layout((N, G, Og, L), (G * Og * L, Og * L, L, 1), 0)
    ct = Layout((N, G, L, K), (G * K * L, K * L, 1, L), 0)
    per_n = backend.matmul(g, gl, cols, ct, dtype)  # [N, G, Og, K]
    return backend.reduce("sum", per_n, Layout.contiguous((N, G * Og * K)), dtype, (0,))
