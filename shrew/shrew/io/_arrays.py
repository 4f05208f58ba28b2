"""Values <-> NumPy arrays for every writer and reader of ``shrew.io``.

Writers take Shrew tensors (any device, any layout: a view saves its logical values),
NumPy arrays and NumPy scalars, and hand the format a C-contiguous little-endian array.
Readers give back Shrew tensors; dtypes Shrew lacks widen exactly (i8/i16/i32 -> i64,
u16 -> u32) and the rest (u64, complex, fp8, ...) raise ``CheckpointError`` naming the dtype.
"""

from __future__ import annotations

import sys

import numpy as np

import shrew_core as sc

from .errors import CheckpointError

# NumPy dtypes Shrew lacks but can hold exactly after widening.
_WIDEN = {
    np.dtype(np.int8): np.dtype(np.int64),
    np.dtype(np.int16): np.dtype(np.int64),
    np.dtype(np.int32): np.dtype(np.int64),
    np.dtype(np.uint16): np.dtype(np.uint32),
}
# bf16 (ml_dtypes, ~0.8 s to import) is matched by name, so it loads only when used.
_SHREW_NP = {d.np_dtype for d in sc.ALL_DTYPES if d is not sc.bf16}


def is_bf16(dtype: np.dtype) -> bool:
    """``dtype`` is ml_dtypes' bfloat16 (without importing ml_dtypes for other dtypes)."""
    return dtype.name == "bfloat16" and dtype == sc.bf16.np_dtype


def to_array(value: object, path: str, name: str) -> np.ndarray:
    """``value`` as a C-contiguous little-endian NumPy array (a copy only when needed)."""
    if isinstance(value, sc.Tensor):
        arr = value.detach().numpy()
    elif isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
    else:
        raise CheckpointError(
            path, f"tensor {name!r} is a {type(value).__name__}; expected a shrew Tensor or a "
            "NumPy array"
        )
    if arr.dtype.hasobject:
        raise CheckpointError(path, f"tensor {name!r} has dtype object; only numeric arrays "
                              "can be saved (nothing is pickled)")  # fmt: skip
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # not np.ascontiguousarray: it turns 0-d into 1-d
    if sys.byteorder == "big" or arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def shrew_array(arr: np.ndarray, path: str, name: str) -> np.ndarray:
    """``arr`` in a dtype Shrew has: itself, or exactly widened; else ``CheckpointError``."""
    if arr.dtype in _SHREW_NP or is_bf16(arr.dtype):
        return arr
    wide = _WIDEN.get(arr.dtype)
    if wide is None:
        raise CheckpointError(
            path, f"tensor {name!r} has dtype {arr.dtype}, which Shrew cannot hold exactly "
            "(Shrew has " + ", ".join(d.short for d in sc.ALL_DTYPES) + "; i8/i16/i32 widen to "
            "i64 and u16 to u32)"
        )
    return arr.astype(wide)


def to_tensor(arr: np.ndarray, device: object = None) -> sc.Tensor:
    """A Shrew tensor holding ``arr`` (zero-copy on CPU)."""
    return sc.from_numpy(arr, device=device)


def np_dtype(name: object) -> np.dtype:
    """The NumPy dtype named ``name`` (``"int32"``, ``"bfloat16"`` ...); ``TypeError`` if none."""
    if name == "bfloat16":
        return sc.bf16.np_dtype
    if not isinstance(name, str):
        raise TypeError(f"not a dtype name: {name!r}")
    return np.dtype(name)
