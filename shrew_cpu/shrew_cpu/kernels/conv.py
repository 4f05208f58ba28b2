"""Numba kernels of the fused convolution path (ungrouped, small/medium weights; see
``conv.py``): for each image of a range, im2col into an L2-sized scratch [C*KH*KW, OH*OW]
and a register-blocked SIMD GEMM right away (forward, weight gradient), or the transposed
GEMM then col2im into the image's own planes (input gradient: no races between ranges).

Row (c, kh, kw) of the column matrix holds the input pixels that kernel tap meets at each
output position (0 in padding); col2im is its adjoint. Valid output-column ranges are
computed per tap, so the inner loops are branch-free. When stride is 1 and the output is
as wide as the input, a tap's row is the image plane shifted in flat index: one
contiguous copy/add plus a fix-up of the padding columns.

Compile time: every copy, fill and accumulation is an explicit loop over a slice that
starts at 0 (``a[i:j] = b[k:l]`` pulls in NumPy's broadcasting setitem, whose error
formatting alone took ~2 s of Numba compilation; 0-based loops also avoid negative-index
wraparound checks, so LLVM vectorises them), and scratch arrays come from the caller.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _zero(a, lo, hi):
    """a[lo:hi] = 0."""
    d = a[lo:hi]
    for i in range(d.size):
        d[i] = 0


@njit(cache=True, nogil=True, error_model="numpy")
def _copy(dst, d0, src, s0, n):
    """dst[d0:d0+n] = src[s0:s0+n]."""
    d = dst[d0 : d0 + n]
    s = src[s0 : s0 + n]
    for i in range(n):
        d[i] = s[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _add(dst, d0, src, s0, n):
    """dst[d0:d0+n] += src[s0:s0+n]."""
    d = dst[d0 : d0 + n]
    s = src[s0 : s0 + n]
    for i in range(n):
        d[i] += s[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _ow_range(kw, W, OW, sw, pw, dw):
    """Output columns ow whose input column ow*sw - pw + kw*dw lies in [0, W)."""
    shift = kw * dw - pw
    lo = 0 if shift >= 0 else (-shift + sw - 1) // sw
    hi = (W - 1 - shift) // sw + 1 if W - 1 - shift >= 0 else 0
    lo = lo if lo < OW else OW
    hi = hi if hi > 0 else 0
    hi = hi if hi < OW else OW
    return lo, hi


@njit(cache=True, nogil=True, error_model="numpy")
def _im2col_plane(x, base, c, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols):
    """The KH*KW column rows of input plane x[base : base + H*W] (channel c) into cols."""
    for kh in range(KH):
        for kw in range(KW):
            dst = cols[(c * KH + kh) * KW + kw]
            lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
            shift = kw * dw - pw
            for oh in range(OH):
                ih = oh * sh - ph + kh * dh
                r = oh * OW
                if ih < 0 or ih >= H or lo >= hi:
                    _zero(dst, r, r + OW)
                    continue
                _zero(dst, r, r + lo)
                _zero(dst, r + hi, r + OW)
                src = base + ih * W + shift
                if sw == 1:
                    _copy(dst, r + lo, x, src + lo, hi - lo)
                else:
                    d = dst[r + lo : r + hi]
                    s0 = src + lo * sw
                    for i in range(hi - lo):
                        d[i] = x[s0 + i * sw]


@njit(cache=True, nogil=True, error_model="numpy")
def _col2im_plane(cols, base, c, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out):
    """out[base : base + H*W] (channel c's plane) += adjoint of ``_im2col_plane``."""
    for kh in range(KH):
        for kw in range(KW):
            srcrow = cols[(c * KH + kh) * KW + kw]
            lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
            shift = kw * dw - pw
            for oh in range(OH):
                ih = oh * sh - ph + kh * dh
                if ih < 0 or ih >= H or lo >= hi:
                    continue
                dst = base + ih * W + shift
                if sw == 1:
                    _add(out, dst + lo, srcrow, oh * OW + lo, hi - lo)
                else:
                    s = srcrow[oh * OW + lo : oh * OW + hi]
                    d0 = dst + lo * sw
                    for i in range(hi - lo):
                        out[d0 + i * sw] += s[i]




# ------------------------------------------------------------------ fused per-image path
# For ungrouped convolutions of small/medium channel counts (the common CNN layer), one
# task per chunk of images runs im2col for ONE image into an L2-sized scratch [K, L] and
# multiplies it right away with Numba register/L1-blocked loops, so the [N, K, L] column
# matrix never exists and OpenBLAS's thread pool (which wakes slowly on a busy 2-core
# machine: 2-5x slower than one thread here) is not involved. ``conv_*_imgs`` run an
# image range without the GIL; large batches are split into ranges over the worker
# threads, each with its own scratch.
@njit(cache=True, nogil=True, error_model="numpy")
def _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw, base):
    """Stride-1 "same width" geometry (OW == W): row k of the column matrix is the image
    plane shifted by ``off`` in flat index, over output rows [oh_lo, oh_hi), clipped to
    the plane; invalid columns (ow outside [lo, hi)) are fixed up by the caller."""
    rshift = kh * dh - ph
    oh_lo = -rshift if rshift < 0 else 0
    oh_lo = oh_lo if oh_lo < OH else OH
    oh_hi = H - rshift if H - rshift < OH else OH
    oh_hi = oh_hi if oh_hi > oh_lo else oh_lo
    off = base + rshift * W + kw * dw - pw
    t0 = oh_lo * W
    t1 = oh_hi * W
    if off + t0 < base:
        t0 = base - off
    if off + t1 > base + H * W:
        t1 = base + H * W - off
    return oh_lo, oh_hi, off, t0, t1 if t1 > t0 else t0


@njit(cache=True, nogil=True, error_model="numpy")
def _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols):
    """cols[(c, kh, kw), oh*OW + ow] for image n (cols: [C*KH*KW, OH*OW])."""
    if not (sh == 1 and sw == 1 and OW == W):
        for c in range(C):
            _im2col_plane(x, (n * C + c) * H * W, c, H, W, KH, KW, sh, sw, ph, pw, dh, dw,
                          OH, OW, cols)  # fmt: skip
        return
    L = OH * OW
    for c in range(C):  # one contiguous copy per tap, then zero the padding columns
        base = (n * C + c) * H * W
        for kh in range(KH):
            for kw in range(KW):
                dst = cols[(c * KH + kh) * KW + kw]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                hi = hi if hi > lo else lo
                oh_lo, oh_hi, off, t0, t1 = _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw, base)
                _zero(dst, 0, t0)
                _zero(dst, t1, L)
                _copy(dst, t0, x, off + t0, t1 - t0)
                for oh in range(oh_lo, oh_hi):
                    _zero(dst, oh * OW, oh * OW + lo)
                    _zero(dst, oh * OW + hi, oh * OW + OW)


@njit(cache=True, nogil=True, error_model="numpy")
def _col2im_img(cols, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out):
    """out (flat NCHW) += adjoint of ``_im2col_img`` for image n. In the stride-1 same-width
    case the padding columns of ``cols`` are zeroed first (cols is scratch), so each tap
    is one contiguous add."""
    if not (sh == 1 and sw == 1 and OW == W):
        for c in range(C):
            _col2im_plane(cols, (n * C + c) * H * W, c, H, W, KH, KW, sh, sw, ph, pw, dh, dw,
                          OH, OW, out)  # fmt: skip
        return
    for c in range(C):
        base = (n * C + c) * H * W
        for kh in range(KH):
            for kw in range(KW):
                srcrow = cols[(c * KH + kh) * KW + kw]
                lo, hi = _ow_range(kw, W, OW, sw, pw, dw)
                hi = hi if hi > lo else lo
                oh_lo, oh_hi, off, t0, t1 = _flat_span(kh, kw, H, W, OH, ph, pw, dh, dw, base)
                for oh in range(oh_lo, oh_hi):
                    _zero(srcrow, oh * OW, oh * OW + lo)
                    _zero(srcrow, oh * OW + hi, oh * OW + OW)
                _add(out, off + t0, srcrow, t0, t1 - t0)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _gemm_rows(a, b, out):
    """out[M, L] = a[M, K] @ b[K, L]: blocks of 4 output rows x 4 rows of b, so each SIMD
    load/store of an output row (kept in L1) carries four FMAs."""
    M, K = a.shape
    L = b.shape[1]
    for r in range(M):
        _zero(out[r], 0, L)
    K4 = K - K % 4
    i = 0
    while i < M:
        nr = 4 if M - i >= 4 else M - i
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


@njit(cache=True, nogil=True, error_model="numpy")
def conv_fwd_imgs(x, w2, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, cols, lo, hi):
    """out[n] = w2 [OC, K] @ im2col(x[n]) for images n in [lo, hi); out: [N, OC, OH*OW],
    cols: [K, OH*OW] scratch."""
    for n in range(lo, hi):
        _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols)
        _gemm_rows(w2, cols, out[n])


@njit(cache=True, nogil=True, error_model="numpy")
def conv_bwd_input_imgs(g, w2t, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out, cols, lo,
                        hi):  # fmt: skip
    """out (flat NCHW, zeroed) = col2im(w2t [K, OC] @ g[n]) for images n in [lo, hi)."""
    for n in range(lo, hi):
        _gemm_rows(w2t, g[n], cols)
        _col2im_img(cols, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, out)


@njit(cache=True, nogil=True, error_model="numpy")
def conv_bwd_weight_imgs(g, x, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, acc, cols, lo,
                         hi):  # fmt: skip
    """acc [OC, K] += g[n] [OC, L] @ im2col(x[n]).T over images n in [lo, hi)."""
    for n in range(lo, hi):
        _im2col_img(x, n, C, H, W, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, cols)
        _gemm_nt_acc(g[n], cols, acc)


