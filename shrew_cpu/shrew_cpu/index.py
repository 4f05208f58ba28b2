"""Host side of indexing: index_select / index_add, gather / scatter_add.

Indices are validated first (one min/max pass) so a bad index raises
``IndexOutOfRangeError`` naming the index and the valid range, never reads or writes
out of bounds. The moves themselves are NumPy's ``take`` / ``take_along_axis`` and
unbuffered ``add.at`` (correct with repeated indices); f16/bf16 accumulate in f32.
"""

from __future__ import annotations

import numpy as np

from shrew_core.errors import IndexOutOfRangeError, fmt_shape

from .strided import view

_F32 = np.dtype(np.float32)


def check_indices(op: str, idx: np.ndarray, size: int, dim: int, shape) -> None:
    if idx.size == 0:
        return
    lo, hi = idx.min(), idx.max()
    if lo < 0 or hi >= size:
        bad = int(lo) if lo < 0 else int(hi)
        raise IndexOutOfRangeError(
            f"{op}: index {bad} is out of range for dim {dim} of size {size} "
            f"(shape {fmt_shape(shape)}; valid indices are 0..{size - 1})"
        )


def _acc(np_dtype):
    return _F32 if np_dtype.itemsize == 2 else np_dtype


def index_select(x, layout, np_dtype, dim, index, index_layout) -> np.ndarray:
    v = view(x, layout)
    idx = view(index, index_layout)
    check_indices("index_select", idx, v.shape[dim], dim, v.shape)
    return np.take(v, idx, axis=dim).reshape(-1)


def index_add(shape, dim, index, index_layout, src, src_layout, np_dtype) -> np.ndarray:
    idx = view(index, index_layout)
    check_indices("index_add", idx, shape[dim], dim, shape)
    acc = _acc(np_dtype)
    out = np.zeros(shape, acc)
    s = view(src, src_layout)
    if acc is not np_dtype:
        s = s.astype(acc)
    np.add.at(np.moveaxis(out, dim, 0), idx, np.moveaxis(s, dim, 0))
    return out.astype(np_dtype, copy=False).reshape(-1)


def _fit(v: np.ndarray, shape, dim: int) -> np.ndarray:
    """``v`` narrowed to ``shape`` on every dim but ``dim`` (torch allows smaller index)."""
    if all(a == b for i, (a, b) in enumerate(zip(v.shape, shape)) if i != dim):
        return v
    return v[tuple(slice(None) if i == dim else slice(0, s) for i, s in enumerate(shape))]


def gather(x, layout, np_dtype, dim, index, index_layout) -> np.ndarray:
    v = view(x, layout)
    idx = view(index, index_layout)
    check_indices("gather", idx, v.shape[dim], dim, v.shape)
    return np.take_along_axis(_fit(v, idx.shape, dim), idx, axis=dim).reshape(-1)


def scatter_add(shape, dim, index, index_layout, src, src_layout, np_dtype) -> np.ndarray:
    idx = view(index, index_layout)
    check_indices("scatter_add", idx, shape[dim], dim, shape)
    acc = _acc(np_dtype)
    out = np.zeros(shape, acc)
    s = _fit(view(src, src_layout), idx.shape, dim)
    where = list(np.indices(idx.shape, sparse=True))
    where[dim] = idx
    np.add.at(out, tuple(where), s.astype(acc, copy=False))
    return out.astype(np_dtype, copy=False).reshape(-1)
