"""Layouts as kernels see them, and the storage dtype of each Shrew dtype.

Kernels read strided operands directly: a Layout becomes ``(offset, strides)`` over one
shared ``shape``, passed as fixed-length int64 tuples (kernel parameters, no metadata
copy to the device). ``canonical`` first drops size-1 dims and merges dims that are
adjacent in memory for every operand (a contiguous tensor becomes one dim), then pads on
the left to rank 4 (or 8), so one compiled kernel serves every rank.

bf16 is stored as uint16 bit patterns (numba has no bfloat16 array type); every other
dtype is stored as its NumPy dtype.
"""

from __future__ import annotations

import numpy as np

from shrew_core.errors import BackendError

RANKS = (4, 8)
BF16_BITS = np.dtype(np.uint16)


def storage_dtype(dtype) -> np.dtype:
    """The NumPy dtype of the device array holding ``dtype``."""
    return BF16_BITS if dtype.name == "bfloat16" else dtype.np_dtype


def is_bf16(dtype) -> bool:
    return dtype.name == "bfloat16"


def compute_dtype(dtype) -> np.dtype:
    """f16/bf16 compute in f32; other dtypes in themselves."""
    return np.dtype(np.float32) if dtype.is_float and dtype.itemsize == 2 else dtype.np_dtype


def coalesce(shape, *strides_list):
    """Drop size-1 dims and merge adjacent dims contiguous for every operand:
    ``(shape, [strides, ...])`` as lists, innermost last."""
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides_list]
    for i, d in enumerate(shape):
        if d == 1:
            continue
        if out_shape and all(st[-1] == s[i] * d for st, s in zip(out_strides, strides_list)):
            out_shape[-1] *= d
            for st, s in zip(out_strides, strides_list):
                st[-1] = s[i]
        else:
            out_shape.append(d)
            for st, s in zip(out_strides, strides_list):
                st.append(s[i])
    return out_shape, out_strides


def canonical(shape, *strides_list):
    """``coalesce`` padded on the left to rank 4 or 8: ``(shape, [strides, ...])`` as
    tuples. More than 8 dims that cannot merge raise BackendError."""
    cshape, cstrides = coalesce(shape, *strides_list)
    for rank in RANKS:
        if len(cshape) <= rank:
            pad = rank - len(cshape)
            return tuple([1] * pad + cshape), [tuple([0] * pad + st) for st in cstrides]
    raise BackendError(
        f"cuda: a layout of shape {tuple(shape)} has {len(cshape)} dims that do not merge; "
        f"kernels take at most {RANKS[-1]} (make it contiguous first)"
    )


def contiguous_strides(shape) -> tuple[int, ...]:
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return tuple(reversed(st))


def moved_last(layout, dim: int):
    """(shape, strides) of ``layout`` with ``dim`` moved to the end (a view, no copy)."""
    order = [i for i in range(len(layout.shape)) if i != dim] + [dim]
    return [layout.shape[i] for i in order], [layout.strides[i] for i in order]


def rows_view(shape, strides, offset: int):
    """A [rows, L] description of a layout whose last dim is the row: ``(rows, L,
    elem_stride, row_shape4, row_strides4, offset)`` where rows are enumerated over the
    other dims (coalesced, padded to rank 4/8)."""
    if not shape:
        return 1, 1, 1, (1, 1, 1, 1), (0, 0, 0, 0), offset
    L, es = shape[-1], strides[-1]
    rshape, (rstr,) = canonical(shape[:-1], strides[:-1])
    rows = 1
    for d in shape[:-1]:
        rows *= d
    return rows, L, es, rshape, rstr, offset
