"""Reduction kernels: sum / max / min along one contiguous run per output row.

A reduction reaches these kernels in *row form*: the reduced dims moved last and
coalesced into one run of ``L`` elements with stride ``s``, one run per output element
starting at ``offs[row]``. Work is split into (row, chunk) tasks so one long row (a full
reduction) and many short rows both use every thread. Sums accumulate in f64 over
blocks of ``BLOCK`` elements with reassociation allowed *inside* a block only (SIMD
partial sums, i.e. pairwise-like error), then add the block sums in order: for f32 data
that is far more accurate than a sequential f32 sum. Max/min propagate NaN (no
fastmath there).
"""

from __future__ import annotations

from numba import njit, prange

BLOCK = 4096
SUM, MAX, MIN = 0, 1, 2


@njit(cache=True, fastmath={"reassoc"}, error_model="numpy")
def _block_sum(xs):
    s = 0.0
    for i in range(xs.size):
        s += xs[i]
    return s


@njit(cache=True, error_model="numpy")
def _sum_run(x, p, n, st):
    total = 0.0
    if st == 1:
        for b0 in range(0, n, BLOCK):
            total += _block_sum(x[p + b0 : p + min(n, b0 + BLOCK)])
    else:
        for b0 in range(0, n, BLOCK):
            bs = 0.0
            for i in range(b0, min(n, b0 + BLOCK)):
                bs += x[p + i * st]
            total += bs
    return total


@njit(cache=True, error_model="numpy")
def _extreme_run(x, p, n, st, is_min):
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


@njit(cache=True, parallel=True, error_model="numpy")
def reduce_rows(op, x, offs, n, st, chunk, partial):
    """partial[row, c] = op over elements [c*chunk, (c+1)*chunk) of row ``row``."""
    nrows = offs.size
    nck = partial.shape[1]
    for t in prange(nrows * nck):
        r = t // nck
        c = t % nck
        lo = c * chunk
        m = min(n - lo, chunk)
        p = offs[r] + lo * st
        if op == SUM:
            partial[r, c] = _sum_run(x, p, m, st)
        else:
            partial[r, c] = _extreme_run(x, p, m, st, op == MIN)
