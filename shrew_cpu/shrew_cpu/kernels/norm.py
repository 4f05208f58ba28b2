"""Fused row kernels: softmax / log-softmax (+ backward), layer norm and RMS norm
(+ backward), cross-entropy (+ backward).

Every kernel works on a C-contiguous [R, L] matrix, normalising each row, and exists
as a serial function over a row range ``[lo, hi)`` that releases the GIL; the host runs
large inputs as row ranges on the worker threads (``threads.py``). Each row is a few
SIMD passes while it sits in L1: max (``llvm.maximum``, NaN-propagating), exp (``vmath``'s
vectorised f32 exp), sums with reassociation (SIMD partial sums) accumulated in f64.
Data stays in its dtype (f32 or f64; halves arrive as f32).
Weight/bias gradients of the norms are per-chunk partial sums, added up by the caller,
so no two threads write the same element.
"""

from __future__ import annotations

import math

from numba import njit

from .rows import row_dot, row_sqdev, row_sum
from .vmath import fexp, fmaximum


# Fastmath flags are per function: sums allow reassociation (SIMD partial sums,
# pairwise-like error, accumulated in f64) and live in ``rows``; the exp loops must not be
# reassociated (see ``vmath``), and the max loops need nsz to vectorise.
@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "nsz"})
def softmax_rows(x, out, log, lo, hi):
    """A row of all -inf gives NaN (like torch): -inf - -inf is NaN. The max pass (nsz) and
    the exp pass (no reassoc) share this function's flags; the sum is ``row_sum``."""
    for r in range(lo, hi):
        xr = x[r]
        o = out[r]
        m = xr[0]
        for j in range(xr.size):  # from 0: a trip count of 64, not 63, runs the SIMD loop
            m = fmaximum(m, xr[j])
        for j in range(xr.size):
            o[j] = fexp(xr[j] - m)
        s = row_sum(o)
        if log:
            lse = o.dtype.type(m + math.log(s))
            for j in range(o.size):
                o[j] = xr[j] - lse
        else:
            inv = o.dtype.type(1.0 / s)
            for j in range(o.size):
                o[j] = o[j] * inv


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def softmax_bwd_rows(y, g, out, log, lo, hi):
    for r in range(lo, hi):
        yr = y[r]
        gr = g[r]
        o = out[r]
        if log:
            s = o.dtype.type(row_sum(gr))
            for j in range(o.size):
                o[j] = gr[j] - fexp(yr[j]) * s
        else:
            s = o.dtype.type(row_dot(gr, yr))
            for j in range(o.size):
                o[j] = yr[j] * (gr[j] - s)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def layer_norm_rows(x, w, b, has_w, has_b, eps, y, mean, rstd, lo, hi):
    """Two SIMD passes for the statistics (mean, then squared deviations, f64 sums) while
    the row is in L1, one pass writing y in the data's dtype."""
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        mean[r] = row_sum(xr) / L
        muc = mean[r]  # in the data's dtype
        rstd[r] = 1.0 / math.sqrt(row_sqdev(xr, muc) / L + eps)
        rsc = rstd[r]
        yr = y[r]
        if has_w and has_b:
            for j in range(L):
                yr[j] = (xr[j] - muc) * rsc * w[j] + b[j]
        elif has_w:
            for j in range(L):
                yr[j] = (xr[j] - muc) * rsc * w[j]
        elif has_b:
            for j in range(L):
                yr[j] = (xr[j] - muc) * rsc + b[j]
        else:
            for j in range(L):
                yr[j] = (xr[j] - muc) * rsc


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def layer_norm_bwd_rows(g, x, w, has_w, mean, rstd, gx, gw, gb, lo, hi):
    """gx rows [lo, hi); gw/gb (length-L accumulators of this chunk) += partial sums."""
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        gr = g[r]
        mu = mean[r]
        rs = rstd[r]
        s1 = 0.0
        s2 = 0.0
        if has_w:
            for j in range(L):
                xh = (xr[j] - mu) * rs
                gj = gr[j]
                gw[j] += gj * xh
                gb[j] += gj
                gj = gj * w[j]
                s1 += gj
                s2 += gj * xh
        else:
            for j in range(L):
                xh = (xr[j] - mu) * rs
                s1 += gr[j]
                s2 += gr[j] * xh
        a1 = gx.dtype.type(s1 / L)
        a2 = gx.dtype.type(s2 / L)
        o = gx[r]
        if has_w:
            for j in range(L):
                o[j] = rs * (gr[j] * w[j] - a1 - (xr[j] - mu) * rs * a2)
        else:
            for j in range(L):
                o[j] = rs * (gr[j] - a1 - (xr[j] - mu) * rs * a2)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def rms_norm_rows(x, w, has_w, eps, y, rstd, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        rstd[r] = 1.0 / math.sqrt(row_dot(xr, xr) / L + eps)
        rs = rstd[r]
        yr = y[r]
        if has_w:
            for j in range(L):
                yr[j] = xr[j] * rs * w[j]
        else:
            for j in range(L):
                yr[j] = xr[j] * rs


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def rms_norm_bwd_rows(g, x, w, has_w, rstd, gx, gw, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        gr = g[r]
        rs = rstd[r]
        s2 = 0.0
        if has_w:
            for j in range(L):
                xh = xr[j] * rs
                gj = gr[j]
                gw[j] += gj * xh
                s2 += gj * w[j] * xh
        else:
            s2 = row_dot(gr, xr) * rs
        a2 = gx.dtype.type(s2 / L)
        o = gx[r]
        if has_w:
            for j in range(L):
                o[j] = rs * (gr[j] * w[j] - xr[j] * rs * a2)
        else:
            for j in range(L):
                o[j] = rs * (gr[j] - xr[j] * rs * a2)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "nsz"})
def cross_entropy_rows(x, target, ignore, smooth, loss, lse_out, scratch, lo, hi):
    """Returns the number of targets outside [0, C) (other than ``ignore``); ``scratch``:
    C elements of x's dtype (from the caller: allocating here cost compile time). The max
    and exp passes are loops of this function (nsz + contract suit both; separate helper
    functions cost ~0.25 s more Numba compilation for the same SIMD code)."""
    C = x.shape[1]
    bad = 0
    for r in range(lo, hi):
        xr = x[r]
        m = xr[0]
        for j in range(C):
            m = fmaximum(m, xr[j])
        for j in range(C):
            scratch[j] = fexp(xr[j] - m)
        s = row_sum(scratch)
        tot = row_sum(xr) if smooth > 0.0 else 0.0
        lse = m + math.log(s)
        lse_out[r] = lse
        t = target[r]
        if t == ignore:
            loss[r] = 0.0
            continue
        if t < 0 or t >= C:
            bad += 1
            loss[r] = math.nan
            continue
        nll = lse - xr[t]
        if smooth > 0.0:
            nll = (1.0 - smooth) * nll + smooth * (lse - tot / C)
        loss[r] = nll
    return bad


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def cross_entropy_bwd_rows(g, x, target, lse, ignore, smooth, out, lo, hi):
    C = x.shape[1]
    for r in range(lo, hi):
        o = out[r]
        t = target[r]
        if t == ignore:
            for j in range(C):
                o[j] = 0.0
            continue
        gr = g[r]
        lr = lse[r]
        xr = x[r]
        base = o.dtype.type(smooth / C)
        for j in range(C):
            o[j] = (fexp(xr[j] - lr) - base) * gr
        if 0 <= t < C:
            o[t] -= (1.0 - smooth) * gr
