"""Strided views over 1-D storages: Layout -> NumPy view, and layout canonicalisation.

Storage is a 1-D C-contiguous NumPy array. A Layout (shape, strides and offset in
elements) becomes a zero-copy NumPy view here; kernels that walk layouts themselves get
a *canonical* form instead: dims of size 1 dropped and adjacent dims merged wherever
every operand allows it, padded to ``CANON_RANK`` dims, so a kernel compiled once
serves every rank.
"""

from __future__ import annotations

import numpy as np

CANON_RANK = 4


def is_full(storage: np.ndarray, layout) -> bool:
    """True when ``layout`` covers all of ``storage`` in row-major order."""
    return layout.offset == 0 and storage.size == layout.numel and layout.is_contiguous()


def view(storage: np.ndarray, layout) -> np.ndarray:
    """The NumPy view of ``storage`` through ``layout`` (shares memory, never copies)."""
    shape = layout.shape
    if layout.offset == 0 and storage.size == layout.numel and layout.is_contiguous():
        return storage.reshape(shape)
    n = layout.numel
    if n == 0:
        return np.empty(shape, storage.dtype)
    isz = storage.itemsize
    return np.ndarray(
        shape,
        storage.dtype,
        buffer=storage,
        offset=layout.offset * isz,
        strides=tuple(s * isz for s in layout.strides),
    )


def flat(storage: np.ndarray, layout) -> np.ndarray | None:
    """A 1-D view when ``layout`` is one contiguous run (any offset), else None."""
    if layout.is_contiguous():
        return storage[layout.offset : layout.offset + layout.numel]
    return None


def contiguous(storage: np.ndarray, layout) -> np.ndarray:
    """The elements of the view in row-major order as a C-contiguous array of its shape."""
    if layout.is_contiguous():
        return storage[layout.offset : layout.offset + layout.numel].reshape(layout.shape)
    return np.ascontiguousarray(view(storage, layout))


def coalesce(shape, *strides_list):
    """Drop size-1 dims and merge adjacent dims that are contiguous for every operand.

    Returns ``(shape, [strides, ...])`` as lists, innermost dim last.
    """
    keep = [i for i, d in enumerate(shape) if d != 1]
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides_list]
    for i in keep:
        d = shape[i]
        if out_shape and all(
            st[-1] == s[i] * d for st, s in zip(out_strides, strides_list)
        ):
            out_shape[-1] *= d
            for st, s in zip(out_strides, strides_list):
                st[-1] = s[i]
        else:
            out_shape.append(d)
            for st, s in zip(out_strides, strides_list):
                st.append(s[i])
    return out_shape, out_strides


def canonical(shape, *strides_list):
    """``coalesce`` padded on the left to CANON_RANK dims, as int64 tuples; None if the
    layouts need more dims than that (the caller then copies to contiguous first)."""
    cshape, cstrides = coalesce(shape, *strides_list)
    if len(cshape) > CANON_RANK:
        return None
    pad = CANON_RANK - len(cshape)
    return (
        tuple([1] * pad + cshape),
        [tuple([0] * pad + st) for st in cstrides],
    )


def row_offsets(shape, strides, offset: int) -> np.ndarray:
    """Element offsets of every index of (shape, strides), row-major, as int64."""
    off = np.array([offset], dtype=np.int64)
    for d, s in zip(shape, strides):
        off = (off[:, None] + np.arange(d, dtype=np.int64) * s).ravel()
    return off
