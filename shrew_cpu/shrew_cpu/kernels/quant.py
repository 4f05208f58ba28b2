"""Low-bit weight kernels: GEMV straight from int8 / packed int4 weights, and block
dequantisation for the dequantise-then-BLAS path of larger batches.

Weights follow ``Backend.quantized_linear``: N rows of K integers in one flat byte array
(int8: one per byte; int4: two per byte, low nibble first, stored as q + 8), f32 scales and
zero points of shape [N, G] (G groups of K // G columns per row).

The GEMV kernels (over a range of blocks of four output rows, which share each load of x;
the host splits the blocks over the worker threads of ``threads.py``) never build float
weights. Row n's result is ``Σ_g scale[n, g]·(Σ_k∈g x[m, k]·u[n, k]) - c[n]`` where ``u`` is
the stored code (int8 value, or the int4 nibble 0..15) and
``c[n] = Σ_g scale[n, g]·(offset + zp[n, g])·xsum[m, g]``, ``offset`` 0 for int8 and 8 for
int4 and ``xsum`` the per-group sums of x (computed once per call by the caller).

* int8 (``_dot4_q8``): each group's dot products are summed in f32 (SIMD partial sums, one
  FMA per code), scaled, and the groups added in f64.
* int4 (``_lanes4_q4``): the scaled products go straight into LANES f32 accumulators per
  row (``acc``, one SIMD vector), summed once per row, so a group (64 bytes per row at
  group size 128) costs no horizontal add: batch 1 went from 3.9 to 1.5 ms single-threaded
  on a 4096x4096 layer. Each lane sums K / LANES products; the corrections are f64. Each
  byte is read once and its two nibbles multiply the even and odd columns of x
  (``x_even``/``x_odd``, de-interleaved by the caller), so every load is unit-stride.
  (The same lane scheme for int8 left the accumulators in memory and was 2.7x slower per
  batch row, so int8 keeps the per-group sums.)

Every inner loop lives in a function of its own (``_dot4_q8``, ``_lanes4_q4``,
``_tail4_q4``, ``_dequant_*_run``) taking slices: written inline in the outer loop's body
the same loops stayed scalar (8x slower for the dequantisation).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


#: SIMD lanes of the GEMV accumulators: ``acc[r, l]`` holds the partial sums of output row r
#: for columns j with j % LANES == l, already scaled, across all groups.
LANES = 16


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _dot4_q8(x, q0, q1, q2, q3):
    """Σ_j x[j]·q_r[j] for four int8 rows at once (x is loaded once for the four; the
    loop vectorises to sign-extend, convert, FMA)."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    for j in range(x.size):
        e = x[j]
        a0 += e * np.float32(np.int32(q0[j]))
        a1 += e * np.float32(np.int32(q1[j]))
        a2 += e * np.float32(np.int32(q2[j]))
        a3 += e * np.float32(np.int32(q3[j]))
    return a0, a1, a2, a3


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _nib(b, x_even, x_odd):
    """x_even·(b & 15) + x_odd·(b >> 4) for a code byte ``b``, in f32 arithmetic (exact for
    0..255: the high nibble is floor(b / 16)); integer masks and shifts made LLVM widen the
    bytes to 64-bit lanes, half the SIMD width."""
    f = np.float32(b)
    h = np.floor(f * np.float32(0.0625))
    return x_even * (f - np.float32(16.0) * h) + x_odd * h


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _lanes4_q4(x_even, x_odd, q0, q1, q2, q3, s0, s1, s2, s3, acc):
    """acc[r, l] += s_r·(x_even[j]·(q_r[j] & 15) + x_odd[j]·(q_r[j] >> 4)) over a run of a
    multiple of LANES bytes, four packed rows sharing each load of x: byte j of row r holds
    columns 2j (low nibble) and 2j + 1 (high nibble). The constant-trip lane loop
    vectorises (SLP) into one accumulator vector per row kept in registers, so a group
    costs no horizontal add. (This exact loop form: with the bound computed as
    ``n - n % LANES`` and a tail loop here, LLVM kept the accumulators in memory and the
    kernel ran 3x slower.)"""
    for c in range(0, x_even.size, LANES):
        for lane in range(LANES):
            j = c + lane
            e = x_even[j]
            o = x_odd[j]
            acc[0, lane] += s0 * _nib(q0[j], e, o)
            acc[1, lane] += s1 * _nib(q1[j], e, o)
            acc[2, lane] += s2 * _nib(q2[j], e, o)
            acc[3, lane] += s3 * _nib(q3[j], e, o)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _tail4_q4(x_even, x_odd, q0, q1, q2, q3, s0, s1, s2, s3, acc):
    for j in range(x_even.size):
        e = x_even[j]
        o = x_odd[j]
        acc[0, 0] += s0 * _nib(q0[j], e, o)
        acc[1, 0] += s1 * _nib(q1[j], e, o)
        acc[2, 0] += s2 * _nib(q2[j], e, o)
        acc[3, 0] += s3 * _nib(q3[j], e, o)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _finish4(acc, row, n0, last, c0, c1, c2, c3):
    """row[n0 + r] = Σ_l acc[r, l] - c_r (the zero-point corrections), for the rows of the
    block up to ``last``."""
    t0 = t1 = t2 = t3 = 0.0
    for lane in range(LANES):
        t0 += acc[0, lane]
        t1 += acc[1, lane]
        t2 += acc[2, lane]
        t3 += acc[3, lane]
    _store4(row, n0, last, t0 - c0, t1 - c1, t2 - c2, t3 - c3)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def gemv_q8(x, q, scales, zps, xsum, out, lo, hi):
    """out[m, n] = Σ_k x[m, k]·W[n, k] for int8 ``q``; x [M, K] f32; out [M, N] f32, for the
    blocks ``lo..hi`` of four output rows (worker threads take ranges of blocks; past the
    last row, the block repeats the last row and drops those results)."""
    m_rows, k = x.shape
    n_rows, groups = scales.shape
    gs = k // groups
    has_zp = zps.shape[0] == n_rows
    last = n_rows - 1
    for blk in range(lo, hi):
        n0 = 4 * blk
        n1, n2, n3 = min(n0 + 1, last), min(n0 + 2, last), min(n0 + 3, last)
        q0, q1 = q[n0 * k : (n0 + 1) * k], q[n1 * k : (n1 + 1) * k]
        q2, q3 = q[n2 * k : (n2 + 1) * k], q[n3 * k : (n3 + 1) * k]
        for m in range(m_rows):
            xm = x[m]
            t0 = t1 = t2 = t3 = 0.0
            for g in range(groups):
                a, b = g * gs, (g + 1) * gs
                a0, a1, a2, a3 = _dot4_q8(xm[a:b], q0[a:b], q1[a:b], q2[a:b], q3[a:b])
                if has_zp:
                    xs = xsum[m, g]
                    a0, a1 = a0 - zps[n0, g] * xs, a1 - zps[n1, g] * xs
                    a2, a3 = a2 - zps[n2, g] * xs, a3 - zps[n3, g] * xs
                t0 += scales[n0, g] * a0
                t1 += scales[n1, g] * a1
                t2 += scales[n2, g] * a2
                t3 += scales[n3, g] * a3
            _store4(out[m], n0, last, t0, t1, t2, t3)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def gemv_q4(x_even, x_odd, q, scales, zps, xsum, out, lo, hi):
    """The int4 GEMV for even K: ``x_even``/``x_odd`` [M, K/2] are x's even/odd columns;
    row n's bytes start at byte n*K/2. Codes are stored as q + 8: the 8 joins the zero
    point in the per-group correction."""
    m_rows, half = x_even.shape
    n_rows, groups = scales.shape
    hg = half // groups  # bytes per group
    full = hg - hg % LANES
    has_zp = zps.shape[0] == n_rows
    last = n_rows - 1
    eight = np.float32(8.0)
    acc = np.empty((4, LANES), np.float32)
    for blk in range(lo, hi):
        n0 = 4 * blk
        n1, n2, n3 = min(n0 + 1, last), min(n0 + 2, last), min(n0 + 3, last)
        q0, q1 = q[n0 * half : (n0 + 1) * half], q[n1 * half : (n1 + 1) * half]
        q2, q3 = q[n2 * half : (n2 + 1) * half], q[n3 * half : (n3 + 1) * half]
        for m in range(m_rows):
            xe = x_even[m]
            xo = x_odd[m]
            acc[:] = 0.0
            c0 = c1 = c2 = c3 = 0.0
            for g in range(groups):
                a, b = g * hg, (g + 1) * hg
                s0, s1, s2, s3 = scales[n0, g], scales[n1, g], scales[n2, g], scales[n3, g]
                f = a + full
                _lanes4_q4(xe[a:f], xo[a:f], q0[a:f], q1[a:f], q2[a:f], q3[a:f],
                           s0, s1, s2, s3, acc)  # fmt: skip
                if f < b:
                    _tail4_q4(xe[f:b], xo[f:b], q0[f:b], q1[f:b], q2[f:b], q3[f:b],
                              s0, s1, s2, s3, acc)  # fmt: skip
                xs = xsum[m, g]
                z0 = z1 = z2 = z3 = eight
                if has_zp:
                    z0, z1 = z0 + zps[n0, g], z1 + zps[n1, g]
                    z2, z3 = z2 + zps[n2, g], z3 + zps[n3, g]
                c0, c1 = c0 + s0 * z0 * xs, c1 + s1 * z1 * xs
                c2, c3 = c2 + s2 * z2 * xs, c3 + s3 * z3 * xs
            _finish4(acc, out[m], n0, last, c0, c1, c2, c3)


@njit(cache=True, nogil=True, error_model="numpy")
def _store4(row, n0, last, t0, t1, t2, t3):
    """row[n0 .. n0+3] = t0..t3, the entries past ``last`` dropped."""
    row[n0] = t0
    if n0 + 1 <= last:
        row[n0 + 1] = t1
    if n0 + 2 <= last:
        row[n0 + 2] = t2
    if n0 + 3 <= last:
        row[n0 + 3] = t3


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _dequant_q8_run(src, s, zp, out):
    """out[j] = (src[j] - zp)·s for an int8 run (a loop of its own vectorises; inside the
    row loop the same loop stayed scalar, 8x slower)."""
    for j in range(out.size):
        out[j] = (np.float32(np.int32(src[j])) - zp) * s


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _dequant_q4_run(src, s, zp, lo_out, hi_out):
    """lo_out[j], hi_out[j] = (low / high nibble of src[j] - zp)·s (zp includes the +8)."""
    for j in range(src.size):
        b = np.int32(src[j])
        lo_out[j] = (np.float32(b & 15) - zp) * s
        hi_out[j] = (np.float32(b >> 4) - zp) * s


@njit(cache=True, nogil=True, error_model="numpy")
def dequant_q8(q, scales, zps, row0, out, lo, hi):
    """out[r, :] = float weight row ``row0 + r`` (int8 codes) for r in ``lo..hi``; out
    [R, K] f32."""
    rows, k = out.shape
    groups = scales.shape[1]
    gs = k // groups
    has_zp = zps.shape[0] == scales.shape[0]
    for r in range(lo, hi):
        n = row0 + r
        src = q[n * k : (n + 1) * k]
        o = out[r]
        for g in range(groups):
            a, b = g * gs, (g + 1) * gs
            zp = zps[n, g] if has_zp else np.float32(0.0)
            _dequant_q8_run(src[a:b], scales[n, g], zp, o[a:b])


@njit(cache=True, nogil=True, error_model="numpy")
def dequant_q4(q, scales, zps, row0, out, lo, hi):
    """The int4 version for even K (row n's bytes start at n*K/2), with the columns
    de-interleaved: out[r, j] = W[n, 2j] and out[r, K/2 + j] = W[n, 2j + 1], so both
    stores are unit-stride; the caller permutes x's columns the same way."""
    rows, k = out.shape
    half = k // 2
    groups = scales.shape[1]
    hg = half // groups
    has_zp = zps.shape[0] == scales.shape[0]
    for r in range(lo, hi):
        n = row0 + r
        src = q[n * half : (n + 1) * half]
        lo_out = out[r, :half]
        hi_out = out[r, half:]
        for g in range(groups):
            a, b = g * hg, (g + 1) * hg
            zp = np.float32(8.0) + (zps[n, g] if has_zp else np.float32(0.0))
            _dequant_q4_run(src[a:b], scales[n, g], zp, lo_out[a:b], hi_out[a:b])
