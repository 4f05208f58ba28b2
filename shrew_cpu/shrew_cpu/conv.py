"""Host side of 2-D convolution (NCHW, OIHW weights): im2col + BLAS GEMM and back.

forward      out[g]  = W[g] @ cols[g]              (cols = im2col(x): [G, K, N*L])
grad input   cols[g] = W[g]^T @ grad[g]; dx = col2im(cols)
grad weight  dW[g]   = grad[g] @ cols[g]^T

Three paths:

* **im2col + BLAS** (small, grouped and large-weight convolutions): NumPy builds the
  column matrix as one strided copy of the padded input, ``[C*KH*KW, N*OH*OW]`` with
  the batch inside the columns, so each group is ONE GEMM (not one per image); col2im
  is KH*KW strided adds. Nothing is compiled on this path, which is why convolutions
  below ``_config.CONV_FUSED_MACS`` multiply-adds take it: a first training step of a
  small CNN pays no Numba compilation for its convolutions. A 1x1, stride-1, unpadded
  convolution skips im2col (the input already is the column matrix).
* **fused per image** (ungrouped, weight of at most ``FUSED_MAX_WEIGHT`` elements, at
  least ``CONV_FUSED_MACS`` multiply-adds: typical CNN layers on real images): Numba
  kernels (``kernels.conv.conv_*_imgs``) build one image's column matrix in an L2-sized
  scratch and multiply it at once with blocked SIMD loops (no [N, K, L] buffer, no
  transposed copies, no OpenBLAS thread pool, which wakes slowly on a busy 2-core
  machine); image ranges run on the worker threads (``threads.py``).
* **direct stride-1** (the fused path's stride-1 convolutions with padding at most the
  kernel's reach, ``_direct``): no column matrix at all (``kernels.conv.conv_direct_*``).
  Each image is zero-padded into a small scratch and the output computed on the
  padded-width grid, where every kernel tap is a flat shift of the padded image; the
  input gradient is the same kernel run on the output gradient with the flipped,
  transposed weight and padding ``d*(k-1) - p`` (a full convolution), the weight
  gradient SIMD dot products of the output gradient with the shifted images. The input
  and the output gradient are read through their strides (``_source``): the broadcast
  gradient of ``y.sum()`` is never materialised.

f16/bf16 compute in f32.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from shrew_core.layout import contiguous_strides

from . import _config
from .gemm import matmul_threads
from .kernels import conv as K
from .strided import contiguous
from .threads import get_num_threads, parallel_for, ranges

_F32 = np.dtype(np.float32)


def _calc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 else np_dtype


def out_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _geometry(xshape, wshape, stride, padding, dilation):
    N, C, H, W = xshape
    KH, KW = wshape[2], wshape[3]
    OH = out_size(H, KH, stride[0], padding[0], dilation[0])
    OW = out_size(W, KW, stride[1], padding[1], dilation[1])
    return N, C, H, W, KH, KW, OH, OW


def _pointwise(KH, KW, stride, padding):
    return KH == KW == 1 and tuple(stride) == (1, 1) and tuple(padding) == (0, 0)


#: Ungrouped convolutions whose weight is at most this many elements (OC * C*KH*KW) take
#: the fused per-image Numba path (im2col into an L2-sized scratch + blocked SIMD loops);
#: larger ones use im2col + OpenBLAS, which wins once the GEMMs are big. Measured (fwd+bwd,
#: 3x3, 2 cores): 64->64 on [8,64,56,56] fused 50 ms vs BLAS 90-97; 128->128 on
#: [8,128,28,28] 42 vs 95; 256->256 on [4,256,14,14] 29 vs 22.
FUSED_MAX_WEIGHT = 128 * 1152


def _fused(G, OC, K_, KH, KW, stride, padding, macs):
    return (G == 1 and OC * K_ <= FUSED_MAX_WEIGHT and macs >= max(1, _config.CONV_FUSED_MACS)
            and not _pointwise(KH, KW, stride, padding))  # fmt: skip


def _direct(stride, padding, dilation, KH, KW):
    """Stride 1 and padding at most the kernel's reach (the input gradient, a convolution
    of the output gradient with padding ``d*(k-1) - p``, needs it non-negative)."""
    return (tuple(stride) == (1, 1) and padding[0] <= dilation[0] * (KH - 1)
            and padding[1] <= dilation[1] * (KW - 1))  # fmt: skip


def _direct_geometry(xshape, wshape, padding, dilation, calc):
    """Padded sizes, output sizes, the tap offsets in the padded image (shared between
    calls: never written) and the padded-width pixel count (whole tiles) of a stride-1
    convolution."""
    return _direct_geometry_of(*map(tuple, (xshape, wshape, padding, dilation)), calc)


@functools.lru_cache(maxsize=64)
def _direct_geometry_of(xshape, wshape, padding, dilation, calc):
    _, C, H, W = xshape
    KH, KW = wshape[2:]
    (ph, pw), (dh, dw) = padding, dilation
    Hp, Wp = H + 2 * ph, W + 2 * pw
    OH, OW = Hp - dh * (KH - 1), Wp - dw * (KW - 1)
    offs = (np.arange(C)[:, None, None] * (Hp * Wp) + np.arange(KH)[:, None] * (dh * Wp)
            + np.arange(KW) * dw).reshape(-1)  # fmt: skip
    tile = K.tile_pixels(calc.itemsize)
    return Hp, Wp, OH, OW, offs, -(-OH * Wp // tile) * tile


def _source(storage, layout, calc):
    """A flat ``calc`` array and (offset, 4 strides) reading the 4-D view ``layout`` of
    ``storage`` in place: broadcast and permuted views (the output gradient of
    ``y.sum()`` is one element broadcast) are not materialised. A 2-byte storage larger
    than its view is copied first (converting it whole could cost more)."""
    if storage.dtype != calc and storage.size > layout.numel:
        return contiguous(storage, layout).astype(calc).reshape(-1), (0, *contiguous_strides(
            layout.shape))  # fmt: skip
    return storage.astype(calc, copy=False), (layout.offset, *layout.strides)


def _conv_direct(src, xshape, wk, padding, dilation, calc):
    """Stride-1 convolution of the 4-D view ``src`` (see ``_source``) of shape ``xshape``
    [N, C, H, W] by ``wk`` [M, C, KH, KW] on the worker threads
    (``kernels.conv.conv_direct_imgs``): flat [N, M, OH, OW]."""
    N, C, H, W = xshape
    M = wk.shape[0]
    Hp, Wp, OH, OW, offs, P = _direct_geometry(xshape, wk.shape, padding, dilation, calc)
    out = np.empty(N * M * OH * OW, calc)
    args = (*src, np.ascontiguousarray(wk, calc).reshape(-1), offs, C, H, W, *padding, Hp, Wp,
            M, OH, OW, out)  # fmt: skip
    parallel_for(K.conv_direct_imgs, [args + (np.zeros(offs[-1] + P, calc), np.empty(M * P, calc),
                                              lo, hi) for lo, hi in _image_ranges(N)])  # fmt: skip
    return out


def _conv_direct_wgrad(gsrc, xsrc, xshape, wshape, padding, dilation, calc):
    """Weight gradient [M, C*KH*KW] of ``_conv_direct`` (the output gradient and the input
    as ``_source`` views): per-range partial sums."""
    N, C, H, W = xshape
    M = wshape[0]
    Hp, Wp, OH, OW, offs, P = _direct_geometry(xshape, wshape, padding, dilation, calc)
    parts = _image_ranges(N)
    partial = np.zeros((len(parts), M * offs.size), calc)
    args = (*gsrc, *xsrc, offs, C, H, W, *padding, Hp, Wp, M, OH, OW)
    parallel_for(K.conv_direct_wgrad_imgs,
                 [args + (partial[i], np.zeros(offs[-1] + P, calc), np.zeros(M * P, calc), lo, hi)
                  for i, (lo, hi) in enumerate(parts)])  # fmt: skip
    return partial.sum(0)


def _image_ranges(N):
    return ranges(N, 2 * get_num_threads())


def _windows(xv, KH, KW, OH, OW, stride, padding, dilation):
    """The [C, KH, KW, N, OH, OW] strided view of the padded input that im2col copies."""
    ph, pw = padding
    xp = np.pad(xv, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else xv
    sn, sc, sh_, sw_ = xp.strides
    return as_strided(xp, (xp.shape[1], KH, KW, xp.shape[0], OH, OW),
                      (sc, sh_ * dilation[0], sw_ * dilation[1], sn, sh_ * stride[0],
                       sw_ * stride[1]), writeable=False)  # fmt: skip


def _im2col(xv, KH, KW, OH, OW, stride, padding, dilation):
    """The [C*KH*KW, N*OH*OW] column matrix of ``xv`` [N, C, H, W]."""
    N, C = xv.shape[:2]
    win = _windows(xv, KH, KW, OH, OW, stride, padding, dilation)
    return np.ascontiguousarray(win).reshape(C * KH * KW, N * OH * OW)


def _col2im(cols, xshape, KH, KW, OH, OW, stride, padding, dilation):
    """dx [N, C, H, W] (flat) = the adjoint of ``_im2col`` applied to ``cols``."""
    N, C, H, W = xshape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), cols.dtype)
    c6 = cols.reshape(C, KH, KW, N, OH, OW)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dh, kw * dw
            dst = dxp[:, :, h0 : h0 + sh * (OH - 1) + 1 : sh, w0 : w0 + sw * (OW - 1) + 1 : sw]
            dst += c6[:, kh, kw].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(dxp[:, :, ph : ph + H, pw : pw + W]).reshape(-1)


def _batch_to_front(a, G, rows, N, L):
    """[G, rows, N*L] -> flat [N, G*rows, L] (the NCHW order of the result)."""
    return np.ascontiguousarray(a.reshape(G * rows, N, L).transpose(1, 0, 2)).reshape(-1)


def _batch_to_back(gv, G, rows, N, L):
    """grad [N, G*rows, L] -> [G, rows, N*L] (columns like ``_im2col``'s)."""
    return np.ascontiguousarray(gv.reshape(N, G * rows, L).transpose(1, 0, 2)).reshape(
        G, rows, N * L
    )


def conv2d(x, xl, w, wl, np_dtype, stride, padding, dilation, groups):
    calc = _calc(np_dtype)
    wv = contiguous(w, wl).astype(calc, copy=False)
    N, C, H, W, KH, KW, OH, OW = _geometry(xl.shape, wv.shape, stride, padding, dilation)
    OC, G = wv.shape[0], groups
    K_, L = (C // G) * KH * KW, OH * OW
    if K_ == 0:
        return np.zeros(N * OC * L, np_dtype)  # no input channels: all zeros
    fused = _fused(G, OC, K_, KH, KW, stride, padding, N * OC * K_ * L)
    if fused and _direct(stride, padding, dilation, KH, KW):
        out = _conv_direct(_source(x, xl, calc), xl.shape, wv, padding, dilation, calc)
        return out.astype(np_dtype, copy=False)
    xv = contiguous(x, xl).astype(calc, copy=False)
    if fused:
        out = np.empty((N, OC, L), calc)
        args = (xv.reshape(-1), np.ascontiguousarray(wv.reshape(OC, K_)), C, H, W, KH, KW,
                *stride, *padding, *dilation, OH, OW, out)  # fmt: skip
        parallel_for(K.conv_fwd_imgs, [args + (np.empty((K_, L), calc), lo, hi)
                                       for lo, hi in _image_ranges(N)])  # fmt: skip
        return out.astype(np_dtype, copy=False).reshape(-1)
    w3 = wv.reshape(G, OC // G, K_)
    if _pointwise(KH, KW, stride, padding):  # per-image GEMMs on the input itself
        out = matmul_threads(w3, xv.reshape(N, G, K_, L))
        return out.astype(np_dtype, copy=False).reshape(-1)
    cols = _im2col(xv, KH, KW, OH, OW, stride, padding, dilation).reshape(G, K_, N * L)
    out = _batch_to_front(matmul_threads(w3, cols), G, OC // G, N, L)
    return out.astype(np_dtype, copy=False)


def conv2d_grad_input(grad, gl, w, wl, np_dtype, input_shape, stride, padding, dilation, groups):
    calc = _calc(np_dtype)
    wv = contiguous(w, wl).astype(calc, copy=False)
    N, C, H, W, KH, KW, OH, OW = _geometry(input_shape, wv.shape, stride, padding, dilation)
    OC, G = wv.shape[0], groups
    K_, L = (C // G) * KH * KW, OH * OW
    if K_ == 0:
        return np.zeros(N * C * H * W, np_dtype)
    fused = _fused(G, OC, K_, KH, KW, stride, padding, N * OC * K_ * L)
    if fused and _direct(stride, padding, dilation, KH, KW):  # full conv., flipped weight
        wf = wv.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
        pf = (dilation[0] * (KH - 1) - padding[0], dilation[1] * (KW - 1) - padding[1])
        dx = _conv_direct(_source(grad, gl, calc), gl.shape, wf, pf, dilation, calc)
        return dx.astype(np_dtype, copy=False)
    gv = contiguous(grad, gl).astype(calc, copy=False)
    if fused:
        out = np.zeros(N * C * H * W, calc)
        args = (np.ascontiguousarray(gv).reshape(N, OC, L),
                np.ascontiguousarray(wv.reshape(OC, K_).T), C, H, W, KH, KW, *stride,
                *padding, *dilation, OH, OW, out)  # fmt: skip
        parallel_for(K.conv_bwd_input_imgs, [args + (np.empty((K_, L), calc), lo, hi)
                                             for lo, hi in _image_ranges(N)])  # fmt: skip
        return out.astype(np_dtype, copy=False)
    wt = wv.reshape(G, OC // G, K_).transpose(0, 2, 1)  # (G, K, OCg): a view, no copy
    if _pointwise(KH, KW, stride, padding):
        cols = matmul_threads(wt, gv.reshape(N, G, OC // G, L))  # (N, G, K, L) = dx
        return cols.astype(np_dtype, copy=False).reshape(-1)
    cols = matmul_threads(wt, _batch_to_back(gv, G, OC // G, N, L))  # (G, K, N*L)
    dx = _col2im(cols, (N, C, H, W), KH, KW, OH, OW, stride, padding, dilation)
    return dx.astype(np_dtype, copy=False)


def conv2d_grad_weight(grad, gl, x, xl, np_dtype, weight_shape, stride, padding, dilation,
                       groups):  # fmt: skip
    calc = _calc(np_dtype)
    N, C, H, W, KH, KW, OH, OW = _geometry(xl.shape, weight_shape, stride, padding, dilation)
    OC, G = weight_shape[0], groups
    K_, L = (C // G) * KH * KW, OH * OW
    if K_ == 0:
        return np.zeros(OC * K_, np_dtype)
    fused = _fused(G, OC, K_, KH, KW, stride, padding, N * OC * K_ * L)
    if fused and _direct(stride, padding, dilation, KH, KW):
        gw = _conv_direct_wgrad(_source(grad, gl, calc), _source(x, xl, calc), xl.shape,
                                weight_shape, padding, dilation, calc)  # fmt: skip
        return gw.astype(np_dtype, copy=False)
    gv = contiguous(grad, gl).astype(calc, copy=False)
    xv = contiguous(x, xl).astype(calc, copy=False)
    if fused:
        parts = _image_ranges(N)
        partial = np.zeros((len(parts), OC, K_), calc)  # one accumulator per range
        args = (np.ascontiguousarray(gv).reshape(N, OC, L), xv.reshape(-1), C, H, W, KH, KW,
                *stride, *padding, *dilation, OH, OW)  # fmt: skip
        parallel_for(K.conv_bwd_weight_imgs, [args + (partial[i], np.empty((K_, L), calc), lo, hi)
                                              for i, (lo, hi) in enumerate(parts)])  # fmt: skip
        return partial.sum(0).astype(np_dtype, copy=False).reshape(-1)
    cols = _im2col(xv, KH, KW, OH, OW, stride, padding, dilation).reshape(G, K_, N * L)
    g3 = _batch_to_back(gv, G, OC // G, N, L)  # (G, OCg, N*L)
    gw = matmul_threads(g3, cols.transpose(0, 2, 1))  # a transposed view: BLAS takes it as is
    return gw.astype(np_dtype, copy=False).reshape(-1)
