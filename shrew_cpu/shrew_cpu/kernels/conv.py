"""Numba kernels of the fused and direct convolution paths (ungrouped, small/medium
weights; see ``conv.py``). Fused: for each image of a range, im2col into an L2-sized
scratch [C*KH*KW, OH*OW] and a register-blocked SIMD GEMM right away (forward, weight
gradient), or the transposed GEMM then col2im into the image's own planes (input
gradient: no races between ranges).

Row (c, kh, kw) of the column matrix holds the input pixels that kernel tap meets at each
output position (0 in padding); col2im is its adjoint. Valid output-column ranges are
computed per tap, so the inner loops are branch-free. When stride is 1 and the output is
as wide as the input, a tap's row is the image plane shifted in flat index: one
contiguous copy/add plus a fix-up of the padding columns.

Compile time: every copy, fill and accumulation is an explicit loop over a slice that
starts at 0 (``a[i:j] = b[k:l]`` pulls in NumPy's broadcasting setitem, whose error
formatting alone took ~2 s of Numba compilation; 0-based loops also avoid negative-index
wraparound checks, so LLVM vectorises them), and scratch arrays come from the caller.

Direct (stride 1, the last section): no column matrix; the products are tiles written as
explicit LLVM vectors (``_make_tile``, ``_make_dot_tile``), see there.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


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


# ------------------------------------------------------------------ direct stride-1 path
# Stride-1 convolutions need no column matrix: with the image zero-padded to [C, Hp, Wp]
# and the output computed on the padded-width grid (output pixel p = oh*Wp + ow, the last
# Wp - OW columns of each row discarded), tap (c, kh, kw) reads the padded image at the
# flat offset p + offs[c, kh, kw], so row k of the "column matrix" is the padded image
# shifted by offs[k]. The product is a tile of 4 output rows x 4 SIMD vectors of pixels
# whose accumulators stay in registers over the whole K loop. LLVM's loop vectorizer
# would use 256-bit vectors on AVX-512 Intel CPUs ("prefer-vector-width"), so the tile is
# written as explicit LLVM vectors of 64 bytes (16 f32 / 8 f64: zmm registers with
# AVX-512, pairs of ymm with AVX2): ~140 GFLOP/s per core against ~86 for the loops above.
def _has_avx512() -> bool:
    """Whether Numba compiles for a CPU with AVX-512F (the host's, unless NUMBA_CPU_NAME /
    NUMBA_CPU_FEATURES say otherwise; Numba's cache is keyed by the same CPU)."""
    import llvmlite.binding as llvm
    from numba.core import config

    if config.CPU_FEATURES is not None:
        return "+avx512f" in config.CPU_FEATURES
    if config.CPU_NAME is not None:
        return False
    return "+avx512f" in llvm.get_host_cpu_features().flatten()


#: SIMD vector of the tiles: 64 bytes (one zmm register) with AVX-512, else 32. The tiles
#: keep their accumulators in registers: 4 rows x 4 vectors / 4 x 4 dot products with 32
#: vector registers (AVX-512), 4 x 2 / 2 x 4 with 16 (AVX2).
_AVX512 = _has_avx512()
VECTOR_BYTES = 64 if _AVX512 else 32
TILE_VECTORS = 4 if _AVX512 else 2
DOT_ROWS = 4 if _AVX512 else 2
DOT_TAPS = 6 if _AVX512 else 4


def tile_pixels(itemsize: int) -> int:
    """Pixels per tile of ``_gemm_shifted``: scratch rows are padded to a multiple."""
    return TILE_VECTORS * VECTOR_BYTES // itemsize


def _close_acc_loop(builder, i, n, acc, new, zero, entry, loop, done):
    """Finish the counted loop ``loop`` (entered from ``entry``, i from 0 while i < n): wire
    the counter phi ``i`` and the accumulator phis ``acc`` (``zero`` on entry, ``new`` from
    the loop), branch back or to ``done``, and return the accumulators' values at ``done``
    (zero when the loop never ran). Shared by the tile and dot intrinsics."""
    one = ir.Constant(i.type, 1)
    i_next = builder.add(i, one)
    i.add_incoming(ir.Constant(i.type, 0), entry)
    i.add_incoming(i_next, loop)
    for acc_row, new_row in zip(acc, new):
        for a, v in zip(acc_row, new_row):
            a.add_incoming(zero, entry)
            a.add_incoming(v, loop)
    builder.cbranch(builder.icmp_signed("<", i_next, n), loop, done)
    builder.position_at_end(done)
    fin = [[builder.phi(zero.type) for _ in row] for row in acc]
    for fin_row, new_row in zip(fin, new):
        for f, v in zip(fin_row, new_row):
            f.add_incoming(zero, entry)
            f.add_incoming(v, loop)
    return fin


def _make_tile(rows, add):
    """An intrinsic ``tile(w, wofs, ldw, offs, K, xp, xofs, out, oofs, ldo)``: for r < rows
    and the TILE_VECTORS vectors v of pixels, out[oofs + r*ldo + v*VL : +VL] (+)=
    sum_k w[wofs + r*ldw + k] * xp[xofs + offs[k] + v*VL : +VL] (flat 1-D arrays of one
    float dtype, offs int64; ``add``: accumulate into out); the rows x TILE_VECTORS
    accumulators are loop phis."""

    @intrinsic
    def tile(typingctx, w, wofs, ldw, offs, K, xp, xofs, out, oofs, ldo):
        sig = types.void(w, wofs, ldw, offs, K, xp, xofs, out, oofs, ldo)

        def codegen(context, builder, signature, args):
            w_, wofs_, ldw_, offs_, k_n, _, xofs_, _, oofs_, ldo_ = args
            arr = [context.make_array(signature.args[i])(context, builder, args[i]).data
                   for i in (0, 3, 5, 7)]  # fmt: skip
            wp, op, xpp, outp = arr
            fty = context.get_value_type(signature.args[0].dtype)
            isz = context.get_abi_sizeof(fty)
            nl = VECTOR_BYTES // isz
            vty, vptr = ir.VectorType(fty, nl), ir.VectorType(fty, nl).as_pointer()
            i64, i32 = ir.IntType(64), ir.IntType(32)

            def c64(v):
                return ir.Constant(i64, v)

            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.v{nl}f{isz * 8}")
            zero = ir.Constant(vty, None)
            undef = ir.Constant(vty, ir.Undefined)
            splat = ir.Constant(ir.VectorType(i32, nl), [0] * nl)
            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.cbranch(builder.icmp_signed(">", k_n, c64(0)), loop, done)

            builder.position_at_end(loop)
            k = builder.phi(i64)
            acc = [[builder.phi(vty) for _ in range(TILE_VECTORS)] for _ in range(rows)]
            base = builder.add(xofs_, builder.load(builder.gep(op, [k])))
            xs = [builder.load(builder.bitcast(builder.gep(xpp, [builder.add(base, c64(v * nl))]),
                                               vptr), align=isz)
                  for v in range(TILE_VECTORS)]  # fmt: skip
            new = []
            for r in range(rows):
                wi = builder.add(builder.add(wofs_, builder.mul(ldw_, c64(r))), k)
                wr = builder.load(builder.gep(wp, [wi]))
                wv = builder.shuffle_vector(builder.insert_element(undef, wr, ir.Constant(i32, 0)),
                                            undef, splat)  # fmt: skip
                new.append([builder.call(fma, [wv, xs[v], acc[r][v]]) for v in range(TILE_VECTORS)])
            fin = _close_acc_loop(builder, k, k_n, acc, new, zero, entry, loop, done)
            for r in range(rows):
                row = builder.add(oofs_, builder.mul(ldo_, c64(r)))
                for v in range(TILE_VECTORS):
                    dst = builder.bitcast(builder.gep(outp, [builder.add(row, c64(v * nl))]), vptr)
                    res = fin[r][v]
                    if add:
                        res = builder.fadd(builder.load(dst, align=isz), res)
                    builder.store(res, dst, align=isz)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_tile4 = _make_tile(4, False)
_tile4_add = _make_tile(4, True)
_tile1 = _make_tile(1, False)
_tile1_add = _make_tile(1, True)
#: Taps per block of the K loop: a pixel tile's rows of xp for one block (TAP_BLOCK x 256
#: bytes) stay in L1 while every row block of w passes over them.
TAP_BLOCK = 144


@njit(cache=True, nogil=True, error_model="numpy")
def _gemm_shifted(w, M, offs, xp, out, P):
    """out[i, p] = sum_k w[i, k] * xp[offs[k] + p] for p < P (flat w [M, K], out [M, P]; P a
    multiple of ``tile_pixels``); per pixel tile and block of taps, all row blocks."""
    K = offs.size
    T = TILE_VECTORS * VECTOR_BYTES // xp.itemsize
    nblocks = (K + TAP_BLOCK - 1) // TAP_BLOCK
    kb = (K + nblocks - 1) // nblocks
    for p0 in range(0, P, T):
        for k0 in range(0, K, kb):
            k1 = min(k0 + kb, K)
            o = offs[k0:k1]
            i = 0
            while i + 4 <= M:
                if k0 == 0:
                    _tile4(w, i * K + k0, K, o, k1 - k0, xp, p0, out, i * P + p0, P)
                else:
                    _tile4_add(w, i * K + k0, K, o, k1 - k0, xp, p0, out, i * P + p0, P)
                i += 4
            while i < M:
                if k0 == 0:
                    _tile1(w, i * K + k0, K, o, k1 - k0, xp, p0, out, i * P + p0, P)
                else:
                    _tile1_add(w, i * K + k0, K, o, k1 - k0, xp, p0, out, i * P + p0, P)
                i += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _pad_image(x, xs, n, C, H, W, ph, pw, plane, Wp, xp):
    """xp[c*plane + (h+ph)*Wp + pw + w] = image n of the 4-D view [N, C, H, W] of the flat
    array ``x`` with element offset and strides ``xs`` = (offset, sN, sC, sH, sW)."""
    for c in range(C):
        for h in range(H):
            s0 = xs[0] + n * xs[1] + c * xs[2] + h * xs[3]
            d0 = c * plane + (h + ph) * Wp + pw
            if xs[4] == 1:
                _copy(xp, d0, x, s0, W)
            else:
                d = xp[d0 : d0 + W]
                for i in range(W):
                    d[i] = x[s0 + i * xs[4]]


@njit(cache=True, nogil=True, error_model="numpy")
def conv_direct_imgs(x, xs, w, offs, C, H, W, ph, pw, Hp, Wp, M, OH, OW, out, xp, tmp, lo,
                     hi):  # fmt: skip
    """Stride-1 convolution of images n in [lo, hi): out[n] [M, OH, OW] = w [M, K] applied
    to image n of x (see ``_pad_image``) zero-padded into ``xp`` ([C, Hp, Wp] + slack,
    zeroed by the caller: only the interior is written) at the tap offsets ``offs`` [K];
    ``tmp`` [M, P] holds the padded-width result (w, out flat)."""
    P = tmp.size // M
    for n in range(lo, hi):
        _pad_image(x, xs, n, C, H, W, ph, pw, Hp * Wp, Wp, xp)
        _gemm_shifted(w, M, offs, xp, tmp, P)
        for m in range(M):
            for oh in range(OH):
                _copy(out, ((n * M + m) * OH + oh) * OW, tmp, m * P + oh * Wp, OW)


def _make_dot_tile(rows, taps):
    """An intrinsic ``dot(g, gofs, ldg, offs, j0, xp, out, oofs, ldo, nvec)``: for r < rows,
    j < taps, out[oofs + r*ldo + j] += sum over p < nvec*VL of g[gofs + r*ldg + p] *
    xp[offs[j0 + j] + p] (one SIMD accumulator per pair, summed across lanes at the end)."""

    @intrinsic
    def dot(typingctx, g, gofs, ldg, offs, j0, xp, out, oofs, ldo, nvec):
        sig = types.void(g, gofs, ldg, offs, j0, xp, out, oofs, ldo, nvec)

        def codegen(context, builder, signature, args):
            _, gofs_, ldg_, _, j0_, _, _, oofs_, ldo_, nvec_ = args
            gp, op, xpp, outp = [
                context.make_array(signature.args[i])(context, builder, args[i]).data
                for i in (0, 3, 5, 6)]  # fmt: skip
            fty = context.get_value_type(signature.args[0].dtype)
            isz = context.get_abi_sizeof(fty)
            nl = VECTOR_BYTES // isz
            vty, vptr = ir.VectorType(fty, nl), ir.VectorType(fty, nl).as_pointer()
            i64 = ir.IntType(64)

            def c64(v):
                return ir.Constant(i64, v)

            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.v{nl}f{isz * 8}")
            hsum = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(fty, [fty, vty]),
                f"llvm.vector.reduce.fadd.v{nl}f{isz * 8}")
            zero = ir.Constant(vty, None)
            grow = [builder.add(gofs_, builder.mul(ldg_, c64(r))) for r in range(rows)]
            xrow = [builder.load(builder.gep(op, [builder.add(j0_, c64(j))])) for j in range(taps)]
            entry = builder.block
            loop = builder.append_basic_block("dot.loop")
            done = builder.append_basic_block("dot.done")
            builder.cbranch(builder.icmp_signed(">", nvec_, c64(0)), loop, done)

            builder.position_at_end(loop)
            t = builder.phi(i64)
            acc = [[builder.phi(vty) for _ in range(taps)] for _ in range(rows)]
            p = builder.mul(t, c64(nl))

            def vload(ptr, base):
                return builder.load(builder.bitcast(builder.gep(ptr, [builder.add(base, p)]), vptr),
                                    align=isz)  # fmt: skip

            gs = [vload(gp, grow[r]) for r in range(rows)]
            xs = [vload(xpp, xrow[j]) for j in range(taps)]
            new = [[builder.call(fma, [gs[r], xs[j], acc[r][j]]) for j in range(taps)]
                   for r in range(rows)]  # fmt: skip
            fin = _close_acc_loop(builder, t, nvec_, acc, new, zero, entry, loop, done)
            for r in range(rows):
                row = builder.add(oofs_, builder.mul(ldo_, c64(r)))
                for j in range(taps):
                    dst = builder.gep(outp, [builder.add(row, c64(j))])
                    s = builder.call(hsum, [ir.Constant(fty, -0.0), fin[r][j]],
                                     fastmath=("reassoc",))  # fmt: skip
                    builder.store(builder.fadd(builder.load(dst), s), dst)
            return context.get_dummy_value()

        return sig, codegen

    return dot


_dot_full = _make_dot_tile(DOT_ROWS, DOT_TAPS)
_dot_row_tail = _make_dot_tile(1, DOT_TAPS)
_dot_tap_tail = _make_dot_tile(DOT_ROWS, 1)
_dot_one = _make_dot_tile(1, 1)


@njit(cache=True, nogil=True, error_model="numpy")
def _gemm_dot_shifted(g, M, offs, xp, acc, P):
    """acc[i, k] += sum_p g[i, p] * xp[offs[k] + p] over p < P (flat g [M, P], acc [M, K];
    P a multiple of the vector length)."""
    K = offs.size
    nvec = P * xp.itemsize // VECTOR_BYTES
    i = 0
    while i < M:
        full = M - i >= DOT_ROWS
        j = 0
        while j + DOT_TAPS <= K:
            if full:
                _dot_full(g, i * P, P, offs, j, xp, acc, i * K + j, K, nvec)
            else:
                _dot_row_tail(g, i * P, P, offs, j, xp, acc, i * K + j, K, nvec)
            j += DOT_TAPS
        while j < K:
            if full:
                _dot_tap_tail(g, i * P, P, offs, j, xp, acc, i * K + j, K, nvec)
            else:
                _dot_one(g, i * P, P, offs, j, xp, acc, i * K + j, K, nvec)
            j += 1
        i += DOT_ROWS if full else 1


@njit(cache=True, nogil=True, error_model="numpy")
def conv_direct_wgrad_imgs(g, gs, x, xs, offs, C, H, W, ph, pw, Hp, Wp, M, OH, OW, acc, xp, gp,
                           lo, hi):  # fmt: skip
    """acc [M, K] += weight gradient of the stride-1 convolution for images n in [lo, hi):
    image n of x padded into ``xp`` as in ``conv_direct_imgs``, image n of g [M, OH, OW]
    (strided like x) spread onto the padded-width grid ``gp`` [M, P] (zeroed by the caller:
    only valid pixels are written)."""
    P = gp.size // M
    for n in range(lo, hi):
        _pad_image(x, xs, n, C, H, W, ph, pw, Hp * Wp, Wp, xp)
        _pad_image(g, gs, n, M, OH, OW, 0, 0, P, Wp, gp)
        _gemm_dot_shifted(gp, M, offs, xp, acc, P)
