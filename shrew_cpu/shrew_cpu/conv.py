"""Host side of 2-D convolution (NCHW, OIHW weights): im2col + BLAS GEMM and back.

forward      out[n, g]  = W[g] @ cols[n, g]            (cols = im2col(x))
grad input   cols[n, g] = W[g]^T @ grad[n, g]; dx = col2im(cols)
grad weight  dW[g]      = sum_n grad[n, g] @ cols[n, g]^T

Ungrouped convolutions with a weight of at most ``FUSED_MAX_WEIGHT`` elements (typical CNN
layers) run fused per image in Numba (``kernels.conv.conv_*_fused``): each prange task
builds one image's column matrix in an L2-sized scratch and multiplies it at once with
blocked SIMD loops (no [N, K, L] buffer, no transposed copies, no OpenBLAS thread pool,
which wakes slowly on a busy 2-core machine). Larger ones use the path below.

Grouped convolutions are batched GEMMs over (image, group) in one ``np.matmul``; the
weight's transpose is a strided view BLAS takes with a transpose flag. A 1x1, stride-1,
unpadded convolution skips im2col entirely (the input already is the column matrix).
f16/bf16 compute in f32.
"""

from __future__ import annotations

import numba
import numpy as np

from .kernels import conv as K
from .strided import contiguous

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


def _fused(G, OC, K_, KH, KW, stride, padding):
    return G == 1 and OC * K_ <= FUSED_MAX_WEIGHT and not _pointwise(KH, KW, stride, padding)


def _nch(N):
    return max(1, min(N, 2 * numba.get_num_threads()))


def _cols(xv, N, C, H, W, KH, KW, OH, OW, stride, padding, dilation):
    if _pointwise(KH, KW, stride, padding):
        return xv.reshape(N, C, H * W)
    cols = np.empty((N, C * KH * KW, OH * OW), xv.dtype)
    K.im2col(xv.reshape(-1), N, C, H, W, KH, KW, stride[0], stride[1], padding[0], padding[1],
             dilation[0], dilation[1], OH, OW, cols)  # fmt: skip
    return cols


def conv2d(x, xl, w, wl, np_dtype, stride, padding, dilation, groups):
    calc = _calc(np_dtype)
    xv = contiguous(x, xl).astype(calc, copy=False)
    wv = contiguous(w, wl).astype(calc, copy=False)
    N, C, H, W, KH, KW, OH, OW = _geometry(xv.shape, wv.shape, stride, padding, dilation)
    OC, G = wv.shape[0], groups
    K_ = (C // G) * KH * KW
    if _fused(G, OC, K_, KH, KW, stride, padding):
        out = np.empty((N, OC, OH * OW), calc)
        K.conv_fwd_fused(xv.reshape(-1), np.ascontiguousarray(wv.reshape(OC, K_)), N, C, H, W,
                         KH, KW, *stride, *padding, *dilation, OH, OW, out, _nch(N))  # fmt: skip
        return out.astype(np_dtype, copy=False).reshape(-1)
    cols = _cols(xv, N, C, H, W, KH, KW, OH, OW, stride, padding, dilation)
    if G == 1:
        out = np.matmul(wv.reshape(OC, K_), cols)
    else:
        out = np.matmul(wv.reshape(G, OC // G, K_), cols.reshape(N, G, K_, OH * OW))
    return out.astype(np_dtype, copy=False).reshape(-1)


def conv2d_grad_input(grad, gl, w, wl, np_dtype, input_shape, stride, padding, dilation, groups):
    calc = _calc(np_dtype)
    gv = contiguous(grad, gl).astype(calc, copy=False)
    wv = contiguous(w, wl).astype(calc, copy=False)
    N, C, H, W, KH, KW, OH, OW = _geometry(input_shape, wv.shape, stride, padding, dilation)
    OC, G = wv.shape[0], groups
    K_ = (C // G) * KH * KW
    if _fused(G, OC, K_, KH, KW, stride, padding):
        out = np.zeros(N * C * H * W, calc)
        w2t = np.ascontiguousarray(wv.reshape(OC, K_).T)
        K.conv_bwd_input_fused(np.ascontiguousarray(gv).reshape(N, OC, OH * OW), w2t, N, C, H,
                               W, KH, KW, *stride, *padding, *dilation, OH, OW, out,
                               _nch(N))  # fmt: skip
        return out.astype(np_dtype, copy=False)
    wt = wv.reshape(G, OC // G, K_).transpose(0, 2, 1)  # (G, K, OCg): a view, no copy
    cols = np.matmul(wt, gv.reshape(N, G, OC // G, OH * OW))  # (N, G, K, L)
    if _pointwise(KH, KW, stride, padding):
        return cols.astype(np_dtype, copy=False).reshape(-1)
    out = np.zeros(N * C * H * W, calc)
    K.col2im(cols.reshape(N, C * KH * KW, OH * OW), N, C, H, W, KH, KW, stride[0], stride[1],
             padding[0], padding[1], dilation[0], dilation[1], OH, OW, out)  # fmt: skip
    return out.astype(np_dtype, copy=False)


def conv2d_grad_weight(grad, gl, x, xl, np_dtype, weight_shape, stride, padding, dilation,
                       groups):  # fmt: skip
    calc = _calc(np_dtype)
    gv = contiguous(grad, gl).astype(calc, copy=False)
    xv = contiguous(x, xl).astype(calc, copy=False)
    N, C, H, W, KH, KW, OH, OW = _geometry(xv.shape, weight_shape, stride, padding, dilation)
    OC, G = weight_shape[0], groups
    K_ = (C // G) * KH * KW
    L = OH * OW
    if _fused(G, OC, K_, KH, KW, stride, padding):
        nch = _nch(N)
        partial = np.zeros((nch, OC, K_), calc)
        K.conv_bwd_weight_fused(np.ascontiguousarray(gv).reshape(N, OC, L), xv.reshape(-1), N,
                                C, H, W, KH, KW, *stride, *padding, *dilation, OH, OW, partial,
                                nch)  # fmt: skip
        return partial.sum(0).astype(np_dtype, copy=False).reshape(-1)
    cols = _cols(xv, N, C, H, W, KH, KW, OH, OW, stride, padding, dilation)
    if G == 1:
        # one GEMM over the whole batch: (OC, N*L) @ (N*L, K)
        g2 = np.ascontiguousarray(gv.reshape(N, OC, L).transpose(1, 0, 2)).reshape(OC, N * L)
        c2 = np.ascontiguousarray(cols.transpose(0, 2, 1)).reshape(N * L, K_)
        gw = g2 @ c2
    else:
        colsT = cols.reshape(N, G, K_, L).transpose(0, 1, 3, 2)  # a view: BLAS transposes
        per = np.matmul(gv.reshape(N, G, OC // G, L), colsT)
        gw = per.sum(axis=0)
    return gw.astype(np_dtype, copy=False).reshape(-1)
