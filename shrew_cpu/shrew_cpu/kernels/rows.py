"""Row reductions shared by the fused row kernels (norm, masked softmax): SIMD partial
sums accumulated in f64 (reassociation allowed) and a NaN-propagating SIMD max. They live
in their own functions because fastmath flags are per function, and the exp loops of the
callers must not be reassociated (see ``vmath``)."""

from __future__ import annotations

from numba import njit

from .vmath import fmaximum


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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"nsz"})
def row_max(a):
    """Max of a row (NaN-propagating), vectorised."""
    m = a[0]
    for j in range(1, a.size):
        m = fmaximum(m, a[j])
    return m
