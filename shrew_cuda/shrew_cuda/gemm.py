"""Batched matrix multiply: cuBLAS through CuPy on a GPU, a tiled numba.cuda kernel
otherwise.

``(*B, M, K) @ (*B, K, N)`` with any strides. On a GPU, f32/f64/f16/bf16 call
``cublasGemmStridedBatchedEx`` directly on the storages (no CuPy array is built): the
product is computed as ``Cᵀ = Bᵀ Aᵀ`` in cuBLAS's column-major terms, and each operand's
layout becomes an op flag and a leading dimension — a transposed view is ``OP_T`` with
its stride as ``ld``, never a copy (only an operand with no unit stride in its last two
dims is made contiguous first). Batch dims, broadcast ones with stride 0 included, are
coalesced; if they do not collapse to one dim, the outer ones loop on the host. f16/bf16
accumulate in f32 (``CUBLAS_COMPUTE_32F``); f32 uses full f32, not TF32 (like CuPy and
torch defaults).

The tiled kernel (shared-memory tiles, one output element per thread, f32/f64/i64
accumulators) serves integer and bool dtypes everywhere and every dtype under the
simulator, where CuPy cannot run.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from shrew_core.layout import Layout

from . import _access as A
from . import _runtime, memory
from .layouts import canonical, contiguous_strides, storage_dtype

GPU_TILE, SIM_TILE = 16, 4


@_runtime.kernel_factory
def tiled_kernel(acc: str, store_kind: int, tile: int):
    T = A.ACC_TYPES[acc]
    load, store = A.loader(acc), A.storer(store_kind, acc)
    Z = T(0)

    @cuda.jit(cache=True)
    def gemm(a, ao, sam, sak, ka, b, bo, sbk, sbn, kb, bshape, bsa, bsb, bsc, M, N, K,
             nbatch, out):  # fmt: skip
        ta = cuda.shared.array((tile, tile), T)
        tb = cuda.shared.array((tile, tile), T)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tiles_m = (M + tile - 1) // tile
        tiles_n = (N + tile - 1) // tile
        for z in range(cuda.blockIdx.z, nbatch, cuda.gridDim.z):
            rem = z
            pa, pb, pc = ao, bo, 0
            for d in range(len(bshape) - 1, -1, -1):
                q = rem // bshape[d]
                idx = rem - q * bshape[d]
                rem = q
                pa += idx * bsa[d]
                pb += idx * bsb[d]
                pc += idx * bsc[d]
            for by in range(cuda.blockIdx.y, tiles_m, cuda.gridDim.y):
                for bx in range(cuda.blockIdx.x, tiles_n, cuda.gridDim.x):
                    row = by * tile + ty
                    col = bx * tile + tx
                    s = Z
                    for k0 in range(0, K, tile):
                        if row < M and k0 + tx < K:
                            ta[ty, tx] = load(a, pa + row * sam + (k0 + tx) * sak, ka)
                        else:
                            ta[ty, tx] = Z
                        if col < N and k0 + ty < K:
                            tb[ty, tx] = load(b, pb + (k0 + ty) * sbk + col * sbn, kb)
                        else:
                            tb[ty, tx] = Z
                        cuda.syncthreads()
                        for kk in range(tile):
                            s += ta[ty, kk] * tb[kk, tx]
                        cuda.syncthreads()
                    if row < M and col < N:
                        store(out, pc + row * N + col, s)

    return gemm


def _tiled(a, la, b, lb, dtype, out, batch, bsa, bsb, bsc, M, N, K):
    acc = A.acc_name(dtype)
    tile = SIM_TILE if _runtime.simulated() else GPU_TILE
    nbatch = math.prod(batch)
    bshape, (sa, sb, sc) = canonical(batch, bsa, bsb, bsc)
    cap = 2 if _runtime.simulated() else 65535
    grid = (min(cap, -(-N // tile)), min(cap, -(-M // tile)), min(cap, nbatch))
    kind = A.load_kind(dtype)
    tiled_kernel(acc, A.store_kind(dtype, acc), tile)[grid, (tile, tile)](
        a, la.offset, la.strides[-2], la.strides[-1], kind, b, lb.offset, lb.strides[-2],
        lb.strides[-1], kind, bshape, sa, sb, sc, M, N, K, nbatch, out)


# ----------------------------------------------------------------------------- cuBLAS
_CUDA_TYPE = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 14}
_COMPUTE_32F, _COMPUTE_64F = 68, 70
_OP_N, _OP_T = 0, 1
_GEMM_DEFAULT = -1


def _cublas():
    try:
        from cupy_backends.cuda.libs import cublas
    except ImportError:  # pragma: no cover - older CuPy layout
        from cupy.cuda import cublas
    return cublas


def _operand(sr: int, sc: int, rows: int, cols: int):
    """(op, ld) that makes cuBLAS see the transpose of the row-major (rows x cols) matrix
    with strides (sr, sc), or None if it needs a copy."""
    if sc == 1 or cols == 1:
        ld = sr if rows > 1 else max(1, cols)
        if ld >= max(1, cols):
            return _OP_N, ld
    if sr == 1 or rows == 1:
        ld = sc if cols > 1 else max(1, rows)
        if ld >= max(1, rows):
            return _OP_T, ld
    return None


def _ptr(arr, offset_elems: int) -> int:
    return arr.__cuda_array_interface__["data"][0] + offset_elems * arr.dtype.itemsize


def _cublas_gemm(a, la, b, lb, dtype, out, batch, bsa, bsb, M, N, K, device_index):
    import cupy

    cublas = _cublas()
    opa = _operand(la.strides[-2], la.strides[-1], M, K)
    opb = _operand(lb.strides[-2], lb.strides[-1], K, N)
    if opa is None:
        return False
    if opb is None:
        return False
    f64 = dtype.name == "float64"
    alpha = np.ones(1, np.float64 if f64 else np.float32)
    beta = np.zeros(1, np.float64 if f64 else np.float32)
    ctype = _CUDA_TYPE[dtype.name]
    compute = _COMPUTE_64F if f64 else _COMPUTE_32F
    bshape, (sa, sb) = canonical(batch, bsa, bsb) if batch else ((), [(), ()])
    inner = [(d, x, y) for d, x, y in zip(bshape, sa, sb) if d != 1] or [(1, 0, 0)]
    outer, (cnt, stride_a, stride_b) = inner[:-1], inner[-1]
    stride_c = M * N
    with cupy.cuda.Device(device_index):
        handle = cupy.cuda.device.get_cublas_handle()
        cublas.setStream(handle, 0)  # numba's kernels run on the legacy default stream
        cublas.setPointerMode(handle, 0)  # host pointers for alpha/beta
        for flat in range(math.prod(d for d, _, _ in outer)):
            oa, ob, rem = la.offset, lb.offset, flat
            for d, x, y in reversed(outer):
                idx = rem % d
                rem //= d
                oa += idx * x
                ob += idx * y
            oc = flat * cnt * stride_c
            # C^T (N x M) = op(B^T) (N x K) @ op(A^T) (K x M)
            cublas.gemmStridedBatchedEx(
                handle, opb[0], opa[0], N, M, K, alpha.ctypes.data,
                _ptr(b, ob), ctype, opb[1], stride_b,
                _ptr(a, oa), ctype, opa[1], stride_a,
                beta.ctypes.data, _ptr(out, oc), ctype, N, stride_c,
                cnt, compute, _GEMM_DEFAULT)  # fmt: skip
    return True


def use_cublas(dtype) -> bool:
    return not _runtime.simulated() and dtype.name in _CUDA_TYPE


def matmul(a, la, b, lb, dtype, device_index: int = 0, copy=None):
    """``copy(storage, layout) -> contiguous storage`` is the backend's strided copy."""
    *batch, M, K = la.shape
    N = lb.shape[-1]
    out = memory.empty(math.prod(batch) * M * N, storage_dtype(dtype))
    if out.size == 0:
        return out
    bsc = contiguous_strides(batch) if batch else ()
    bsc = tuple(s * M * N for s in bsc)
    bsa, bsb = tuple(la.strides[:-2]), tuple(lb.strides[:-2])
    if K == 0:
        from .elementwise import fill

        return fill(tuple(batch) + (M, N), 0, dtype)
    if use_cublas(dtype):
        for _ in range(2):
            if _cublas_gemm(a, la, b, lb, dtype, out, batch, bsa, bsb, M, N, K, device_index):
                return out
            # an operand without a unit stride in its matrix dims: make both contiguous
            a, la = copy(a, la), Layout.contiguous(la.shape)
            b, lb = copy(b, lb), Layout.contiguous(lb.shape)
            bsa, bsb = tuple(la.strides[:-2]), tuple(lb.strides[:-2])
    _tiled(a, la, b, lb, dtype, out, batch, bsa, bsb, bsc, M, N, K)
    return out
