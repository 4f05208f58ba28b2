"""Host side of pooling: output sizes (PyTorch's ceil-mode rule), dtype handling, and the
calls into ``kernels.pool``: in the calling thread below ``PARALLEL_THRESHOLD`` units of
work (window elements visited), as plane ranges on the worker threads above. f16/bf16 compute in f32
(exact for max pooling)."""

from __future__ import annotations

import numpy as np

from shrew_core.errors import IndexOutOfRangeError

from . import _config
from .kernels import pool as K
from .strided import contiguous
from .threads import parallel_rows, parts_for

_F32 = np.dtype(np.float32)


def _calc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 or np_dtype.kind != "f" else np_dtype


def pool_out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _run(kernel, args, planes: int, work: int) -> list:
    """``kernel(*args, lo, hi)`` over all planes: here, or as plane ranges on the worker
    threads when ``work`` reaches ``PARALLEL_THRESHOLD``; the per-range results."""
    if work < _config.PARALLEL_THRESHOLD or planes < 2:
        return [kernel(*args, 0, planes)]
    return parallel_rows(kernel, args, planes, parts_for(work), work)


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
    geo = (H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
           dilation[0], dilation[1], OH, OW)  # fmt: skip
    _run(K.max_pool_fwd_planes, (xv, *geo, out, idx), N * C, out.size * kernel[0] * kernel[1])
    return out.astype(np_dtype, copy=False), idx


def max_pool2d_backward(grad, gl, indices, il, input_shape, np_dtype):
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    idx = contiguous(indices, il).reshape(-1)
    out = np.zeros(N * C * H * W, g.dtype)
    L = g.size // max(N * C, 1)
    bad = sum(_run(K.max_pool_bwd_planes, (g.reshape(-1), idx, H * W, L, out), N * C, g.size))
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
    geo = (H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], OH, OW,
           bool(count_include_pad))  # fmt: skip
    _run(K.avg_pool_fwd_planes, (xv, *geo, out), N * C, out.size * kernel[0] * kernel[1])
    return out.astype(np_dtype, copy=False)


def avg_pool2d_backward(grad, gl, input_shape, np_dtype, kernel, stride, padding, ceil_mode,
                        count_include_pad):  # fmt: skip
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    OH, OW = g.shape[2], g.shape[3]
    out = np.zeros(N * C * H * W, g.dtype)
    geo = (H, W, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], OH, OW,
           bool(count_include_pad))  # fmt: skip
    _run(K.avg_pool_bwd_planes, (g.reshape(-1), *geo, out), N * C, g.size * kernel[0] * kernel[1])
    return out.astype(np_dtype, copy=False)


def adaptive_avg_pool2d(x, layout, np_dtype, output_size):
    xv, N, C, H, W = _planes(x, layout, np_dtype)
    OH, OW = output_size
    out = np.empty(N * C * OH * OW, xv.dtype)
    _run(K.adaptive_avg_fwd_planes, (xv, H, W, OH, OW, out), N * C, xv.size)
    return out.astype(np_dtype, copy=False)


def adaptive_avg_pool2d_backward(grad, gl, input_shape, np_dtype):
    N, C, H, W = input_shape
    g = contiguous(grad, gl).astype(_calc(np_dtype), copy=False)
    out = np.zeros(N * C * H * W, g.dtype)
    _run(K.adaptive_avg_bwd_planes, (g.reshape(-1), H, W, g.shape[2], g.shape[3], out), N * C,
         out.size)  # fmt: skip
    return out.astype(np_dtype, copy=False)
