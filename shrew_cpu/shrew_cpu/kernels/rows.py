"""Row sums shared by the fused row kernels (norm, masked softmax): SIMD partial sums
accumulated in f64 (reassociation allowed). They live in their own functions because
fastmath flags are per function, and the exp loops of the callers must not be
reassociated (see ``vmath``). The callers' max passes use ``vmath.fmaximum`` (LLVM's
NaN-propagating maximum, which vectorises with nsz) in their own loops."""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_sum(a):
    s = 0.0
    for j in range(a.size):
        s += a[j]
    return s


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def row_dot(a, b):
    s = 0.0
    for j in range(a.size):
        s += a[j] * b[j]
    return s
