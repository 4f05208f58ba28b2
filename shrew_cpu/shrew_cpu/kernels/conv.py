"""im2col / col2im kernels for convolution as GEMM (NCHW, stride, padding, dilation).

``im2col`` writes, for every image, a [C*KH*KW, OH*OW] matrix whose row (c, kh, kw)
holds the input pixels that kernel tap meets at each output position (0 in padding);
``col2im`` is its adjoint (adds each column entry back to its pixel). Both run one
(image, channel) plane per ``prange`` task, so col2im's accumulation has no races.
Valid output-column ranges are computed per tap, so the inner loops are branch-free.
The per-image variants (``_im2col_img``/``_col2im_img``) used by the fused path copy a
whole tap as one contiguous run when stride is 1 and the output is as wide as the input
(the flat index just shifts), then fix up the padding columns.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, error_model="numpy")
def _ow_range(kw, W, OW, sw, pw, dw):
    """Output columns ow whose input column ow*sw - pw + kw*dw lies in [0, W)."""
    shift = kw * dw - pw
    lo = 0 if shift >= 0 else (-shift + sw - 1) // sw
    hi = (W - 1 - shift) // sw + 1 if W - 1 - shift >= 0 else 0
    return min(lo, OW), min(max(hi, 0), OW)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def im2col(x, N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols):
    """x: flat NCHW; cols: [N, C*KH*KW, OH*OW] (C-contiguous)."""
    for t in prange(N * C):
        n = t // C
        c = t % C
        base = t * H * W
        for kh in range(KH):
            for kw in range(KW):
                dst = cols[n, (c * KH + kh) * KW + kw]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                shift = kw * dw - pw
                for oh in range(OH):
                    ih = oh * sh - ph + kh * dh
                    row = dst[oh * OW : (oh + 1) * OW]
                    if ih < 0 or ih >= H or lo >= hi:
                        row[:] = 0
                        continue
                    row[:lo] = 0
                    row[hi:] = 0
                    src = base + ih * W + shift
                    if sw == 1:
                        row[lo:hi] = x[src + lo : src + hi]
                    else:
                        for ow in range(lo, hi):
                            row[ow] = x[src + ow * sw]


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def col2im(cols, N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out):
    """out (flat NCHW, zero-initialised) += adjoint of im2col applied to cols."""
    for t in prange(N * C):
        n = t // C
        c = t % C
        base = t * H * W
        for kh in range(KH):
            for kw in range(KW):
                srcrow = cols[n, (c * KH + kh) * KW + kw]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                shift = kw * dw - pw
                for oh in range(OH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    dst = base + ih * W + shift
                    for ow in range(lo, hi):
                        out[dst + ow * sw] += srcrow[oh * OW + ow]


# ------------------------------------------------------------------ fused per-image path
# For ungrouped convolutions of small/medium channel counts (the common CNN layer), one
# prange task per chunk of images runs im2col for ONE image into an L2-sized scratch
# [K, L] and multiplies it right away with Numba register/L1-blocked loops, so the
# [N, K, L] column matrix never exists and OpenBLAS's thread pool (which wakes slowly on
# a busy 2-core machine: 2-5x slower than one thread here) is not involved.
@njit(cache=True, nogil=True, error_model="numpy")
def _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw, base):
    """Stride-1 "same width" geometry (OW == W): row k of the column matrix is the image
    plane shifted by ``off`` in flat index, over output rows [oh_lo, oh_hi), clipped to
    the plane; invalid columns (ow outside [lo, hi)) are fixed up by the caller."""
    rshift = kh * dh - ph
    oh_lo = min(max(0, -rshift), OH)
    oh_hi = max(min(OH, H - rshift), oh_lo)
    off = base + rshift * W + kw * dw - pw
    t0 = oh_lo * W
    t1 = oh_hi * W
    if off + t0 < base:
        t0 = base - off
    if off + t1 > base + H * W:
        t1 = base + H * W - off
    return oh_lo, oh_hi, off, t0, max(t1, t0)


@njit(cache=True, nogil=True, error_model="numpy")
def _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols):
    """cols[(c, kh, kw), oh*OW + ow] for image n (cols: [C*KH*KW, OH*OW])."""
    same = sh == 1 and sw == 1 and OW == W
    for c in range(C):
        base = (n * C + c) * H * W
        for kh in range(KH):
            for kw in range(KW):
                k = (c * KH + kh) * KW + kw
                dst = cols[k]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                shift = kw * dw - pw
                if same:  # one contiguous copy per tap, then zero the padding
                    oh_lo, oh_hi, off, t0, t1 = _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw,
                                                           base)  # fmt: skip
                    dst[:t0] = 0
                    dst[t1:] = 0
                    dst[t0:t1] = x[off + t0 : off + t1]
                    for oh in range(oh_lo, oh_hi):
                        r = oh * OW
                        for ow in range(lo):
                            dst[r + ow] = 0
                        for ow in range(max(hi, lo), OW):
                            dst[r + ow] = 0
                    continue
                for oh in range(OH):
                    ih = oh * sh - ph + kh * dh
                    row = dst[oh * OW : (oh + 1) * OW]
                    if ih < 0 or ih >= H or lo >= hi:
                        row[:] = 0
                        continue
                    row[:lo] = 0
                    row[hi:] = 0
                    src = base + ih * W + shift
                    if sw == 1:
                        row[lo:hi] = x[src + lo : src + hi]
                    else:
                        for ow in range(lo, hi):
                            row[ow] = x[src + ow * sw]


@njit(cache=True, nogil=True, error_model="numpy")
def _col2im_img(cols, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out):
    """out (flat NCHW) += adjoint of ``_im2col_img`` for image n. In the stride-1 same-width
    case the padding columns of ``cols`` are zeroed first (cols is scratch), so each tap
    is one contiguous add."""
    same = sh == 1 and sw == 1 and OW == W
    for c in range(C):
        base = (n * C + c) * H * W
        for kh in range(KH):
            for kw in range(KW):
                k = (c * KH + kh) * KW + kw
                srcrow = cols[k]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                shift = kw * dw - pw
                if same:
                    oh_lo, oh_hi, off, t0, t1 = _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw,
                                                           base)  # fmt: skip
                    for oh in range(oh_lo, oh_hi):
                        r = oh * OW
                        for ow in range(lo):
                            srcrow[r + ow] = 0
                        for ow in range(max(hi, lo), OW):
                            srcrow[r + ow] = 0
                    d = out[off + t0 : off + t1]
                    sr = srcrow[t0:t1]
                    for i in range(t1 - t0):
                        d[i] += sr[i]
                    continue
                for oh in range(OH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    dst = base + ih * W + shift
                    if sw == 1:
                        d = out[dst + lo : dst + hi]
                        s = srcrow[oh * OW + lo : oh * OW + hi]
                        for i in range(hi - lo):
                            d[i] += s[i]
                    else:
                        for ow in range(lo, hi):
                            out[dst + ow * sw] += srcrow[oh * OW + ow]


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _gemm_rows(a, b, out):
    """out[M, L] = a[M, K] @ b[K, L]: blocks of 4 output rows x 4 rows of b, so each SIMD
    load/store of an output row (kept in L1) carries four FMAs."""
    M, K = a.shape
    L = b.shape[1]
    out[:] = 0
    K4 = K - K % 4
    i = 0
    while i < M:
        nr = min(4, M - i)
        if nr == 4:
            o0, o1, o2, o3 = out[i], out[i + 1], out[i + 2], out[i + 3]
            for k in range(0, K4, 4):
                c0, c1, c2, c3 = b[k], b[k + 1], b[k + 2], b[k + 3]
                a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
                a10, a11, a12, a13 = a[i + 1, k], a[i + 1, k + 1], a[i + 1, k + 2], a[i + 1, k + 3]
                a20, a21, a22, a23 = a[i + 2, k], a[i + 2, k + 1], a[i + 2, k + 2], a[i + 2, k + 3]
                a30, a31, a32, a33 = a[i + 3, k], a[i + 3, k + 1], a[i + 3, k + 2], a[i + 3, k + 3]
                for j in range(L):
                    x0, x1, x2, x3 = c0[j], c1[j], c2[j], c3[j]
                    o0[j] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3
                    o1[j] += a10 * x0 + a11 * x1 + a12 * x2 + a13 * x3
                    o2[j] += a20 * x0 + a21 * x1 + a22 * x2 + a23 * x3
                    o3[j] += a30 * x0 + a31 * x1 + a32 * x2 + a33 * x3
        for r in range(i, i + nr):
            orow = out[r]
            for k in range(K4 if nr == 4 else 0, K):
                c = b[k]
                w = a[r, k]
                for j in range(L):
                    orow[j] += w * c[j]
        i += nr


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"})
def _gemm_nt_acc(a, b, out):
    """out[M, N] += a[M, L] @ b[N, L].T: 2x4 blocks of dot products whose SIMD partial
    sums stay in registers (one load of each row feeds several FMAs)."""
    M = a.shape[0]
    N = b.shape[0]
    L = a.shape[1]
    z = out.dtype.type(0.0)  # accumulate in the data's dtype (SIMD lanes: pairwise-like)
    i = 0
    while i + 2 <= M:
        a0, a1 = a[i], a[i + 1]
        j = 0
        while j + 4 <= N:
            b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
            for t in range(L):
                x0 = a0[t]
                x1 = a1[t]
                y0 = b0[t]
                y1 = b1[t]
                y2 = b2[t]
                y3 = b3[t]
                s00 += x0 * y0
                s01 += x0 * y1
                s02 += x0 * y2
                s03 += x0 * y3
                s10 += x1 * y0
                s11 += x1 * y1
                s12 += x1 * y2
                s13 += x1 * y3
            out[i, j] += s00
            out[i, j + 1] += s01
            out[i, j + 2] += s02
            out[i, j + 3] += s03
            out[i + 1, j] += s10
            out[i + 1, j + 1] += s11
            out[i + 1, j + 2] += s12
            out[i + 1, j + 3] += s13
            j += 4
        while j < N:
            bj = b[j]
            s0 = s1 = z
            for t in range(L):
                s0 += a0[t] * bj[t]
                s1 += a1[t] * bj[t]
            out[i, j] += s0
            out[i + 1, j] += s1
            j += 1
        i += 2
    if i < M:
        a0 = a[i]
        for j in range(N):
            bj = b[j]
            s0 = z
            for t in range(L):
                s0 += a0[t] * bj[t]
            out[i, j] += s0


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def conv_fwd_fused(x, w2, N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, nch):
    """out[n] = w2 [OC, K] @ im2col(x[n]) for every image; out: [N, OC, OH*OW]."""
    step = (N + nch - 1) // nch
    for ci in prange(nch):
        cols = np.empty((w2.shape[1], OH * OW), out.dtype)
        for n in range(ci * step, min(N, (ci + 1) * step)):
            _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols)
            _gemm_rows(w2, cols, out[n])


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def conv_bwd_input_fused(g, w2t, N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, nch):
    """out (flat NCHW, zeroed) = col2im(w2t [K, OC] @ g[n]) for every image n."""
    step = (N + nch - 1) // nch
    for ci in prange(nch):
        cols = np.empty((w2t.shape[0], OH * OW), out.dtype)
        for n in range(ci * step, min(N, (ci + 1) * step)):
            _gemm_rows(w2t, g[n], cols)
            _col2im_img(cols, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out)


@njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def conv_bwd_weight_fused(g, x, N, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, partial,
                          nch):  # fmt: skip
    """partial[chunk] (zeroed, [OC, K]) += g[n] [OC, L] @ im2col(x[n]).T over the chunk's
    images; the caller sums the chunks."""
    step = (N + nch - 1) // nch
    for ci in prange(nch):
        cols = np.empty((partial.shape[2], OH * OW), g.dtype)
        for n in range(ci * step, min(N, (ci + 1) * step)):
            _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols)
            _gemm_nt_acc(g[n], cols, partial[ci])
