"""Random fills from the per-op seed the front end hands out (``shrew_core.random``).

Each call builds ``numpy.random.Generator(Philox(seed))``: counter-based, so the same
seed gives the same values on every run, platform and thread count. f16/bf16 draw in
f32 and round; integer/bool dtypes receive the float values cast like ``astype``.
"""

from __future__ import annotations

import math

import numpy as np

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def _gen(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(int(seed) & (2**64 - 1)))


def _draw_dtype(np_dtype):
    return _F64 if np_dtype == _F64 else _F32


def _numel(shape) -> int:
    return math.prod(shape)


def rand_uniform(shape, np_dtype, low, high, seed) -> np.ndarray:
    dt = _draw_dtype(np_dtype)
    r = _gen(seed).random(_numel(shape), dtype=dt)
    if (low, high) != (0.0, 1.0):
        r *= dt.type(high - low)
        r += dt.type(low)
        if high > low:  # rounding must not produce ``high`` itself
            np.minimum(r, np.nextafter(dt.type(high), dt.type(low)), out=r)
    return r.astype(np_dtype, copy=False)


def rand_normal(shape, np_dtype, mean, std, seed) -> np.ndarray:
    dt = _draw_dtype(np_dtype)
    r = _gen(seed).standard_normal(_numel(shape), dtype=dt)
    if (mean, std) != (0.0, 1.0):
        r *= dt.type(std)
        r += dt.type(mean)
    return r.astype(np_dtype, copy=False)


def bernoulli(shape, p, np_dtype, seed) -> np.ndarray:
    r = _gen(seed).random(_numel(shape), dtype=_F64)
    return (r < p).astype(np_dtype)
