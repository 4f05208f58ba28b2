"""Pooling kernels over NCHW planes: max pooling with flat-plane indices and its scatter
backward, average pooling (PyTorch's divisor rules for padding and ceil mode) and its
backward, adaptive average pooling and its backward.

Each kernel is serial over a plane range ``[lo, hi)`` and releases the GIL; the host
runs large inputs as plane ranges on the worker threads (``threads.py``). Every backward
writes only into its own planes, so there are no races.
"""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_fwd_planes(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, idx, lo, hi):
    for p in range(lo, hi):
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



@njit(cache=True, nogil=True, error_model="numpy")
def max_pool_bwd_planes(grad, idx, HW, L, out, lo, hi):
    """out[p, idx[p, j]] += grad[p, j]; returns the number of out-of-range indices."""
    bad = 0
    for p in range(lo, hi):
        for j in range(L):
            i = idx[p * L + j]
            if i < 0 or i >= HW:
                bad += 1
            else:
                out[p * HW + i] += grad[p * L + j]
    return bad



@njit(cache=True, nogil=True, error_model="numpy")
def _avg_window(o, s, p, k, n):
    start = o * s - p
    end = start + k if start + k < n + p else n + p
    size = end - start
    return (start if start > 0 else 0), (end if end < n else n), size


@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_fwd_planes(x, H, W, KH, KW, sh, sw, ph, pw, OH, OW, include_pad, out, lo, hi):
    for p in range(lo, hi):
        base = p * H * W
        for oh in range(OH):
            h0, h1, hs = _avg_window(oh, sh, ph, KH, H)
            for ow in range(OW):
                w0, w1, ws = _avg_window(ow, sw, pw, KW, W)
                div = hs * ws if include_pad else (h1 - h0) * (w1 - w0)
                acc = 0.0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        acc += x[base + ih * W + iw]
                out[p * OH * OW + oh * OW + ow] = acc / div if div > 0 else 0.0



@njit(cache=True, nogil=True, error_model="numpy")
def avg_pool_bwd_planes(grad, H, W, KH, KW, sh, sw, ph, pw, OH, OW, include_pad, out, lo, hi):
    for p in range(lo, hi):
        base = p * H * W
        for oh in range(OH):
            h0, h1, hs = _avg_window(oh, sh, ph, KH, H)
            for ow in range(OW):
                w0, w1, ws = _avg_window(ow, sw, pw, KW, W)
                div = hs * ws if include_pad else (h1 - h0) * (w1 - w0)
                if div <= 0:
                    continue
                g = grad[p * OH * OW + oh * OW + ow] / div
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        out[base + ih * W + iw] += g



@njit(cache=True, nogil=True, error_model="numpy")
def adaptive_avg_fwd_planes(x, H, W, OH, OW, out, lo, hi):
    for p in range(lo, hi):
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



@njit(cache=True, nogil=True, error_model="numpy")
def adaptive_avg_bwd_planes(grad, H, W, OH, OW, out, lo, hi):
    for p in range(lo, hi):
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
