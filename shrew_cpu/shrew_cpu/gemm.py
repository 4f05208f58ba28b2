"""Matrix multiplication through BLAS (NumPy's matmul, OpenBLAS in the wheels).

f32/f64 go straight to BLAS; transposed or narrowed 2-D operands are handed over as
strided views, which NumPy passes to GEMM with a transpose flag / leading dimension
instead of copying. A right operand broadcast over the batch (stride 0 on every batch
dim: ``x[B, T, K] @ W[K, N]``, as in ``linear``) becomes ONE GEMM on ``[B*T, K]`` -- NumPy's
batched loop would not call BLAS for it and runs ~50x slower. Other batch dims are iterated
by NumPy's matmul loop. f16/bf16 are computed in f32 and rounded once at the end.
Integer matmul uses NumPy's exact integer loop (wraps like NumPy on overflow).
"""

from __future__ import annotations

import numpy as np

from .strided import view

_F32 = np.dtype(np.float32)


def matmul(a, a_layout, b, b_layout, np_dtype: np.dtype) -> np.ndarray:
    av = view(a, a_layout)
    bv = view(b, b_layout)
    if av.ndim > 2 and av.size and not any(bv.strides[:-2]):
        # [B*T, N] rows come out in the same order as the [B, T, N] result
        av, bv = av.reshape(-1, av.shape[-1]), bv[(0,) * (bv.ndim - 2)]
    return np.ascontiguousarray(_gemm(av, bv, np_dtype)).reshape(-1)


def _gemm(av: np.ndarray, bv: np.ndarray, np_dtype: np.dtype) -> np.ndarray:
    if np_dtype.kind == "b":
        res = np.matmul(av.astype(np.int64), bv.astype(np.int64)) != 0
    elif np_dtype.itemsize == 2:  # f16 / bf16; out of f16's range rounds to inf, silently
        with np.errstate(over="ignore"):
            res = np.matmul(av.astype(_F32), bv.astype(_F32)).astype(np_dtype)
    else:
        res = np.matmul(av, bv)
    return res
