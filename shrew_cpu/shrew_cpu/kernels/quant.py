"""Low-bit weight kernels: GEMV straight from int8 / packed int4 weights, and block
dequantisation for the dequantise-then-BLAS path of larger batches.

Weights follow ``Backend.quantized_linear``: N rows of K integers in one flat byte array
(int8: one per byte; int4: two per byte, low nibble first, stored as q + 8), f32 scales and
zero points of shape [N, G] (G groups of K // G columns per row).

The GEMV kernels (over a range of blocks of four output rows, which share each load of x;
the host splits the blocks over the worker threads of ``threads.py``) never build float
weights. For row n and
group g they accumulate ``a = Σ x[m, k]·u[n, k]`` over the group's columns, where ``u`` is
the stored code (int8 value, or the int4 nibble 0..15), and add
``scale[n, g]·(a - (offset + zp[n, g])·xsum[m, g])`` with ``offset`` 0 for int8 and 8 for
int4 and ``xsum`` the per-group sums of x (computed once per call by the caller). The int4
kernel reads each byte once and multiplies its two nibbles by the even and odd columns of x
(``x_even``/``x_odd``, de-interleaved by the caller), so every load is unit-stride and the
loop vectorises. Accumulation is f32 with reassociation (SIMD partial sums); a group of
at most K values is summed in f32, the groups are added in f64.

Every inner loop lives in a function of its own (``_dot4_*``, ``_dequant_*_run``) taking
slices: written inline in the outer loop's body the same loops stayed scalar (8x slower for
the dequantisation).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


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
    return x_even * np.float32(np.int32(b & 15)) + x_odd * np.float32(np.int32(b >> 4))


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FASTMATH)
def _dot4_q4(x_even, x_odd, q0, q1, q2, q3):
    """Σ_j x_even[j]·(q_r[j] & 15) + x_odd[j]·(q_r[j] >> 4) for four packed rows."""
    a0 = a1 = a2 = a3 = np.float32(0.0)
    for j in range(x_even.size):
        e = x_even[j]
        o = x_odd[j]
        a0 += _nib(np.int32(q0[j]), e, o)
        a1 += _nib(np.int32(q1[j]), e, o)
        a2 += _nib(np.int32(q2[j]), e, o)
        a3 += _nib(np.int32(q3[j]), e, o)
    return a0, a1, a2, a3


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
    has_zp = zps.shape[0] == n_rows
    last = n_rows - 1
    eight = np.float32(8.0)
    for blk in range(lo, hi):
        n0 = 4 * blk
        n1, n2, n3 = min(n0 + 1, last), min(n0 + 2, last), min(n0 + 3, last)
        q0, q1 = q[n0 * half : (n0 + 1) * half], q[n1 * half : (n1 + 1) * half]
        q2, q3 = q[n2 * half : (n2 + 1) * half], q[n3 * half : (n3 + 1) * half]
        for m in range(m_rows):
            xe = x_even[m]
            xo = x_odd[m]
            t0 = t1 = t2 = t3 = 0.0
            for g in range(groups):
                a, b = g * hg, (g + 1) * hg
                a0, a1, a2, a3 = _dot4_q4(xe[a:b], xo[a:b], q0[a:b], q1[a:b], q2[a:b], q3[a:b])
                xs = xsum[m, g]
                z0 = z1 = z2 = z3 = eight
                if has_zp:
                    z0, z1 = z0 + zps[n0, g], z1 + zps[n1, g]
                    z2, z3 = z2 + zps[n2, g], z3 + zps[n3, g]
                a0, a1, a2, a3 = a0 - z0 * xs, a1 - z1 * xs, a2 - z2 * xs, a3 - z3 * xs
                t0 += scales[n0, g] * a0
                t1 += scales[n1, g] * a1
                t2 += scales[n2, g] * a2
                t3 += scales[n3, g] * a3
            _store4(out[m], n0, last, t0, t1, t2, t3)


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
