"""Host side of the fused row kernels: softmax / log_softmax, layer_norm, rms_norm,
cross_entropy and their backwards.

Inputs become C-contiguous [rows, L] matrices (the softmax dim moved last; a copy only
when the layout is not already that), f16/bf16 in f32. Small inputs run the serial row
kernel in the calling thread; from ``REDUCE_THRESHOLD`` elements the rows are split into
ranges over the worker threads (``threads.py``).
"""

from __future__ import annotations

import math

import numpy as np

from shrew_core.errors import IndexOutOfRangeError

from . import _config
from .kernels import norm as K
from .strided import fp_quiet, fp_restore, is_full, view
from .threads import parallel_for, parallel_rows, row_parts, split

_F32 = np.dtype(np.float32)
_DUMMY = {dt: np.zeros(1, dt) for dt in (np.dtype(np.float32), np.dtype(np.float64))}


def _calc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 else np_dtype


def _moved(x, layout, dim, calc):
    """(rows matrix, moved shape) with ``dim`` last."""
    v = view(x, layout)
    if v.ndim == 0:
        v = v.reshape(1)
        dim = 0
    if dim != v.ndim - 1:
        v = np.moveaxis(v, dim, -1)
    a = np.ascontiguousarray(v, dtype=calc)
    return a.reshape(-1, a.shape[-1] if a.shape[-1] else 1) if a.size else a.reshape(0, 1), a.shape


def _unmove(res, moved_shape, dim, ndim, np_dtype):
    r = res.reshape(moved_shape)
    if ndim and dim != ndim - 1:
        r = np.moveaxis(r, -1, dim)
    return np.ascontiguousarray(r, dtype=np_dtype).reshape(-1)


def softmax(x, layout, np_dtype, dim, log):
    calc = _calc(np_dtype)
    if calc is np_dtype and dim == len(layout.shape) - 1 and layout.numel and is_full(x, layout):
        a, mshape = x.reshape(-1, layout.shape[-1]), None  # rows as they lie: nothing to move
    else:
        a, mshape = _moved(x, layout, dim, calc)
    out = np.empty_like(a)
    if a.size:
        nch = row_parts(a.shape[0], a.size)
        if nch:
            parallel_rows(K.softmax_rows, (a, out, log), a.shape[0], nch, a.size)
        else:
            K.softmax_rows(a, out, log, 0, a.shape[0])
    if mshape is None:
        return out.ravel()
    return _unmove(out, mshape, dim, layout.ndim, np_dtype)


def softmax_backward(y, grad, shape, np_dtype, dim, log):
    calc = _calc(np_dtype)
    nd = len(shape)
    yv = y.reshape(shape) if nd else y.reshape(1)
    gv = grad.reshape(shape) if nd else grad.reshape(1)
    d = dim if nd else 0
    ya = np.ascontiguousarray(np.moveaxis(yv, d, -1), dtype=calc)
    ga = np.ascontiguousarray(np.moveaxis(gv, d, -1), dtype=calc)
    mshape = ya.shape
    cols = mshape[-1] if ya.size else 1  # an empty input is 0 rows (reshape(-1, 0) is ambiguous)
    y2, g2 = ya.reshape(-1, cols), ga.reshape(-1, cols)
    out = np.empty_like(y2)
    if y2.size:
        nch = row_parts(y2.shape[0], y2.size)
        if nch:
            parallel_rows(K.softmax_bwd_rows, (y2, g2, out, log), y2.shape[0], nch, y2.size)
        else:
            K.softmax_bwd_rows(y2, g2, out, log, 0, y2.shape[0])
    return _unmove(out, mshape, d, nd, np_dtype)


def _rows_of(x, layout_or_shape, normalized_ndim, calc):
    if isinstance(layout_or_shape, tuple):
        v = x.reshape(layout_or_shape)
        shape = layout_or_shape
    else:
        v = view(x, layout_or_shape)
        shape = layout_or_shape.shape
    L = math.prod(shape[len(shape) - normalized_ndim :])
    R = math.prod(shape[: len(shape) - normalized_ndim])
    return np.ascontiguousarray(v, dtype=calc).reshape(R, L), R, L


def _param(p, calc):
    return _DUMMY[calc] if p is None else np.ascontiguousarray(p, dtype=calc).reshape(-1)


def layer_norm(x, layout, weight, bias, np_dtype, normalized_ndim, eps):
    calc = _calc(np_dtype)
    a, R, L = _rows_of(x, layout, normalized_ndim, calc)
    y = np.empty_like(a)
    mean = np.empty(R, calc)
    rstd = np.empty(R, calc)
    w, b = _param(weight, calc), _param(bias, calc)
    args = (a, w, b, weight is not None, bias is not None, float(eps), y, mean, rstd)
    if R and L:
        nch = row_parts(R, a.size)
        if nch:
            parallel_rows(K.layer_norm_rows, args, R, nch, a.size)
        else:
            K.layer_norm_rows(*args, 0, R)
    return y.astype(np_dtype, copy=False).reshape(-1), mean, rstd


def layer_norm_backward(grad, x, shape, weight, mean, rstd, np_dtype, normalized_ndim):
    calc = _calc(np_dtype)
    shape = tuple(shape)
    g, R, L = _rows_of(grad, shape, normalized_ndim, calc)
    a, _, _ = _rows_of(x, shape, normalized_ndim, calc)
    w = _param(weight, calc)
    mu = np.ascontiguousarray(mean, dtype=calc)
    rs = np.ascontiguousarray(rstd, dtype=calc)
    gx = np.empty_like(a)
    nch = row_parts(R, a.size) if R and L else 0
    gw = np.zeros((max(nch, 1), L), np.float64)
    gb = np.zeros((max(nch, 1), L), np.float64)
    if R and L:
        if nch:
            parallel_for(K.layer_norm_bwd_rows,
                         [(g, a, w, weight is not None, mu, rs, gx, gw[c], gb[c], lo, hi)
                          for c, (lo, hi) in enumerate(split(R, nch, a.size))])  # fmt: skip
        else:
            K.layer_norm_bwd_rows(g, a, w, weight is not None, mu, rs, gx, gw[0], gb[0], 0, R)
    gx = gx.astype(np_dtype, copy=False).reshape(-1)
    if weight is None:
        return gx, None, None
    return gx, gw.sum(0).astype(np_dtype), gb.sum(0).astype(np_dtype)


def rms_norm(x, layout, weight, np_dtype, normalized_ndim, eps):
    calc = _calc(np_dtype)
    a, R, L = _rows_of(x, layout, normalized_ndim, calc)
    y = np.empty_like(a)
    rstd = np.empty(R, calc)
    w = _param(weight, calc)
    if R and L:
        nch = row_parts(R, a.size)
        if nch:
            parallel_rows(K.rms_norm_rows, (a, w, weight is not None, float(eps), y, rstd), R, nch,
                      a.size)
        else:
            K.rms_norm_rows(a, w, weight is not None, float(eps), y, rstd, 0, R)
    return y.astype(np_dtype, copy=False).reshape(-1), rstd


def rms_norm_backward(grad, x, shape, weight, rstd, np_dtype, normalized_ndim):
    calc = _calc(np_dtype)
    shape = tuple(shape)
    g, R, L = _rows_of(grad, shape, normalized_ndim, calc)
    a, _, _ = _rows_of(x, shape, normalized_ndim, calc)
    w = _param(weight, calc)
    rs = np.ascontiguousarray(rstd, dtype=calc)
    gx = np.empty_like(a)
    nch = row_parts(R, a.size) if R and L else 0
    gw = np.zeros((max(nch, 1), L), np.float64)
    if R and L:
        if nch:
            parallel_for(K.rms_norm_bwd_rows,
                         [(g, a, w, weight is not None, rs, gx, gw[c], lo, hi)
                          for c, (lo, hi) in enumerate(split(R, nch, a.size))])  # fmt: skip
        else:
            K.rms_norm_bwd_rows(g, a, w, weight is not None, rs, gx, gw[0], 0, R)
    gx = gx.astype(np_dtype, copy=False).reshape(-1)
    return gx, (None if weight is None else gw.sum(0).astype(np_dtype))


def cross_entropy(logits, layout, target, np_dtype, ignore_index, label_smoothing):
    calc = _calc(np_dtype)
    a = np.ascontiguousarray(view(logits, layout), dtype=calc)
    N, C = a.shape
    t = np.ascontiguousarray(target, dtype=np.int64).reshape(-1)
    loss = np.empty(N, calc)
    lse = np.empty(N, calc)
    bad = 0
    if N and C and a.size < _config.COMPILE_FREE_BELOW:
        bad = _cross_entropy_numpy(a, t, int(ignore_index), float(label_smoothing), loss, lse)
    elif N and C:
        nch = row_parts(N, a.size)
        args = (a, t, int(ignore_index), float(label_smoothing), loss, lse)
        if nch:
            bad = sum(parallel_for(K.cross_entropy_rows, [args + (np.empty(C, calc), lo, hi)
                                                          for lo, hi in split(N, nch, a.size)]))
        else:
            bad = K.cross_entropy_rows(*args, np.empty(C, calc), 0, N)
    if bad:
        tv = t[(t != ignore_index) & ((t < 0) | (t >= C))]
        raise IndexOutOfRangeError(
            f"cross_entropy: target {int(tv[0])} is out of range for {C} classes "
            f"(valid 0..{C - 1}, or ignore_index={ignore_index})"
        )
    return loss.astype(np_dtype, copy=False), lse


def cross_entropy_backward(grad_rows, logits, shape, target, lse, np_dtype, ignore_index,
                           label_smoothing):  # fmt: skip
    calc = _calc(np_dtype)
    N, C = shape
    a = np.ascontiguousarray(logits, dtype=calc).reshape(N, C)
    g = np.ascontiguousarray(grad_rows, dtype=calc).reshape(-1)
    t = np.ascontiguousarray(target, dtype=np.int64).reshape(-1)
    ls = np.ascontiguousarray(lse, dtype=calc).reshape(-1)
    out = np.empty_like(a)
    if N and C and a.size < _config.COMPILE_FREE_BELOW:
        _cross_entropy_bwd_numpy(g, a, t, ls, int(ignore_index), float(label_smoothing), out)
    elif N and C:
        nch = row_parts(N, a.size)
        args = (g, a, t, ls, int(ignore_index), float(label_smoothing), out)
        if nch:
            parallel_rows(K.cross_entropy_bwd_rows, args, N, nch, a.size)
        else:
            K.cross_entropy_bwd_rows(*args, 0, N)
    return out.astype(np_dtype, copy=False).reshape(-1)


# Below ``COMPILE_FREE_BELOW`` elements: the row kernels' formulas as NumPy ufunc calls
# (nothing to compile, so a small model's first training step pays no Numba compilation;
# floating-point warnings off, as in the kernels).
def _cross_entropy_numpy(x, target, ignore, smooth, loss, lse_out):
    """``kernels.norm.cross_entropy_rows`` over all rows; the number of bad targets."""
    N, C = x.shape
    tok = fp_quiet()
    try:
        m = x.max(1)
        e = np.subtract(x, m[:, None])
        np.exp(e, out=e)
        np.log(e.sum(1), out=lse_out)
        lse_out += m
        keep = target != ignore
        ok = keep & (target >= 0) & (target < C)
        nll = lse_out - x[np.arange(N), np.where(ok, target, 0)]
        if smooth > 0.0:
            nll = (1.0 - smooth) * nll + smooth * (lse_out - x.sum(1) / C)
        loss[...] = np.where(ok, nll, np.where(keep, np.nan, 0.0))
    finally:
        fp_restore(tok)
    return int(np.count_nonzero(keep & ~ok))


def _cross_entropy_bwd_numpy(g, x, target, lse, ignore, smooth, out):
    """``kernels.norm.cross_entropy_bwd_rows`` over all rows, into ``out``."""
    C = x.shape[1]
    tok = fp_quiet()
    try:
        np.subtract(x, lse[:, None], out=out)
        np.exp(out, out=out)
        if smooth > 0.0:
            out -= out.dtype.type(smooth / C)
        out *= g[:, None]
        keep = target != ignore
        rows = np.flatnonzero(keep & (target >= 0) & (target < C))
        out[rows, target[rows]] -= (1.0 - smooth) * g[rows]
        out[~keep] = 0.0
    finally:
        fp_restore(tok)
