"""Host side of pooling: output sizes (PyTorch's ceil-mode rule), dtype handling, and the
calls into ``kernels.pool``. f16/bf16 compute in f32 (exact for max pooling)."""

from __future__ import annotations

import numpy as np

from shrew_core.errors import IndexOutOfRangeError

from .kernels import pool as K
from .strided import contiguous

_F32 = np.dtype(np.float32)


def _calc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 or np_dtype.kind != "f" else np_dtype


def pool_out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _planes(x, layout, np_dtype):
    v = contiguous(x, layout).astype(_calc(np_dtype), copy=False)
    N, C, H, W = v.shape
    return v.reshape(-1), N, C, H, W


def max_pool2d(x, layout, np_dtype, kernel, stride, padding, dilation, ceil_mode):
    xv, N, C, H, W = _planes(x, layout, np_dtype)
    OH = pool_out_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = pool_out_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    out = np.empty(N * C * OH * OW, xv.dtype)
    idx = np.empty(N * C * OH * OW, np.int64)
    K.max_pool_fwd(xv, N * C, H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0],
                   padding[1], dilation[0], dilation[1], OH, OW, out, idx)  # fmt: skip
    return out.astype(np_dtype, copy=False), idx


def max_pool2d_backward(grad, gl, indices, il, input_shape, np_dtype):
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    idx = contiguous(indices, il).reshape(-1)
    out = np.zeros(N * C * H * W, g.dtype)
    L = g.size // max(N * C, 1)
    bad = K.max_pool_bwd(g.reshape(-1), idx, N * C, H * W, L, out)
    if bad:
        raise IndexOutOfRangeError(
            f"max_pool2d_backward: {bad} indices outside the {H}x{W} input plane"
        )
    return out.astype(np_dtype, copy=False)


def avg_pool2d(x, layout, np_dtype, kernel, stride, padding, ceil_mode, count_include_pad):
    xv, N, C, H, W = _planes(x, layout, np_dtype)
    OH = pool_out_size(H, kernel[0], stride[0], padding[0], 1, ceil_mode)
    OW = pool_out_size(W, kernel[1], stride[1], padding[1], 1, ceil_mode)
    out = np.empty(N * C * OH * OW, xv.dtype)
    K.avg_pool_fwd(xv, N * C, H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0],
                   padding[1], OH, OW, bool(count_include_pad), out)  # fmt: skip
    return out.astype(np_dtype, copy=False)


def avg_pool2d_backward(grad, gl, input_shape, np_dtype, kernel, stride, padding, ceil_mode,
                        count_include_pad):  # fmt: skip
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    OH, OW = g.shape[2], g.shape[3]
    out = np.zeros(N * C * H * W, g.dtype)
    K.avg_pool_bwd(g.reshape(-1), N * C, H, W, kernel[0], kernel[1], stride[0], stride[1],
                   padding[0], padding[1], OH, OW, bool(count_include_pad), out)  # fmt: skip
    return out.astype(np_dtype, copy=False)


def adaptive_avg_pool2d(x, layout, np_dtype, output_size):
    xv, N, C, H, W = _planes(x, layout, np_dtype)
    OH, OW = output_size
    out = np.empty(N * C * OH * OW, xv.dtype)
    K.adaptive_avg_fwd(xv, N * C, H, W, OH, OW, out)
    return out.astype(np_dtype, copy=False)


def adaptive_avg_pool2d_backward(grad, gl, input_shape, np_dtype):
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    out = np.zeros(N * C * H * W, g.dtype)
    K.adaptive_avg_bwd(g.reshape(-1), N * C, H, W, g.shape[2], g.shape[3], out)
    return out.astype(np_dtype, copy=False)
