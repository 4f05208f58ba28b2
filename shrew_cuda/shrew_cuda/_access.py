"""Loads and stores between storage dtypes and a kernel's compute ("accumulator") type.

A kernel computes in one accumulator type: f32 (f16/bf16/f32 data), f64, or i64 (integer
and bool data). ``load`` widens one element, reading bf16 bit patterns when the runtime
flag ``kind`` is ``BF16``; the store is chosen per output dtype when the kernel is built:
``HALF`` rounds through f32, ``BF16`` writes bit patterns, ``BOOL`` writes ``v != 0``,
``TRUNC`` truncates a float toward zero for an integer output (like ``astype``).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from ._intrinsics import bf16, device_fn

NATIVE, BF16 = 0, 1  # load kinds (runtime flags)
ST_NATIVE, ST_BF16, ST_BOOL, ST_TRUNC, ST_HALF = range(5)  # store kinds (compile time)

ACC_TYPES = {"f32": numba.float32, "f64": numba.float64, "i64": numba.int64}


def acc_name(*dtypes) -> str:
    """The accumulator for data of ``dtypes``: f64 if any is f64, else f32 if any is a
    float, else i64."""
    if any(d.name == "float64" for d in dtypes):
        return "f64"
    if any(d.is_float for d in dtypes):
        return "f32"
    return "i64"


def load_kind(dtype) -> int:
    return BF16 if dtype.name == "bfloat16" else NATIVE


def store_kind(dtype, acc: str) -> int:
    if dtype.name == "bfloat16":
        return ST_BF16
    if dtype.name == "float16":
        return ST_HALF
    if dtype.is_bool:
        return ST_BOOL
    if dtype.is_int and acc != "i64":
        return ST_TRUNC
    return ST_NATIVE


@functools.cache
def loader(acc: str):
    """``load(arr, off, kind) -> acc`` for one element."""
    T = ACC_TYPES[acc]
    to_f32 = bf16().to_f32

    @device_fn
    def load(arr, off, kind):
        if kind == BF16:
            return T(to_f32(arr[off]))
        return T(arr[off])

    return load


@functools.cache
def storer(kind: int, acc: str):
    """``store(arr, off, value)`` for output store kind ``kind``."""
    T = ACC_TYPES[acc]
    zero = T(0)
    from_f32 = bf16().from_f32
    f32, i64 = numba.float32, numba.int64

    if kind == ST_BF16:

        def store(arr, off, v):
            arr[off] = from_f32(f32(v))

    elif kind == ST_HALF:

        def store(arr, off, v):
            arr[off] = f32(v)

    elif kind == ST_BOOL:

        def store(arr, off, v):
            arr[off] = v != zero

    elif kind == ST_TRUNC:

        def store(arr, off, v):
            arr[off] = i64(v) if v - v == zero else i64(0)  # NaN/inf -> 0

    else:

        def store(arr, off, v):
            arr[off] = v

    return device_fn(store)


def np_acc(acc: str):
    return {"f32": np.float32, "f64": np.float64, "i64": np.int64}[acc]
