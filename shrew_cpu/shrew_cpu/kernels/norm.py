"""Fused row kernels: softmax / log-softmax (+ backward), layer norm and RMS norm
(+ backward), cross-entropy (+ backward).

Every kernel works on a C-contiguous [R, L] matrix, normalising each row, and exists
as a serial function over a row range ``[lo, hi)``; ``rows_parallel`` runs any of them
over row chunks with ``prange`` (one compiled wrapper per kernel). Statistics
accumulate in f64; data stays in its dtype (f32 or f64; halves arrive as f32).
Weight/bias gradients of the norms are per-chunk partial sums, added up by the caller,
so no two threads write the same element.
"""

from __future__ import annotations

import math

from numba import njit, prange


@njit(cache=True, error_model="numpy")
def softmax_rows(x, out, log, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        o = out[r]
        m = -math.inf
        for j in range(L):
            v = xr[j]
            if v > m or v != v:
                m = v
        if m == -math.inf:  # all -inf: torch yields nan
            m = 0.0
        s = 0.0
        if log:
            for j in range(L):
                s += math.exp(xr[j] - m)
            lse = m + math.log(s)
            for j in range(L):
                o[j] = xr[j] - lse
        else:
            for j in range(L):
                e = math.exp(xr[j] - m)
                o[j] = e
                s += e
            inv = 1.0 / s
            for j in range(L):
                o[j] = o[j] * inv


@njit(cache=True, error_model="numpy")
def softmax_bwd_rows(y, g, out, log, lo, hi):
    L = y.shape[1]
    for r in range(lo, hi):
        yr = y[r]
        gr = g[r]
        o = out[r]
        s = 0.0
        if log:
            for j in range(L):
                s += gr[j]
            for j in range(L):
                o[j] = gr[j] - math.exp(yr[j]) * s
        else:
            for j in range(L):
                s += gr[j] * yr[j]
            for j in range(L):
                o[j] = yr[j] * (gr[j] - s)


@njit(cache=True, error_model="numpy")
def layer_norm_rows(x, w, b, has_w, has_b, eps, y, mean, rstd, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        s = 0.0
        for j in range(L):
            s += xr[j]
        mu = s / L
        q = 0.0
        for j in range(L):
            d = xr[j] - mu
            q += d * d
        rs = 1.0 / math.sqrt(q / L + eps)
        mean[r] = mu
        rstd[r] = rs
        yr = y[r]
        for j in range(L):
            v = (xr[j] - mu) * rs
            if has_w:
                v = v * w[j]
            if has_b:
                v = v + b[j]
            yr[j] = v


@njit(cache=True, error_model="numpy")
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
        for j in range(L):
            xh = (xr[j] - mu) * rs
            gj = gr[j]
            if has_w:
                gw[j] += gj * xh
                gb[j] += gj
                gj = gj * w[j]
            s1 += gj
            s2 += gj * xh
        s1 /= L
        s2 /= L
        o = gx[r]
        for j in range(L):
            xh = (xr[j] - mu) * rs
            gj = gr[j] * w[j] if has_w else gr[j]
            o[j] = rs * (gj - s1 - xh * s2)


@njit(cache=True, error_model="numpy")
def rms_norm_rows(x, w, has_w, eps, y, rstd, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        q = 0.0
        for j in range(L):
            q += xr[j] * xr[j]
        rs = 1.0 / math.sqrt(q / L + eps)
        rstd[r] = rs
        yr = y[r]
        for j in range(L):
            v = xr[j] * rs
            if has_w:
                v = v * w[j]
            yr[j] = v


@njit(cache=True, error_model="numpy")
def rms_norm_bwd_rows(g, x, w, has_w, rstd, gx, gw, lo, hi):
    L = x.shape[1]
    for r in range(lo, hi):
        xr = x[r]
        gr = g[r]
        rs = rstd[r]
        s2 = 0.0
        for j in range(L):
            xh = xr[j] * rs
            gj = gr[j]
            if has_w:
                gw[j] += gj * xh
                gj = gj * w[j]
            s2 += gj * xh
        s2 /= L
        o = gx[r]
        for j in range(L):
            gj = gr[j] * w[j] if has_w else gr[j]
            o[j] = rs * (gj - xr[j] * rs * s2)


@njit(cache=True, error_model="numpy")
def cross_entropy_rows(x, target, ignore, smooth, loss, lse_out, lo, hi):
    """Returns the number of targets outside [0, C) (other than ``ignore``)."""
    C = x.shape[1]
    bad = 0
    for r in range(lo, hi):
        xr = x[r]
        m = -math.inf
        for j in range(C):
            if xr[j] > m or xr[j] != xr[j]:
                m = xr[j]
        s = 0.0
        tot = 0.0
        for j in range(C):
            s += math.exp(xr[j] - m)
            tot += xr[j]
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


@njit(cache=True, error_model="numpy")
def cross_entropy_bwd_rows(g, x, target, lse, ignore, smooth, out, lo, hi):
    C = x.shape[1]
    for r in range(lo, hi):
        o = out[r]
        t = target[r]
        if t == ignore:
            o[:] = 0.0
            continue
        gr = g[r]
        lr = lse[r]
        xr = x[r]
        base = smooth / C
        for j in range(C):
            o[j] = (math.exp(xr[j] - lr) - base) * gr
        if 0 <= t < C:
            o[t] -= (1.0 - smooth) * gr


# ------------------------------------------------------------------------ parallel drivers
@njit(cache=True, parallel=True, error_model="numpy")
def softmax_par(x, out, log, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        softmax_rows(x, out, log, c * step, min(R, (c + 1) * step))


@njit(cache=True, parallel=True, error_model="numpy")
def softmax_bwd_par(y, g, out, log, nch):
    R = y.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        softmax_bwd_rows(y, g, out, log, c * step, min(R, (c + 1) * step))


@njit(cache=True, parallel=True, error_model="numpy")
def layer_norm_par(x, w, b, has_w, has_b, eps, y, mean, rstd, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        layer_norm_rows(x, w, b, has_w, has_b, eps, y, mean, rstd, c * step,
                        min(R, (c + 1) * step))  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def layer_norm_bwd_par(g, x, w, has_w, mean, rstd, gx, gw, gb, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        layer_norm_bwd_rows(g, x, w, has_w, mean, rstd, gx, gw[c], gb[c], c * step,
                            min(R, (c + 1) * step))  # fmt: skip


@njit(cache=True, parallel=True, error_model="numpy")
def rms_norm_par(x, w, has_w, eps, y, rstd, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        rms_norm_rows(x, w, has_w, eps, y, rstd, c * step, min(R, (c + 1) * step))


@njit(cache=True, parallel=True, error_model="numpy")
def rms_norm_bwd_par(g, x, w, has_w, rstd, gx, gw, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        rms_norm_bwd_rows(g, x, w, has_w, rstd, gx, gw[c], c * step, min(R, (c + 1) * step))


@njit(cache=True, parallel=True, error_model="numpy")
def cross_entropy_par(x, target, ignore, smooth, loss, lse, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    bad = 0
    for c in prange(nch):
        bad += cross_entropy_rows(x, target, ignore, smooth, loss, lse, c * step,
                                  min(R, (c + 1) * step))  # fmt: skip
    return bad


@njit(cache=True, parallel=True, error_model="numpy")
def cross_entropy_bwd_par(g, x, target, lse, ignore, smooth, out, nch):
    R = x.shape[0]
    step = (R + nch - 1) // nch
    for c in prange(nch):
        cross_entropy_bwd_rows(g, x, target, lse, ignore, smooth, out, c * step,
                               min(R, (c + 1) * step))  # fmt: skip

