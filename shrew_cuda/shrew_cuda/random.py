"""Random fills that reproduce the CPU backend's values exactly for the same seed.

shrew_cpu draws from ``numpy.random.Generator(Philox(seed))``. Philox4x64-10 is
counter-based, so uniform and Bernoulli draws are computed on the device in parallel:
the key is NumPy's (``Philox(seed).state``, from its SeedSequence), 64-bit word ``j`` of
the stream is word ``j % 4`` of the block at counter ``j // 4 + 1``, f32 uniforms take
32-bit halves (low half first) as ``(u >> 8) * 2**-24``, f64 uniforms and Bernoulli draws
take ``(u >> 11) * 2**-53``, exactly as NumPy does. The 64x64->128-bit products are built
from 32-bit limbs (no overflow, the same code on the simulator), and the scaling to
``[low, high)`` uses explicitly rounded multiply/add so the GPU cannot fuse it into an FMA
the CPU does not do.

Normal draws use NumPy's ziggurat, a rejection sampler whose k-th value depends on how
many draws the earlier ones rejected — inherently sequential — so ``rand_normal`` runs
NumPy on the host (the same call as shrew_cpu) and copies the values to the device.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda

from . import _access as A
from . import _runtime, memory
from ._intrinsics import device_fn, math_for
from .layouts import storage_dtype

M0, M1 = 0xD2E7470EE14C6C93, 0xCA5A826395121157
W0, W1 = 0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B


def philox_key(seed: int) -> tuple[int, int]:
    key = np.random.Philox(int(seed) & (2**64 - 1)).state["state"]["key"]
    return int(key[0]), int(key[1])


@functools.cache
def _philox():
    u64 = numba.uint64
    MASK = u64(0xFFFFFFFF)
    S32 = u64(32)
    m0, m1, w0, w1 = u64(M0), u64(M1), u64(W0), u64(W1)

    @device_fn
    def add64(a, b):
        lo = (a & MASK) + (b & MASK)
        hi = (a >> S32) + (b >> S32) + (lo >> S32)
        return ((hi & MASK) << S32) | (lo & MASK)

    @device_fn
    def mulhi(a, b):
        a0, a1, b0, b1 = a & MASK, a >> S32, b & MASK, b >> S32
        p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
        mid = (p00 >> S32) + (p01 & MASK) + (p10 & MASK)
        return p11 + (p01 >> S32) + (p10 >> S32) + (mid >> S32)

    @device_fn
    def mullo(a, b):
        a0, a1, b0, b1 = a & MASK, a >> S32, b & MASK, b >> S32
        p00, p01, p10 = a0 * b0, a0 * b1, a1 * b0
        mid = (p00 >> S32) + (p01 & MASK) + (p10 & MASK)
        return (p00 & MASK) | ((mid & MASK) << S32)

    @device_fn
    def word(block, w, k0, k1):
        """Word ``w`` (0..3) of Philox4x64-10 at counter (block, 0, 0, 0)."""
        c0, c1, c2, c3 = block, u64(0), u64(0), u64(0)
        for r in range(10):
            if r > 0:
                k0 = add64(k0, w0)
                k1 = add64(k1, w1)
            hi0, lo0 = mulhi(m0, c0), mullo(m0, c0)
            hi1, lo1 = mulhi(m1, c2), mullo(m1, c2)
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        if w == 0:
            return c0
        elif w == 1:
            return c1
        elif w == 2:
            return c2
        return c3

    return word


@_runtime.kernel_factory
def uniform_kernel(acc: str, store_kind: int):
    """acc f32: 32-bit draws; acc f64: 64-bit draws. ``mode`` 1 writes ``u < p``."""
    word = _philox()
    T = A.ACC_TYPES[acc]
    M = math_for(A.np_acc(acc))
    mul_rn, add_rn = M.mul_rn, M.add_rn
    store = A.storer(store_kind, acc)
    u64 = numba.uint64
    is32 = acc == "f32"
    ONE, TWO = u64(1), u64(2)
    SCALE = T(2.0**-24) if is32 else T(2.0**-53)

    @cuda.jit(cache=True)
    def uniform(out, n, k0, k1, low, span, top, clamp, mode, p):
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            j = u64(i) // TWO if is32 else u64(i)
            w = word(j // u64(4) + ONE, j % u64(4), u64(k0), u64(k1))
            if is32:
                half = (w >> u64(32)) if (i % 2) == 1 else (w & u64(0xFFFFFFFF))
                r = T(half >> u64(8)) * SCALE
            else:
                r = T(w >> u64(11)) * SCALE
            if mode == 1:
                store(out, i, T(1.0) if numba.float64(r) < p else T(0.0))
            else:
                v = add_rn(mul_rn(r, span), low)
                if clamp and v > top:
                    v = top
                store(out, i, v)

    return uniform


def _launch(shape, dtype, acc, low, span, top, clamp, mode, p, seed):
    n = math.prod(shape)
    out = memory.empty(n, storage_dtype(dtype))
    if n:
        k0, k1 = philox_key(seed)
        T = A.np_acc(acc)
        blocks, threads = _runtime.grid(n)
        uniform_kernel(acc, A.store_kind(dtype, acc))[blocks, threads](
            out, n, np.uint64(k0), np.uint64(k1), T(low), T(span), T(top), clamp, mode, p)
    return out


def rand_uniform(shape, dtype, low, high, seed, from_numpy):
    acc = "f64" if dtype.name == "float64" else "f32"
    T = A.np_acc(acc)
    scaled = (low, high) != (0.0, 1.0)
    span = T(high - low) if scaled else T(1.0)
    lo = T(low) if scaled else T(0.0)
    top = np.nextafter(T(high), T(low)) if high > low else T(high)
    return _launch(shape, dtype, acc, lo, span, top, scaled and high > low, 0, 0.0, seed)


def bernoulli(shape, p, dtype, seed):
    return _launch(shape, dtype, "f64", 0.0, 1.0, 1.0, False, 1, float(p), seed)


def rand_normal(shape, dtype, mean, std, seed, from_numpy):
    dt = np.float64 if dtype.name == "float64" else np.float32
    gen = np.random.Generator(np.random.Philox(int(seed) & (2**64 - 1)))
    r = gen.standard_normal(math.prod(shape), dtype=dt)
    if (mean, std) != (0.0, 1.0):
        r *= dt(std)
        r += dt(mean)
    return from_numpy(r.astype(dtype.np_dtype, copy=False))
