"""Scalar device functions the kernels share, in two implementations with one meaning.

On a GPU they are numba.cuda device functions over libdevice (``__nv_expf``,
``__nv_int_as_float``, the explicitly rounded ``__fmul_rn`` ...). The CUDA simulator runs
kernels as Python and has no libdevice, so there each is the NumPy equivalent on NumPy
scalars. Kernels bind the functions they use as closure variables (``math_for(f32)``),
so one kernel source serves both.

bfloat16 has no numba type: bf16 tensors are stored as ``uint16`` bit patterns, widened
with ``bf16_to_f32`` (``bits << 16``) and narrowed with ``f32_to_bf16`` (round to nearest
even, NaN stays NaN), as ml_dtypes does. f16 uses numba's native float16 loads/stores.
All half arithmetic happens in f32.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np

from ._runtime import cuda, simulated

_NAMES = ("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "erf", "floor", "ceil",
          "rint", "log1p", "expm1", "pow", "fmod", "fabs", "trunc")  # fmt: skip


def _sim_math(t) -> SimpleNamespace:
    def wrap1(fn):
        return lambda x: t(fn(x))

    def erf(x):
        return t(math.erf(float(x)))

    def rsqrt(x):
        return t(1.0) / np.sqrt(t(x))

    ns = {n: wrap1(getattr(np, n)) for n in ("exp", "log", "sqrt", "sin", "cos", "tanh",
                                               "floor", "ceil", "rint", "log1p", "expm1",
                                               "fabs", "trunc")}  # fmt: skip
    ns["pow"] = lambda a, b: t(np.power(t(a), t(b)))
    ns["fmod"] = lambda a, b: t(np.fmod(t(a), t(b)))
    ns["erf"], ns["rsqrt"] = erf, rsqrt
    ns["mul_rn"] = lambda a, b: t(t(a) * t(b))
    ns["add_rn"] = lambda a, b: t(t(a) + t(b))
    return SimpleNamespace(**ns)


def _gpu_math(is_f32: bool) -> SimpleNamespace:
    from numba.cuda import libdevice as ld

    ns = {n: getattr(ld, n + "f" if is_f32 else n) for n in _NAMES}
    ns["mul_rn"] = ld.fmul_rn if is_f32 else ld.dmul_rn
    ns["add_rn"] = ld.fadd_rn if is_f32 else ld.dadd_rn
    return SimpleNamespace(**ns)


@functools.cache
def math_for(np_type) -> SimpleNamespace:
    """Float math (exp, log, ..., pow, fmod, mul_rn, add_rn) for np.float32 / np.float64."""
    if simulated():
        return _sim_math(np_type)
    return _gpu_math(np.dtype(np_type) == np.float32)


@functools.cache
def bf16() -> SimpleNamespace:
    """``to_f32(bits)`` and ``from_f32(x) -> uint16 bits`` for bfloat16 storage."""
    if simulated():

        def to_f32(b):
            return np.uint32(int(b) << 16).view(np.float32)

        def from_f32(x):
            x = np.float32(x)
            if x != x:
                return np.uint16(0x7FC0)
            u = int(x.view(np.uint32))
            return np.uint16(((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF)

        return SimpleNamespace(to_f32=to_f32, from_f32=from_f32)

    from numba import float32, int32, uint16, uint32
    from numba.cuda import libdevice as ld

    nc = cuda()

    @nc.jit(device=True, inline=True)
    def to_f32(b):
        return ld.int_as_float(int32(b) << int32(16))

    @nc.jit(device=True, inline=True)
    def from_f32(x):
        x = float32(x)
        if x != x:
            return uint16(0x7FC0)
        u = uint32(ld.float_as_int(x))
        u = u + uint32(0x7FFF) + ((u >> uint32(16)) & uint32(1))
        return uint16(u >> uint32(16))

    return SimpleNamespace(to_f32=to_f32, from_f32=from_f32)


def device_fn(fn):
    """``cuda.jit(device=True)`` on a GPU; the plain function under the simulator."""
    if simulated():
        return fn
    return cuda().jit(device=True, inline=True)(fn)
