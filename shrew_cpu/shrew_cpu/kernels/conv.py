"""im2col / col2im kernels for convolution as GEMM (NCHW, stride, padding, dilation).

``im2col`` writes, for every image, a [C*KH*KW, OH*OW] matrix whose row (c, kh, kw)
holds the input pixels that kernel tap meets at each output position (0 in padding);
``col2im`` is its adjoint (adds each column entry back to its pixel). Both run one
(image, channel) plane per ``prange`` task, so col2im's accumulation has no races.
Valid output-column ranges are computed per tap, so the inner loops are branch-free.
"""

from __future__ import annotations

from numba import njit, prange


@njit(cache=True, error_model="numpy")
def _ow_range(kw, W, OW, sw, pw, dw):
    """Output columns ow whose input column ow*sw - pw + kw*dw lies in [0, W)."""
    shift = kw * dw - pw
    lo = 0 if shift >= 0 else (-shift + sw - 1) // sw
    hi = (W - 1 - shift) // sw + 1 if W - 1 - shift >= 0 else 0
    return lo, min(max(hi, 0), OW)


@njit(cache=True, parallel=True, error_model="numpy")
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


@njit(cache=True, parallel=True, error_model="numpy")
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
