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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_sum(a):
    """sum(a) as f64."""
    total = 0.0
    n = a.size
    full = n - n % SUB
    z = a.dtype.type(0)
    for b0 in range(0, full, SUB):
        blk = a[b0 : b0 + SUB]
        s = z
        for i in range(SUB):
            s += blk[i]
        total += s
    for i in range(full, n):
        total += a[i]
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_dot(a, b):
    """sum(a * b) as f64."""
    total = 0.0
    n = a.size
    full = n - n % SUB
    z = a.dtype.type(0)
    for b0 in range(0, full, SUB):
        ba = a[b0 : b0 + SUB]
        bb = b[b0 : b0 + SUB]
        s = z
        for i in range(SUB):
            s += ba[i] * bb[i]
        total += s
    for i in range(full, n):
        total += a[i] * b[i]
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_sqdev(a, mu):
    """sum((a - mu) ** 2) as f64; ``mu`` in the data's dtype (a difference of two close
    f32 values is exact, so the deviations lose nothing to the f32 subtraction)."""
    total = 0.0
    n = a.size
    full = n - n % SUB
    z = a.dtype.type(0)
    for b0 in range(0, full, SUB):
        blk = a[b0 : b0 + SUB]
        s = z
        for i in range(SUB):
            d = blk[i] - mu
            s += d * d
        total += s
    for i in range(full, n):
        d = a[i] - mu
        total += d * d
    return total
