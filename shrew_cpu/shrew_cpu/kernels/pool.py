"""Pooling kernels (NCHW planes, one plane per ``prange`` task): max pooling with
flat-plane indices and its scatter backward, average pooling (PyTorch's divisor rules
for padding and ceil mode) and its backward, adaptive average pooling and its backward.
Every backward writes only into its own plane, so there are no races."""

from __future__ import annotations

import math

from numba import njit, prange


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_fwd(x, P, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, idx):
    for p in prange(P):
        base = p * H * W
        ob = p * OH * OW
        for oh in range(OH):
            for ow in range(OW):
                best = -math.inf
                bi = -1
                for kh in range(KH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    for kw in range(KW):
                        iw = ow * sw - pw + kw * dw
                        if iw < 0 or iw >= W:
                            continue
                        v = x[base + ih * W + iw]
                        if bi < 0 or v > best or v != v:
                            best = v
                            bi = ih * W + iw
                out[ob + oh * OW + ow] = best
                idx[ob + oh * OW + ow] = bi


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def max_pool_bwd(grad, idx, P, HW, L, out):
    """out[p, idx[p, j]] += grad[p, j]; returns the number of out-of-range indices."""
    bad = 0
    for p in prange(P):
        for j in range(L):
            i = idx[p * L + j]
            if i < 0 or i >= HW:
                bad += 1
            else:
                out[p * HW + i] += grad[p * L + j]
    return bad


@njit(cache=True, nogil=True, error_model="numpy")
def _avg_window(o, s, p, k, n, include_pad):
    start = o * s - p
    end = min(start + k, n + p)
    size = end - start
    start = max(start, 0)
    end = min(end, n)
    return start, end, size


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def avg_pool_fwd(x, P, H, W, KH, KW, sh, sw, ph, pw, OH, OW, include_pad, out):
    for p in prange(P):
        base = p * H * W
        for oh in range(OH):
            h0, h1, hs = _avg_window(oh, sh, ph, KH, H, include_pad)
            for ow in range(OW):
                w0, w1, ws = _avg_window(ow, sw, pw, KW, W, include_pad)
                div = hs * ws if include_pad else (h1 - h0) * (w1 - w0)
                acc = 0.0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[base + ih * W + iw]
                out[p * OH * OW + oh * OW + ow] = acc / div if div > 0 else 0.0


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def avg_pool_bwd(grad, P, H, W, KH, KW, sh, sw, ph, pw, OH, OW, include_pad, out):
    for p in prange(P):
        base = p * H * W
        for oh in range(OH):
            h0, h1, hs = _avg_window(oh, sh, ph, KH, H, include_pad)
            for ow in range(OW):
                w0, w1, ws = _avg_window(ow, sw, pw, KW, W, include_pad)
                div = hs * ws if include_pad else (h1 - h0) * (w1 - w0)
                if div <= 0:
                    continue
                g = grad[p * OH * OW + oh * OW + ow] / div
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        out[base + ih * W + iw] += g


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def adaptive_avg_fwd(x, P, H, W, OH, OW, out):
    for p in prange(P):
        base = p * H * W
        for oh in range(OH):
            h0 = (oh * H) // OH
            h1 = ((oh + 1) * H + OH - 1) // OH
            for ow in range(OW):
                w0 = (ow * W) // OW
                w1 = ((ow + 1) * W + OW - 1) // OW
                acc = 0.0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[base + ih * W + iw]
                out[p * OH * OW + oh * OW + ow] = acc / ((h1 - h0) * (w1 - w0))


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def adaptive_avg_bwd(grad, P, H, W, OH, OW, out):
    for p in prange(P):
        base = p * H * W
        for oh in range(OH):
            h0 = (oh * H) // OH
            h1 = ((oh + 1) * H + OH - 1) // OH
            for ow in range(OW):
                w0 = (ow * W) // OW
                w1 = ((ow + 1) * W + OW - 1) // OW
                g = grad[p * OH * OW + oh * OW + ow] / ((h1 - h0) * (w1 - w0))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        out[base + ih * W + iw] += g
