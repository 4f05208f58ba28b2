"""Row sums shared by the fused row kernels (norm, masked softmax, reductions): SIMD
partial sums in the data's dtype over sub-blocks of ``SUB`` elements, each block added
into an f64 total (reassociation allowed). For f32 rows this runs at f32 SIMD width and
stays far more accurate than a sequential f32 sum; summing every element in f64 (one
convert each) was 1.2-1.5x slower for a [4096, 1024] layer norm. The tail that does not
fill a block adds in f64.

They live in their own functions because fastmath flags are per function, and the exp
loops of the callers must not be reassociated (see ``vmath``). The callers' max passes
use ``vmath.fmaximum`` (LLVM's NaN-propagating maximum, which vectorises with nsz) in
their own loops."""

from __future__ import annotations

from numba import njit

#: Elements per f32 (data-dtype) partial sum; a constant trip count so each block's loop
#: unrolls into several SIMD accumulators.
SUB = 256


#: What ``_blocked_sum`` adds up, a compile-time constant of each caller.
_SUM, _DOT, _SQDEV = 0, 1, 2


@njit(inline="always", error_model="numpy")
def _term(a, b, mu, i, kind):
    if kind == _SUM:
        return a[i]
    if kind == _DOT:
        return a[i] * b[i]
    d = a[i] - mu
    return d * d


@njit(inline="always", error_model="numpy")
def _blocked_sum(a, b, mu, kind):
    """The sum of ``_term`` over ``a``: SUB-element blocks in the data's dtype, each added
    into an f64 total; the tail in f64. Inlined with a constant ``kind``, so each caller
    compiles its own loop (the callers set the fastmath flags)."""
    total = 0.0
    n = a.size
    full = n - n % SUB
    z = a.dtype.type(0)
    for b0 in range(0, full, SUB):
        ba = a[b0 : b0 + SUB]
        bb = b[b0 : b0 + SUB]
        s = z
        for i in range(SUB):  # slices indexed from 0: no wraparound checks to block SIMD
            s += _term(ba, bb, mu, i, kind)
        total += s
    ta = a[full:]
    tb = b[full:]
    for i in range(n - full):
        total += _term(ta, tb, mu, i, kind)
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_sum(a):
    """sum(a) as f64."""
    return _blocked_sum(a, a, a.dtype.type(0), _SUM)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_dot(a, b):
    """sum(a * b) as f64."""
    return _blocked_sum(a, b, a.dtype.type(0), _DOT)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_sqdev(a, mu):
    """sum((a - mu) ** 2) as f64; ``mu`` in the data's dtype (a difference of two close
    f32 values is exact, so the deviations lose nothing to the f32 subtraction)."""
    return _blocked_sum(a, a, mu, _SQDEV)
