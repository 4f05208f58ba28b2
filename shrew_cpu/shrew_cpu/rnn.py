"""Host side of the recurrent-cell and masked-softmax kernels, as the ``RnnKernels`` mixin
that ``CpuBackend`` inherits (the Backend's optional ``lstm_cell_forward`` /
``lstm_cell_backward`` / ``gru_cell_forward`` / ``gru_cell_backward`` / ``masked_softmax``
/ ``masked_softmax_backward``).

Operands become C-contiguous matrices of the compute dtype (f16/bf16 in f32: a copy;
f32/f64 contiguous storages: zero-copy reshapes). Cells with fewer than
``REDUCE_THRESHOLD`` gate elements (B * 4H for LSTM, B * 3H for GRU) run the serial
kernel in the calling thread, larger ones split the batch rows over threads; the masked
softmax switches on the score count likewise.

Compile cost (Numba, ``cache=True``, nothing compiled at import): 6 serial kernels x
{f32, f64}, run on the worker threads for large batches (no parallel driver to compile).
Measured on the shared 2-core box: ~6 s cold for every kernel in both dtypes (before the
``prange`` drivers were dropped they cost ~12 s more); ~0.6 s for all of them from the cache.
Speed (B=32, H=256, one thread): LSTM step ~20-25 µs forward (f32; f64 uses scalar libm,
~0.3 ms), ~10-15 µs backward.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import rnn as K
from .strided import coalesce, view
from .threads import parallel_rows, row_parts

_F32 = np.dtype(np.float32)
_DUMMY = {dt: np.zeros(1, dt) for dt in (np.dtype(np.float32), np.dtype(np.float64))}


def _calc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 else np_dtype


def _mat(s, rows, cols, calc):
    """Contiguous storage -> [rows, cols] matrix of the compute dtype (no copy when it is
    already that dtype)."""
    return np.asarray(s[: rows * cols], dtype=calc).reshape(rows, cols)


def _out(a, np_dtype):
    return a.astype(np_dtype, copy=False).reshape(-1)


def _check(what, dtype):
    if not dtype.is_float:
        raise TypeError(f"{what}: expected a float dtype, got {dtype}")


class RnnKernels:
    """Fused LSTM/GRU cell steps and the attention masked softmax (mixed into CpuBackend)."""

    def lstm_cell_forward(self, gates, c_prev, dtype, batch, hidden):
        _check("lstm_cell_forward", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        B, H = int(batch), int(hidden)
        g = _mat(gates, B, 4 * H, calc)
        cp = _mat(c_prev, B, H, calc)
        h, c, tc = (np.empty((B, H), calc) for _ in range(3))
        act = np.empty((B, 4 * H), calc)
        nch = row_parts(B, g.size)
        if nch:
            parallel_rows(K.lstm_fwd_rows, (g, cp, h, c, act, tc), B, nch, g.size)
        else:
            K.lstm_fwd_rows(g, cp, h, c, act, tc, 0, B)
        return tuple(_out(a, np_dtype) for a in (h, c, act, tc))

    def lstm_cell_backward(self, dh, dc, act, c_prev, tanh_c, dtype, batch, hidden):
        _check("lstm_cell_backward", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        B, H = int(batch), int(hidden)
        dh_, dc_, cp, tc = (_mat(s, B, H, calc) for s in (dh, dc, c_prev, tanh_c))
        a = _mat(act, B, 4 * H, calc)
        d_gates = np.empty((B, 4 * H), calc)
        dc_prev = np.empty((B, H), calc)
        nch = row_parts(B, a.size)
        if nch:
            parallel_rows(K.lstm_bwd_rows, (dh_, dc_, a, cp, tc, d_gates, dc_prev), B, nch, a.size)
        else:
            K.lstm_bwd_rows(dh_, dc_, a, cp, tc, d_gates, dc_prev, 0, B)
        return _out(d_gates, np_dtype), _out(dc_prev, np_dtype)

    def gru_cell_forward(self, xg, xg_layout, hg, h_prev, dtype, batch, hidden):
        _check("gru_cell_forward", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        B, H = int(batch), int(hidden)
        x = np.ascontiguousarray(view(xg, xg_layout), dtype=calc).reshape(B, 3 * H)
        g = _mat(hg, B, 3 * H, calc)
        hp = _mat(h_prev, B, H, calc)
        h, n = np.empty((B, H), calc), np.empty((B, H), calc)
        rz = np.empty((B, 2 * H), calc)
        nch = row_parts(B, g.size)
        if nch:
            parallel_rows(K.gru_fwd_rows, (x, g, hp, h, rz, n), B, nch, g.size)
        else:
            K.gru_fwd_rows(x, g, hp, h, rz, n, 0, B)
        return _out(h, np_dtype), _out(rz, np_dtype), _out(n, np_dtype)

    def gru_cell_backward(self, dh, h_prev, hg, rz, n, dtype, batch, hidden):
        _check("gru_cell_backward", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        B, H = int(batch), int(hidden)
        dh_, hp, n_ = (_mat(s, B, H, calc) for s in (dh, h_prev, n))
        g = _mat(hg, B, 3 * H, calc)
        rz_ = _mat(rz, B, 2 * H, calc)
        d_xg, d_hg = np.empty((B, 3 * H), calc), np.empty((B, 3 * H), calc)
        direct = np.empty((B, H), calc)
        nch = row_parts(B, g.size)
        if nch:
            parallel_rows(K.gru_bwd_rows, (dh_, hp, g, rz_, n_, d_xg, d_hg, direct), B, nch, g.size)
        else:
            K.gru_bwd_rows(dh_, hp, g, rz_, n_, d_xg, d_hg, direct, 0, B)
        return _out(d_xg, np_dtype), _out(d_hg, np_dtype), _out(direct, np_dtype)

    def masked_softmax(self, x, layout, mask, mask_layout, dtype, dim, scale):
        _check("masked_softmax", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        shape = tuple(layout.shape)
        nd = len(shape)
        v = view(x, layout)
        if nd == 0:
            v, shape, dim, nd = v.reshape(1), (1,), 0, 1
        perm = [d for d in range(nd) if d != dim] + [dim]
        a = np.ascontiguousarray(np.transpose(v, perm), dtype=calc)
        mshape = a.shape
        L = shape[dim]
        R = math.prod(mshape[:-1])
        out = np.empty((R, L), calc)
        if R and L:
            a2 = a.reshape(R, L)
            margs = _mask_args(mask, mask_layout, perm, mshape, calc)
            nch = row_parts(R, a2.size)
            if nch:
                parallel_rows(K.masked_softmax_rows, (a2, *margs, float(scale), out), R, nch,
                              a2.size)
            else:
                K.masked_softmax_rows(a2, *margs, float(scale), out, 0, R)
        res = out.reshape(mshape)
        if dim != nd - 1:
            res = np.moveaxis(res, -1, dim)
        return np.ascontiguousarray(res, dtype=np_dtype).reshape(-1)

    def masked_softmax_backward(self, y, grad, shape, dtype, dim, scale):
        _check("masked_softmax_backward", dtype)
        np_dtype = dtype.np_dtype
        calc = _calc(np_dtype)
        shape = tuple(shape)
        nd = len(shape)
        if nd == 0:
            shape, dim, nd = (1,), 0, 1
        ya = np.ascontiguousarray(np.moveaxis(y.reshape(shape), dim, -1), dtype=calc)
        ga = np.ascontiguousarray(np.moveaxis(grad.reshape(shape), dim, -1), dtype=calc)
        mshape = ya.shape
        L = mshape[-1]
        R = math.prod(mshape[:-1])
        out = np.empty((R, L), calc)
        if R and L:
            y2, g2 = ya.reshape(R, L), ga.reshape(R, L)
            nch = row_parts(R, y2.size)
            if nch:
                parallel_rows(K.masked_softmax_bwd_rows, (y2, g2, float(scale), out), R, nch,
                              y2.size)
            else:
                K.masked_softmax_bwd_rows(y2, g2, float(scale), out, 0, R)
        res = out.reshape(mshape)
        if dim != nd - 1:
            res = np.moveaxis(res, -1, dim)
        return np.ascontiguousarray(res, dtype=np_dtype).reshape(-1)


def _mask_args(mask, mask_layout, perm, moved_shape, calc):
    """(storage, offset, 4 leading shape, 4 leading strides, column stride, has_mask) that
    address the mask row of each row of the moved [R, L] scores without materialising a
    broadcast mask."""
    if mask is None:
        return _DUMMY[calc], 0, (1, 1, 1, 1), (0, 0, 0, 0), 0, False
    strides = [mask_layout.strides[d] for d in perm]
    lead, (lst,) = coalesce(list(moved_shape[:-1]), strides[:-1])
    m = mask
    off = mask_layout.offset
    mj = strides[-1]
    if len(lead) > 4:  # too many independent leading dims: materialise once
        m = np.ascontiguousarray(np.transpose(view(mask, mask_layout), perm)).reshape(-1)
        lead, lst, off, mj = [len(m) // moved_shape[-1]], [moved_shape[-1]], 0, 1
    pad = 4 - len(lead)
    shape4 = tuple([1] * pad + [int(d) for d in lead])
    strides4 = tuple([0] * pad + [int(s) for s in lst])
    return np.asarray(m, dtype=calc), int(off), shape4, strides4, int(mj), True
