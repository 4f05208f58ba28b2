"""Fused recurrent-cell kernels (LSTM and GRU step, forward and backward) and the masked
softmax of attention (+ backward).

Cell kernels work on C-contiguous [B, k*H] matrices, one batch row at a time, as a serial
function over a row range ``[lo, hi)`` that releases the GIL (the host splits large batches
into row ranges over the worker threads, ``threads.py``). Each row
is split into its gate blocks (slices), so the inner loop over ``j < H`` reads and writes
unit-stride arrays and LLVM vectorises it.

Activations: f64 uses libm (``math.tanh``/``math.exp``). f32 uses a branch-free rational
tanh (Eigen's ``generic_fast_tanh_float``: a [13/6] minimax fraction on [-7.905, 7.905];
at most 3e-7 from the exact tanh, the worst just past the clamp; NaN propagates) and
``1 / (1 + exp(-x))`` with ``vmath.fexp`` (the SIMD exp), both of which vectorise inside
the cell loop: libm's scalar ``tanhf``/``expf`` made the fused f32 cell slower than the
chain of NumPy ufuncs it replaces. Arithmetic stays in the array dtype (constants are
``dtype.type(...)``).

The masked softmax reads ``x`` as a C-contiguous [R, L] matrix (softmax dim last) and the
additive mask straight from its storage through up to four row strides and one column
stride, so a broadcast mask (``[L, S]`` against ``[N, heads, L, S]`` scores) is never
materialised.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .rows import row_dot, row_sum
from .vmath import fexp, fmaximum

_F = np.float32
_TANH_CLAMP = _F(7.90531110763549805)
_A13 = _F(-2.76076847742355e-16)
_A11 = _F(2.00018790482477e-13)
_A9 = _F(-8.60467152213735e-11)
_A7 = _F(5.12229709037114e-08)
_A5 = _F(1.48572235717979e-05)
_A3 = _F(6.37261928875436e-04)
_A1 = _F(4.89352455891786e-03)
_B6 = _F(1.19825839466702e-06)
_B4 = _F(1.18534705686654e-04)
_B2 = _F(2.26843463243900e-03)
_B0 = _F(4.89352518554385e-03)
_ONE32 = _F(1.0)


# ---------------------------------------------------------------------------- activations
def vtanh(x):
    return math.tanh(x)


def vsigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(error_model="numpy")
def _tanh_f32(x):
    c = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = c * c
    p = ((((((_A13 * x2 + _A11) * x2 + _A9) * x2 + _A7) * x2 + _A5) * x2 + _A3) * x2 + _A1) * c
    q = ((_B6 * x2 + _B4) * x2 + _B2) * x2 + _B0
    r = p / q
    return x if x != x else r


@overload(vtanh)
def _ov_vtanh(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: _tanh_f32(x)
    return lambda x: math.tanh(x)


@overload(vsigmoid)
def _ov_vsigmoid(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: _ONE32 / (_ONE32 + fexp(-x))
    return lambda x: 1.0 / (1.0 + math.exp(-x))


# ---------------------------------------------------------------------------- LSTM
@njit(cache=True, nogil=True, error_model="numpy")
def lstm_fwd_rows(gates, c_prev, h, c, act, tanh_c, lo, hi):
    H = c_prev.shape[1]
    for b in range(lo, hi):
        g = gates[b]
        a = act[b]
        gi, gf, gg, go = g[:H], g[H : 2 * H], g[2 * H : 3 * H], g[3 * H :]
        ai, af, ag, ao = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        cp, cb, tb, hb = c_prev[b], c[b], tanh_c[b], h[b]
        for j in range(H):
            i_ = vsigmoid(gi[j])
            f_ = vsigmoid(gf[j])
            g_ = vtanh(gg[j])
            o_ = vsigmoid(go[j])
            ai[j] = i_
            af[j] = f_
            ag[j] = g_
            ao[j] = o_
            cc = f_ * cp[j] + i_ * g_
            cb[j] = cc
            t = vtanh(cc)
            tb[j] = t
            hb[j] = o_ * t



@njit(cache=True, nogil=True, error_model="numpy")
def lstm_bwd_rows(dh, dc, act, c_prev, tanh_c, d_gates, dc_prev, lo, hi):
    H = dh.shape[1]
    for b in range(lo, hi):
        a = act[b]
        d = d_gates[b]
        ai, af, ag, ao = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        di, df, dg, do = d[:H], d[H : 2 * H], d[2 * H : 3 * H], d[3 * H :]
        dhb, dcb, cp, tb, dcp = dh[b], dc[b], c_prev[b], tanh_c[b], dc_prev[b]
        one = dh.dtype.type(1.0)
        for j in range(H):
            i_, f_, g_, o_, t = ai[j], af[j], ag[j], ao[j], tb[j]
            dhj = dhb[j]
            dct = dcb[j] + dhj * o_ * (one - t * t)
            di[j] = dct * g_ * i_ * (one - i_)
            df[j] = dct * cp[j] * f_ * (one - f_)
            dg[j] = dct * i_ * (one - g_ * g_)
            do[j] = dhj * t * o_ * (one - o_)
            dcp[j] = dct * f_


# ---------------------------------------------------------------------------- GRU
@njit(cache=True, nogil=True, error_model="numpy")
def gru_fwd_rows(xg, hg, h_prev, h, rz, n, lo, hi):
    H = h_prev.shape[1]
    for b in range(lo, hi):
        x = xg[b]
        g = hg[b]
        xr, xz, xn = x[:H], x[H : 2 * H], x[2 * H :]
        hr, hz, hn = g[:H], g[H : 2 * H], g[2 * H :]
        rzb = rz[b]
        rb, zb = rzb[:H], rzb[H:]
        hp, hb, nb = h_prev[b], h[b], n[b]
        for j in range(H):
            r_ = vsigmoid(xr[j] + hr[j])
            z_ = vsigmoid(xz[j] + hz[j])
            n_ = vtanh(xn[j] + r_ * hn[j])
            rb[j] = r_
            zb[j] = z_
            nb[j] = n_
            hb[j] = n_ + z_ * (hp[j] - n_)



@njit(cache=True, nogil=True, error_model="numpy")
def gru_bwd_rows(dh, h_prev, hg, rz, n, d_xg, d_hg, dh_direct, lo, hi):
    H = dh.shape[1]
    for b in range(lo, hi):
        rzb = rz[b]
        rb, zb = rzb[:H], rzb[H:]
        hn = hg[b][2 * H :]
        dx, dg = d_xg[b], d_hg[b]
        dxr, dxz, dxn = dx[:H], dx[H : 2 * H], dx[2 * H :]
        dgr, dgz, dgn = dg[:H], dg[H : 2 * H], dg[2 * H :]
        dhb, hp, nb, dd = dh[b], h_prev[b], n[b], dh_direct[b]
        one = dh.dtype.type(1.0)
        for j in range(H):
            r_, z_, n_, d = rb[j], zb[j], nb[j], dhb[j]
            dn = d * (one - z_) * (one - n_ * n_)
            dr = dn * hn[j] * r_ * (one - r_)
            dz = d * (hp[j] - n_) * z_ * (one - z_)
            dxr[j] = dr
            dxz[j] = dz
            dxn[j] = dn
            dgr[j] = dr
            dgz[j] = dz
            dgn[j] = dn * r_
            dd[j] = d * z_


# ---------------------------------------------------------------------------- masked softmax
# Row passes in the style of ``norm``: max (``fmaximum``, nsz) and SIMD exp (``fexp``, no
# reassoc) in the kernel, sums with reassociation accumulated in f64 through ``rows``
# (fastmath flags are per function and the exp loop must not be reassociated).
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "nsz"})
def masked_softmax_rows(x, mask, moff, mshape, mstrides, mj, has_mask, scale, out, lo, hi):
    """Rows [lo, hi) of softmax(x * scale + mask). Row r of x is the row-major index of the
    4 leading dims ``mshape``; its mask row starts at ``moff + sum(i_k * mstrides[k])`` and
    steps by ``mj``. A row of all -inf gives NaN (like torch): -inf - -inf is NaN."""
    L = x.shape[1]
    sc = out.dtype.type(scale)
    s1, s2, s3 = mshape[1], mshape[2], mshape[3]
    for r in range(lo, hi):
        xr = x[r]
        o = out[r]
        if has_mask:
            q = r
            i3 = q % s3
            q //= s3
            i2 = q % s2
            q //= s2
            i1 = q % s1
            i0 = q // s1
            base = moff + i0 * mstrides[0] + i1 * mstrides[1] + i2 * mstrides[2]
            base += i3 * mstrides[3]
            if mj == 1:
                mrow = mask[base : base + L]
                for j in range(L):
                    o[j] = xr[j] * sc + mrow[j]
            elif mj == 0:
                mv = mask[base]
                for j in range(L):
                    o[j] = xr[j] * sc + mv
            else:
                for j in range(L):
                    o[j] = xr[j] * sc + mask[base + j * mj]
        else:
            for j in range(L):
                o[j] = xr[j] * sc
        m = o[0]
        for j in range(L):
            m = fmaximum(m, o[j])
        for j in range(L):
            o[j] = fexp(o[j] - m)
        inv = o.dtype.type(1.0 / row_sum(o))
        for j in range(L):
            o[j] = o[j] * inv



@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def masked_softmax_bwd_rows(y, g, scale, out, lo, hi):
    sc = out.dtype.type(scale)
    for r in range(lo, hi):
        yr = y[r]
        gr = g[r]
        o = out[r]
        s = o.dtype.type(row_dot(gr, yr))
        for j in range(o.size):
            o[j] = sc * yr[j] * (gr[j] - s)
