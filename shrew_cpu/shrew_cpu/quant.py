"""Host side of the low-bit linear kernel, as the ``QuantKernels`` mixin that
``CpuBackend`` inherits (the Backend's optional ``quantized_linear``).

Two paths, chosen by the batch M (rows of x):

* M <= ``GEMV_MAX_ROWS`` (4): ``kernels.quant.gemv_q8`` / ``gemv_q4`` read the int8 or
  packed int4 weight directly, one pass over its bytes, output rows split over the worker
  threads (``threads.py``).
  A batch-1 4096x4096 layer reads 16 MiB (int8) or 8 MiB (int4) instead of 64 MiB of f32.
* larger M: the weight is dequantised ``BLOCK_BYTES`` (8 MiB) of f32 at a time (a block
  of whole rows) into a reused scratch buffer and multiplied by BLAS (``block @ xᵀ`` into
  rows of the transposed output), so the float weight never exists whole and each block
  is still in cache when GEMM reads it. Smaller blocks measured slower: every GEMM call
  repacks x, and each block costs two thread-pool hand-offs (ours, then OpenBLAS's),
  which a busy machine turns into stalls (1 MiB blocks: 1.3x the f32 time single-threaded,
  4x with 2 threads under load; 8 MiB: 0.97x and 1.0x). int4 blocks are written with the
  even columns first and the odd ones after (unit-stride stores) and x's columns are
  permuted alike.

x is computed in f32 (f16/bf16 are widened, the result rounded once); f64 inputs take
shrew_core's composed default (exact f64 dequantisation, then BLAS). int4 weights with an
odd K (rows not byte-aligned, only possible per tensor / per channel) are unpacked to int8
codes for the call and go through the int8 kernels.

Compile cost (Numba, ``cache=True``, nothing at import): 4 kernels, one f32 signature each.
"""

from __future__ import annotations

import numpy as np

from . import _config
from .kernels import quant as K
from .strided import view
from .threads import get_num_threads, parallel_for, ranges

_F32 = np.dtype(np.float32)
GEMV_MAX_ROWS = 4
BLOCK_BYTES = 8 << 20  # f32 scratch per block: 512 rows of a 4096-wide layer
_NO_ZP = np.zeros((1, 1), np.float32)


def _unpack_int4_to_int8(q: np.ndarray, numel: int) -> np.ndarray:
    codes = np.empty(2 * q.size, np.int8)
    codes[0::2] = (q & 15).astype(np.int8)
    codes[1::2] = (q >> 4).astype(np.int8)
    return codes[:numel] - np.int8(8)


def _split(kernel, blocks: int, work: int, *args) -> None:
    """``kernel(*args, lo, hi)`` over ``range(blocks)``, in ranges over the worker threads
    when the call touches at least ``PARALLEL_THRESHOLD`` weight elements."""
    parts = get_num_threads() if work >= _config.PARALLEL_THRESHOLD else 1
    parallel_for(kernel, [args + r for r in ranges(blocks, parts)])


def quantized_linear(x, x_layout, weight, scales, zero_points, bits, n, k, groups):
    """The f32 [M, N] result of ``Backend.quantized_linear`` (x of any float dtype)."""
    xv = np.ascontiguousarray(view(x, x_layout), dtype=_F32)
    m = xv.shape[0]
    out = np.empty((m, n), _F32)
    if m == 0 or n == 0:
        return out
    if k == 0:
        out.fill(0.0)
        return out
    sc = scales[: n * groups].reshape(n, groups)
    zp = _NO_ZP if zero_points is None else zero_points[: n * groups].reshape(n, groups)
    q = weight.view(np.int8) if bits == 8 else weight
    if bits == 4 and k % 2:
        q, bits = _unpack_int4_to_int8(weight, n * k), 8
    if m <= GEMV_MAX_ROWS:
        xsum = xv.reshape(m, groups, k // groups).sum(axis=2, dtype=np.float32)
        blocks = (n + 3) // 4
        if bits == 8:
            _split(K.gemv_q8, blocks, n * k, xv, q, sc, zp, xsum, out)
        else:
            x_even, x_odd = np.ascontiguousarray(xv[:, 0::2]), np.ascontiguousarray(xv[:, 1::2])
            _split(K.gemv_q4, blocks, n * k, x_even, x_odd, q, sc, zp, xsum, out)
        return out
    if bits == 8:
        dequant, xt = K.dequant_q8, xv.T
    else:  # dequant_q4 writes even columns, then odd ones: permute x's columns alike
        dequant, xt = K.dequant_q4, np.concatenate([xv[:, 0::2], xv[:, 1::2]], axis=1).T
    rows = max(1, min(n, BLOCK_BYTES // (4 * k)))
    scratch = np.empty((rows, k), _F32)
    out_t = np.empty((n, m), _F32)  # block results land in contiguous rows of outᵀ
    for r0 in range(0, n, rows):
        r = min(rows, n - r0)
        block = scratch[:r]
        _split(dequant, r, r * k, q, sc, zp, r0, block)
        np.matmul(block, xt, out=out_t[r0 : r0 + r])
    return np.ascontiguousarray(out_t.T)


class QuantKernels:
    """``Backend.quantized_linear`` for the CPU backend."""

    def quantized_linear(self, x, x_layout, dtype, weight, scales, zero_points, *, bits,
                         out_features, in_features, groups):  # fmt: skip
        if not dtype.is_float or dtype.itemsize == 8:
            return super().quantized_linear(
                x, x_layout, dtype, weight, scales, zero_points, bits=bits,
                out_features=out_features, in_features=in_features, groups=groups,
            )  # fmt: skip
        res = quantized_linear(x, x_layout, weight, scales, zero_points, bits, out_features,
                               in_features, groups)  # fmt: skip
        return res.astype(dtype.np_dtype, copy=False).reshape(-1)
