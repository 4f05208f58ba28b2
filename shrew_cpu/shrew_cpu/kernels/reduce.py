"""Reduction kernels: sum / max / min along one contiguous run per output row.

A reduction reaches these kernels in *row form*: the reduced dims moved last and
coalesced into one run of ``L`` elements with stride ``s``, one run per output element
starting at ``offs[row]``. Work is split into (row, chunk) tasks so one long row (a full
reduction) and many short rows both use every thread; the kernels run a task range
and the host spreads task ranges over the worker threads (``threads.py``). Sums of
contiguous runs are ``rows.row_sum``: SIMD partial sums over sub-blocks in the data's
dtype, added into an f64 total (for f32 data far more accurate than a sequential f32
sum, at f32 SIMD speed).
Max/min propagate NaN (``llvm.maximum``/``minimum``, vectorised on contiguous runs).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .rows import row_sum
from .vmath import fmaximum, fminimum

#: Smallest piece a long row is split into across threads (the host's chunking), and the
#: run a strided sum adds in f64 before adding it into the total.
BLOCK = 4096
SUM, MAX, MIN = 0, 1, 2


@njit(cache=True, nogil=True, fastmath={"nsz"}, error_model="numpy")
def _contig_extreme(xs, is_min):
    """Max (min) of a contiguous run, NaN-propagating and vectorised (``llvm.maximum``)."""
    m = xs[0]
    if is_min:  # from 0, not 1: a trip count of 64 runs the SIMD loop, 63 only its remainder
        for i in range(xs.size):
            m = fminimum(m, xs[i])
    else:
        for i in range(xs.size):
            m = fmaximum(m, xs[i])
    return m


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_run(x, p, n, st):
    total = 0.0
    if st == 1:
        total = row_sum(x[p : p + n])
    else:
        for b0 in range(0, n, BLOCK):
            bs = 0.0
            for i in range(b0, min(n, b0 + BLOCK)):
                bs += x[p + i * st]
            total += bs
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _extreme_run(x, p, n, st, is_min):
    if st == 1:
        return _contig_extreme(x[p : p + n], is_min)
    m = x[p]
    if is_min:
        for i in range(1, n):
            v = x[p + i * st]
            if v < m or v != v:
                m = v
                if v != v:
                    break
    else:
        for i in range(1, n):
            v = x[p + i * st]
            if v > m or v != v:
                m = v
                if v != v:
                    break
    return m


@njit(cache=True, nogil=True, error_model="numpy")
def reduce_rows(op, x, offs, n, st, chunk, partial, t0, t1):
    """partial[row, c] = op over elements [c*chunk, (c+1)*chunk) of row ``row``, for the
    tasks t = row * nck + c in [t0, t1)."""
    nck = partial.shape[1]
    for t in range(t0, t1):
        r = t // nck
        c = t % nck
        lo = c * chunk
        m = min(n - lo, chunk)
        p = offs[r] + lo * st
        if op == SUM:
            partial[r, c] = _sum_run(x, p, m, st)
        else:
            partial[r, c] = _extreme_run(x, p, m, st, op == MIN)


# ------------------------------------------------------------------ strided (non-last) axis
#: Columns per accumulator block of ``reduce_cols``: the f64 row (32 KiB) stays in L1/L2
#: while whole contiguous input row segments (16 KiB of f32) stream through.
COL_BLOCK = 4096
#: Rows summed in the data's dtype before being added into the f64 accumulator (an f32
#: add is half the work of convert-and-add in f64; 32 terms keep f32 error negligible).
ROW_GROUP = 32


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz"})
def reduce_cols(op, x, offs, m, n, st, chunk, partial, t0, t1):
    """partial[c, o, j] = op over i in chunk c (rows [c*chunk, (c+1)*chunk) of n) of
    x[offs[o] + i*st + j], for j < m: the reduced run has stride ``st``, the kept inner run
    is contiguous. Tasks are (outer, row chunk); each adds whole row segments into an
    accumulator block (SIMD; sums in groups of ``ROW_GROUP`` rows, then in f64, in row
    order), max/min with the NaN-propagating
    ``fmaximum``/``fminimum``. Runs tasks [t0, t1); the caller combines the chunks."""
    nck = partial.shape[0]
    for t in range(t0, t1):
        o = t // nck
        c = t % nck
        i0 = c * chunk
        i1 = min(n, i0 + chunk)
        for j0 in range(0, m, COL_BLOCK):
            w = min(m, j0 + COL_BLOCK) - j0
            base = offs[o] + j0
            dst = partial[c, o, j0 : j0 + w]
            if op == SUM:  # ROW_GROUP rows in the data's dtype, then into f64
                acc = np.zeros(w, np.float64)
                grp = np.zeros(w, x.dtype)
                for i in range(i0, i1):
                    row = x[base + i * st : base + i * st + w]
                    for j in range(w):
                        grp[j] += row[j]
                    if (i - i0) % ROW_GROUP == ROW_GROUP - 1 or i == i1 - 1:
                        for j in range(w):
                            acc[j] += grp[j]
                            grp[j] = 0
                for j in range(w):
                    dst[j] = acc[j]
            else:
                acc2 = x[base + i0 * st : base + i0 * st + w].copy()
                for i in range(i0 + 1, i1):
                    row = x[base + i * st : base + i * st + w]
                    if op == MAX:
                        for j in range(w):
                            acc2[j] = fmaximum(acc2[j], row[j])
                    else:
                        for j in range(w):
                            acc2[j] = fminimum(acc2[j], row[j])
                for j in range(w):
                    dst[j] = acc2[j]
