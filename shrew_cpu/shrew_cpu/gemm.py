"""Matrix multiplication through BLAS (NumPy's matmul, OpenBLAS in the wheels).

f32/f64 go straight to BLAS; transposed or narrowed 2-D operands are handed over as
strided views, which NumPy passes to GEMM with a transpose flag / leading dimension
instead of copying. A right operand broadcast over the batch (stride 0 on every batch
dim: ``x[B, T, K] @ W[K, N]``, as in ``linear``) becomes ONE GEMM on ``[B*T, K]`` -- NumPy's
batched loop would not call BLAS for it and runs ~50x slower. Other batch dims are iterated
by NumPy's matmul loop. f16/bf16 are computed in f32 and rounded once at the end.
Integer matmul uses NumPy's exact integer loop (wraps like NumPy on overflow).

Threads (``SHREW_CPU_GEMM_THREADS``): by default NumPy's BLAS threads its GEMMs itself.
``workers`` instead runs OpenBLAS single-threaded (its thread count switched through its
own API for the duration of the call only) and splits products of at least
``GEMM_PARALLEL_MACS`` multiply-adds into one block of output rows, columns or batch
entries per worker thread (``threads.py``). OpenBLAS's threads wait for each other by
spinning and yielding; on an oversubscribed 2-core VM one of them is often descheduled: a
[1024, 256] @ [256, 768] product took 6-8 ms median with 2 OpenBLAS threads against 2.9 ms
with one, and MultiHeadAttention fwd+bwd 89-152 ms instead of 26-28 ms. On the same VM
idle, OpenBLAS's own threads are faster (shared packing, warm workers: LSTM fwd+bwd 47-56
vs 67-69 ms, MLP step 0.8 vs 1.15 ms), hence the default. With another BLAS (MKL,
Accelerate) ``workers`` only splits the work.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading

import numpy as np

from . import _config
from .strided import view
from .threads import get_num_threads, parallel_for, ranges

_F32 = np.dtype(np.float32)


def matmul(a, a_layout, b, b_layout, np_dtype: np.dtype) -> np.ndarray:
    av = view(a, a_layout)
    bv = view(b, b_layout)
    if av.ndim > 2 and av.size and not any(bv.strides[:-2]):
        # [B*T, N] rows come out in the same order as the [B, T, N] result
        av, bv = av.reshape(-1, av.shape[-1]), bv[(0,) * (bv.ndim - 2)]
    return _gemm(av, bv, np_dtype).ravel()  # a view of the fresh C-ordered product


def _gemm(av: np.ndarray, bv: np.ndarray, np_dtype: np.dtype) -> np.ndarray:
    if np_dtype.kind == "b":
        res = np.matmul(av.astype(np.int64), bv.astype(np.int64)) != 0
    elif np_dtype.itemsize == 2:  # f16 / bf16; out of f16's range rounds to inf, silently
        with np.errstate(over="ignore"):
            res = matmul_threads(av.astype(_F32), bv.astype(_F32)).astype(np_dtype)
    elif np_dtype.kind == "f":
        res = matmul_threads(av, bv)
    else:
        res = np.matmul(av, bv)
    return res


def _openblas_thread_api():
    """(set, get) of the OpenBLAS NumPy is linked against, or None (another BLAS)."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "openblas" in ln.lower()
                            and ln.split()[-1].startswith("/")})  # fmt: skip
    except OSError:  # not Linux
        return None
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(paths, key=lambda p: not p.startswith(numpy_dir)):  # NumPy's first
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    return setter, getter
    return None


_api: tuple | None | bool = False  # False: not looked up yet
_lock = threading.Lock()
_depth = 0  # calls inside single-threaded BLAS (threads may overlap)
_saved = 1


def _enter() -> None:
    global _api, _depth, _saved
    with _lock:
        if _api is False:
            _api = _openblas_thread_api()
        if _api is not None:
            if _depth == 0:
                _saved = _api[1]()
                _api[0](1)
            _depth += 1


def _exit() -> None:
    global _depth
    with _lock:
        if _api is not None:
            _depth -= 1
            if _depth == 0:
                _api[0](_saved)


def matmul_threads(av: np.ndarray, bv: np.ndarray) -> np.ndarray:
    """``np.matmul(av, bv)`` for float operands: single-threaded BLAS, large products split
    over the worker threads into blocks of output rows, columns or batch entries."""
    if _config.GEMM_THREADS != "workers":
        return np.matmul(av, bv)
    _enter()
    try:
        if av.ndim < 2 or bv.ndim < 2 or get_num_threads() == 1:
            return np.matmul(av, bv)
        (m, k), n = av.shape[-2:], bv.shape[-1]
        batch = np.broadcast_shapes(av.shape[:-2], bv.shape[:-2]) if av.ndim + bv.ndim > 4 else ()
        nb = math.prod(batch)
        if m * n * k * nb < _config.GEMM_PARALLEL_MACS:
            return np.matmul(av, bv)
        parts = get_num_threads() * _PARTS_PER_THREAD
        out = np.empty((*batch, m, n), np.result_type(av, bv))
        if len(batch) == 1 and nb >= parts:  # blocks of batch entries
            a3, b3 = np.broadcast_to(av, (nb, m, k)), np.broadcast_to(bv, (nb, k, n))
            blocks = [(a3[lo:hi], b3[lo:hi], out[lo:hi]) for lo, hi in ranges(nb, parts)]
        elif m >= n:  # blocks of output rows (of every batch entry)
            blocks = [(av[..., lo:hi, :], bv, out[..., lo:hi, :])
                      for lo, hi in ranges(m, min(parts, m // _MIN_BLOCK))]  # fmt: skip
        else:  # blocks of output columns
            blocks = [(av, bv[..., lo:hi], out[..., lo:hi])
                      for lo, hi in ranges(n, min(parts, n // _MIN_BLOCK))]  # fmt: skip
        parallel_for(_block, blocks)
        return out
    finally:
        _exit()


#: Blocks per worker thread: one, since every block re-packs the shared operand inside BLAS
#: (8 blocks made a 1024^3 product 9.3 ms against 8.1 ms with 2).
_PARTS_PER_THREAD = 1
#: Rows / columns per block at least: thinner GEMM blocks lose BLAS efficiency.
_MIN_BLOCK = 32


def _block(a, b, out) -> None:
    np.matmul(a, b, out=out)
